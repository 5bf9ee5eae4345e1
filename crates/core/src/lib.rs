//! The pure room engine of rtcroom.
//!
//! **Architecture invariant:** this crate never does IO, never reads a clock and never draws
//! randomness of its own. Time comes in as [`Now`] (a monotonic time for deadlines and the
//! wall-clock time for records) with every input, randomness through
//! the [`Entropy`] the engine was built with, and everything the engine wants done (send a
//! message, close a connection, write a record) comes out as an [`Effect`] that the shell
//! carries out. The same inputs at the same times always give the same effects.
//!
//! Run loop, for a shell:
//! 1. `engine.handle(now, input)` for each input (a connection opened, a frame, a close);
//! 2. drain `engine.poll_effect()` until it returns `None`, carrying each effect out;
//! 3. sleep until `engine.poll_timeout()` (or the next input), then `engine.handle_timeout(now)`
//!    and drain effects again.

mod config;
mod effect;
mod engine;
mod ids;
mod record;
mod text;
mod time;

pub use config::{AuthMode, EngineConfig, IceMode, Prices};
pub use effect::{CloseReason, Effect, Event, LeaveCause};
pub use engine::{
    Adopted, ConnId, Engine, EngineStats, Grant, Input, MemberInfo, RestoreError, RoomInfo,
    RoomRef, Snapshot,
};
pub use ids::{Entropy, IdGen, SplitMix64};
pub use record::{
    ClientInfo, Quality, Record, SessionClose, SessionOpen, SubSessionBegin, SubSessionConnect,
    SubSessionFinish, SubSessionOpen, SubStatus,
};
pub use text::Text;
pub use time::{Millis, Now};

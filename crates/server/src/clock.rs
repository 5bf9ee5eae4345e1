//! The clocks as the room engine sees them: the wall clock in Unix milliseconds, and a
//! monotonic clock for deadlines.
//!
//! It sits at the bottom of the import graph: every module that needs the time (the hub,
//! token checks, login, the ICE agent, record recovery) takes it from here.

use rtcroom_core::{Millis, Now};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The wall clock as the engine sees it: what records are dated by and tokens expire on.
/// An operator or NTP may step it.
pub fn now() -> Millis {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A monotonic clock in milliseconds: it never steps. It starts at the wall clock's reading
/// when first asked, so the two agree until the wall clock is stepped.
pub fn monotonic() -> Millis {
    static ORIGIN: OnceLock<(Instant, Millis)> = OnceLock::new();
    let (at, wall) = *ORIGIN.get_or_init(|| (Instant::now(), now()));
    let elapsed = u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX);
    Millis(wall.0.saturating_add(elapsed))
}

/// Both clocks, for an input to the engine: deadlines run on `mono`, records are dated by
/// `wall`.
pub fn engine_now() -> Now {
    Now {
        mono: monotonic(),
        wall: now(),
    }
}

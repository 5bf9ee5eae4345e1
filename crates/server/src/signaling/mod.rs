//! Signaling: the WebSocket connections and the hub that owns the room engine.
//!
//! `ws` answers the upgrade and reads and writes the connection (framing in `frame`, without
//! IO); `connection` is the task of one connection; `token` checks tokens before a frame goes
//! to the hub; `hub` is the one task that feeds the engine and carries out its effects (into each
//! connection's `queue`);
//! `snapshot` keeps the rooms in `data_dir` across a restart; `route` is the seam to the
//! cluster, for connections whose room another node owns.

pub mod changes;
pub mod connection;
pub mod frame;
pub mod hub;
pub mod queue;
pub mod route;
pub mod snapshot;
pub mod token;
pub mod ws;

pub use connection::Signaling;

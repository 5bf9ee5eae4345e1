//! ICE servers in the room server: the embedded STUN/TURN server (`embedded`), the ICE HTTP
//! API (`POST /icebandwidthload`, `api`) that coturn agents use, and `rtcroom ice-agent`
//! (`agent`), a program of its own.
//!
//! The registry and the per-pair selection are in the engine (pure, `rtcroom-ice`); this
//! module only starts sockets, reads counters and NIC rates, and speaks HTTP.

pub mod agent;
pub mod api;
pub mod embedded;

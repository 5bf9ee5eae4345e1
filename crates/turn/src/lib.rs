//! The embedded STUN/TURN server of rtcroom (UDP, TCP and TLS towards clients; UDP towards
//! peers), for deployments without coturn.
//!
//! It is the webrtc-rs `turn` crate's server with the pieces this project needs around it:
//! coturn's REST credential scheme as its auth handler (the same code that mints the
//! credentials in `rtcroom-ice`), a peer filter whose refusals are answered 403, quotas (live
//! allocations in all and per user, relayed bytes per second per allocation, a maximum
//! credential lifetime), TCP and TLS listeners (`stream` module), a relay port range, and byte/packet counters that feed metrics and the server's own
//! `iceReportRxTxRate`, and a gate that keeps unauthenticated traffic from growing the crate's
//! nonce store. It owns the TURN sockets and nothing else: registering with the ICE
//! registry and reporting rates is the binary's job.
//!
//! ```no_run
//! # async fn run() -> Result<(), rtcroom_turn::TurnError> {
//! let mut cfg = rtcroom_turn::TurnConfig::new("shared secret");
//! cfg.public_ip = Some("203.0.113.7".parse().expect("ip"));
//! let turn = rtcroom_turn::TurnServer::start(cfg).await?;
//! let counters = turn.counters();
//! turn.shutdown().await?;
//! # Ok(()) }
//! ```

mod auth;
mod config;
mod conn;
mod counters;
mod filter;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod guard;
mod nonce;
mod relay;
mod server;
mod stream;

pub use config::{ConfigError, PortRange, TlsListen, TurnConfig};
pub use counters::CounterSnapshot;
pub use filter::PeerFilter;
pub use server::{TurnError, TurnHandle, TurnServer};

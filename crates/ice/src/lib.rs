//! The ICE server side of the room server: the `/icebandwidthload` API, the registry of ICE
//! (STUN/TURN) servers with their health and load, the choice of a server per pair of
//! members, and each member's `rtcConfig` with ephemeral TURN credentials.
//!
//! **Architecture invariant:** this crate never does IO and never reads a clock. The shell
//! passes every request body in, sends the [`Reply`] text back, and passes the time as unix
//! milliseconds to every call that depends on it; the same calls at the same times give the
//! same answers.
//!
//! Use, for a shell:
//! 1. `POST /icebandwidthload`: [`parse`] the body (on error answer
//!    `ParseError::reply()`), check [`IceRequest::authorized`], then
//!    [`Registry::handle`] and answer its [`Reply`].
//! 2. For each new pair: [`Registry::select`] once, then [`Chosen::rtc_config`] for each
//!    member; [`NoRoom`] means `result: 8`.
//! 3. Every few seconds: [`Registry::poll_health`], alerting on
//!    [`HealthEvent::LeftRotation`].

mod api;
mod credential;
mod geo;
mod registry;
mod rtc;

pub use api::{
    DEFAULT_ICE_PORT, IceCommand, IceRequest, IceType, ParseError, Register, Reply, Report, Turns,
    parse,
};
pub use credential::{RestCredential, UsernameError, check_username, mint, rest_password};
pub use geo::GeoPoint;
pub use registry::{
    Chosen, HealthEvent, Media, Need, NoRoom, Registry, RegistryConfig, ServerStatus, server_name,
};

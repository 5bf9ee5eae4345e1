//! What the HTTP handlers share: [`AppState`], built once by `serve`.
//!
//! It sits low in the import graph (it imports only `auth`, `peer`, `config`, `signaling` and `cluster`), so
//! that every feature's handlers (records, reports, the ICE API, login, the operator API)
//! can take it without importing `http`, and `http` can route to them without a circle.

use crate::auth::{Apps, Denied};
use crate::config::ReportSection;
use crate::signaling::Signaling;
use axum::http::HeaderMap;
use std::sync::Arc;

/// Everything the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub signaling: Arc<Signaling>,
    /// The call-record database (read side); `None` when records are off.
    pub store: Option<rtcroom_store::Store>,
    /// `[report]`, for the operators' web view.
    pub report: Arc<ReportSection>,
    /// The record writer, for its counters; `None` when records are off.
    pub writer: Option<Arc<rtcroom_store::RecordWriter>>,
    /// `[admin] token`; empty disables the operator API.
    pub admin_token: Arc<str>,
    pub apps: Arc<Apps>,
    /// The `rtcConfig` handed out at login.
    pub rtc_config: rtcroom_protocol::SharedJson,
    /// `[server] public_url`.
    pub public_url: Arc<str>,
    /// `[server] trusted_proxies`.
    pub trusted_proxies: Arc<crate::peer::TrustedProxies>,
    /// The embedded TURN server, for its counters.
    pub turn: Option<Arc<rtcroom_turn::TurnHandle>>,
    /// Set when shutdown begins: the server is no longer ready.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// `[ice] register_secret`.
    pub ice_register_secret: Arc<str>,
    /// Pairs get servers from the registry (readiness needs one in rotation).
    pub ice_registry: bool,
    /// `[geoip] database`, when set.
    pub geoip: Option<Arc<crate::geoip::GeoIp>>,
    /// The listener does TLS itself (`[server] tls_cert`): signaling URLs are `wss://`.
    pub tls: bool,
    /// This node in its cluster (`[cluster]`); `None` for a single node.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl AppState {
    /// Check an operator request's `Authorization: Bearer <token>` against `[admin] token`.
    pub fn authorize(&self, headers: &HeaderMap) -> Result<(), Denied> {
        crate::auth::operator(&self.admin_token, headers)
    }

    /// The client's address (`[server] trusted_proxies` decide whether forwarding headers
    /// count): what records, logs and per-address limits use.
    pub fn client_ip(&self, peer: std::net::SocketAddr, headers: &HeaderMap) -> std::net::IpAddr {
        crate::peer::client_ip(peer, headers, &self.trusted_proxies)
    }
}

//! The HTTP surface: the WebSocket upgrade, health, and the web page.
//!
//! `app(state)` builds the whole router, so tests can drive it without a socket.

use crate::signaling::{self, Signaling};
use crate::ws;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;

/// Everything the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub signaling: Arc<Signaling>,
    /// The call-record database (read side); `None` when records are off.
    pub store: Option<rtcroom_store::Store>,
    /// `[report]`, for the operators' web view.
    pub report: Arc<crate::daily::ReportSection>,
    /// The record writer, for its counters; `None` when records are off.
    pub writer: Option<Arc<rtcroom_store::RecordWriter>>,
    /// `[admin] token`; empty disables the operator API.
    pub admin_token: Arc<str>,
    pub apps: Arc<crate::auth::Apps>,
    /// The `rtcConfig` handed out at login.
    pub rtc_config: rtcroom_protocol::SharedJson,
    /// `[server] public_url`.
    pub public_url: Arc<str>,
    /// The embedded TURN server, for its counters.
    pub turn: Option<Arc<rtcroom_turn::TurnHandle>>,
    /// Set when shutdown begins: the server is no longer ready.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// `[ice] register_secret`.
    pub ice_register_secret: Arc<str>,
    /// Pairs get servers from the registry (readiness needs one in rotation).
    pub ice_registry: bool,
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/ws", get(ws))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/login", axum::routing::post(crate::login::http_login))
        .route("/login", get(crate::login::ws_login))
        .route(
            "/icebandwidthload",
            axum::routing::post(crate::ice::http_api),
        )
        .route(
            "/api/records/member/{app_id}/{uid}",
            get(crate::records::member),
        )
        .route(
            "/api/records/session/{session_id}",
            get(crate::records::session),
        )
        .route("/api/records/day/{date}", get(crate::records::day))
        .route("/admin/reports/{date}", get(crate::daily::web_view))
        .merge(crate::admin::routes())
        .merge(crate::web::routes())
        .with_state(state)
}

async fn ws(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let sig = state.signaling.clone();
    if !sig.admit() {
        let msg = "too many connections: this room server is at its [server] max_connections";
        return (StatusCode::SERVICE_UNAVAILABLE, msg).into_response();
    }
    // A frame above `max_frame` but within four times it is read and refused with result 3;
    // a larger one ends the connection (close 1009), so nothing unbounded is ever buffered.
    // A connection holds bytes only while a frame is incomplete (`ws::Socket`).
    let limit = sig.max_frame.saturating_mul(4);
    let admitted = Admitted(Some(sig));
    ws::upgrade(req, limit, move |socket| {
        let sig = admitted.take();
        signaling::serve(sig, socket, peer.ip().to_string())
    })
}

/// A connection slot taken by `admit`; given back if the upgrade never happens.
struct Admitted(Option<Arc<Signaling>>);

impl Admitted {
    /// The slot now belongs to the connection task, which gives it back when it ends.
    fn take(mut self) -> Arc<Signaling> {
        self.0.take().expect("an admitted slot is taken once")
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(sig) = self.0.take() {
            sig.release();
        }
    }
}

/// Alive: the process answers HTTP.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready to take calls: the room engine answers and the server is not shutting down. The
/// call-record database counts only when records are on (`[database] url = "off"` has none).
async fn readyz(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    if state.draining.load(std::sync::atomic::Ordering::Acquire) {
        problems.push("draining: the server is shutting down");
    }
    let engine_ok = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.signaling.hub.stats(),
    )
    .await
    .ok()
    .flatten()
    .is_some();
    if !engine_ok {
        problems.push("the room engine does not answer");
    }
    if let Some(w) = &state.writer
        && !w.stats().db_up
    {
        problems.push("the call-record database is unreachable (records are being kept)");
    }
    if state.ice_registry {
        let servers = state.signaling.hub.ice_servers().await.unwrap_or_default();
        if !servers.iter().any(|s| s.healthy) {
            problems.push("no ICE server in rotation");
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", problems.join("; ")),
        )
            .into_response()
    }
}

/// Prometheus text exposition.
async fn metrics(State(state): State<AppState>) -> Response {
    let stats = state.signaling.hub.stats().await.unwrap_or_default();
    let servers = state.signaling.hub.ice_servers().await.unwrap_or_default();
    crate::telemetry::observe_ice(&servers);
    crate::telemetry::observe_turn(state.turn.as_ref().map(|t| t.counters()));
    let records = state
        .writer
        .as_deref()
        .map(rtcroom_store::RecordWriter::stats);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::render(stats, records),
    )
        .into_response()
}

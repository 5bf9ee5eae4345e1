//! The HTTP surface: the WebSocket upgrade, health, and the web page.
//!
//! `app(state)` builds the whole router, so tests can drive it without a socket.

use crate::records::RecordSink;
use crate::signaling::{self, Signaling};
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;

/// Everything the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub signaling: Arc<Signaling>,
    pub records: RecordSink,
    /// `[admin] token`; empty disables the operator API.
    pub admin_token: Arc<str>,
    pub apps: Arc<crate::auth::Apps>,
    /// The `rtcConfig` handed out at login.
    pub rtc_config: rtcroom_protocol::SharedJson,
    /// `[server] public_url`.
    pub public_url: Arc<str>,
    /// Set when shutdown begins: the server is no longer ready.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/ws", get(ws))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/login", axum::routing::post(crate::login::http_login))
        .route("/login", get(crate::login::ws_login))
        .merge(crate::admin::routes())
        .merge(crate::web::routes())
        .with_state(state)
}

async fn ws(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let sig = state.signaling.clone();
    if !sig.admit() {
        let msg = "too many connections: this room server is at its [server] max_connections";
        return (StatusCode::SERVICE_UNAVAILABLE, msg).into_response();
    }
    // Signaling frames are small: size the buffers for them, not for bulk data (tungstenite's
    // default 128 KiB read buffer is allocated and zeroed per connection). A frame above
    // `max_frame` but within four times it is read and refused with result 3; a larger one
    // ends the connection, so nothing unbounded is ever buffered. 2 KiB holds every frame but
    // an SDP in one read and is the largest per-member cost of an idle member (rtcroom-bench
    // idle: 4 KiB -> 2 KiB took 10.4 -> 8.4 KiB RSS per member, CPU per relay unchanged).
    let limit = sig.max_frame.saturating_mul(4);
    upgrade
        .read_buffer_size(2 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(limit.max(1 << 20))
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "websocket upgrade failed"))
        .on_upgrade(move |socket| signaling::serve(sig, socket, peer.ip().to_string()))
}

/// Alive: the process answers HTTP.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready to take calls: the room engine answers and the server is not shutting down.
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
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::render(stats),
    )
        .into_response()
}

//! The HTTP surface: the router of every path, the WebSocket upgrade, health and metrics;
//! the operator API (`admin`), login (`login`) and the web page (`web`) in their own files.
//!
//! `app(state)` builds the whole router, so tests can drive it without a socket.

pub mod accept;
mod admin;
mod login;
mod web;

pub use web::secured;

use crate::ops::metrics;
use crate::signaling::{Signaling, connection, ws};
use crate::state::AppState;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/ws", get(ws))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/login", axum::routing::post(login::http_login))
        .route("/api/token", axum::routing::post(login::mint_token))
        .route("/login", get(login::ws_login))
        .route(
            "/icebandwidthload",
            axum::routing::post(crate::ice::api::http_api),
        )
        .route(
            "/api/records/member/{app_id}/{uid}",
            get(crate::records::api::member),
        )
        .route(
            "/api/records/session/{session_id}",
            get(crate::records::api::session),
        )
        .route("/api/records/day/{date}", get(crate::records::api::day))
        .route(
            "/admin/reports/{date}",
            get(crate::records::daily::web_view).layer(axum::middleware::map_response(
                |r: Response| async move {
                    secured(
                        r,
                        "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                    )
                },
            )),
        )
        .merge(admin::routes())
        .merge(web::routes())
        .with_state(state)
}

async fn ws(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    // A browser page on no app's domain is refused before it takes a slot; which app the
    // page may use is checked with the join's token.
    if let Some(refusal) = login::foreign_origin(&state.apps, req.headers()) {
        return refusal;
    }
    let origin = login::origin_host(req.headers());
    let client = state.client_ip(peer, req.headers());
    let at = state.geoip.as_ref().and_then(|g| g.lookup(client).at);
    let ip = client.to_string();
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
        connection::serve(sig, socket, ip, at, origin)
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

/// How long readiness and metrics wait for each answer of the hub: a stuck engine makes
/// the server not ready, never a request that hangs.
const HUB_ANSWER: std::time::Duration = std::time::Duration::from_secs(2);

/// The hub's answer to one question, or `None` when it does not come within [`HUB_ANSWER`].
async fn from_hub<T>(question: impl Future<Output = Option<T>>) -> Option<T> {
    tokio::time::timeout(HUB_ANSWER, question)
        .await
        .ok()
        .flatten()
}

/// Ready to take calls: the room engine answers and the server is not shutting down. The
/// call-record database counts only when records are on (`[database] url = "off"` has none).
async fn readyz(State(state): State<AppState>) -> Response {
    let mut problems: Vec<std::borrow::Cow<'static, str>> = Vec::new();
    if state.draining.load(std::sync::atomic::Ordering::Acquire) {
        problems.push("draining: the server is shutting down".into());
    }
    if let Some(since) = state.cluster.as_ref().and_then(|c| c.degraded_since()) {
        let at = chrono::DateTime::from_timestamp_millis(since as i64)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        problems.push(format!("cluster degraded: redis unreachable since {at}").into());
    }
    let engine_ok = from_hub(state.signaling.hub.stats()).await.is_some();
    if !engine_ok {
        problems.push("the room engine does not answer".into());
    }
    if let Some(w) = state
        .writer
        .as_deref()
        .map(rtcroom_store::RecordWriter::stats)
    {
        if w.migrations_pending {
            problems.push(
                "the call-record database is unreachable since the start (records are being kept; the migrations run when it answers)".into(),
            );
        } else if !w.db_up {
            problems
                .push("the call-record database is unreachable (records are being kept)".into());
        }
    }
    // A second question to an engine that did not answer the first would only wait again.
    if state.ice_registry && engine_ok {
        match from_hub(state.signaling.hub.ice_servers()).await {
            None => problems.push("the room engine does not answer".into()),
            Some(servers) if !servers.iter().any(|s| s.healthy) => {
                problems.push("no ICE server in rotation".into());
            }
            Some(_) => {}
        }
    }
    if let Some(turn) = &state.turn
        && turn.is_full()
    {
        problems.push(
            "the embedded TURN relay is full ([turn] max_allocations allocations are live)".into(),
        );
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

/// Prometheus text exposition, for a direct loopback connection (a Prometheus on this host)
/// or a request with the admin token; anyone else gets 403.
async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !crate::peer::direct_loopback(peer, &headers) && state.authorize(&headers).is_err() {
        let msg = "forbidden: /metrics answers loopback connections that no proxy forwarded, or the admin token ([admin] token) as Authorization: Bearer\n";
        return (StatusCode::FORBIDDEN, msg).into_response();
    }
    let stats = from_hub(state.signaling.hub.stats()).await;
    let servers = match stats {
        Some(_) => from_hub(state.signaling.hub.ice_servers()).await,
        None => None,
    };
    let (stats, servers) = (stats.unwrap_or_default(), servers.unwrap_or_default());
    metrics::observe_ice(&servers);
    metrics::observe_turn(state.turn.as_ref().map(|t| t.counters()));
    let records = state
        .writer
        .as_deref()
        .map(rtcroom_store::RecordWriter::stats);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(stats, records),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signaling::hub::Hub;

    fn state_around(hub: Hub) -> AppState {
        let signaling = Arc::new(Signaling::new(
            hub,
            Arc::new(crate::signaling::token::NoTokenCheck),
            65_536,
            16,
            10,
            std::time::Duration::from_secs(10),
        ));
        AppState {
            signaling,
            store: None,
            report: Arc::default(),
            writer: None,
            admin_token: "".into(),
            apps: Arc::new(crate::auth::Apps::new(Vec::new(), 60)),
            rtc_config: rtcroom_protocol::SharedJson::rtc_config(
                &rtcroom_protocol::RtcConfig::with_servers(Vec::new()),
            ),
            public_url: "".into(),
            trusted_proxies: Arc::default(),
            turn: None,
            draining: Arc::default(),
            ice_register_secret: "".into(),
            ice_registry: true,
            tls: false,
            geoip: None,
            cluster: None,
        }
    }

    /// A hub that takes questions and never answers makes `/readyz` say so (503) and
    /// `/metrics` answer with what it has; neither request hangs.
    #[tokio::test]
    async fn a_stuck_engine_is_not_ready_and_hangs_no_request() {
        let (hub, _inbox) = Hub::unanswered();
        let state = state_around(hub);
        // On a hub that hangs, the request would never end: wait long, then say so.
        let bound = std::time::Duration::from_secs(60);
        let ready = tokio::time::timeout(bound, readyz(State(state.clone())))
            .await
            .expect("/readyz hangs on a stuck engine");
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(ready.into_body(), 4096).await.unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("the room engine does not answer"), "{body}");
        let prometheus = ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9090)));
        let asked = metrics(State(state), prometheus, axum::http::HeaderMap::new());
        let metrics = tokio::time::timeout(bound, asked)
            .await
            .expect("/metrics hangs on a stuck engine");
        assert_eq!(metrics.status(), StatusCode::OK);
    }
}

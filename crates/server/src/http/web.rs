//! The call page, its script and the browser SDK, embedded in the binary from `web/`.
//!
//! The files are served exactly as they are in the repository (no build step), with
//! `Cache-Control: no-cache` so that a new binary never pairs an old page with a new SDK.
//! Every file, and the operators' report page, carries the security headers of [`secured`]:
//! no framing, no referrer, and the page may only open WebSockets to this server.

use crate::state::AppState;
use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../../../web/style.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../../web/app.js"),
    },
    Asset {
        name: "rtc-client.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../../web/rtc-client.js"),
    },
    Asset {
        name: "rtc-client.d.ts",
        content_type: "text/plain; charset=utf-8",
        body: include_str!("../../../../web/rtc-client.d.ts"),
    },
];

const INDEX: &str = include_str!("../../../../web/index.html");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
}

async fn index(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    page(
        "text/html; charset=utf-8",
        INDEX,
        &csp(&state, peer, &headers),
    )
}

async fn asset(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => page(a.content_type, a.body, &csp(&state, peer, &headers)),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

/// The page's policy: its own files, camera streams, and connections to this server only
/// (`'self'` for login, and the signaling WebSocket's origin that login hands out).
fn csp(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> String {
    // In a cluster, login may hand out any live node's URL.
    let urls = match &state.cluster {
        Some(c) => c.signaling_urls(),
        None => vec![super::login::room_server_url(state, peer, headers)],
    };
    let origin = urls
        .iter()
        .filter_map(|ws| {
            ws.split_once("://").map(|(scheme, rest)| {
                format!("{scheme}://{}", rest.split('/').next().unwrap_or(""))
            })
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "default-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; connect-src 'self' {origin}; base-uri 'none'"
    )
}

fn page(content_type: &'static str, body: &'static str, csp: &str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(self), display-capture=(self)"),
    );
    secured(r, csp)
}

/// A response with the security headers: `csp` plus `frame-ancestors 'none'` (and
/// `X-Frame-Options: DENY` for older browsers) so no other site can frame it,
/// `Referrer-Policy: no-referrer` (room names and report tokens are in URLs), `nosniff`.
pub fn secured(mut r: Response, csp: &str) -> Response {
    let h = r.headers_mut();
    let policy = format!("{csp}; frame-ancestors 'none'");
    let policy = HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(
        "default-src 'self'; frame-ancestors 'none'",
    ));
    h.insert(header::CONTENT_SECURITY_POLICY, policy);
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

//! The call page, its script and the browser SDK, embedded in the binary from `web/`.
//!
//! The files are served exactly as they are in the repository (no build step), with
//! `Cache-Control: no-cache` so that a new binary never pairs an old page with a new SDK.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

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

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { page("text/html; charset=utf-8", INDEX) }),
        )
        .route("/assets/{name}", get(asset))
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => page(a.content_type, a.body),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(self), display-capture=(self)"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:",
        ),
    );
    r
}

//! The login server of the design document (section 7): an app's page asks where the room
//! server is, which ICE servers to use, and gets a signed token for `join`.
//!
//! Served as `POST /api/login` and as a WebSocket at `/login` with the same JSON; the
//! WebSocket is never closed by the server (document). The decision itself is the pure
//! [`answer`], tested on its own. A browser's request carries its page's `Origin`, which
//! must be one of the app's domains; programs that send none are judged by `url` alone.
//!
//! `POST /api/token` is the app backends' way in: authenticated by the app's secret, it
//! mints a token for the uid the backend names (the only way for `mode = "backend"` apps
//! besides `rtcroom token` and the backend's own JWT library).

use crate::auth::{AppMode, Apps};
use crate::state::AppState;
use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rtcroom_core::Millis;
use rtcroom_protocol::SharedJson;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A login request; every field is optional on the wire, the answer says what is missing.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoginRequest {
    pub protocol: Option<String>,
    pub cmd: Option<String>,
    pub app_id: Option<serde_json::Value>,
    pub ip: Option<String>,
    pub url: Option<String>,
    pub sdk_info: Option<String>,
    pub os_info: Option<String>,
    /// **ours**: a uid to bind the token to.
    pub uid: Option<serde_json::Value>,
}

/// `respLogin`.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    pub protocol: &'static str,
    pub cmd: &'static str,
    pub result: u8,
    pub desc: String,
    pub room_server: String,
    pub ice_server: Option<SharedJson>,
    pub token: String,
    /// Unix seconds; 0 when no token was issued.
    pub expire_at: u64,
}

fn refused(result: u8, desc: impl Into<String>) -> LoginResponse {
    LoginResponse {
        protocol: "resp",
        cmd: "respLogin",
        result,
        desc: desc.into(),
        room_server: String::new(),
        ice_server: None,
        token: String::new(),
        expire_at: 0,
    }
}

/// The host part of a page URL (`https://user@Meet.Example.com:8443/x?y` → `meet.example.com`).
pub fn host_of(url: &str) -> Option<String> {
    let rest = url.trim().split_once("://").map_or(url.trim(), |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Browsers that cannot do WebRTC, recognized in `osInfo` (a user agent or the SDK's
/// "os browser" string): Internet Explorer and proxy browsers that run no page scripts.
pub fn lacks_webrtc(os_info: &str) -> Option<&'static str> {
    let ua = os_info.to_ascii_lowercase();
    [
        ("msie", "Internet Explorer"),
        ("trident/", "Internet Explorer"),
        ("opera mini", "Opera Mini"),
        ("ucweb", "UC Browser (proxy mode)"),
    ]
    .into_iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| name)
}

fn text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The host of a request's `Origin` header: `Some` for a browser's request (`null`, sent by
/// sandboxed and `file:` pages, is kept as the host `null`, which no app allows).
pub fn origin_host(headers: &HeaderMap) -> Option<String> {
    let origin = headers.get(header::ORIGIN)?;
    Some(
        origin
            .to_str()
            .ok()
            .and_then(host_of)
            .unwrap_or_else(|| "null".into()),
    )
}

/// The refusal of a browser request whose page is on no app's domain, before any upgrade.
pub fn foreign_origin(apps: &Apps, headers: &HeaderMap) -> Option<Response> {
    let host = origin_host(headers)?;
    (!apps.any_allows_host(&host)).then(|| {
        let msg = format!(
            "forbidden: the page's origin {host} is not one of the domains of any app on this server (add it to the app's domains)\n"
        );
        (StatusCode::FORBIDDEN, msg).into_response()
    })
}

/// Decide a login; `origin` is the host of the request's `Origin` header, when it has one.
pub fn answer(
    apps: &Apps,
    body: &str,
    room_server: &str,
    ice: &SharedJson,
    now: Millis,
    origin: Option<&str>,
) -> LoginResponse {
    let req: LoginRequest = match serde_json::from_str(body) {
        Ok(r) => r,
        Err(e) => {
            return refused(
                3,
                format!("server parse the message faild, please check the format: {e}"),
            );
        }
    };
    if req.cmd.as_deref().is_some_and(|c| c != "login") {
        return refused(
            3,
            "server parse the message faild, please check the format: cmd must be \"login\"",
        );
    }
    let Some(app_id) = req.app_id.as_ref().and_then(text) else {
        return refused(
            3,
            "server parse the message faild, please check the format: appId is required",
        );
    };
    let Some(app) = apps.get(&app_id) else {
        return refused(1, format!("appId {app_id} does not exist"));
    };
    let Some(host) = req.url.as_deref().and_then(host_of) else {
        return refused(
            3,
            "server parse the message faild, please check the format: url (the page's URL) is required",
        );
    };
    if !app.allows_host(&host) {
        return refused(
            2,
            format!("appId {app_id} is not authorized for the domain {host}"),
        );
    }
    if let Some(origin) = origin
        && !app.allows_host(origin)
    {
        return refused(
            2,
            format!("appId {app_id} is not authorized for the origin {origin} (the page's Origin)"),
        );
    }
    if app.mode == AppMode::Backend {
        return refused(
            5,
            format!(
                "appId {app_id} gets its tokens from its own server (mode = \"backend\"): this login hands out none; ask the app's server for a token"
            ),
        );
    }
    if let Some(browser) = req.os_info.as_deref().and_then(lacks_webrtc) {
        return refused(
            4,
            format!(
                "{browser} cannot make WebRTC calls; use a current Chrome, Firefox, Safari or Edge"
            ),
        );
    }
    let uid = req.uid.as_ref().and_then(text);
    let Some((token, expire_at)) = apps.mint(app, uid.as_deref(), Some(&host), now) else {
        return refused(1, format!("appId {app_id} has no signing key configured"));
    };
    LoginResponse {
        protocol: "resp",
        cmd: "respLogin",
        result: 0,
        desc: "ok".into(),
        room_server: room_server.to_owned(),
        ice_server: Some(ice.clone()),
        token,
        expire_at,
    }
}

/// The WebSocket URL of the room server for a client that reached us from `peer` with these
/// headers: in a cluster `[cluster] signaling_url` or the least-loaded node's; `[server]
/// public_url`, else the request's host (`X-Forwarded-Host` and
/// `X-Forwarded-Proto` only from a trusted proxy).
pub fn room_server_url(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> String {
    if let Some(cluster) = &state.cluster {
        return cluster.signaling_url();
    }
    if !state.public_url.is_empty() {
        return state.public_url.to_string();
    }
    let trusted = &state.trusted_proxies;
    let host = crate::peer::forwarded(peer, headers, trusted, "host")
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .filter(|h| is_authority(h))
        .unwrap_or("127.0.0.1:8080");
    // A trusted proxy says how the client reached it; otherwise the listener's own TLS.
    let tls = crate::peer::forwarded(peer, headers, trusted, "proto")
        .map_or(state.tls, |p| p.eq_ignore_ascii_case("https"));
    format!("{}://{host}/ws", if tls { "wss" } else { "ws" })
}

/// A host with an optional port, and nothing else (it is written into URLs and headers).
fn is_authority(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
}

/// The `iceServer` of a login: the server a pair would get now, with credentials for the
/// login's uid (or a placeholder name when it gave none).
async fn ice_for(state: &AppState, body: &str) -> SharedJson {
    let uid = serde_json::from_str::<LoginRequest>(body)
        .ok()
        .and_then(|r| r.uid.as_ref().and_then(text))
        .unwrap_or_else(|| "login".into());
    state
        .signaling
        .hub
        .login_rtc(uid)
        .await
        .unwrap_or_else(|| state.rtc_config.clone())
}

pub async fn http_login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let url = room_server_url(&state, peer, &headers);
    let origin = origin_host(&headers);
    let ice = ice_for(&state, &body).await;
    let now = crate::clock::now();
    Json(answer(
        &state.apps,
        &body,
        &url,
        &ice,
        now,
        origin.as_deref(),
    ))
    .into_response()
}

pub async fn ws_login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(refusal) = foreign_origin(&state.apps, &headers) {
        return refusal;
    }
    let url = room_server_url(&state, peer, &headers);
    let origin = origin_host(&headers);
    upgrade
        .read_buffer_size(4 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve_ws(state, socket, url, origin))
}

async fn serve_ws(state: AppState, mut socket: WebSocket, url: String, origin: Option<String>) {
    while let Some(Ok(msg)) = socket.recv().await {
        let body = match msg {
            Message::Text(t) => t.to_string(),
            Message::Binary(_) => "binary".to_owned(),
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        let ice = ice_for(&state, &body).await;
        let now = crate::clock::now();
        let resp = answer(&state.apps, &body, &url, &ice, now, origin.as_deref());
        let text = serde_json::to_string(&resp).expect("serializable");
        if socket.send(Message::Text(text.into())).await.is_err() {
            break;
        }
    }
}

/// The body of `POST /api/token`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct TokenRequest {
    app_id: Option<serde_json::Value>,
    uid: Option<serde_json::Value>,
}

/// `POST /api/token` with `Authorization: Bearer <the app's secret>` and
/// `{"appId":"…","uid":"…"}`: a token for that uid, as `{"token":"…","expireAt":…}`.
pub async fn mint_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let error = |status: StatusCode, msg: String| {
        (status, Json(serde_json::json!({"error": msg}))).into_response()
    };
    let req: TokenRequest = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("the body must be JSON {{\"appId\":\"…\",\"uid\":\"…\"}}: {e}");
            return error(StatusCode::BAD_REQUEST, msg);
        }
    };
    let Some(app_id) = req.app_id.as_ref().and_then(text) else {
        return error(StatusCode::BAD_REQUEST, "appId is required".into());
    };
    let Some(app) = state.apps.get(&app_id) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("appId {app_id} does not exist"),
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !Apps::is_secret_of(app, given) {
        let msg = format!(
            "send one of app {app_id}'s secrets as Authorization: Bearer <secret> (from the app's server, never from a page)"
        );
        return error(StatusCode::UNAUTHORIZED, msg);
    }
    let Some(uid) = req.uid.as_ref().and_then(text) else {
        return error(
            StatusCode::BAD_REQUEST,
            "uid (the user the token is for) is required".into(),
        );
    };
    match state.apps.mint(app, Some(&uid), None, crate::clock::now()) {
        Some((token, expire_at)) => {
            Json(serde_json::json!({"token": token, "expireAt": expire_at})).into_response()
        }
        None => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("app {app_id} has no signing key configured"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::App;
    use rtcroom_protocol::RtcConfig;

    fn apps() -> Apps {
        Apps::new(
            vec![App {
                id: "10000".into(),
                secret: Some("s".into()),
                keys: vec![],
                domains: vec!["localhost".into(), "*.example.com".into()],
                mode: AppMode::Public,
            }],
            3600,
        )
    }

    fn login(body: &str) -> LoginResponse {
        let ice = SharedJson::rtc_config(&RtcConfig::with_servers(vec![]));
        answer(
            &apps(),
            body,
            "ws://h/ws",
            &ice,
            Millis::from_secs(1_700_000_000),
            None,
        )
    }

    #[test]
    fn every_login_result() {
        let ok = login(
            r#"{"protocol":"req","cmd":"login","appId":"10000","ip":"1.2.3.4","url":"https://meet.example.com/room?x=1","sdkInfo":"web_rtc_1.0","osInfo":"windows chrome","time":"1"}"#,
        );
        assert_eq!((ok.result, ok.desc.as_str()), (0, "ok"));
        assert_eq!(ok.room_server, "ws://h/ws");
        assert_eq!(ok.expire_at, 1_700_003_600);
        assert!(
            apps()
                .verify(&ok.token, Millis::from_secs(1_700_000_000))
                .is_ok()
        );
        assert_eq!(
            login(r#"{"cmd":"login","appId":10000,"url":"http://localhost:8080/"}"#).result,
            0
        );
        assert_eq!(
            login(r#"{"cmd":"login","appId":"20000","url":"http://localhost/"}"#).result,
            1
        );
        assert_eq!(
            login(r#"{"cmd":"login","appId":"10000","url":"https://evil.com/"}"#).result,
            2
        );
        assert_eq!(login("not json").result, 3);
        assert_eq!(
            login(r#"{"cmd":"login","url":"http://localhost/"}"#).result,
            3
        );
        assert_eq!(login(r#"{"cmd":"login","appId":"10000"}"#).result, 3);
        let ie = login(
            r#"{"cmd":"login","appId":"10000","url":"http://localhost/","osInfo":"Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko"}"#,
        );
        assert_eq!(ie.result, 4);
        assert!(ie.desc.contains("Internet Explorer"));
    }

    #[test]
    fn a_login_can_bind_the_uid() {
        let r = login(r#"{"cmd":"login","appId":"10000","url":"http://localhost/","uid":"alice"}"#);
        let c = apps()
            .verify(&r.token, Millis::from_secs(1_700_000_000))
            .unwrap();
        assert_eq!(c.sub.as_deref(), Some("alice"));
    }

    #[test]
    fn hosts_are_read_from_urls() {
        assert_eq!(
            host_of("https://user@Meet.Example.com:8443/x?y").as_deref(),
            Some("meet.example.com")
        );
        assert_eq!(host_of("http://[::1]:8080/").as_deref(), Some("::1"));
        assert_eq!(host_of("localhost:8080").as_deref(), Some("localhost"));
        assert_eq!(host_of("https:///nohost"), None);
    }
}

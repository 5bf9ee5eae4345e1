//! Who a client is and where it comes from, attacked through the real binary: forwarding
//! headers from peers that are not trusted proxies, pages of foreign origins, tokens from the
//! public login for apps whose backends vouch for their users, a rogue TURN server registered
//! through a same-host proxy, framing the page, reading `/metrics` from outside.

mod common;

use common::{Client, Server, config_file, http, request};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[admin]
token = "adm"

[[apps]]
id = "10000"
secret = "public-secret"
domains = ["localhost"]

[[apps]]
id = "20000"
secret = "other-secret"
domains = ["*.example.com"]

[[apps]]
id = "30000"
mode = "backend"
secret = "backend-secret"
domains = ["localhost"]
"#;

fn server(tag: &str, env: &[(&str, &str)]) -> Server {
    let cfg = config_file(&format!("identity-{tag}"), CONFIG);
    let server = Server::start_with(env, Some(&cfg));
    std::fs::remove_file(cfg).unwrap();
    server
}

/// `POST /api/login` with extra headers; the `respLogin`.
async fn login(server: &Server, headers: &[(&str, &str)], body: Value) -> Value {
    let url = format!("http://{}/api/login", server.addr);
    let r = request("POST", &url, headers, Some(&body.to_string())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

fn login_body(app: &str, page: &str, uid: &str) -> Value {
    json!({"protocol":"req","cmd":"login","appId":app,"url":page,"uid":uid,"osInfo":"linux chrome"})
}

fn join(app: &str, room: &str, uid: &str, token: &str) -> Value {
    json!({"cmd":"join","appId":app,"roomId":room,"uid":uid,"uname":uid,"userType":0,"talkType":1,"token":token})
}

fn ws_url(server: &Server, path: &str) -> String {
    format!("ws://{}/{path}", server.addr)
}

/// A join's `respJoin` over a new connection with these headers.
async fn join_with(server: &Server, headers: &[(&str, &str)], frame: Value) -> (Client, Value) {
    let mut c = Client::connect_with(&ws_url(server, "ws"), headers)
        .await
        .expect("the upgrade is accepted");
    c.send(frame).await;
    let r = c.expect("respJoin").await;
    (c, r)
}

/// The recorded `user_ip` of `uid`'s (closed) session, once the writer has it.
async fn recorded_ip(server: &Server, uid: &str) -> String {
    let url = format!("http://{}/api/records/member/10000/{uid}", server.addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http("GET", &url, Some("adm"), None).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if let Some(ip) = v[0]["user_ip"].as_str()
            && !v[0]["leave_time"].is_null()
        {
            return ip.to_owned();
        }
        assert!(Instant::now() < deadline, "no record for {uid}: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Join `uid` with a forwarded-for chain, leave, and read back the recorded address.
async fn call_from(server: &Server, uid: &str, xff: &str) -> String {
    let token = login(server, &[], login_body("10000", "http://localhost/", uid)).await;
    let frame = join("10000", "r", uid, token["token"].as_str().unwrap());
    let (mut c, r) = join_with(server, &[("X-Forwarded-For", xff)], frame).await;
    assert_eq!(r["result"], 0, "{r}");
    c.send(json!({"cmd":"leave"})).await;
    c.expect("respLeave").await;
    recorded_ip(server, uid).await
}

#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let forged = [
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
    ];
    // No trusted proxy: the peer (this test, on loopback) is the client, whatever it says.
    let direct = server("direct", &[]);
    let r = login(
        &direct,
        &forged,
        login_body("10000", "http://localhost/", "a"),
    )
    .await;
    assert_eq!(r["result"], 0, "{r}");
    assert_eq!(
        r["roomServer"],
        format!("ws://{}/ws", direct.addr),
        "a forged X-Forwarded-Host is not reflected"
    );
    assert_eq!(
        call_from(&direct, "mallory", "203.0.113.7").await,
        "127.0.0.1"
    );

    // Loopback is a trusted proxy: its forwarding headers are the client's.
    let proxied = server(
        "proxied",
        &[(
            "RTCROOM_SERVER_TRUSTED_PROXIES",
            r#"["127.0.0.1", "10.0.0.0/8"]"#,
        )],
    );
    let host = [
        ("X-Forwarded-Host", "rtc.example.com"),
        ("X-Forwarded-Proto", "https"),
    ];
    let r = login(
        &proxied,
        &host,
        login_body("10000", "http://localhost/", "a"),
    )
    .await;
    assert_eq!(r["roomServer"], "wss://rtc.example.com/ws");
    // The right-most hop that is not a trusted proxy; what the client wrote left of it is not
    // believed.
    assert_eq!(
        call_from(&proxied, "alice", "6.6.6.6, 203.0.113.7, 10.1.2.3").await,
        "203.0.113.7"
    );
}

#[tokio::test]
async fn browser_requests_are_checked_by_their_origin() {
    let s = server("origin", &[]);
    let page = login_body("10000", "http://localhost/", "alice");
    // A page on a foreign site that writes the app's domain into `url`.
    let r = login(&s, &[("Origin", "https://evil.test")], page.clone()).await;
    assert_eq!(r["result"], 2, "{r}");
    assert!(
        r["desc"].as_str().unwrap().contains("origin evil.test"),
        "{r}"
    );
    assert_eq!(r["token"], "");
    // The app's own page, and a program that sends no Origin: as before.
    let own = login(&s, &[("Origin", "http://localhost:8080")], page.clone()).await;
    assert_eq!(own["result"], 0, "{own}");
    let native = login(&s, &[], page).await;
    assert_eq!(native["result"], 0, "{native}");

    // WebSockets: a page on no app's domain is refused before the upgrade.
    let evil = [("Origin", "https://evil.test")];
    assert_eq!(
        Client::connect_with(&ws_url(&s, "login"), &evil)
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        Client::connect_with(&ws_url(&s, "ws"), &evil).await.err(),
        Some(403)
    );
    // A page of app 20000's domain may open the login socket, but not log in to app 10000.
    let other = [("Origin", "https://meet.example.com")];
    let mut l = Client::connect_with(&ws_url(&s, "login"), &other)
        .await
        .unwrap();
    l.send(login_body("10000", "http://localhost/", "alice"))
        .await;
    assert_eq!(l.expect("respLogin").await["result"], 2);
    l.send(login_body("20000", "https://meet.example.com/x", "bob"))
        .await;
    let meet = l.expect("respLogin").await;
    assert_eq!(meet["result"], 0, "{meet}");

    let token = own["token"].as_str().unwrap();
    // App 10000's token from a page of app 20000's domain: refused at join.
    let (_c, r) = join_with(&s, &other, join("10000", "o", "alice", token)).await;
    assert_eq!(r["result"], 12, "{r}");
    assert!(r["desc"].as_str().unwrap().contains("origin"), "{r}");
    // A public token is bound to the page it was handed to: not usable from a sibling page.
    let sibling = [("Origin", "https://other.example.com")];
    let meet_token = meet["token"].as_str().unwrap();
    let (_c, r) = join_with(&s, &sibling, join("20000", "o", "bob", meet_token)).await;
    assert_eq!(r["result"], 12, "{r}");
    assert!(
        r["desc"].as_str().unwrap().contains("meet.example.com"),
        "{r}"
    );
    let (_c, r) = join_with(&s, &other, join("20000", "o", "bob", meet_token)).await;
    assert_eq!(r["result"], 0, "{r}");
    // The own page, and a native client without Origin, join with the same kind of token.
    let (_c, r) = join_with(
        &s,
        &[("Origin", "http://localhost:8080")],
        join("10000", "o", "alice", token),
    )
    .await;
    assert_eq!(r["result"], 0, "{r}");
    let again = login(&s, &[], login_body("10000", "http://localhost/", "carol")).await;
    let (_c, r) = join_with(
        &s,
        &[],
        join("10000", "o", "carol", again["token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(r["result"], 0, "{r}");
}

#[tokio::test]
async fn backend_apps_get_tokens_only_from_their_own_server() {
    let s = server("modes", &[]);
    // The public login hands a backend app's page no token (and says why).
    let r = login(&s, &[], login_body("30000", "http://localhost/", "alice")).await;
    assert_eq!(r["result"], 5, "{r}");
    assert_eq!(r["token"], "");
    assert!(r["desc"].as_str().unwrap().contains("backend"), "{r}");
    // A public app's login still does.
    let public = login(&s, &[], login_body("10000", "http://localhost/", "alice")).await;
    assert_eq!(public["result"], 0);

    // POST /api/token: only with the app's secret, only for a named uid.
    let url = format!("http://{}/api/token", s.addr);
    let body = json!({"appId":"30000","uid":"alice"}).to_string();
    let (status, text) = http("POST", &url, None, Some(&body)).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("Bearer"), "{text}");
    let (status, _) = http("POST", &url, Some("public-secret"), Some(&body)).await;
    assert_eq!(status, 401, "another app's secret");
    let no_uid = json!({"appId":"30000"}).to_string();
    let (status, _) = http("POST", &url, Some("backend-secret"), Some(&no_uid)).await;
    assert_eq!(status, 400);
    let (status, text) = http("POST", &url, Some("backend-secret"), Some(&body)).await;
    assert_eq!(status, 200, "{text}");
    let minted: Value = serde_json::from_str(&text).unwrap();
    let token = minted["token"].as_str().unwrap();
    assert!(minted["expireAt"].as_u64().unwrap() > 0);
    let (_c, r) = join_with(&s, &[], join("30000", "b", "mallory", token)).await;
    assert_eq!(r["result"], 12, "bound to alice: {r}");
    let (_c, r) = join_with(&s, &[], join("30000", "b", "alice", token)).await;
    assert_eq!(r["result"], 0, "{r}");

    // `rtcroom token` mints for a named user only.
    let cfg = config_file("identity-modes-cli", CONFIG);
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rtcroom"))
            .args(["token", "--app", "30000", "--config"])
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap()
    };
    let out = cli(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--uid"));
    let out = cli(&["--uid", "bob"]);
    assert!(out.status.success());
    let cli_token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (_c, r) = join_with(&s, &[], join("30000", "b", "bob", &cli_token)).await;
    assert_eq!(r["result"], 0, "{r}");
    std::fs::remove_file(cfg).unwrap();
}

const ROGUE: &str = r#"{"cmd":"iceRegister","ip":"198.51.100.66","iceType":"turn","turnPort":3478,"stunPort":3478,"maxBandwidth":100000,"username":"u","credential":"p"}"#;

#[tokio::test]
async fn the_ice_api_trusts_no_proxy_and_its_secret_binds_loopback() {
    let api = |s: &Server| format!("http://{}/icebandwidthload", s.addr);
    // No secret: a request through a same-host proxy is not local.
    let open = server("ice-open", &[]);
    let via_proxy = [("X-Forwarded-For", "203.0.113.9")];
    let r = request("POST", &api(&open), &via_proxy, Some(ROGUE)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("register_secret"), "{}", r.body);
    let r = request("POST", &api(&open), &[], Some(ROGUE)).await;
    assert_eq!(r.status, 200, "a direct local agent registers: {}", r.body);

    // A secret: required from loopback too.
    let closed = server("ice-closed", &[("RTCROOM_ICE_REGISTER_SECRET", "s3cret")]);
    let r = request("POST", &api(&closed), &[], Some(ROGUE)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let mut wrong: Value = serde_json::from_str(ROGUE).unwrap();
    wrong["secret"] = json!("guess");
    let r = request("POST", &api(&closed), &[], Some(&wrong.to_string())).await;
    assert_eq!(r.status, 403, "{}", r.body);
    wrong["secret"] = json!("s3cret");
    let r = request("POST", &api(&closed), &via_proxy, Some(&wrong.to_string())).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn the_page_cannot_be_framed_and_metrics_are_not_public() {
    let s = server("surface", &[]);
    let page = request("GET", &format!("http://{}/", s.addr), &[], None).await;
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let connect = csp
        .split(';')
        .find(|d| d.trim().starts_with("connect-src"))
        .unwrap();
    assert_eq!(
        connect.trim(),
        format!("connect-src 'self' ws://{}", s.addr),
        "only this server's WebSocket, not any ws: host"
    );
    assert_eq!(page.header("x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(
        page.header("referrer-policy").as_deref(),
        Some("no-referrer")
    );

    // The operators' report page, refused or not.
    for url in [
        format!("http://{}/admin/reports/2026-01-01", s.addr),
        format!("http://{}/admin/reports/2026-01-01?token=adm", s.addr),
    ] {
        let r = request("GET", &url, &[], None).await;
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{url}: {}", r.head);
        assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(
            r.header("referrer-policy").as_deref(),
            Some("no-referrer"),
            "the report's token is in its URL"
        );
    }

    // /metrics: a local Prometheus, or the admin token; not the internet through a proxy.
    let metrics = format!("http://{}/metrics", s.addr);
    assert_eq!(request("GET", &metrics, &[], None).await.status, 200);
    let proxied = [("X-Forwarded-For", "203.0.113.9")];
    let r = request("GET", &metrics, &proxied, None).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("admin token"), "{}", r.body);
    let with_token = [
        ("X-Forwarded-For", "203.0.113.9"),
        ("Authorization", "Bearer adm"),
    ];
    let r = request("GET", &metrics, &with_token, None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("rtcroom_open_connections"));
}

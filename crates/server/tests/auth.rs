//! Login and tokens through the real binary: only registered apps, from their own domains,
//! with tokens the server signed.

mod common;

use common::{Server, http};
use serde_json::{Value, json};

const CONFIG: &str = r#"
[[apps]]
id = "10000"
domains = ["localhost"]
[[apps.keys]]
kid = "k2"
secret = "second-secret"
[[apps.keys]]
kid = "k1"
secret = "first-secret"

[[apps]]
id = "20000"
secret = "other-secret"
domains = ["*.example.com"]
"#;

fn config_file(server_tag: &str) -> std::path::PathBuf {
    common::config_file(&format!("auth-{server_tag}"), CONFIG)
}

async fn login(server: &Server, body: Value) -> Value {
    let (status, text) = http(
        "POST",
        &format!("http://{}/api/login", server.addr),
        None,
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn join(app: &str, room: &str, uid: &str, token: Option<&str>) -> Value {
    let mut j = json!({"cmd":"join","appId":app,"roomId":room,"uid":uid,"uname":uid,"userType":0,"talkType":1});
    if let Some(t) = token {
        j["token"] = json!(t);
    }
    j
}

#[tokio::test]
async fn only_signed_unexpired_tokens_of_the_rooms_app_join() {
    let cfg = config_file("join");
    let server = Server::start_with(&[], Some(&cfg));
    let resp = login(
        &server,
        json!({"protocol":"req","cmd":"login","appId":"10000","ip":"127.0.0.1",
        "url":"http://localhost:8080/?room=1","sdkInfo":"test","osInfo":"linux chrome","time":"1"}),
    )
    .await;
    assert_eq!(resp["result"], 0, "{resp}");
    assert_eq!(resp["roomServer"], format!("ws://{}/ws", server.addr));
    assert!(resp["iceServer"]["iceServers"].is_array());
    let token = resp["token"].as_str().unwrap().to_owned();

    let mut a = server.client().await;
    // No token, a forged one, one of another app: 12, with a reason.
    a.send(join("10000", "r", "alice", None)).await;
    let r = a.expect("respJoin").await;
    assert_eq!(r["result"], 12);
    assert!(r["desc"].as_str().unwrap().contains("no token"), "{r}");
    a.send(join(
        "10000",
        "r",
        "alice",
        Some("eyJhbGciOiJIUzI1NiJ9.eyJhcHAiOiIxMDAwMCIsImV4cCI6OTk5OTk5OTk5OX0.AAAA"),
    ))
    .await;
    let r = a.expect("respJoin").await;
    assert_eq!(r["result"], 12);
    assert!(r["desc"].as_str().unwrap().contains("signature"), "{r}");
    let other = login(
        &server,
        json!({"cmd":"login","appId":"20000","url":"https://meet.example.com/"}),
    )
    .await;
    assert_eq!(other["result"], 0);
    a.send(join("10000", "r", "alice", other["token"].as_str()))
        .await;
    let r = a.expect("respJoin").await;
    assert_eq!(r["result"], 12);
    assert!(r["desc"].as_str().unwrap().contains("for app 20000"), "{r}");
    // The right token joins; updateToken with a fresh one extends the connection.
    a.send(join("10000", "r", "alice", Some(&token))).await;
    assert_eq!(a.expect("respJoin").await["result"], 0);
    let fresh = login(
        &server,
        json!({"cmd":"login","appId":"10000","url":"http://localhost/"}),
    )
    .await;
    a.send(json!({"cmd":"updateToken","token":fresh["token"]}))
        .await;
    let r = a.expect("respUpdateToken").await;
    assert_eq!(r["result"], 0);
    assert_eq!(r["expireAt"], fresh["expireAt"]);

    // A token minted by the CLI with the app's key (as an app backend would) joins too.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rtcroom"))
        .args(["token", "--app", "10000", "--uid", "bob", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let cli_token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut b = server.client().await;
    b.send(join("10000", "r", "mallory", Some(&cli_token)))
        .await;
    assert_eq!(b.expect("respJoin").await["result"], 12, "bound to bob");
    b.send(join("10000", "r", "bob", Some(&cli_token))).await;
    assert_eq!(b.expect("respJoin").await["result"], 0);
    std::fs::remove_file(cfg).unwrap();
}

#[tokio::test]
async fn login_results_over_http_and_websocket() {
    let cfg = config_file("login");
    let server = Server::start_with(&[], Some(&cfg));
    let l = |v: Value| login(&server, v);
    assert_eq!(
        l(json!({"cmd":"login","appId":"30000","url":"http://localhost/"})).await["result"],
        1
    );
    assert_eq!(
        l(json!({"cmd":"login","appId":"10000","url":"http://evil.test/"})).await["result"],
        2
    );
    assert_eq!(
        l(json!({"cmd":"login","url":"http://localhost/"})).await["result"],
        3
    );
    let ie = l(json!({"cmd":"login","appId":"10000","url":"http://localhost/","osInfo":"Mozilla/4.0 (compatible; MSIE 8.0)"})).await;
    assert_eq!(ie["result"], 4);
    let (status, text) = http(
        "POST",
        &format!("http://{}/api/login", server.addr),
        None,
        Some("{oops"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["result"], 3);

    let mut ws = common::Client::connect(&format!("ws://{}/login", server.addr)).await;
    ws.send(json!({"protocol":"req","cmd":"login","appId":"10000","url":"http://localhost/"}))
        .await;
    let r = ws.expect("respLogin").await;
    assert_eq!(r["result"], 0);
    assert_eq!(r["protocol"], "resp");
    ws.send(json!({"cmd":"login","appId":"10000","url":"http://nope/"}))
        .await;
    assert_eq!(
        ws.expect("respLogin").await["result"],
        2,
        "the login socket stays open"
    );
    std::fs::remove_file(cfg).unwrap();
}

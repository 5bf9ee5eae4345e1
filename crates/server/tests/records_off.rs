//! `[database] url = "off"`: the real binary runs signaling without call records. A call goes
//! as usual, readiness and metrics do not count a database that is off on purpose, the record
//! readers say that records are off, nothing is written to disk, and the commands that need
//! records exit with status 2.

mod common;

use common::{Server, http, join};
use serde_json::{Value, json};
use std::process::Command;

const OFF: &str = r#"call records are off ([database] url = "off")"#;

/// The files a database or the record writer would leave in `data_dir`.
fn record_files(data_dir: &std::path::Path) -> Vec<String> {
    let names: Vec<String> = std::fs::read_dir(data_dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names
        .into_iter()
        .filter(|n| n.starts_with("rtcroom.db") || n == "spool" || n == "reports")
        .collect()
}

#[tokio::test]
async fn a_call_without_records() {
    let mut server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_DATABASE_URL", "off"),
        ("RTCROOM_ADMIN_TOKEN", "adm"),
    ]);
    let base = format!("http://{}", server.addr);
    let (status, body) = http("GET", &format!("{base}/readyz"), None, None).await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));

    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(join("off", "alice", "Alice")).await;
    let resp = a.expect("respJoin").await;
    assert_eq!(
        (resp["result"].clone(), resp["desc"].clone()),
        (json!(0), json!("ok"))
    );
    assert_eq!(resp["sessionId"].as_str().unwrap().len(), 26, "a ULID");
    b.send(join("off", "bob", "Bob")).await;
    let resp = b.expect("respJoin").await;
    assert_eq!(resp["result"], 0);
    assert_eq!(resp["userList"][0]["uid"], "alice");
    assert_eq!(a.expect("notifyNewPeer").await["uid"], "bob");

    a.send(
        json!({"cmd":"offer","remoteUid":"bob","msg":"{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\"}"}),
    )
    .await;
    let relay = b.expect("relayOffer").await;
    assert_eq!(relay["uid"], "alice");
    assert_eq!(relay["msg"], "{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\"}");
    let resp = a.expect("respOffer").await;
    assert_eq!(resp["result"], 0);
    assert_eq!(resp["subSessionId"].as_str().unwrap().len(), 26);
    b.send(json!({"cmd":"answer","remoteUid":"alice","msg":{"type":"answer","sdp":"v=0\r\n"}}))
        .await;
    assert_eq!(
        a.expect("relayAnswer").await["msg"],
        json!({"type":"answer","sdp":"v=0\r\n"})
    );
    for (m, remote) in [(&mut a, "bob"), (&mut b, "alice")] {
        m.send(json!({"cmd":"peerConnected","remoteUid":remote,"connectType":"STUN"}))
            .await;
        assert_eq!(m.expect("respPeerConnected").await["result"], 0);
    }
    b.send(json!({"cmd":"reportStats","remoteId":"alice",
        "audio":{"recv":{"bitRate":39,"packetsLostRate":"0.50"}},
        "video":{"recv":{"bitRate":600,"packetsLostRate":0.25,"frameRateRecv":30}}}))
        .await;
    b.send(json!({"cmd":"keepLive"})).await;
    assert_eq!(
        b.expect("respKeepLive").await["result"],
        0,
        "reportStats gets no answer, with or without records"
    );
    a.send(json!({"cmd":"leave"})).await;
    let resp = a.expect("respLeave").await;
    assert_eq!(
        (resp["result"].clone(), resp["uid"].clone()),
        (json!(0), json!("alice"))
    );
    assert_eq!(b.expect("relayLeave").await["uid"], "alice");

    let (status, body) = http("GET", &format!("{base}/readyz"), None, None).await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));

    // Every record reader says why there is nothing, with the setting to look at.
    for path in [
        "/api/records/member/10000/alice",
        "/api/records/session/01HWSP3NK81XM90WK5W29D02R3",
        "/api/records/day/2026-05-01",
    ] {
        let (status, body) = http("GET", &format!("{base}{path}"), Some("adm"), None).await;
        assert_eq!(status, 404, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: {body}"));
        assert_eq!(v, json!({"error": OFF}), "{path}");
    }
    let (status, body) = http(
        "GET",
        &format!("{base}/admin/reports/2026-05-01"),
        Some("adm"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains(OFF), "{body}");
    // The operator token is still checked first.
    let (status, _) = http(
        "GET",
        &format!("{base}/api/records/day/2026-05-01"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);

    // The engine's records are counted, and the writer's series (database_up among them) are
    // absent rather than 0.
    let (_, text) = http("GET", &format!("{base}/metrics"), None, None).await;
    let sample = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
    };
    let emitted = sample("rtcroom_records_emitted_total").expect("records_emitted is exported");
    assert!(
        emitted >= 8.0,
        "two sessions, two sub-sessions, begins, connects, a quality report: {emitted}"
    );
    for absent in ["rtcroom_database_up", "rtcroom_record_queue_depth"] {
        assert!(!text.contains(absent), "{absent} is exported:\n{text}");
    }
    let (status, body) = http("GET", &format!("{base}/api/stats"), Some("adm"), None).await;
    assert_eq!(status, 200);
    let stats: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["records"], Value::Null, "{stats}");
    assert_eq!(stats["recordsEmitted"].as_f64(), Some(emitted));

    b.close().await;
    assert!(
        server.terminate().success(),
        "a clean stop without a writer"
    );
    assert!(
        server.data_dir.join("demo-app.secret").exists(),
        "the data directory is the one the server used"
    );
    assert_eq!(record_files(&server.data_dir), Vec::<String>::new());
}

/// `rtcroom <args>` with records off and its own data directory: (status, stdout, stderr).
fn run(args: &[&str], url: &str, data_dir: &std::path::Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rtcroom"))
        .args(args)
        .env("RTCROOM_DATABASE_URL", url)
        .env("RTCROOM_SERVER_DATA_DIR", data_dir)
        .output()
        .expect("the rtcroom binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn commands_that_need_records_exit_with_status_2() {
    let data_dir = std::env::temp_dir().join(format!("rtcroom-test-off-{}", std::process::id()));
    for args in [
        &["migrate"][..],
        &["records", "day", "2026-05-01"],
        &["records", "member", "--app", "10000", "--uid", "alice"],
        &["records", "session", "01HWSP3NK81XM90WK5W29D02R3"],
        &["report", "--date", "2026-05-01"],
        &["report", "--date", "2026-05-01", "--json"],
    ] {
        let (status, stdout, stderr) = run(args, "off", &data_dir);
        assert_eq!(status, Some(2), "{args:?}: {stderr}");
        assert_eq!(stdout, "", "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
        assert!(stderr.contains(OFF), "{args:?}: {stderr}");
        assert!(
            stderr.contains("set [database] url (or RTCROOM_DATABASE_URL)"),
            "{args:?}: says what to set: {stderr}"
        );
        assert!(
            !data_dir.exists(),
            "{args:?} created {}",
            data_dir.display()
        );
    }

    let (status, stdout, stderr) = run(&["check-config"], "off", &data_dir);
    assert_eq!(status, Some(0), "{stderr}");
    assert!(stdout.contains(r#"url = "off""#), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with(&format!("# {OFF}"))),
        "check-config says records are off: {stdout}"
    );

    // A near miss is a configuration error that names the one spelling, not a database URL.
    let (status, _, stderr) = run(&["migrate"], "Off", &data_dir);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains(r#"write "off""#), "{stderr}");
    assert!(!data_dir.exists());
}

//! A graceful restart of the real binary in the middle of a call: SIGTERM tells the clients
//! to reconnect (close 1012) and keeps the rooms in `data_dir/rooms.snapshot.json`; the next
//! start on the same `data_dir` restores them, the members resume with their resume keys,
//! and the call's records go on as one row per direction. A snapshot that is corrupt or not
//! ours is ignored with a log line.

mod common;

use common::{Client, Server, join};
use rtcroom_store::{SessionDetail, Store};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("rtcroom_cont_{tag}_{}_{}", std::process::id(), nanos)
}

/// A data directory and an SQLite database of their own, shared by both runs of a test.
struct Place {
    dir: PathBuf,
    url: String,
}

impl Place {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("records.db").display());
        Place { dir, url }
    }

    fn start(&self, heartbeat_secs: &str) -> Server {
        let dir = self.dir.display().to_string();
        Server::start(&[
            ("RTCROOM_AUTH_REQUIRED", "false"),
            ("RTCROOM_DATABASE_URL", &self.url),
            ("RTCROOM_SERVER_DATA_DIR", &dir),
            ("RTCROOM_ROOM_HEARTBEAT_TIMEOUT_SECS", heartbeat_secs),
        ])
    }

    fn snapshot(&self) -> PathBuf {
        self.dir.join("rooms.snapshot.json")
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A member's respJoin.
struct Joined {
    session: String,
    key: String,
}

fn joined(resp: &Value) -> Joined {
    assert_eq!(resp["result"], 0, "{resp}");
    Joined {
        session: resp["sessionId"].as_str().unwrap().to_owned(),
        key: resp["resumeKey"].as_str().unwrap().to_owned(),
    }
}

/// alice and bob in room "cont", both directions offered, answered and connected.
async fn call(server: &Server) -> (Client, Client, Joined, Joined) {
    let (a, b, ja, jb) = common::connected_call(server, "cont").await;
    (a, b, joined(&ja), joined(&jb))
}

/// Join `uid` on `server` with its resume key; the respJoin.
async fn resume(server: &Server, uid: &str, who: &Joined) -> (Client, Value) {
    let mut c = server.client().await;
    let mut msg = join("cont", uid, uid);
    msg["resumeKey"] = json!(who.key);
    c.send(msg).await;
    let resp = c.expect("respJoin").await;
    (c, resp)
}

/// Waits until the session `id` and its sub-sessions are closed.
async fn closed_session(store: &Store, id: &str) -> SessionDetail {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(s)) = store.session(id).await
            && s.session.leave_time.is_some()
            && s.sub_sessions
                .iter()
                .all(|x| x.sub_session.finish_time.is_some())
        {
            return s;
        }
        assert!(Instant::now() < deadline, "session {id} was not closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_call_and_its_records() {
    let place = Place::new("keep");
    let mut server = place.start("40");
    let (mut a, mut b, ja, jb) = call(&server).await;
    let began = chrono::Utc::now();

    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    // Told to reconnect, not kicked: the first thing each client sees is the close 1012.
    assert_eq!(a.expect_close().await, Some(1012));
    assert_eq!(b.expect_close().await, Some(1012));
    assert!(place.snapshot().exists(), "SIGTERM keeps the rooms");

    let mut again = place.start("40");
    assert!(!place.snapshot().exists(), "a snapshot is used once");
    let (mut a, ra) = resume(&again, "alice", &ja).await;
    assert_eq!(ra["result"], 0, "{ra}");
    assert_eq!(ra["resumed"], true, "{ra}");
    assert_eq!(ra["sessionId"], ja.session.as_str());
    let (mut b, rb) = resume(&again, "bob", &jb).await;
    assert_eq!(rb["resumed"], true, "{rb}");
    assert_eq!(rb["sessionId"], jb.session.as_str());
    assert_eq!(rb["userList"][0]["uid"], "alice");
    // Nobody is told of a new peer: no PeerConnection is rebuilt.
    a.expect_silence().await;
    b.expect_silence().await;

    // Signaling still relays between the two (an ICE restart offer).
    a.send(json!({"cmd":"offer","remoteUid":"bob","isIceReset":true,"msg":"{\"type\":\"offer\"}"}))
        .await;
    let relay = b.expect("relayOffer").await;
    assert_eq!(relay["uid"], "alice");
    assert_eq!(a.expect("respOffer").await["result"], 0);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    a.send(json!({"cmd":"leave"})).await;
    b.send(json!({"cmd":"leave"})).await;
    let left = chrono::Utc::now();
    let store = Store::connect(&place.url, &Default::default())
        .await
        .unwrap();
    for (id, remote) in [(&ja.session, "bob"), (&jb.session, "alice")] {
        let s = closed_session(&store, id).await;
        assert!(!s.session.time_out, "left, not timed out: {s:?}");
        assert_eq!(
            s.sub_sessions.len(),
            1,
            "one sub-session row per direction, across the restart: {s:?}"
        );
        let sub = &s.sub_sessions[0].sub_session;
        assert_eq!(sub.remote_user_id, remote);
        assert_eq!(
            (sub.status, sub.connect_type.as_str()),
            (0, "TURN"),
            "{sub:?}"
        );
        let connected = sub.connect_time.unwrap();
        let finished = sub.finish_time.unwrap();
        assert!(connected <= began, "connected before the restart: {sub:?}");
        assert!(
            finished >= left - chrono::Duration::seconds(1),
            "closed at the leave after the restart: {sub:?}"
        );
    }
    again.terminate();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_does_not_come_back_times_out() {
    let place = Place::new("gone");
    let mut server = place.start("5");
    let (a, b, ja, jb) = call(&server).await;
    let stopped = chrono::Utc::now();
    assert!(server.terminate().success());
    drop((a, b));

    let mut again = place.start("5");
    let (mut a, ra) = resume(&again, "alice", &ja).await;
    assert_eq!(ra["resumed"], true, "{ra}");
    // Bob never comes back: once the heartbeat timeout since he was last heard is over he
    // is removed, and alice (who keeps beating) is told.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "bob was never removed");
        a.send(json!({"cmd":"keepLive"})).await;
        let msg = a.recv().await;
        match msg["cmd"].as_str() {
            Some("respKeepLive") => tokio::time::sleep(Duration::from_millis(500)).await,
            Some("relayLeave") => {
                assert_eq!(msg["uid"], "bob");
                break;
            }
            _ => panic!("unexpected {msg}"),
        }
    }
    let store = Store::connect(&place.url, &Default::default())
        .await
        .unwrap();
    let s = closed_session(&store, &jb.session).await;
    assert!(s.session.time_out, "timed out: {s:?}");
    assert!(
        s.session.leave_time.unwrap() <= stopped + chrono::Duration::seconds(1),
        "closed when he was last heard, before the restart: {s:?}"
    );
    assert_eq!(s.sub_sessions.len(), 1, "{s:?}");
    again.terminate();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_rooms_cannot_be_kept_the_calls_end_as_a_stop() {
    let place = Place::new("unkept");
    // The snapshot's temporary file cannot be created: a directory has its name.
    std::fs::create_dir_all(place.dir.join("rooms.snapshot.json.tmp")).unwrap();
    let mut server = place.start("40");
    let (mut a, mut b, ja, jb) = call(&server).await;
    assert!(server.terminate().success());
    for c in [&mut a, &mut b] {
        // The other's relayLeave may come first.
        let kick = loop {
            let msg = c.recv().await;
            if msg["cmd"] != "relayLeave" {
                break msg;
            }
        };
        assert_eq!(kick["cmd"], "systemKickUser", "{kick}");
        assert_eq!(kick["desc"], "server is shutting down");
        assert_eq!(c.expect_close().await, Some(1001));
    }
    assert!(!place.snapshot().exists());
    let store = Store::connect(&place.url, &Default::default())
        .await
        .unwrap();
    for id in [&ja.session, &jb.session] {
        let s = closed_session(&store, id).await;
        assert!(!s.session.time_out, "left at the stop: {s:?}");
        assert_eq!(s.sub_sessions[0].sub_session.status, 0, "{s:?}");
    }
    store.close().await;
}

/// Start on `place` with `content` as the snapshot; the server must come up, serve a join,
/// and have logged why it ignored the file.
async fn ignored(place: &Place, content: &str, why: &str) {
    let aside = place.dir.join("rooms.snapshot.json.ignored");
    let _ = std::fs::remove_file(&aside);
    std::fs::write(place.snapshot(), content).unwrap();
    let log = place.dir.join(unique("log"));
    let dir = place.dir.display().to_string();
    let mut server = Server::start_logging_to(
        &[
            ("RTCROOM_AUTH_REQUIRED", "false"),
            ("RTCROOM_DATABASE_URL", &place.url),
            ("RTCROOM_SERVER_DATA_DIR", &dir),
        ],
        &log,
    );
    let mut c = server.client().await;
    c.send(join("cont", "alice", "Alice")).await;
    let resp = c.expect("respJoin").await;
    assert_eq!(
        (resp["result"].as_i64(), &resp["resumed"]),
        (Some(0), &json!(false))
    );
    assert!(server.terminate().success());
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("rooms snapshot is ignored"))
        .unwrap_or_else(|| panic!("no log line about the snapshot in:\n{text}"));
    assert!(line.contains(why), "{line}");
    assert!(aside.exists(), "moved aside for a look");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_or_foreign_snapshot_is_ignored_with_a_log_line() {
    let place = Place::new("corrupt");
    ignored(
        &place,
        "{\"format\":\"rtcroom rooms snap",
        "not a rooms snapshot",
    )
    .await;
    ignored(
        &place,
        r#"{"format":"something else","formatVersion":7,"writtenAtMs":0,"writtenAt":"","serverVersion":"0","snapshot":{"version":1,"taken_at":0,"rooms":[]}}"#,
        "format version 7",
    )
    .await;
    // Ours, but from long ago: its members could not resume.
    ignored(
        &place,
        r#"{"format":"rtcroom rooms snapshot","formatVersion":1,"writtenAtMs":1000,"writtenAt":"1970-01-01T00:00:01+00:00","serverVersion":"0","snapshot":{"version":1,"taken_at":1000,"rooms":[]}}"#,
        "longer than the heartbeat timeout",
    )
    .await;
}

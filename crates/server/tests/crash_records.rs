//! The real binary killed with `kill -9` in the middle of a call, then started again on the
//! same database and data directory:
//! - the checkpoints (`[database] checkpoint_secs`) let restart recovery close the session
//!   and both sub-sessions at the last checkpoint and bill the connected pair up to there,
//!   not zero;
//! - the write-ahead journal brings back records the database had not taken yet (it was
//!   locked by another connection the whole time the call lasted);
//! - killed while the writer commits batch after batch, the next start writes each quality
//!   row exactly once.

mod common;

use common::{Client, Server};
use rtcroom_store::{SessionDetail, Store};
use sqlx::Connection;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

fn sqlite_url(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let file = std::env::temp_dir().join(format!(
        "rtcroom_crash_{tag}_{}_{}.db",
        std::process::id(),
        nanos % 1_000_000_000
    ));
    format!("sqlite://{}", file.display())
}

fn start(url: &str, data_dir: Option<&Path>) -> Server {
    start_with(url, data_dir, &[])
}

fn start_with(url: &str, data_dir: Option<&Path>, extra: &[(&str, &str)]) -> Server {
    let dir = data_dir.map(|d| d.display().to_string());
    let mut env = vec![
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_DATABASE_URL", url),
        ("RTCROOM_DATABASE_CHECKPOINT_SECS", "1"),
        ("RTCROOM_ROOM_HEARTBEAT_TIMEOUT_SECS", "60"),
    ];
    if let Some(dir) = dir.as_deref() {
        env.push(("RTCROOM_SERVER_DATA_DIR", dir));
    }
    env.extend_from_slice(extra);
    Server::start(&env)
}

/// alice and bob in one room, both directions connected through TURN; their session ids.
async fn call(server: &Server) -> (Client, Client, String, String) {
    let (a, b, ja, jb) = common::connected_call(server, "crash").await;
    let id = |v: &serde_json::Value| v["sessionId"].as_str().unwrap().to_owned();
    let (sa, sb) = (id(&ja), id(&jb));
    (a, b, sa, sb)
}

/// Waits until restart recovery has closed `session_id`.
async fn closed_session(store: &Store, session_id: &str) -> SessionDetail {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(s)) = store.session(session_id).await
            && s.session.leave_time.is_some()
            && s.sub_sessions
                .iter()
                .all(|x| x.sub_session.finish_time.is_some())
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "session {session_id} was not closed after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn journal_bytes(data_dir: &Path) -> u64 {
    std::fs::read_dir(data_dir.join("spool"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("journal-"))
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_bills_open_calls_up_to_the_last_checkpoint() {
    let url = sqlite_url("checkpoint");
    let mut server = start(&url, None);
    let (a, b, sa, sb) = call(&server).await;
    let connected = chrono::Utc::now();
    // Three checkpoints (one a second) while the call goes on.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let killed = chrono::Utc::now();
    server.kill();
    drop((a, b));

    let mut again = start(&url, Some(&server.data_dir));
    let store = Store::connect(&url, &Default::default()).await.unwrap();
    for id in [&sa, &sb] {
        let s = closed_session(&store, id).await;
        let leave = s.session.leave_time.unwrap();
        assert!(s.session.time_out, "closed by recovery: {s:?}");
        assert!(
            leave <= killed,
            "ends at a checkpoint before the kill: {s:?}"
        );
        assert!(
            s.session.duration >= 2,
            "billed up to a checkpoint, not zero: {s:?}"
        );
        assert_eq!(s.sub_sessions.len(), 1, "{s:?}");
        let sub = &s.sub_sessions[0].sub_session;
        let finish = sub.finish_time.unwrap();
        assert_eq!(sub.status, 1, "connected, then timed out: {sub:?}");
        assert_eq!(sub.connect_type, "TURN");
        assert!(finish <= killed, "{sub:?}");
        assert!(
            sub.duration >= 2 && sub.duration <= (killed - connected).num_seconds() + 1,
            "billed from connect to the last checkpoint: {sub:?}"
        );
        // One started minute at the default price of a relayed minute (1 cent).
        assert_eq!(sub.cost, 1, "{sub:?}");
    }
    again.terminate();
    store.close().await;
    let _ = Store::drop_database(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_database_never_took_come_back_from_the_journal() {
    let url = sqlite_url("journal");
    let mut server = start(&url, None);
    // Another connection holds the database's write lock: the writer's first batch waits
    // for it (SQLite's busy timeout), so the call's records are only in memory and the
    // journal when the process is killed.
    let mut lock = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();
    let (a, b, sa, sb) = call(&server).await;
    // The journal is written per burst and synced within 250 ms: wait until it holds the
    // call's records and stops growing (a loaded machine may take longer), then kill.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let now = journal_bytes(&server.data_dir);
        if (now > 0 && now == last) || std::time::Instant::now() > deadline {
            break;
        }
        last = now;
    }
    server.kill();
    drop((a, b));
    assert!(
        journal_bytes(&server.data_dir) > 0,
        "the call's records are in the journal"
    );
    let spooled =
        std::fs::metadata(server.data_dir.join("spool/records.jsonl")).map_or(0, |m| m.len());
    assert_eq!(
        spooled, 0,
        "and not in the spool: only the journal has them"
    );
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    lock.close().await.unwrap();

    let mut again = start(&url, Some(&server.data_dir));
    let store = Store::connect(&url, &Default::default()).await.unwrap();
    for (id, uid) in [(&sa, "alice"), (&sb, "bob")] {
        let s = closed_session(&store, id).await;
        assert_eq!(s.session.user_id, uid);
        assert!(s.session.time_out, "{s:?}");
        let sub = &s.sub_sessions[0].sub_session;
        assert_eq!((sub.status, sub.connect_type.as_str()), (1, "TURN"));
    }
    again.terminate();
    store.close().await;
    let _ = Store::drop_database(&url).await;
}

/// Quality rows in the database, read through a connection of the test's own.
async fn quality_rows(conn: &mut sqlx::SqliteConnection) -> (i64, i64) {
    sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT record_id) FROM rtc_talk_quality_stats_infos")
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Killed with `kill -9` while its writer commits quality rows (thousands of them, queued
/// while another connection held the write lock, so that they go in many batches), then
/// started again on the same data directory: every quality row is in the database exactly
/// once — those committed before the kill are not written twice, the rest come back from
/// the journal and the spool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_batch_keeps_every_quality_row_exactly_once() {
    const REPORTS: i64 = 20_000;
    // One connection sends them all, far above a browser's rate.
    const UNLIMITED: [(&str, &str); 2] = [
        ("RTCROOM_ROOM_RATE_PER_SEC", "1000000"),
        ("RTCROOM_ROOM_RATE_BURST", "1000000"),
    ];
    let url = sqlite_url("midbatch");
    let mut server = start_with(&url, None, &UNLIMITED);
    let mut lock = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();
    let (mut a, b, _, _) = call(&server).await;
    for i in 0..REPORTS {
        a.send(serde_json::json!({"cmd":"reportStats","remoteUid":"bob",
            "audio":{"recv":{"bitRate":i,"packetsLostRate":0.5}},
            "video":{"recv":{"bitRate":500,"packetsLostRate":1}}}))
            .await;
    }
    // The server takes a connection's frames in order: once it answers this, every report
    // before it is a record in the writer's hands.
    a.send(serde_json::json!({"cmd":"keepLive"})).await;
    a.expect("respKeepLive").await;
    // Then in the journal (synced within 250 ms): wait until it stops growing.
    let mut last = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let now = journal_bytes(&server.data_dir);
        if (now > 0 && now == last) || Instant::now() > deadline {
            break;
        }
        last = now;
    }
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    // The writer retries (backoff), then commits batch after batch: kill it after the
    // first commit shows.
    let deadline = Instant::now() + Duration::from_secs(120);
    let at_kill = loop {
        let (rows, _) = quality_rows(&mut lock).await;
        if rows > 0 {
            server.kill();
            break rows;
        }
        assert!(Instant::now() < deadline, "the writer never wrote");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    drop((a, b));
    let (after_kill, _) = quality_rows(&mut lock).await;
    assert!(
        after_kill < REPORTS,
        "killed before it had written every row ({at_kill} seen, {after_kill} after the kill)"
    );

    let mut again = start_with(&url, Some(&server.data_dir), &UNLIMITED);
    let deadline = Instant::now() + Duration::from_secs(120);
    while quality_rows(&mut lock).await.0 < REPORTS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    again.terminate();
    let (rows, distinct) = quality_rows(&mut lock).await;
    assert_eq!(
        (rows, distinct),
        (REPORTS, REPORTS),
        "every quality row once ({after_kill} were in before the kill)"
    );
    lock.close().await.unwrap();
    let _ = Store::drop_database(&url).await;
}

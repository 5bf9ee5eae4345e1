//! `rtcroom serve` started while its MariaDB is down: it serves anyway, `/readyz` says why it
//! is not ready, an alert is mailed, a call goes through with its records kept in the spool,
//! and once the database answers the migrations run and every record arrives exactly once.
//!
//! The database is a private `mariadbd` (its own data directory and port, killed by its pid);
//! the machine's shared MariaDB is never touched.

mod common;
#[path = "../../store/tests/common/private_mariadb.rs"]
mod private_mariadb;

use common::{Server, SmtpSink, join, wait_ready, wait_until};
use private_mariadb::PrivateMariadb;
use rtcroom_store::Store;
use serde_json::json;
use sqlx::Connection;

/// `SELECT COUNT(*)` of each table that a call fills, and the sub-session ids each session
/// lists (appended once per pair, so a record applied twice would show here too).
async fn rows(url: &str) -> (Vec<i64>, Vec<String>) {
    let mut db = sqlx::MySqlConnection::connect(url).await.unwrap();
    let mut counts = Vec::new();
    for table in [
        "rtc_talk_sessions",
        "rtc_talk_subsessions",
        "rtc_talk_quality_stats_infos",
    ] {
        let (n,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&mut db)
                .await
                .unwrap();
        counts.push(n);
    }
    let ids: Vec<(String,)> = sqlx::query_as(
        "SELECT COALESCE(sub_session_ids, '') FROM rtc_talk_sessions ORDER BY user_id",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();
    (counts, ids.into_iter().map(|(s,)| s).collect())
}

// Several threads: the clients run while the server and the database are started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_without_its_database_and_every_record_arrives_once_it_answers() {
    let dir = std::env::temp_dir().join(format!("rtcroom-dbdown-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut db = PrivateMariadb::install(&dir);
    // The operator created the database; its tables are the server's to make.
    Store::create_database(&db.url()).await.unwrap();
    db.kill();

    let smtp = SmtpSink::start();
    let url = db.url();
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_DATABASE_URL", &url),
        ("RTCROOM_ADMIN_TOKEN", "adm"),
        ("RTCROOM_SMTP_URL", &smtp.url()),
        ("RTCROOM_SMTP_FROM", "rtcroom <rtcroom@example.com>"),
        ("RTCROOM_ALERTS_RECIPIENTS", "[\"ops@example.com\"]"),
    ]);
    wait_ready(
        &server,
        503,
        "the call-record database is unreachable since the start",
    )
    .await;
    wait_until("the alert mail", || async {
        smtp.texts().iter().any(|m| {
            m.contains("Subject: [rtcroom] call-record database unreachable")
                && m.contains("its migrations run when it answers")
        })
    })
    .await;

    // A call while the database has never answered: both directions connected, a quality
    // report each way, then both leave.
    let (mut a, mut b, _, _) = common::connected_call(&server, "dbdown").await;
    for (c, remote) in [(&mut a, "bob"), (&mut b, "alice")] {
        c.send(json!({"cmd":"reportStats","remoteUid":remote,"audio":{"recv":{"bitRate":40,"packetsLostRate":"0.5"}},
            "video":{"recv":{"bitRate":500,"packetsLostRate":"1.0"}}})).await;
    }
    a.send(json!({"cmd":"leave"})).await;
    a.expect("respLeave").await;
    b.expect("relayLeave").await;
    b.send(json!({"cmd":"leave"})).await;
    b.expect("respLeave").await;
    // And a member still in a room when the database comes back: its row is open then.
    let mut carol = server.client().await;
    carol.send(join("alone", "carol", "Carol")).await;
    assert_eq!(carol.expect("respJoin").await["result"], 0);
    // What the server could not write is in the spool file of its data directory.
    let spool = server.data_dir.join("spool");
    wait_until("the records in the spool", || async {
        std::fs::read_dir(&spool).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.metadata().is_ok_and(|m| m.is_file() && m.len() > 0))
        })
    })
    .await;
    wait_ready(
        &server,
        503,
        "the call-record database is unreachable since the start",
    )
    .await;

    db.start();
    wait_ready(&server, 200, "ready").await;
    wait_until("the database is back mail", || async {
        smtp.texts()
            .iter()
            .any(|m| m.contains("Subject: [rtcroom] call-record database is back"))
    })
    .await;
    // Every record exactly once: three sessions (alice, bob, carol), one sub-session per
    // direction, one quality row per report, and each session lists its sub-session once.
    wait_until("every record", || async {
        let (counts, _) = rows(&url).await;
        counts == [3, 2, 2]
    })
    .await;
    carol.send(json!({"cmd":"leave"})).await;
    carol.expect("respLeave").await;
    wait_until("carol's leave", || async {
        let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
        let (open,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM rtc_talk_sessions WHERE leave_time IS NULL")
                .fetch_one(&mut c)
                .await
                .unwrap();
        open == 0
    })
    .await;
    let (counts, ids) = rows(&url).await;
    assert_eq!(counts, [3, 2, 2], "nothing twice");
    assert_eq!(ids.len(), 3);
    for (who, list) in ["alice", "bob"].iter().zip(&ids) {
        assert_eq!(list.split(',').count(), 1, "{who}: {list:?}");
    }
    assert_eq!(ids[2], "", "carol met nobody");
    drop(server);
    db.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

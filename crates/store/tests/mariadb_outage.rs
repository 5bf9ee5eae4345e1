//! The database dies in the middle of writing, twice, and comes back: every record arrives
//! exactly once, in order.
//!
//! The machine's shared MariaDB is never touched: the test initialises a private
//! `mariadbd` (its own data directory, port and socket under a temp dir), kills it with
//! SIGKILL by its pid while the writer is busy, starts it again on the same data, and kills
//! it for good at the end.

mod common;

use common::private_mariadb::PrivateMariadb;
use common::*;
use rtcroom_store::{RecordWriter, Store, StoreOptions, WriterConfig, WriterStats};
use std::time::{Duration, Instant};

async fn wait_for(
    what: &str,
    writer: &RecordWriter,
    cond: impl Fn(&WriterStats) -> bool,
) -> WriterStats {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let s = writer.stats();
        if cond(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_arrives_exactly_once_across_database_crashes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = PrivateMariadb::install(tmp.path());
    Store::create_database(&db.url()).await.unwrap();
    let opts = StoreOptions {
        acquire_timeout: Duration::from_secs(1),
        ..StoreOptions::default()
    };
    let store = Store::connect(&db.url(), &opts).await.unwrap();
    store.migrate().await.unwrap();

    let cfg = WriterConfig {
        batch_size: 50,
        memory_limit: 500,
        spool_dir: tmp.path().join("spool"),
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_millis(300),
        write_timeout: Duration::from_secs(5),
        health_interval: Duration::from_millis(200),
        ..WriterConfig::default()
    };
    let (writer, sink) = RecordWriter::start(store.clone(), cfg).unwrap();

    // 300 calls of two members: 2 sessions, 2 sub-sessions, 8 quality reports and 1 client
    // event each, 21 records, 6,300 in all, sent in three parts.
    let mut ids = Ids::new();
    let mut calls = Vec::new();
    let mut parts: Vec<Vec<_>> = vec![Vec::new(), Vec::new(), Vec::new()];
    for i in 0..300u64 {
        let t0 = at("2024-05-01 08:00:00").plus_secs(i * 7);
        let (c, mut recs) = call(
            &mut ids,
            "app1",
            &format!("room{i}"),
            &format!("a{i}"),
            &format!("b{i}"),
            t0,
            70,
        );
        recs.insert(
            9,
            info(&mut ids, &c.a, t0.plus_secs(10), 9, "ice server invalid"),
        );
        parts[(i / 100) as usize].extend(recs);
        calls.push(c);
    }
    let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
    let send = |part: &[rtcroom_core::Record]| {
        for r in part {
            sink.try_send(r.clone()).expect("the channel holds a part");
        }
    };

    // Crash 1: while the first part is being written.
    send(&parts[0]);
    let s = wait_for("the first writes", &writer, |s| s.written > 0).await;
    db.kill();
    eprintln!(
        "killed the database with {} of {} records written, {} queued",
        s.written, total, s.queue_depth
    );
    // Calls go on while it is down: the records are kept, in memory then in the spool.
    send(&parts[1]);
    let s = wait_for("the writer to notice and spool", &writer, |s| {
        !s.db_up && s.spooled > 0 && s.write_errors > 0
    })
    .await;
    eprintln!("database down: {s:?}");
    db.start();

    // Crash 2: while the backlog is being written after the restart.
    let before = s.written;
    let s = wait_for("writes after the restart", &writer, |s| s.written > before).await;
    db.kill();
    eprintln!(
        "killed again with {} written, {} queued",
        s.written, s.queue_depth
    );
    send(&parts[2]);
    wait_for("the second outage to be noticed", &writer, |s| !s.db_up).await;
    db.start();

    let s = wait_for("every record written", &writer, |s| {
        s.queue_depth == 0 && s.written >= total
    })
    .await;
    eprintln!("done: {s:?}");
    let stats = writer.shutdown(Duration::from_secs(30)).await;
    assert_eq!(stats.written, total, "{stats:?}");
    assert_eq!((stats.dropped, stats.rejected, stats.spooled), (0, 0, 0));
    assert!(stats.write_errors > 0 && stats.spilled_total > 0);

    // Exactly once: every row is there once, and later records were applied after earlier
    // ones (each pair finished after it connected, each session closed after it opened).
    let n = store.table_counts().await.unwrap();
    assert_eq!(
        (
            n.sessions,
            n.sub_sessions,
            n.quality_reports,
            n.client_infos
        ),
        (600, 600, 2400, 300)
    );
    for c in &calls {
        for (m, sub) in [(&c.a, c.ab), (&c.b, c.ba)] {
            let s = session_of(&store, m).await;
            assert_eq!(s.sub_session_ids, vec![sub.to_string()], "appended once");
            assert!(s.session.leave_time.is_some() && !s.session.time_out);
            let d = &s.sub_sessions[0];
            let row = &d.sub_session;
            assert_eq!(
                (
                    row.status,
                    row.duration,
                    row.cost,
                    row.connect_type.as_str()
                ),
                (0, 70, 2, "TURN")
            );
            assert!(
                row.begin_time.is_some() && row.connect_time.is_some() && row.finish_time.is_some()
            );
            assert_eq!(d.quality.reports, 4);
        }
    }
    store.close().await;
    db.kill();
}

/// A writer started before its database ever answered (a server started during an outage):
/// it keeps the records in the spool, applies the migrations when the database comes, and
/// then writes every record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_started_before_its_database_migrates_it_when_it_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = PrivateMariadb::install(tmp.path());
    Store::create_database(&db.url()).await.unwrap();
    db.kill();
    let opts = StoreOptions {
        acquire_timeout: Duration::from_secs(1),
        ..StoreOptions::default()
    };
    let store = Store::connect(&db.url(), &opts).await.unwrap();
    let err = store.migrate().await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");

    let cfg = WriterConfig {
        spool_dir: tmp.path().join("spool"),
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_millis(300),
        write_timeout: Duration::from_secs(5),
        health_interval: Duration::from_millis(200),
        migrate: true,
        ..WriterConfig::default()
    };
    let (writer, sink) = RecordWriter::start(store.clone(), cfg).unwrap();
    let s = writer.stats();
    assert!(s.migrations_pending && !s.db_up, "{s:?}");
    let mut ids = Ids::new();
    let (_, records) = call(
        &mut ids,
        "app1",
        "room",
        "a",
        "b",
        at("2024-05-01 08:00:00"),
        70,
    );
    let total = records.len() as u64;
    for r in records {
        sink.try_send(r).expect("the writer runs");
    }
    wait_for("the records in the spool", &writer, |s| s.spooled == total).await;

    db.start();
    let s = wait_for("every record written", &writer, |s| {
        !s.migrations_pending && s.queue_depth == 0 && s.written == total
    })
    .await;
    assert!(s.db_up && s.rejected == 0, "{s:?}");
    let n = store.table_counts().await.unwrap();
    assert_eq!((n.sessions, n.sub_sessions, n.quality_reports), (2, 2, 8));
    writer.shutdown(Duration::from_secs(5)).await;
    store.close().await;
    db.kill();
}

//! The record writer's spool and its handling of records the database refuses.

mod common;

use common::*;
use rtcroom_store::{RecordWriter, Store, StoreOptions, WriterConfig};
use std::time::{Duration, Instant};

/// Polls `cond` until it holds; fails the test after a generous bound (this is a hang
/// guard, not a timing assertion).
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn quick(spool: &std::path::Path) -> WriterConfig {
    WriterConfig {
        batch_size: 16,
        memory_limit: 32,
        spool_dir: spool.to_owned(),
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        write_timeout: Duration::from_secs(5),
        health_interval: Duration::from_millis(200),
        ..WriterConfig::default()
    }
}

/// With no database, records go to the spool and survive a restart of the writer; the
/// next run writes them first, then its restart recovery, then its own records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_records_survive_a_restart_and_come_before_recovery() {
    let spool = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: every write fails with a connection error.
    let opts = StoreOptions {
        acquire_timeout: Duration::from_millis(500),
        ..StoreOptions::default()
    };
    let away = Store::connect("postgres://postgres@127.0.0.1:1/none", &opts)
        .await
        .unwrap();
    let (writer, sink) = RecordWriter::start(away, quick(spool.path())).unwrap();
    let mut ids = Ids::new();
    let t0 = at("2024-05-01 10:00:00");
    let (done, mut recs) = call(&mut ids, "app1", "room1", "alice", "bob", t0, 45);
    // A call still going when this run stops: recovery in the next run closes it.
    let (open_a, r) = join(&mut ids, "app1", "room2", "carol", t0);
    recs.push(r);
    let (open_b, r) = join(&mut ids, "app1", "room2", "dave", t0.plus_secs(1));
    recs.push(r);
    let (open_ab, r) = open_sub(&mut ids, &open_a, &open_b, t0.plus_secs(1));
    recs.push(r);
    let (_, r) = open_sub(&mut ids, &open_b, &open_a, t0.plus_secs(1));
    recs.push(r);
    recs.push(connect(
        open_ab,
        t0.plus_secs(3),
        rtcroom_protocol::ConnectType::Turn,
    ));
    let n = recs.len() as u64;
    for r in recs {
        sink.try_send(r).unwrap();
    }
    wait_for("the records to reach the spool", || {
        let s = writer.stats();
        s.spooled == n && !s.db_up && s.write_errors > 0
    })
    .await;
    let stats = writer.shutdown(Duration::from_millis(100)).await;
    assert_eq!((stats.written, stats.spooled, stats.queue_depth), (0, n, n));

    // The next run, with a database, recovering at its start time.
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let restart = t0.plus_secs(600);
    let cfg = WriterConfig {
        recover_at: Some(restart),
        ..quick(spool.path())
    };
    let (writer, sink) = RecordWriter::start(store.clone(), cfg).unwrap();
    // A member of the new run, joined after the restart instant.
    let (fresh, r) = join(&mut ids, "app1", "room3", "erin", restart.plus_secs(1));
    sink.try_send(r).unwrap();
    let stats = writer.shutdown(Duration::from_secs(60)).await;
    assert_eq!(
        (stats.written, stats.spooled, stats.queue_depth),
        (n + 1, 0, 0)
    );

    let finished = store
        .session(&done.a.session_id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !finished.session.time_out,
        "its own leave came first, not the recovery"
    );
    assert_eq!(finished.sub_sessions[0].sub_session.status, 0);
    let recovered = store
        .session(&open_a.session_id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(recovered.session.time_out);
    assert_eq!(recovered.sub_sessions[0].sub_session.status, 1);
    let new = store
        .session(&fresh.session_id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        new.session.leave_time, None,
        "the new run's session stays open"
    );
    let left = std::fs::metadata(spool.path().join("records.jsonl"))
        .unwrap()
        .len();
    assert_eq!(left, 0, "a drained spool is emptied");
}

/// A record the database refuses for its content (here: its table is gone) is set aside
/// with the reason; the records around it are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_is_set_aside_and_the_rest_written() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let raw = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    sqlx::query("DROP TABLE rtc_talk_client_infos")
        .execute(&raw)
        .await
        .unwrap();
    let spool = tempfile::tempdir().unwrap();
    let (writer, sink) = RecordWriter::start(store.clone(), quick(spool.path())).unwrap();
    let mut ids = Ids::new();
    let (c, mut recs) = call(
        &mut ids,
        "app1",
        "room1",
        "alice",
        "bob",
        at("2024-05-01 10:00:00"),
        45,
    );
    let bad = info(
        &mut ids,
        &c.a,
        at("2024-05-01 10:00:30"),
        9,
        "ice server invalid",
    );
    recs.insert(5, bad);
    let n = recs.len() as u64;
    for r in recs {
        sink.try_send(r).unwrap();
    }
    let stats = writer.shutdown(Duration::from_secs(60)).await;
    assert_eq!(
        (stats.written, stats.rejected, stats.queue_depth),
        (n - 1, 1, 0)
    );
    let s = store
        .session(&c.a.session_id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.sub_sessions[0].sub_session.status, 0);
    let rejected = std::fs::read_to_string(spool.path().join("rejected.jsonl")).unwrap();
    assert_eq!(rejected.lines().count(), 1);
    assert!(
        rejected.contains("rtc_talk_client_infos") && rejected.contains("ice server invalid"),
        "{rejected}"
    );
}

/// `try_send` never waits and never drops while the writer runs: a burst far larger than
/// memory is all taken, its depth is reported, and every record reaches the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_never_dropped_and_its_depth_is_seen() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let spool = tempfile::tempdir().unwrap();
    let (writer, sink) = RecordWriter::start(store, quick(spool.path())).unwrap();
    let mut ids = Ids::new();
    let (_, recs) = call(
        &mut ids,
        "app1",
        "room1",
        "alice",
        "bob",
        at("2024-05-01 10:00:00"),
        600,
    );
    for r in recs.iter().cycle().take(20_000).cloned() {
        sink.try_send(r)
            .expect("a running writer takes every record");
    }
    assert!(writer.stats().channel_high_water > 1);
    let stats = writer.shutdown(Duration::from_secs(60)).await;
    // The same records are sent over and over; applying them again changes nothing.
    assert_eq!((stats.written, stats.dropped), (20_000, 0));
    // Only a record sent after the writer stopped is refused, and counted.
    assert!(sink.try_send(recs[0].clone()).is_err());
    assert!(
        std::fs::read_dir(spool.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("journal-")),
        "a clean shutdown leaves no journal"
    );
}

/// Under a trickle the database task lets records gather for `batch_wait` before it writes
/// a short batch; a full batch waiting, or a shutdown, ends the wait at once. With an hour
/// to gather, the only ways these records reach the database are those two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickle_gathers_until_a_full_batch_or_the_shutdown() {
    let spool = tempfile::tempdir().unwrap();
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let cfg = WriterConfig {
        batch_size: 8,
        batch_wait: Duration::from_secs(3600),
        checkpoint: None,
        ..quick(spool.path())
    };
    let (writer, sink) = RecordWriter::start(store.clone(), cfg).unwrap();
    let mut ids = Ids::new();
    let t0 = at("2024-05-01 10:00:00");
    let mut send = |n: u64| {
        for i in 0..n {
            let (_, r) = join(&mut ids, "app1", "room1", &format!("m{i}"), t0.plus_secs(i));
            sink.try_send(r).unwrap();
        }
    };
    send(1);
    send(7);
    wait_for("a full batch to be written", || writer.stats().written == 8).await;
    send(3);
    let stats = writer.shutdown(Duration::from_secs(60)).await;
    assert_eq!(
        (stats.written, stats.spooled, stats.queue_depth),
        (11, 0, 0)
    );
    assert_eq!(store.table_counts().await.unwrap().sessions, 11);
}

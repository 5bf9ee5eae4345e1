//! The record writer's spool and its handling of records the database refuses.

mod common;

use common::*;
use rtcroom_core::Millis;
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

    let finished = session_of(&store, &done.a).await;
    assert!(
        !finished.session.time_out,
        "its own leave came first, not the recovery"
    );
    assert_eq!(finished.sub_sessions[0].sub_session.status, 0);
    let recovered = session_of(&store, &open_a).await;
    assert!(recovered.session.time_out);
    assert_eq!(recovered.sub_sessions[0].sub_session.status, 1);
    let new = session_of(&store, &fresh).await;
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
    let (c, mut recs) = alice_and_bob(&mut ids, 45);
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
    let s = session_of(&store, &c.a).await;
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
    let (_, recs) = alice_and_bob(&mut ids, 600);
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

/// Quality records alone gather for `quality_wait` (an hour here), far past `batch_wait`;
/// any other record is written about `batch_wait` after it came, and brings the quality
/// records queued before it. With an hour to gather, quality records alone reach the
/// database only with another record, a full batch or the shutdown: after 25 times
/// `batch_wait` they are still waiting (without the longer wait they would have been
/// written after one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_records_alone_gather_longer_and_other_records_do_not_wait_for_them() {
    let spool = tempfile::tempdir().unwrap();
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let batch_wait = Duration::from_millis(20);
    let cfg = WriterConfig {
        batch_size: 1_000,
        batch_wait,
        quality_wait: Duration::from_secs(3600),
        checkpoint: None,
        ..quick(spool.path())
    };
    let (writer, sink) = RecordWriter::start(store.clone(), cfg).unwrap();
    let mut ids = Ids::new();
    let t0 = at("2024-05-01 10:00:00");
    let (a, r) = join(&mut ids, "app1", "room1", "alice", t0);
    sink.try_send(r).unwrap();
    let (b, r) = join(&mut ids, "app1", "room1", "bob", t0);
    sink.try_send(r).unwrap();
    let (ab, r) = open_sub(&mut ids, &a, &b, t0);
    sink.try_send(r).unwrap();
    wait_for("the call's records", || writer.stats().written == 3).await;
    let mut reports = |n: u64, from: u64| {
        for i in 0..n {
            let r = report(&mut ids, ab, &a, &b, t0.plus_secs(from + i), 40, 0.5);
            sink.try_send(r).unwrap();
        }
    };
    reports(5, 1);
    tokio::time::sleep(batch_wait * 25).await;
    assert_eq!(
        writer.stats().written,
        3,
        "quality records alone did not wait"
    );
    // A sub-session record ends the wait, and the quality records before it go with it.
    sink.try_send(begin(ab, t0.plus_secs(6))).unwrap();
    wait_for("the begin and the reports", || writer.stats().written == 9).await;
    reports(4, 7);
    let stats = writer.shutdown(Duration::from_secs(60)).await;
    assert_eq!((stats.written, stats.queue_depth), (13, 0));
    assert_eq!(
        store.quality_reports(&ab.to_string()).await.unwrap().len(),
        9
    );
}

/// Records with values that must be fitted (ids and codecs too long, NUL characters, a NaN
/// and a negative rate, bitrates out of 32 bits, a time on a whole second), besides a
/// whole call.
fn awkward_records(ids: &mut Ids) -> Vec<rtcroom_core::Record> {
    let t0 = at("2024-05-01 10:00:00");
    let (c, mut recs) = call(ids, "app1", "room1", "alice", "bob", t0, 95);
    let long = "ü".repeat(70);
    let (m, r) = join(ids, "app1", "room\u{0}2", &long, t0.plus_secs(2));
    recs.push(r);
    let (sub, r) = open_sub(ids, &m, &c.a, Millis(t0.0 + 2_345));
    recs.push(r);
    let mut q = report(
        ids,
        sub,
        &m,
        &c.a,
        Millis(t0.0 + 3_000),
        3_000_000_000,
        f32::NAN,
    );
    if let rtcroom_core::Record::Quality(q) = &mut q {
        q.stats.aud_send_lost_rate = -1.0;
        q.stats.vid_send_lost_rate = 0.1;
        q.stats.send_width = i64::MIN;
        q.stats.send_codec = "x".repeat(40);
        q.stats.recv_codec = "H2\u{0}64".into();
    }
    recs.push(q);
    recs.push(info(ids, &m, Millis(t0.0 + 4_001), 3, &"d".repeat(20)));
    recs
}

async fn scalar(conn: &mut sqlx::SqliteConnection, q: String) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(q))
        .fetch_one(conn)
        .await
        .unwrap()
}

/// The writer's own SQLite connection writes, value for value and type for type, the rows
/// that `Store::apply` (sqlx) writes for the same records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_thread_writes_the_rows_sqlx_writes() {
    let mut ids = Ids::new();
    let recs = awkward_records(&mut ids);
    let by_sqlx = TestDb::new(Backend::Sqlite).await;
    by_sqlx.store().await.apply(&recs).await.unwrap();
    let by_writer = TestDb::new(Backend::Sqlite).await;
    let store = by_writer.store().await;
    let spool = tempfile::tempdir().unwrap();
    let cfg = WriterConfig {
        checkpoint: None,
        ..quick(spool.path())
    };
    let (writer, sink) = RecordWriter::start(store, cfg).unwrap();
    for r in &recs {
        sink.try_send(r.clone()).unwrap();
    }
    let stats = writer.shutdown(Duration::from_secs(60)).await;
    assert_eq!(
        (stats.written, stats.rejected, stats.queue_depth),
        (recs.len() as u64, 0, 0)
    );
    let mut raw = <sqlx::SqliteConnection as sqlx::Connection>::connect(&by_writer.url)
        .await
        .unwrap();
    let other = by_sqlx.url.trim_start_matches("sqlite://");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ATTACH DATABASE '{other}' AS s"
    )))
    .execute(&mut raw)
    .await
    .unwrap();
    for table in [
        "rtc_talk_sessions",
        "rtc_talk_subsessions",
        "rtc_talk_quality_stats_infos",
        "rtc_talk_client_infos",
    ] {
        // Every column with its storage class, so that a text "1" and an integer 1 differ.
        let cols: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}')"
        )))
        .fetch_all(&mut raw)
        .await
        .unwrap();
        let row = cols
            .iter()
            .map(|(c,)| format!("typeof({c}), {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let count = |schema: &str| format!("SELECT COUNT(*) FROM {schema}.{table}");
        let differ = format!(
            "SELECT (SELECT COUNT(*) FROM (SELECT {row} FROM main.{table} EXCEPT SELECT {row} FROM s.{table})) \
             + (SELECT COUNT(*) FROM (SELECT {row} FROM s.{table} EXCEPT SELECT {row} FROM main.{table}))"
        );
        let mine = scalar(&mut raw, count("main")).await;
        let theirs = scalar(&mut raw, count("s")).await;
        assert!(mine > 0, "{table} has rows");
        assert_eq!(mine, theirs, "{table}");
        let d = scalar(&mut raw, differ).await;
        assert_eq!(d, 0, "{table}: rows differ between the writer and sqlx");
    }
}

/// Another connection holds the database file's write lock: the writer's batches fail
/// after the busy timeout and are retried (the records wait in the spool meanwhile), and
/// once the lock is gone every record is written, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_file_is_retried_and_nothing_is_lost() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let mut lock = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();
    let spool = tempfile::tempdir().unwrap();
    let (writer, sink) = RecordWriter::start(store.clone(), quick(spool.path())).unwrap();
    let mut ids = Ids::new();
    let (c, recs) = alice_and_bob(&mut ids, 600);
    let n = recs.len() as u64;
    let reports = quality_reports(&recs) as i64;
    for r in recs.iter().chain(&recs).cloned() {
        sink.try_send(r).unwrap();
    }
    wait_for("a write to fail on the lock", || {
        let s = writer.stats();
        s.write_errors > 0 && !s.db_up && s.written == 0
    })
    .await;
    // Readers still read (WAL), and see nothing of the writer's yet.
    assert_eq!(store.table_counts().await.unwrap().sessions, 0);
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    let stats = writer.shutdown(Duration::from_secs(60)).await;
    assert_eq!(
        (
            stats.written,
            stats.spooled,
            stats.queue_depth,
            stats.rejected
        ),
        (2 * n, 0, 0, 0),
        "every record written (each twice: the second time a no-op)"
    );
    let q: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rtc_talk_quality_stats_infos")
        .fetch_one(&mut lock)
        .await
        .unwrap();
    assert_eq!(q, reports, "each quality row once");
    let s = session_of(&store, &c.a).await;
    assert_eq!(s.sub_sessions[0].sub_session.status, 0);
    assert!(s.session.leave_time.is_some());
}

//! Records written per second through the `RecordWriter`, by backend and batch size.
//!
//! `cargo bench -p rtcroom-store --bench write -- [sqlite] [mariadb] [postgres] [--records N]
//! [--day-pairs N]` (default: sqlite and mariadb, 60,000 records, 50,000 pairs). Each run uses a fresh database (a temp
//! SQLite file, or a uniquely named database on the machine's server, dropped after). The
//! records are a realistic mix from two-member calls of 5 minutes: per call 2 session
//! opens and closes, 2 sub-session opens, begins, connects and finishes, 38 quality
//! reports (one per member every 15 s) and 1 client event. The clock runs from the first
//! `try_send` until the writer reports every record written; the channel is sized to take
//! all records at once so that the figure is the database path's throughput.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use rtcroom_store::{RecordWriter, WriterConfig};
use std::time::{Duration, Instant};

fn records(n: usize) -> Vec<rtcroom_core::Record> {
    let mut ids = Ids::new();
    let mut out = Vec::with_capacity(n + 64);
    let mut i = 0u64;
    while out.len() < n {
        let t0 = at("2024-05-01 08:00:00").plus_secs(i * 3);
        let (c, mut recs) = call(
            &mut ids,
            "app1",
            &format!("room{i}"),
            &format!("a{i}"),
            &format!("b{i}"),
            t0,
            300,
        );
        recs.insert(
            9,
            info(&mut ids, &c.a, t0.plus_secs(10), 9, "ice server invalid"),
        );
        out.extend(recs);
        i += 1;
    }
    out.truncate(n);
    out
}

async fn run(backend: Backend, batch_size: usize, n: usize) -> (f64, Duration) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let spool = tempfile::tempdir().unwrap();
    let cfg = WriterConfig {
        batch_size,
        spool_dir: spool.path().to_owned(),
        ..WriterConfig::default()
    };
    let recs = records(n);
    let (writer, sink) = RecordWriter::start(store.clone(), cfg).unwrap();
    let start = Instant::now();
    for r in recs {
        sink.try_send(r).expect("the channel holds every record");
    }
    while writer.stats().written < n as u64 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = start.elapsed();
    let stats = writer.shutdown(Duration::from_secs(10)).await;
    assert_eq!(
        (stats.written, stats.dropped, stats.rejected),
        (n as u64, 0, 0)
    );
    store.close().await;
    (n as f64 / took.as_secs_f64(), took)
}

/// Streams a day of `2 × pairs` sub-sessions (each with one quality report) as the daily
/// report does, and returns rows per second of the stream.
async fn day_stream(backend: Backend, pairs: usize) -> (f64, Duration) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let mut ids = Ids::new();
    let mut batch = Vec::new();
    for i in 0..pairs {
        let t = at("2024-05-01 00:00:00").plus_secs((i as u64 * 86_000) / pairs as u64);
        let (a, r1) = join(&mut ids, "app1", &format!("r{i}"), "a", t);
        let (b, r2) = join(&mut ids, "app1", &format!("r{i}"), "b", t);
        let (ab, r3) = open_sub(&mut ids, &a, &b, t);
        let (ba, r4) = open_sub(&mut ids, &b, &a, t);
        let q1 = report(&mut ids, ab, &a, &b, t.plus_secs(15), 40, 0.5);
        let q2 = report(&mut ids, ba, &b, &a, t.plus_secs(15), 40, 0.5);
        batch.extend([r1, r2, r3, r4, q1, q2]);
        if batch.len() >= 3000 {
            store.apply(&batch).await.unwrap();
            batch.clear();
        }
    }
    store.apply(&batch).await.unwrap();
    let start = Instant::now();
    let mut rows = 0;
    let mut s = store.day_sub_sessions(chrono::NaiveDate::from_ymd_opt(2024, 5, 1).unwrap());
    while let Some(r) = s.next().await {
        assert_eq!(r.unwrap().quality.reports, 1);
        rows += 1;
    }
    let took = start.elapsed();
    assert_eq!(rows, 2 * pairs);
    store.close().await;
    (rows as f64 / took.as_secs_f64(), took)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args
        .iter()
        .position(|a| a == "--records")
        .and_then(|i| args.get(i + 1))
        .map_or(60_000, |v| v.parse().expect("--records N"));
    let pairs = args
        .iter()
        .position(|a| a == "--day-pairs")
        .and_then(|i| args.get(i + 1))
        .map_or(50_000, |v| v.parse().expect("--day-pairs N"));
    let mut backends: Vec<Backend> = args
        .iter()
        .filter_map(|a| match a.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "mariadb" | "mysql" => Some(Backend::MySql),
            "postgres" => Some(Backend::Postgres),
            _ => None,
        })
        .collect();
    if backends.is_empty() {
        backends = vec![Backend::Sqlite, Backend::MySql];
    }
    println!("backend   batch  records  seconds  records/s");
    for &b in &backends {
        for batch in [1usize, 100, 1000] {
            // One record per transaction is slow: measure it on fewer records.
            let count = if batch == 1 { n.min(3_000) } else { n };
            let (rate, took) = run(b, batch, count).await;
            println!(
                "{:<9} {batch:>5} {count:>8} {:>8.2} {rate:>10.0}",
                label(b),
                took.as_secs_f64()
            );
        }
    }
    println!("\nbackend   day rows  seconds  rows/s   (Store::day_sub_sessions, with quality)");
    for &b in &backends {
        let (rate, took) = day_stream(b, pairs).await;
        println!(
            "{:<9} {:>8} {:>8.2} {rate:>7.0}",
            label(b),
            2 * pairs,
            took.as_secs_f64()
        );
    }
}

fn label(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "sqlite",
        Backend::MySql => "mariadb",
        Backend::Postgres => "postgres",
    }
}

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
//!
//! `cargo bench -p rtcroom-store --bench write -- quality [--rate 2000] [--subs 1000]
//! [--prior 100000] [--warmup 3] [--secs 15] [--drop-unique]`: the CPU the writer's two
//! threads (`rtcroom-records`, the intake, and `rtcroom-rec-db`, the database thread) spend
//! per quality row under a steady trickle, as a server sees it: `--rate` quality records a
//! second (sent every 10 ms) spread over `--subs` live sub-sessions, each sub-session's
//! rows in time order, into a fresh SQLite file that already holds `--prior` quality rows
//! of older sub-sessions. Measured over `--secs` after `--warmup`, from each thread's
//! `/proc/self/task/TID/schedstat` (run time in ns) and `stat` (user and system ticks).
//! `--drop-unique` drops the unique `record_id` index first (an experiment: it measures
//! what the index costs; the writer's idempotency rests on it).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use rtcroom_core::Millis;
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

/// One thread's CPU so far: run time (ns), user and system ticks, voluntary switches.
#[derive(Debug, Clone, Copy, Default)]
struct ThreadCpu {
    run_ns: u64,
    utime: u64,
    stime: u64,
    switches: u64,
}

/// The CPU of this process's threads named `name`, summed.
fn thread_cpu(name: &str) -> ThreadCpu {
    let mut sum = ThreadCpu::default();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let sched = std::fs::read_to_string(dir.join("schedstat")).unwrap();
        sum.run_ns += sched.split(' ').next().unwrap().parse::<u64>().unwrap();
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
        // Fields after the command's closing parenthesis: state is field 3, utime 14.
        let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        sum.utime += rest[11].parse::<u64>().unwrap();
        sum.stime += rest[12].parse::<u64>().unwrap();
        let status = std::fs::read_to_string(dir.join("status")).unwrap();
        sum.switches += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .map_or(0, |v| v.trim().parse().unwrap());
    }
    sum
}

const WRITER_THREADS: [&str; 2] = ["rtcroom-records", rtcroom_store::DB_THREAD_NAME];

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| {
            v.parse().unwrap_or_else(|_| panic!("{name}: a number"))
        })
}

/// The writer's CPU per quality row under a steady trickle (see the module's doc).
async fn quality_trickle(args: &[String]) {
    let rate: u64 = arg(args, "--rate", 2_000);
    let subs: usize = arg(args, "--subs", 1_000);
    let prior: usize = arg(args, "--prior", 100_000);
    let warmup: u64 = arg(args, "--warmup", 3);
    let secs: u64 = arg(args, "--secs", 15);
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let mut ids = Ids::new();
    // Older sub-sessions with their rows, written straight through the store.
    let old = at("2024-05-01 06:00:00");
    let mut batch = Vec::new();
    let old_subs = subs.max(1);
    let per_old = prior.div_ceil(old_subs);
    let mut written = 0;
    for i in 0..old_subs {
        if written >= prior {
            break;
        }
        let t = old.plus_secs(i as u64);
        let (a, r1) = join(&mut ids, "app1", &format!("old{i}"), "a", t);
        let (b, r2) = join(&mut ids, "app1", &format!("old{i}"), "b", t);
        let (sub, r3) = open_sub(&mut ids, &a, &b, t);
        batch.extend([r1, r2, r3]);
        for k in 0..per_old.min(prior - written) {
            batch.push(report(
                &mut ids,
                sub,
                &a,
                &b,
                t.plus_secs(k as u64),
                40,
                0.5,
            ));
            written += 1;
        }
        if batch.len() >= 3_000 {
            store.apply(&batch).await.unwrap();
            batch.clear();
        }
    }
    store.apply(&batch).await.unwrap();
    if args.iter().any(|a| a == "--drop-unique") {
        let raw = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query("DROP INDEX uq_talk_quality_record_id")
            .execute(&raw)
            .await
            .unwrap();
        raw.close().await;
    }
    // The live calls: two members and a sub-session each way per pair.
    let t0 = at("2024-05-01 10:00:00");
    let mut live = Vec::new();
    let mut opens = Vec::new();
    for i in 0..subs.div_ceil(2) {
        let (a, r1) = join(&mut ids, "app1", &format!("live{i}"), "a", t0);
        let (b, r2) = join(&mut ids, "app1", &format!("live{i}"), "b", t0);
        let (ab, r3) = open_sub(&mut ids, &a, &b, t0);
        let (ba, r4) = open_sub(&mut ids, &b, &a, t0);
        opens.extend([r1, r2, r3, r4]);
        live.push((ab, a.clone(), b.clone()));
        live.push((ba, b, a));
    }
    live.truncate(subs);
    let spool = tempfile::tempdir().unwrap();
    let defaults = WriterConfig::default();
    let cfg = WriterConfig {
        spool_dir: spool.path().to_owned(),
        batch_size: arg(args, "--batch-size", defaults.batch_size),
        batch_wait: Duration::from_millis(arg(
            args,
            "--batch-wait",
            defaults.batch_wait.as_millis() as u64,
        )),
        quality_wait: Duration::from_millis(arg(
            args,
            "--quality-wait",
            defaults.quality_wait.as_millis() as u64,
        )),
        ..defaults
    };
    let (writer, sink) = RecordWriter::start(store.clone(), cfg).unwrap();
    let n_opens = opens.len() as u64;
    for r in opens {
        sink.try_send(r).unwrap();
    }
    // Every 10 ms a tick's share of the rate, round robin over the sub-sessions.
    let per_tick = (rate / 100).max(1) as usize;
    let ticks = (warmup + secs) * 100;
    let recs: Vec<Vec<rtcroom_core::Record>> = (0..ticks)
        .map(|tick| {
            (0..per_tick)
                .map(|j| {
                    let n = tick as usize * per_tick + j;
                    let (sub, from, to) = &live[n % live.len()];
                    let t = Millis(t0.0 + 1_000 + tick * 10);
                    report(&mut ids, *sub, from, to, t, 40, 0.5)
                })
                .collect()
        })
        .collect();
    let feeder = std::thread::spawn(move || {
        let start = Instant::now();
        let mut marks = Vec::new();
        for (tick, recs) in recs.into_iter().enumerate() {
            let due = start + Duration::from_millis(tick as u64 * 10);
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            if tick as u64 == warmup * 100 {
                marks.push((Instant::now(), WRITER_THREADS.map(thread_cpu)));
            }
            for r in recs {
                sink.try_send(r).unwrap();
            }
        }
        let due = start + Duration::from_millis(ticks * 10);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        marks.push((Instant::now(), WRITER_THREADS.map(thread_cpu)));
        marks
    });
    let marks = tokio::task::spawn_blocking(move || feeder.join().unwrap())
        .await
        .unwrap();
    let rows = secs * 100 * per_tick as u64;
    let ((t_a, a), (t_b, b)) = (marks[0], marks[1]);
    let total = n_opens + ticks * per_tick as u64;
    let stats = writer.shutdown(Duration::from_secs(60)).await;
    assert_eq!(
        (stats.written, stats.dropped, stats.rejected),
        (total, 0, 0)
    );
    let hz = 100.0; // USER_HZ on Linux
    println!(
        "quality rows {rows} in {:.2} s over {} sub-sessions, {prior} prior rows{}",
        (t_b - t_a).as_secs_f64(),
        live.len(),
        if args.iter().any(|a| a == "--drop-unique") {
            ", unique record_id index dropped"
        } else {
            ""
        }
    );
    println!("thread            µs/row (run)  user µs/row  sys µs/row  switches/row");
    let mut sum = 0.0;
    for (k, name) in WRITER_THREADS.iter().enumerate() {
        let run = (b[k].run_ns - a[k].run_ns) as f64 / 1e3 / rows as f64;
        let user = (b[k].utime - a[k].utime) as f64 / hz * 1e6 / rows as f64;
        let sys = (b[k].stime - a[k].stime) as f64 / hz * 1e6 / rows as f64;
        let sw = (b[k].switches - a[k].switches) as f64 / rows as f64;
        sum += run;
        println!("{name:<17} {run:>12.2} {user:>12.2} {sys:>11.2} {sw:>13.3}");
    }
    println!("writer            {sum:>12.2}");
    store.close().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "quality") {
        quality_trickle(&args).await;
        return;
    }
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

//! The controller of one run: start the rooms at the ramp, wait until every member is in,
//! then walk the phases (load, measure, drain, stop) and measure the server over the
//! measured window.

use crate::cluster;
use crate::conn::Connector;
use crate::procfs;
use crate::room::{self, Ctx, Load, Pacer, RoomCfg};
use crate::stats::{BUCKET_US, Phase, Shared, Snapshot, Timeline};
use crate::wire::{Bodies, Proto};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

/// What kind of run, and what it needs to end well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Pairs under load (relay, rate, smoke): relayed messages are the point.
    Pairs,
    /// Members that only stay joined (idle).
    Idle,
    /// Joins as fast as possible (join-storm); the window is the storm itself.
    Storm,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: &'static str,
    pub kind: Kind,
    pub target: &'static str,
    pub label: String,
    pub members: usize,
    pub room_size: usize,
    pub room: RoomCfg,
    pub ramp: f64,
    pub concurrency: usize,
    pub setup_timeout: Duration,
    pub warmup: Duration,
    /// The measured window (hold time for idle; ignored for the storm).
    pub duration: Duration,
    pub sdp: (usize, usize),
    pub server_pid: Option<u32>,
    pub quiet: bool,
    /// A cluster run: where members were placed, and every process to measure.
    pub placement: Option<cluster::Placement>,
    pub procs: Vec<(&'static str, u32)>,
}

/// One instant of everything measured.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    counters: Snapshot,
    server_cpu: Option<f64>,
    /// The server's record-writing threads alone.
    records_cpu: Option<f64>,
    server_rss: Option<u64>,
    client_cpu: Option<f64>,
    machine: Option<procfs::MachineTicks>,
    /// The CPU seconds of a cluster's processes (`Plan::procs`).
    procs_cpu: [Option<f64>; cluster::MAX_PROCS],
}

fn mark(shared: &Shared, pid: Option<u32>, procs: &[(&'static str, u32)]) -> Mark {
    Mark {
        procs_cpu: cluster::cpu_now(procs),
        at: Instant::now(),
        counters: shared.counters.snapshot(),
        server_cpu: pid.and_then(procfs::cpu_seconds),
        records_cpu: pid.and_then(procfs::records_cpu_seconds),
        server_rss: pid.and_then(procfs::rss_kib),
        client_cpu: procfs::cpu_seconds(std::process::id()),
        machine: procfs::machine_ticks(),
    }
}

/// The result of a run: the JSON line, and whether it met its own checks.
#[derive(Debug)]
pub struct Outcome {
    pub json: Value,
    pub ok: bool,
}

/// The context every room task shares.
fn new_ctx(
    plan: &Plan,
    shared: &Arc<Shared>,
    connector: Connector,
    phase_rx: watch::Receiver<Phase>,
) -> Arc<Ctx> {
    let proto = connector.proto;
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Arc::new(Ctx {
        shared: shared.clone(),
        bodies: Bodies::new(proto, plan.sdp.0, plan.sdp.1),
        connector,
        cfg: plan.room.clone(),
        pacer: Pacer::new(plan.ramp),
        permits: Arc::new(Semaphore::new(plan.concurrency.max(1))),
        phase: phase_rx,
        run: format!("b{:x}", unix.as_micros() % (1 << 40)),
        time: unix.as_secs().to_string(),
    })
}

/// Setup: waits until every member is in (or has failed), within the time limit.
async fn wait_setup(plan: &Plan, shared: &Shared, start: &Mark) {
    let deadline = start.at + plan.setup_timeout;
    let total = plan.members as u64;
    let mut last_print = Instant::now();
    loop {
        let c = shared.counters.snapshot();
        if c.ready + c.failed >= total || Instant::now() >= deadline {
            break;
        }
        if !plan.quiet && last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            eprintln!(
                "  setup {:.0}s: {} connected, {} joined, {} ready, {} failed",
                start.at.elapsed().as_secs_f64(),
                c.connects,
                c.joins,
                c.ready,
                c.failed
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn execute(plan: Plan, connector: Connector) -> Outcome {
    let shared = Arc::new(Shared::new());
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let set_phase = |p: Phase| {
        shared.set_phase(p);
        let _ = phase_tx.send(p);
    };
    let ctx = new_ctx(&plan, &shared, connector, phase_rx);
    let pid = plan.server_pid;
    let start = mark(&shared, pid, &plan.procs);
    if plan.kind == Kind::Storm {
        set_phase(Phase::Measure);
    }

    let mut tasks = tokio::task::JoinSet::new();
    let rooms = plan.members.div_ceil(plan.room_size);
    for r in 0..rooms {
        let first = r * plan.room_size;
        let size = plan.room_size.min(plan.members - first);
        tasks.spawn(room::run(ctx.clone(), r, first, size));
    }

    wait_setup(&plan, &shared, &start).await;
    let total = plan.members as u64;
    let ready = mark(&shared, pid, &plan.procs);
    let setup_timed_out = ready.counters.ready + ready.counters.failed < total;

    // The measured window.
    let (from, to) = match plan.kind {
        Kind::Storm => (start, ready),
        Kind::Pairs | Kind::Idle => {
            set_phase(Phase::Load);
            tokio::time::sleep(plan.warmup).await;
            shared.reset_histogram();
            set_phase(Phase::Measure);
            let from = mark(&shared, pid, &plan.procs);
            // For a profiler driven from outside (callgrind_control -z / -d on these lines:
            // docs/benchmarks.md).
            if !plan.quiet {
                eprintln!("  window open");
            }
            tokio::time::sleep(plan.duration).await;
            let to = mark(&shared, pid, &plan.procs);
            if !plan.quiet {
                eprintln!("  window closed");
            }
            (from, to)
        }
    };
    set_phase(Phase::Drain);
    tokio::time::sleep(Duration::from_millis(300)).await;
    set_phase(Phase::Stop);
    let stop_limit = plan.room.step_timeout + Duration::from_secs(10);
    let all_done = tokio::time::timeout(stop_limit, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    if !all_done {
        tasks.abort_all();
    }
    let end = mark(&shared, pid, &plan.procs);
    report(
        &plan,
        &shared,
        &Marks {
            start,
            ready,
            from,
            to,
            end,
        },
        setup_timed_out,
        &ctx.bodies,
    )
}

struct Marks {
    start: Mark,
    ready: Mark,
    from: Mark,
    to: Mark,
    end: Mark,
}

fn secs(a: &Mark, b: &Mark) -> f64 {
    b.at.duration_since(a.at).as_secs_f64()
}

#[allow(clippy::cast_precision_loss)]
fn per_sec(n: u64, s: f64) -> f64 {
    if s > 0.0 { n as f64 / s } else { 0.0 }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// CPU seconds spent between two readings, if both were taken.
fn cpu_delta(from: Option<f64>, to: Option<f64>) -> Option<f64> {
    match (from, to) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    }
}

/// Over the window, the machine's steal time and the CPU used by neither the server nor
/// the bench, each in percent.
#[allow(clippy::cast_precision_loss)]
fn machine_shares(
    m: &Marks,
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
) -> (Option<f64>, Option<f64>) {
    match (m.from.machine, m.to.machine) {
        (Some(a), Some(b)) if b.total > a.total => {
            let total = (b.total - a.total) as f64;
            let steal = 100.0 * (b.steal - a.steal) as f64 / total;
            // Ticks are per core; the window's core-seconds are total / clock ticks.
            let core_secs = total / procfs::clock_ticks();
            let busy_secs = core_secs * (b.busy - a.busy) as f64 / total;
            let ours = server_cpu.unwrap_or(0.0) + client_cpu.unwrap_or(0.0);
            let others = 100.0 * (busy_secs - ours).max(0.0) / core_secs;
            (Some(steal), Some(others))
        }
        _ => (None, None),
    }
}

/// The server's RSS growth per ready member, in KiB.
#[allow(clippy::cast_precision_loss)]
fn rss_per_member(m: &Marks, whole: &Snapshot) -> Option<f64> {
    match (m.start.server_rss, m.to.server_rss) {
        (Some(a), Some(b)) if whole.ready > 0 => Some(round(
            b.saturating_sub(a) as f64 / m.to.counters.ready.max(1) as f64,
            2,
        )),
        _ => None,
    }
}

/// Whether the run met its own checks: no failures, setup in time, and the traffic its
/// kind is about (relayed messages for pairs, answered keepalives for idle rtcroom).
fn verdict(plan: &Plan, whole: &Snapshot, window: &Snapshot, setup_timed_out: bool) -> bool {
    let failures =
        whole.errors + whole.dropped + whole.join_refused + whole.connect_errors + whole.failed;
    let relayed = window.relayed();
    let mut ok = failures == 0 && !setup_timed_out;
    if plan.kind == Kind::Pairs && relayed == 0 {
        ok = false;
    }
    if plan.kind == Kind::Idle
        && plan.room.keepalive <= plan.duration
        && window.resp_keeplive == 0
        && matches!(plan.target, "rtcroom")
    {
        ok = false;
    }
    ok
}

/// The `setup` object of the report.
fn setup_json(setup: &Snapshot, setup_s: f64, m: &Marks, setup_timed_out: bool) -> Value {
    json!({
        "secs": round(setup_s, 3),
        "connects": setup.connects,
        "connects_per_s": round(per_sec(setup.connects, setup_s), 1),
        "joins": setup.joins,
        "joins_per_s": round(per_sec(setup.joins, setup_s), 1),
        "ready": m.ready.counters.ready,
        "timed_out": setup_timed_out,
    })
}

/// The `load` object of the report: what the pairs were told to do.
fn load_json(load: Load) -> Value {
    match load {
        Load::None => json!(null),
        Load::Closed(r) => json!({"closed_loop": format!("{r:?}").to_lowercase()}),
        Load::Rate(x, r) => {
            json!({"offers_per_s_per_pair": x, "reply": format!("{r:?}").to_lowercase()})
        }
    }
}

/// The `latency_us` object of the report.
fn latency_json(plan: &Plan, h: &Histogram<u64>) -> Value {
    let q = |p: f64| h.value_at_quantile(p);
    json!({
        "what": if plan.kind == Kind::Storm { "connect+join" } else { "relay (send to receipt)" },
        "count": h.len(),
        "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p999": q(0.999), "max": h.max(),
    })
}

/// The `latency_timeline` object of the report: per 100 ms of the window, by send time, how
/// many latencies and the largest (µs).
fn timeline_json(t: &Timeline) -> Value {
    json!({
        "bucket_ms": BUCKET_US / 1000,
        "count": t.buckets.iter().map(|b| b.0).collect::<Vec<_>>(),
        "max_us": t.buckets.iter().map(|b| b.1).collect::<Vec<_>>(),
    })
}

/// "+3.4 s 28,143 µs (n 1,012)" for the three 100 ms buckets with the largest latencies.
fn worst_buckets(j: &Value) -> Option<String> {
    let t = &j["latency_timeline"];
    let counts: Vec<u64> = serde_json::from_value(t["count"].clone()).ok()?;
    let maxes: Vec<u64> = serde_json::from_value(t["max_us"].clone()).ok()?;
    let timeline = Timeline {
        start_us: 0,
        buckets: counts.into_iter().zip(maxes).collect(),
    };
    let worst = timeline.worst(3);
    if worst.is_empty() {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let at = |i: usize| (i as u64 * BUCKET_US) as f64 / 1e6;
    Some(
        worst
            .iter()
            .map(|&(i, n, max)| format!("+{:.1} s {max} µs (n {n})", at(i)))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// The `totals` object of the report: counters over the whole run.
fn totals_json(whole: &Snapshot) -> Value {
    let joined = whole.joins;
    json!({
        "connects": whole.connects, "joins": joined, "frames_sent": whole.frames_sent,
        "frames_received": whole.frames_received, "bytes_sent": whole.bytes_sent,
        "relayed_candidates": whole.relayed_candidates, "resp_peer_connected": whole.resp_peer_connected,
        "resp_leave": whole.resp_leave, "relayed_leave": whole.relayed_leave,
    })
}

#[allow(clippy::cast_precision_loss)]
fn report(
    plan: &Plan,
    shared: &Shared,
    m: &Marks,
    setup_timed_out: bool,
    bodies: &Bodies,
) -> Outcome {
    let setup = m.ready.counters - m.start.counters;
    let setup_s = secs(&m.start, &m.ready);
    let window = m.to.counters - m.from.counters;
    let window_s = secs(&m.from, &m.to);
    let whole = m.end.counters;
    let h = shared.histogram();
    let server_cpu = cpu_delta(m.from.server_cpu, m.to.server_cpu);
    let client_cpu = cpu_delta(m.from.client_cpu, m.to.client_cpu);
    // In a cluster run every measured process is ours, not "others".
    let measured_cpu = cluster::cpu_sum(&plan.procs, &m.from.procs_cpu, &m.to.procs_cpu);
    let (steal_pct, others_pct) = machine_shares(m, measured_cpu.or(server_cpu), client_cpu);
    let relayed = window.relayed();
    let us_per_relayed = server_cpu
        .filter(|_| relayed > 0)
        .map(|c| round(c * 1e6 / relayed as f64, 2));
    let records_cpu = cpu_delta(m.from.records_cpu, m.to.records_cpu);
    let us_per_report = records_cpu
        .filter(|_| window.reports_sent > 0)
        .map(|c| round(c * 1e6 / window.reports_sent as f64, 2));
    let rss_per_member = rss_per_member(m, &whole);
    let ok = verdict(plan, &whole, &window, setup_timed_out);
    let first_errors = shared
        .first_errors
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default();
    let (body_min, body_max) = bodies.body_sizes();
    let json = json!({
        "bench": "rtcroom-bench",
        "scenario": plan.scenario,
        "target": plan.target,
        "label": plan.label,
        "members": plan.members,
        "pairs": if plan.kind == Kind::Pairs { plan.members / 2 } else { 0 },
        "room_size": plan.room_size,
        "load": load_json(plan.room.load),
        "desc_bytes": [body_min, body_max],
        "setup": setup_json(&setup, setup_s, m, setup_timed_out),
        "window_secs": round(window_s, 3),
        "relayed": relayed,
        "relayed_per_s": round(per_sec(relayed, window_s), 1),
        "relayed_offers": window.relayed_offers,
        "relayed_answers": window.relayed_answers,
        "resp_offers": window.resp_offers,
        "keepalives_sent": window.keepalives_sent,
        "reports_sent": window.reports_sent,
        "resp_keeplive": window.resp_keeplive,
        "latency_us": latency_json(plan, &h),
        "latency_timeline": timeline_json(&shared.timeline()),
        "server": {
            "pid": plan.server_pid,
            "cpu_s": server_cpu.map(|c| round(c, 3)),
            "cpu_util_pct": server_cpu.map(|c| round(100.0 * c / window_s.max(1e-9), 1)),
            "us_per_relayed": us_per_relayed,
            "records_cpu_s": records_cpu.map(|c| round(c, 3)),
            "records_us_per_report": us_per_report,
            "rss_kib_before": m.start.server_rss,
            "rss_kib_loaded": m.to.server_rss,
            "rss_kib_per_member": rss_per_member,
        },
        "cluster": cluster::report_json(plan.placement, &plan.procs, &m.from.procs_cpu, &m.to.procs_cpu, relayed),
        "client_cpu_s": client_cpu.map(|c| round(c, 3)),
        "steal_pct": steal_pct.map(|s| round(s, 1)),
        // CPU that neither the server nor the bench used (other work on a shared machine),
        // as a share of all cores during the window.
        "others_cpu_pct": others_pct.map(|s| round(s, 1)),
        "totals": totals_json(&whole),
        "errors": whole.errors,
        "dropped": whole.dropped,
        "join_refused": whole.join_refused,
        "connect_errors": whole.connect_errors,
        "unready": whole.failed,
        "first_errors": first_errors,
        "ok": ok,
    });
    if !plan.quiet {
        human(plan, &json);
    }
    Outcome { json, ok }
}

/// A report value for the human summary ("-" for none).
fn show(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn human(plan: &Plan, j: &Value) {
    let f = show;
    let s = &j["setup"];
    let l = &j["latency_us"];
    eprintln!(
        "{} against {} ({}): {} members in rooms of {}",
        plan.scenario, plan.target, plan.label, plan.members, plan.room_size
    );
    eprintln!(
        "  setup      {} s, {} connects ({}/s), {} joins ({}/s), {} ready{}",
        f(&s["secs"]),
        f(&s["connects"]),
        f(&s["connects_per_s"]),
        f(&s["joins"]),
        f(&s["joins_per_s"]),
        f(&s["ready"]),
        if s["timed_out"] == true {
            " (TIMED OUT)"
        } else {
            ""
        }
    );
    eprintln!(
        "  window     {} s: {} relayed ({}/s: {} offers, {} answers), {} keepalives ({} answered)",
        f(&j["window_secs"]),
        f(&j["relayed"]),
        f(&j["relayed_per_s"]),
        f(&j["relayed_offers"]),
        f(&j["relayed_answers"]),
        f(&j["keepalives_sent"]),
        f(&j["resp_keeplive"])
    );
    eprintln!(
        "  latency    {} µs, n={}: p50 {} p90 {} p99 {} p99.9 {} max {}",
        l["what"].as_str().unwrap_or(""),
        f(&l["count"]),
        f(&l["p50"]),
        f(&l["p90"]),
        f(&l["p99"]),
        f(&l["p999"]),
        f(&l["max"])
    );
    if let Some(worst) = worst_buckets(j) {
        eprintln!("  worst 100 ms of the window (by send time): {worst}");
    }
    human_costs(j);
}

/// The server, client and problem lines of the human summary, and the result.
fn human_costs(j: &Value) {
    let f = show;
    let srv = &j["server"];
    eprintln!(
        "  server     pid {}: {} CPU s ({}%), {} µs CPU per relayed message, RSS {} → {} KiB ({} KiB per member)",
        f(&srv["pid"]),
        f(&srv["cpu_s"]),
        f(&srv["cpu_util_pct"]),
        f(&srv["us_per_relayed"]),
        f(&srv["rss_kib_before"]),
        f(&srv["rss_kib_loaded"]),
        f(&srv["rss_kib_per_member"])
    );
    if !srv["records_cpu_s"].is_null() {
        eprintln!(
            "  records    {} CPU s in the whole record writer (its threads: journal, database, SQLite): {} µs per quality row ({} reportStats)",
            f(&srv["records_cpu_s"]),
            f(&srv["records_us_per_report"]),
            f(&j["reports_sent"])
        );
    }
    cluster::human(&j["cluster"]);
    eprintln!(
        "  client     {} CPU s; machine: steal {}%, other processes {}% of all cores",
        f(&j["client_cpu_s"]),
        f(&j["steal_pct"]),
        f(&j["others_cpu_pct"])
    );
    eprintln!(
        "  problems   {} errors, {} dropped, {} refused joins, {} failed connects, {} never ready",
        f(&j["errors"]),
        f(&j["dropped"]),
        f(&j["join_refused"]),
        f(&j["connect_errors"]),
        f(&j["unready"])
    );
    if let Some(errs) = j["first_errors"].as_array() {
        for e in errs {
            eprintln!("    {}", e.as_str().unwrap_or(""));
        }
    }
    eprintln!(
        "  result     {}",
        if j["ok"] == true { "ok" } else { "FAILED" }
    );
}

/// The protocol a target name speaks.
pub fn proto_of(target: &str) -> Proto {
    if target == "rtcroom" {
        Proto::Rtcroom
    } else {
        Proto::PeerJs
    }
}

//! `rtcroom-bench`: a load generator for the rtcroom signaling server, which can point the
//! same load at PeerJS server (or at a raw relay) for a side-by-side figure.
//!
//! It opens real WebSocket members in rooms, walks the real call flow (join, offer/answer
//! with SDPs of a few KB, trickled candidates, peerConnected, keepLive, reportStats, leave),
//! then loads the server in one of the scenarios below, and reports what the clients saw
//! (rates, relay latency from a timestamp inside each SDP, errors) and what the server
//! spent (CPU seconds and RSS from `/proc/PID`). A human summary goes to stderr, one JSON
//! line to stdout. Every run stops by itself: setup, warmup and window are bounded.
//!
//! Only loopback targets are accepted.

mod cluster;
mod conn;
mod procfs;
mod raw;
mod room;
mod run;
mod stats;
mod wire;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use room::{Load, Reply, RoomCfg};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "rtcroom-bench",
    version,
    about = "Load generator for rtcroom signaling (and PeerJS)"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// P pairs in closed loop: each relayed offer is answered at once by the next one.
    Relay {
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        /// What the receiver sends back: `offer` (every relayed message is an offer with its
        /// respOffer) or `answer` (offer/answer round trips).
        #[arg(long, value_enum, default_value_t = Reply::Offer)]
        reply: Reply,
        #[command(flatten)]
        window: Window,
        #[command(flatten)]
        common: Common,
    },
    /// P pairs, each offering R times per second (fixed rate, for latency).
    Rate {
        #[arg(long, default_value_t = 1000)]
        pairs: usize,
        /// Offers per second per pair.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// What the receiver sends back: `none` or `answer`.
        #[arg(long, value_enum, default_value_t = Reply::None)]
        reply: Reply,
        #[command(flatten)]
        window: Window,
        #[command(flatten)]
        common: Common,
    },
    /// N joined members sending keepLive every few seconds; none may drop.
    Idle {
        #[arg(long, default_value_t = 1000)]
        members: usize,
        #[arg(long, default_value_t = 3)]
        room_size: usize,
        /// How long to hold every member joined, in seconds (the measured window).
        #[arg(long, default_value_t = 30.0)]
        hold: f64,
        /// Members call each other first (offers and answers with SDPs, candidates,
        /// peerConnected), as the members of a real deployment have, then sit idle: the
        /// memory a member keeps after its call.
        #[arg(long)]
        call: bool,
        #[command(flatten)]
        common: Common,
    },
    /// J joins in rooms of k as fast as possible; none may be refused.
    JoinStorm {
        #[arg(long, default_value_t = 10_000)]
        joins: usize,
        #[arg(long, default_value_t = 3)]
        room_size: usize,
        #[command(flatten)]
        common: Common,
    },
    /// A few pairs for a few seconds through the whole call flow (for CI): fails on any
    /// error or when nothing was relayed.
    Smoke {
        #[arg(long, default_value_t = 4)]
        pairs: usize,
        #[arg(long, default_value_t = 3.0)]
        duration: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Serve the raw relay (the floor a relay on tokio + tungstenite can reach).
    RawRelay {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Answer every forwarded frame to its sender with a small frame the size of a
        /// `respOffer`, as a protocol that acknowledges each offer must.
        #[arg(long)]
        ack: bool,
    },
}

#[derive(Debug, Args)]
struct Window {
    /// Seconds of load before the window opens.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds of the measured window.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    Rtcroom,
    Peerjs,
    /// The bench's own raw relay (PeerJS wire format).
    Raw,
    /// The raw relay that also acknowledges each forwarded frame to its sender: the floor
    /// for a protocol that answers every offer (rtcroom's `respOffer`).
    RawAck,
}

#[derive(Debug, Args)]
struct Common {
    /// What the load is pointed at.
    #[arg(long, value_enum, default_value_t = Target::Rtcroom)]
    target: Target,
    /// The server's WebSocket URL (ws://127.0.0.1:PORT/ws for rtcroom,
    /// ws://127.0.0.1:PORT/peerjs for PeerJS). Not needed with --spawn.
    #[arg(long)]
    url: Option<String>,
    /// Start the server for this run: the rtcroom binary, or PeerJS's `peerjs.js` (or the
    /// directory where `peer` is installed). The raw target always starts itself.
    #[arg(long)]
    spawn: Option<PathBuf>,
    /// The server's pid, to read its CPU and RSS (set by --spawn).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Extra environment for a spawned rtcroom, as KEY=VALUE.
    #[arg(long = "server-env")]
    server_env: Vec<String>,
    /// Where a spawned rtcroom writes its log (default: discarded).
    #[arg(long)]
    server_log: Option<PathBuf>,
    /// New connections per second during setup (0: as fast as --concurrency allows).
    #[arg(long, default_value_t = 2000.0)]
    ramp: f64,
    /// Connection attempts (connect, handshake, join) in flight at most.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Loopback source addresses (127.0.0.2, .3, ...); 0: one per 20,000 connections.
    #[arg(long, default_value_t = 0)]
    sources: usize,
    /// Client runtime threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Smallest and largest SDP, in bytes.
    #[arg(long, default_value_t = 3000)]
    sdp_min: usize,
    #[arg(long, default_value_t = 6000)]
    sdp_max: usize,
    /// Candidates each side trickles per call.
    #[arg(long, default_value_t = 4)]
    candidates: usize,
    /// Seconds between keepLives (PeerJS: HEARTBEATs) of each member.
    #[arg(long, default_value_t = 5.0)]
    keepalive: f64,
    /// Seconds between reportStats of each connected member.
    #[arg(long, default_value_t = 15.0)]
    report_stats: f64,
    /// Seconds allowed for every member to connect, join and finish its call setup.
    #[arg(long, default_value_t = 120.0)]
    setup_timeout: f64,
    /// A free-text label copied into the JSON line.
    #[arg(long, default_value = "")]
    label: String,
    /// Only the JSON line (no summary on stderr).
    #[arg(long)]
    quiet: bool,
    /// With --spawn: start a two-node cluster (a private redis-server and two rtcroom nodes
    /// with `[cluster]`) and place each pair's members on node 1 (`same`) or one per node
    /// (`split`).
    #[arg(long, value_enum)]
    placement: Option<cluster::Placement>,
    /// The redis-server binary a cluster run starts.
    #[arg(long, default_value = "redis-server")]
    redis_server: String,
    /// Confine every server this run starts (rtcroom and its cluster's Redis, PeerJS, the
    /// raw relays) to these CPUs, a `taskset -c` list such as `1`. Pin the bench itself
    /// elsewhere with `taskset -c 0 rtcroom-bench ...` so that the load and the server under
    /// test do not take each other's CPU.
    #[arg(long)]
    server_cpus: Option<String>,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 86_400.0))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Scenario::RawRelay { listen, ack } = cli.scenario {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return rt.block_on(raw::serve(listen, ack));
    }
    let (plan, common) = plan(cli.scenario)?;
    let threads = if common.threads == 0 {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    } else {
        common.threads
    };
    let needed = plan.members as u64 + 64;
    let limit = procfs::open_files_limit().unwrap_or(u64::MAX);
    if limit < needed {
        bail!(
            "{} connections need {needed} open files but the limit is {limit}: run `ulimit -n {}` first",
            plan.members,
            needed.max(1024) * 2
        );
    }
    stats::epoch();
    if let Some(cpus) = &common.server_cpus {
        procfs::set_server_cpus(cpus)?;
    }
    let spawn = spawn_of(&common, plan.room_size)?;
    let mut plan = plan;
    let (spawned, cluster) = match (&spawn, common.placement) {
        (Some(s), Some(_)) => {
            let c = cluster::Cluster::start(s, &common.redis_server)?;
            plan.procs = c.procs();
            (None, Some(c))
        }
        (None, Some(_)) => bail!("--placement needs --spawn (the bench starts the cluster)"),
        (s, None) => (s.as_ref().map(procfs::start).transpose()?, None),
    };
    let url = match (
        spawned.as_ref().or(cluster.as_ref().map(|c| &c.nodes[0])),
        &common.url,
    ) {
        (Some(s), _) => {
            plan.server_pid = Some(s.pid());
            let path = if common.target == Target::Rtcroom {
                "/ws"
            } else {
                "/peerjs"
            };
            format!("ws://{}{path}", s.addr)
        }
        (None, Some(url)) => url.clone(),
        (None, None) => bail!("say where the server is: --url, or --spawn to start one"),
    };
    let sources = if common.sources == 0 {
        conn::Connector::sources_for(plan.members)
    } else {
        common.sources
    };
    let mut connector = conn::Connector::new(run::proto_of(plan.target), &url, sources)?;
    if let Some(c) = cluster
        .as_ref()
        .filter(|_| common.placement == Some(cluster::Placement::Split))
    {
        connector = connector.with_second(&format!("ws://{}/ws", c.nodes[1].addr))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    let outcome = rt.block_on(run::execute(plan, connector));
    rt.shutdown_timeout(Duration::from_secs(2));
    drop(spawned);
    drop(cluster);
    println!("{}", outcome.json);
    if !outcome.ok {
        std::process::exit(1);
    }
    Ok(())
}

/// What to start as the server under test, if `--spawn` (or a raw target) asks for one.
fn spawn_of(common: &Common, room_size: usize) -> anyhow::Result<Option<procfs::Spawn>> {
    Ok(match (common.target, &common.spawn) {
        (Target::Raw, _) => Some(procfs::Spawn::Raw { ack: false }),
        (Target::RawAck, _) => Some(procfs::Spawn::Raw { ack: true }),
        (Target::Rtcroom, Some(path)) => {
            // The rooms of the plan must fit (the default capacity is 3); --server-env wins.
            let mut env = vec![(
                "RTCROOM_ROOM_MAX_CAPACITY".to_owned(),
                room_size.max(3).to_string(),
            )];
            for kv in &common.server_env {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("--server-env {kv}: expected KEY=VALUE"))?;
                env.push((k.to_owned(), v.to_owned()));
            }
            Some(procfs::Spawn::Rtcroom {
                binary: path.clone(),
                env,
                log: common.server_log.clone(),
            })
        }
        (Target::Peerjs, Some(path)) => Some(procfs::Spawn::PeerJs {
            script: procfs::peerjs_script(path),
        }),
        (_, None) => None,
    })
}

fn room_cfg(common: &Common, call: bool, load: Load, leave: bool) -> RoomCfg {
    RoomCfg {
        call,
        candidates: common.candidates,
        keepalive: secs(common.keepalive.max(0.1)),
        report_stats: secs(common.report_stats.max(0.1)),
        load,
        leave_on_stop: leave,
        step_timeout: Duration::from_secs(15),
    }
}

/// The target's name in the report.
fn target_name(c: &Common) -> &'static str {
    match c.target {
        Target::Rtcroom => "rtcroom",
        Target::Peerjs => "peerjs",
        Target::Raw => "raw",
        Target::RawAck => "raw-ack",
    }
}

/// A plan with the settings every scenario shares taken from `c`; `window` is
/// (warmup, duration) in seconds.
fn base_plan(
    c: &Common,
    name: &'static str,
    kind: run::Kind,
    members: usize,
    room_size: usize,
    room: RoomCfg,
    (warmup, duration): (f64, f64),
) -> run::Plan {
    run::Plan {
        scenario: name,
        kind,
        target: target_name(c),
        label: c.label.clone(),
        members,
        room_size,
        room,
        ramp: c.ramp,
        concurrency: c.concurrency,
        setup_timeout: secs(c.setup_timeout),
        warmup: secs(warmup),
        duration: secs(duration),
        sdp: (c.sdp_min, c.sdp_max),
        server_pid: c.server_pid,
        quiet: c.quiet,
        placement: c.placement,
        procs: Vec::new(),
    }
}

/// The closed-loop relay scenario: each relayed offer is answered at once.
fn relay_plan(
    pairs: usize,
    reply: Reply,
    window: &Window,
    common: &Common,
) -> anyhow::Result<run::Plan> {
    if reply == Reply::None {
        bail!("a closed loop needs a reply: --reply offer or --reply answer");
    }
    let room = room_cfg(common, true, Load::Closed(reply), true);
    Ok(base_plan(
        common,
        "relay",
        run::Kind::Pairs,
        pairs * 2,
        2,
        room,
        (window.warmup, window.duration),
    ))
}

/// The fixed-rate scenario: `rate` offers per second per pair.
fn rate_plan(
    pairs: usize,
    rate: f64,
    reply: Reply,
    window: &Window,
    common: &Common,
) -> anyhow::Result<run::Plan> {
    if reply == Reply::Offer {
        bail!("at a fixed rate the receiver may only answer: --reply none or --reply answer");
    }
    if !(rate > 0.0 && rate <= 10_000.0) {
        bail!("--rate must be in (0, 10000] offers per second per pair");
    }
    let room = room_cfg(common, true, Load::Rate(rate, reply), true);
    Ok(base_plan(
        common,
        "rate",
        run::Kind::Pairs,
        pairs * 2,
        2,
        room,
        (window.warmup, window.duration),
    ))
}

/// The join storm: `joins` members join as fast as allowed.
fn storm_plan(joins: usize, room_size: usize, common: &Common) -> run::Plan {
    let room = room_cfg(common, false, Load::None, false);
    let mut p = base_plan(
        common,
        "join-storm",
        run::Kind::Storm,
        joins,
        room_size.max(1),
        room,
        (0.0, 0.0),
    );
    // The storm goes as fast as the in-flight limit allows unless a ramp was given.
    if (p.ramp - 2000.0).abs() < f64::EPSILON {
        p.ramp = 0.0;
    }
    p
}

fn plan(scenario: Scenario) -> anyhow::Result<(run::Plan, Common)> {
    let plan = match scenario {
        Scenario::Relay {
            pairs,
            reply,
            window,
            common,
        } => (relay_plan(pairs, reply, &window, &common)?, common),
        Scenario::Rate {
            pairs,
            rate,
            reply,
            window,
            common,
        } => (rate_plan(pairs, rate, reply, &window, &common)?, common),
        Scenario::Idle {
            members,
            room_size,
            hold,
            call,
            common,
        } => {
            let room = room_cfg(&common, call, Load::None, false);
            let p = base_plan(
                &common,
                if call { "idle-call" } else { "idle" },
                run::Kind::Idle,
                members,
                room_size.max(1),
                room,
                (0.0, hold),
            );
            (p, common)
        }
        Scenario::JoinStorm {
            joins,
            room_size,
            common,
        } => (storm_plan(joins, room_size, &common), common),
        Scenario::Smoke {
            pairs,
            duration,
            common,
        } => {
            let mut room = room_cfg(&common, true, Load::Closed(Reply::Answer), true);
            room.keepalive = secs(1.0);
            room.report_stats = secs(1.0);
            let p = base_plan(
                &common,
                "smoke",
                run::Kind::Pairs,
                pairs * 2,
                2,
                room,
                (0.5, duration),
            );
            (p, common)
        }
        Scenario::RawRelay { .. } => unreachable!("handled before planning"),
    };
    Ok(plan)
}

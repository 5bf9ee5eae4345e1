//! The load against a two-node rtcroom cluster: a private `redis-server` and two
//! `rtcroom serve` nodes with `[cluster]` on it, the members of each pair placed on one node
//! (`same`) or one per node (`split`), and the CPU of every process of the cluster per
//! relayed message.

use crate::procfs::{self, Spawn, Spawned};
use anyhow::{Context, bail};
use clap::ValueEnum;
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Where the members of a room connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Placement {
    /// Every member on node 1: the room and its members share a node.
    Same,
    /// Member 0 of each room on node 1 (which then owns the room), member 1 on node 2:
    /// every relayed message crosses the Redis bus.
    Split,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Self::Same => "same",
            Self::Split => "split",
        }
    }
}

/// The processes whose CPU a cluster run measures, at most this many.
pub const MAX_PROCS: usize = 3;

/// A private `redis-server` on a free loopback port, stopped (by its pid) when dropped.
#[derive(Debug)]
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    /// Start `binary` without persistence and wait (up to 10 s) until it accepts
    /// connections.
    pub fn start(binary: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = procfs::server_command(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {binary}"))?;
        let redis = Self { child, port };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() >= deadline {
                bail!("{binary} did not listen on port {port} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running cluster: its Redis and its two nodes (stopped when dropped, nodes first).
#[derive(Debug)]
pub struct Cluster {
    pub nodes: [Spawned; 2],
    pub redis: Redis,
}

impl Cluster {
    /// Start Redis, then two nodes of the rtcroom `spawn` with the `[cluster]` settings
    /// (call records off unless the spawn's environment names a database: SQLite is refused
    /// in a cluster).
    pub fn start(spawn: &Spawn, redis_binary: &str) -> anyhow::Result<Self> {
        let Spawn::Rtcroom { binary, env, log } = spawn else {
            bail!("--placement needs an rtcroom target started by --spawn");
        };
        let redis = Redis::start(redis_binary)?;
        let prefix = format!("rtcroom-bench-{}", std::process::id());
        let node = |n: usize| -> anyhow::Result<Spawned> {
            let mut node_env = vec![
                ("RTCROOM_DATABASE_URL".to_owned(), "off".to_owned()),
                (
                    "RTCROOM_CLUSTER_REDIS".to_owned(),
                    format!("redis://127.0.0.1:{}/0", redis.port),
                ),
                (
                    "RTCROOM_CLUSTER_NODE_ID".to_owned(),
                    format!("bench-node{n}"),
                ),
                ("RTCROOM_CLUSTER_KEY_PREFIX".to_owned(), prefix.clone()),
            ];
            node_env.extend(env.iter().cloned());
            let log = log.as_ref().map(|p| {
                let mut name = p.clone().into_os_string();
                name.push(format!(".node{n}"));
                name.into()
            });
            procfs::start(&Spawn::Rtcroom {
                binary: binary.clone(),
                env: node_env,
                log,
            })
            .with_context(|| format!("cluster node {n}"))
        };
        let first = node(1)?;
        let second = node(2)?;
        Ok(Self {
            nodes: [first, second],
            redis,
        })
    }

    /// The measured processes, by name.
    pub fn procs(&self) -> Vec<(&'static str, u32)> {
        vec![
            ("node1", self.nodes[0].pid()),
            ("node2", self.nodes[1].pid()),
            ("redis", self.redis.pid()),
        ]
    }
}

/// CPU seconds of each measured process now (`None` past the list or when unreadable).
pub fn cpu_now(procs: &[(&'static str, u32)]) -> [Option<f64>; MAX_PROCS] {
    let mut out = [None; MAX_PROCS];
    for (slot, (_, pid)) in out.iter_mut().zip(procs) {
        *slot = procfs::cpu_seconds(*pid);
    }
    out
}

/// CPU seconds all measured processes spent between two readings (`None` without a cluster
/// or when one reading is missing).
pub fn cpu_sum(
    procs: &[(&'static str, u32)],
    from: &[Option<f64>; MAX_PROCS],
    to: &[Option<f64>; MAX_PROCS],
) -> Option<f64> {
    if procs.is_empty() {
        return None;
    }
    (0..procs.len().min(MAX_PROCS)).try_fold(0.0, |sum, i| Some(sum + (to[i]? - from[i]?)))
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// The `cluster` object of the report: each process's CPU over the window, in seconds and
/// in µs per relayed message, and their sum; `null` when the run had no cluster.
#[allow(clippy::cast_precision_loss)]
pub fn report_json(
    placement: Option<Placement>,
    procs: &[(&'static str, u32)],
    from: &[Option<f64>; MAX_PROCS],
    to: &[Option<f64>; MAX_PROCS],
    relayed: u64,
) -> Value {
    let Some(placement) = placement else {
        return Value::Null;
    };
    let per = |c: f64| (relayed > 0).then(|| round(c * 1e6 / relayed as f64, 2));
    let mut each = serde_json::Map::new();
    let total = cpu_sum(procs, from, to);
    for (i, (name, pid)) in procs.iter().enumerate().take(MAX_PROCS) {
        let cpu = from[i].zip(to[i]).map(|(a, b)| b - a);
        each.insert(
            (*name).to_owned(),
            json!({"pid": pid, "cpu_s": cpu.map(|c| round(c, 3)), "us_per_relayed": cpu.and_then(per)}),
        );
    }
    json!({
        "placement": placement.name(),
        "processes": each,
        "cpu_s": total.map(|c| round(c, 3)),
        "us_per_relayed": total.and_then(per),
    })
}

/// The cluster line of the human summary.
pub fn human(j: &Value) {
    if j.is_null() {
        return;
    }
    let show = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let parts: Vec<String> = j["processes"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(name, p)| {
                    format!(
                        "{name} {} s ({} µs)",
                        show(&p["cpu_s"]),
                        show(&p["us_per_relayed"])
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    eprintln!(
        "  cluster    {} placement: {}; together {} CPU s, {} µs per relayed message",
        j["placement"].as_str().unwrap_or(""),
        parts.join(", "),
        show(&j["cpu_s"]),
        show(&j["us_per_relayed"])
    );
}

//! The server under test as a process: start it (rtcroom, PeerJS, or the bench's own raw
//! relay), and read its CPU time and memory from `/proc`.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// CPU seconds (user + system) of a process, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields count from after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// CPU seconds of the threads of process `pid` that write call records to SQLite: the record
/// writer's intake thread (`rtcroom-records`: the journal) and its database thread
/// (`rtcroom-rec-db`: batches, binding, SQLite itself), which together are the whole writer
/// but for `RecordSink::try_send` on the connections' threads; and sqlx's SQLite worker
/// threads (`sqlx-sqlite-worker-N`, shown as `sqlx-sqlite-wor`), which the writer uses only
/// for its migrations and restart recovery, and the admin reads. A server whose writer ran
/// its database task on the runtime's threads (before `rtcroom-rec-db`) is measured short of
/// that task. `None` when the process has no such thread (records off, or another database).
pub fn records_cpu_seconds(pid: u32) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut sum = None;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        if name != "rtcroom-records"
            && name != "rtcroom-rec-db"
            && !name.starts_with("sqlx-sqlite-wor")
        {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        if let (Some(u), Some(s)) = (ticks(11), ticks(12)) {
            *sum.get_or_insert(0.0) += (u + s) / clock_ticks();
        }
    }
    sum
}

/// `sysconf(_SC_CLK_TCK)`; 100 on every Linux this runs on, read from `getconf` once.
pub fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Resident memory of a process in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The machine-wide CPU counters of `/proc/stat`, in ticks.
#[derive(Debug, Clone, Copy)]
pub struct MachineTicks {
    pub steal: u64,
    /// Not idle and not waiting for IO (steal excluded).
    pub busy: u64,
    pub total: u64,
}

pub fn machine_ticks() -> Option<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    let total: u64 = v.iter().take(8).sum();
    let steal = *v.get(7)?;
    let idle = v.get(3)? + v.get(4)?;
    Some(MachineTicks {
        steal,
        busy: total - idle - steal,
        total,
    })
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The CPUs every server this run starts is confined to (`--server-cpus`), set once at start.
static SERVER_CPUS: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Confine every server started from now on (rtcroom, its cluster's Redis, PeerJS, the raw
/// relays) to `cpus`, a `taskset -c` list such as `1` or `2-3`.
pub fn set_server_cpus(cpus: &str) -> anyhow::Result<()> {
    let ok = Command::new("taskset")
        .args(["-c", cpus, "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("--server-cpus needs `taskset` (util-linux)")?
        .success();
    if !ok {
        bail!("--server-cpus {cpus}: not a CPU list this machine has (taskset -c {cpus} failed)");
    }
    SERVER_CPUS
        .set(cpus.to_owned())
        .map_err(|_| anyhow::anyhow!("--server-cpus set twice"))
}

/// A command for a server: `program` itself, or `taskset -c CPUS program` under
/// `--server-cpus` (taskset execs it, so the child's pid is the server's).
pub fn server_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    match SERVER_CPUS.get() {
        Some(cpus) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", cpus]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub enum Spawn {
    /// `rtcroom serve` with settings for a load test.
    Rtcroom {
        binary: PathBuf,
        env: Vec<(String, String)>,
        log: Option<PathBuf>,
    },
    /// `node peerjs.js --port P --host 127.0.0.1 --key peerjs -c 1000000`.
    PeerJs { script: PathBuf },
    /// This binary's `raw-relay` subcommand (with `--ack` when `ack`).
    Raw { ack: bool },
}

/// A server this run started; killed (by its pid) when dropped.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    pub addr: String,
    data_dir: Option<PathBuf>,
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Spawned {
    /// The started server once its address is known; when it is not (`addr` failed), the
    /// child is stopped and its data directory removed on the way out, by `Drop`.
    fn ready(
        child: Child,
        data_dir: Option<PathBuf>,
        addr: anyhow::Result<String>,
    ) -> anyhow::Result<Self> {
        let mut spawned = Self {
            child,
            addr: String::new(),
            data_dir,
        };
        spawned.addr = addr?;
        Ok(spawned)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Keep reading a child's output so it never blocks on a full pipe.
fn drain(out: impl Read + Send + 'static) {
    std::thread::spawn(move || {
        let mut out = out;
        let _ = std::io::copy(&mut out, &mut std::io::sink());
    });
}

/// Read lines from the child's stdout until `pick` finds the address in one (or 20 s pass).
fn wait_for_line(
    child: &mut Child,
    what: &str,
    pick: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<String> {
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
                Ok(_) => {
                    if tx.send(Some(line.clone())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Some(line)) => {
                if let Some(addr) = pick(line.trim()) {
                    // The reader thread keeps draining stdout after this.
                    std::thread::spawn(move || while rx.recv().is_ok() {});
                    return Ok(addr);
                }
            }
            Ok(None) => bail!("{what} exited before it listened"),
            Err(_) => bail!("{what} did not say where it listens within 20 s"),
        }
    }
}

pub fn start(spawn: &Spawn) -> anyhow::Result<Spawned> {
    match spawn {
        Spawn::Rtcroom { binary, env, log } => {
            let data_dir = std::env::temp_dir().join(format!(
                "rtcroom-bench-{}-{}",
                std::process::id(),
                crate::stats::now_us()
            ));
            std::fs::create_dir_all(&data_dir)?;
            let mut cmd = server_command(binary);
            cmd.arg("serve")
                .env("RTCROOM_SERVER_LISTEN", "127.0.0.1:0")
                .env("RTCROOM_SERVER_DATA_DIR", &data_dir)
                .env("RTCROOM_AUTH_REQUIRED", "false")
                .env("RTCROOM_LOG_LEVEL", "warn")
                // A load test sends far above a browser's rate: lift the per-connection limit.
                .env("RTCROOM_ROOM_RATE_PER_SEC", "1000000")
                .env("RTCROOM_ROOM_RATE_BURST", "1000000")
                .env("RTCROOM_SERVER_MAX_CONNECTIONS", "1000000")
                // Tens of thousands of members come from a few loopback addresses: the limits
                // per client address would count them as a handful of attackers.
                .env("RTCROOM_SERVER_MAX_CONNECTIONS_PER_IP", "0")
                .env("RTCROOM_ROOM_JOINS_PER_IP_PER_SEC", "0")
                // Signaling alone: every pair gets the static rtcConfig, so the embedded
                // TURN server's bandwidth budget (which refuses joins with result 8 beyond a
                // few thousand members) and its UDP port play no part.
                .env("RTCROOM_ICE_MODE", "static")
                .env("RTCROOM_TURN_ENABLED", "false")
                .stdout(Stdio::piped());
            for (k, v) in env {
                cmd.env(k, v);
            }
            match log {
                Some(path) => {
                    cmd.stderr(std::fs::File::create(path)?);
                }
                None => {
                    cmd.stderr(Stdio::piped());
                }
            }
            let mut child = cmd
                .spawn()
                .with_context(|| format!("cannot start {}", binary.display()))?;
            if let Some(err) = child.stderr.take() {
                drain(err);
            }
            let addr = wait_for_line(&mut child, "rtcroom", |l| {
                l.strip_prefix("listening on http://").map(str::to_owned)
            });
            Spawned::ready(child, Some(data_dir), addr)
        }
        Spawn::PeerJs { script } => {
            let port = free_port()?;
            let mut child = server_command("node")
                .arg(script)
                .args(["--port", &port.to_string(), "--host", "127.0.0.1"])
                .args(["--key", "peerjs", "-c", "1000000"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot start node {}", script.display()))?;
            if let Some(err) = child.stderr.take() {
                drain(err);
            }
            let addr = wait_for_line(&mut child, "PeerJS", |l| {
                l.starts_with("Started PeerServer")
                    .then(|| format!("127.0.0.1:{port}"))
            });
            Spawned::ready(child, None, addr)
        }
        Spawn::Raw { ack } => {
            let exe = std::env::current_exe()?;
            let mut child = server_command(exe)
                .args(["raw-relay", "--listen", "127.0.0.1:0"])
                .args(ack.then_some("--ack"))
                .stdout(Stdio::piped())
                .spawn()?;
            let addr = wait_for_line(&mut child, "raw relay", |l| {
                l.strip_prefix("listening on http://").map(str::to_owned)
            });
            Spawned::ready(child, None, addr)
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago (PeerJS cannot listen on port 0).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The script of an installed `peer` package, given its directory or the script itself.
pub fn peerjs_script(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("node_modules/peer/dist/bin/peerjs.js")
    } else {
        path.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--server-cpus` confines what the bench starts, and says so when the list is not this
    /// machine's. (The only test that sets the process-wide list.)
    #[test]
    fn server_cpus_confine_the_servers_the_bench_starts() {
        let bad = set_server_cpus("4096").unwrap_err().to_string();
        assert!(bad.contains("not a CPU list"), "{bad}");
        set_server_cpus("0").unwrap();
        let mut child = server_command("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        // taskset sets the mask and then execs, so wait for the exec before reading it.
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            if status.lines().next().is_some_and(|l| l.ends_with("sleep")) {
                break status;
            }
            assert!(Instant::now() < deadline, "sleep never started");
            std::thread::sleep(Duration::from_millis(10));
        };
        let _ = child.kill();
        let _ = child.wait();
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(str::trim);
        assert_eq!(allowed, Some("0"));
    }
}

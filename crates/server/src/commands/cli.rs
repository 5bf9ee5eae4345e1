//! The command line: every command, its options and its help text.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "rtcroom",
    version,
    about = "A self-hosted WebRTC calling platform in one binary"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the room server (signaling, web page, APIs).
    Serve {
        /// A TOML configuration file (or RTCROOM_CONFIG); every key can also be set as
        /// RTCROOM_<SECTION>_<KEY>. Relative paths in it are relative to its folder.
        #[arg(long, short, env = "RTCROOM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run every check `serve` runs, then print the effective configuration (file +
    /// environment + defaults) as TOML, secrets shown as ***.
    CheckConfig {
        #[arg(long, short, env = "RTCROOM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// The apps allowed to use this server.
    Apps {
        #[command(subcommand)]
        action: AppsAction,
        #[arg(long, short, global = true, env = "RTCROOM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Watch services (HTTP health, TCP ports, processes), restart what died, mail alerts.
    Monitor {
        #[arg(long, short, env = "RTCROOM_CONFIG")]
        config: Option<PathBuf>,
        /// Stop after this many rounds of probes (default: run until interrupted).
        #[arg(long)]
        rounds: Option<u64>,
    },
    /// Run beside a TURN server (coturn): register it with the room server and report the
    /// NIC's load every few seconds, so that calls go to the least-loaded server.
    IceAgent {
        /// The room server, http://host:port.
        #[arg(long)]
        room_server: String,
        /// The public IP of this ICE server (what clients connect to).
        #[arg(long)]
        ip: String,
        /// The network interface whose rates are reported (as in /proc/net/dev).
        #[arg(long, default_value = "eth0")]
        iface: String,
        /// The bandwidth this server may use, kbit/s (each new pair reserves 400 until the
        /// next report: size it to the NIC).
        #[arg(long, default_value_t = 1_000_000)]
        max_bandwidth: u64,
        /// The TURN/STUN port of the server.
        #[arg(long, default_value_t = 3478)]
        turn_port: u16,
        /// The port of its TURN over TCP (`turn:IP:PORT?transport=tcp`). Default: --turn-port,
        /// where coturn serves TCP unless run with --no-tcp; 0: no TCP (coturn's --no-tcp).
        #[arg(long)]
        turn_tcp_port: Option<u16>,
        /// The port of its TURN over TLS (`turns:`, coturn's --tls-listening-port, served when
        /// coturn has --cert and --pkey and no --no-tls). Default: no TLS.
        #[arg(long)]
        turns_port: Option<u16>,
        /// The host name in the `turns:` URL, which coturn's certificate must name. Default:
        /// --ip.
        #[arg(long, requires = "turns_port")]
        turns_host: Option<String>,
        /// The room server's [ice] register_secret (needed unless on the same host).
        #[arg(long, env = "RTCROOM_ICE_AGENT_SECRET")]
        secret: Option<String>,
        /// Seconds between reports.
        #[arg(long, default_value_t = 5)]
        interval: u64,
        /// Where to answer /healthz and /readyz.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Create or update the call-record tables ([database] url), then exit.
    Migrate {
        #[arg(long, short, env = "RTCROOM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Read call records: a member's history, one session, a day's calls (JSON).
    Records {
        #[command(subcommand)]
        query: RecordsQuery,
        #[arg(long, short, global = true, env = "RTCROOM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// The daily call report of a day: printed as text, written as HTML or JSON, or mailed.
    Report {
        /// The day, YYYY-MM-DD (in [report] timezone). Default: yesterday.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// Write the full report (every call) to this file: standalone HTML, or JSON with --json.
        #[arg(long)]
        out: Option<PathBuf>,
        /// JSON instead of HTML (to --out, or to standard output).
        #[arg(long)]
        json: bool,
        /// Mail it to [report] recipients through [smtp].
        #[arg(long)]
        send: bool,
        #[arg(long, short, env = "RTCROOM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Mint a join token for an app, as an app backend would (for testing and scripts).
    Token {
        /// The app id.
        #[arg(long)]
        app: String,
        /// Bind the token to this uid.
        #[arg(long)]
        uid: Option<String>,
        #[arg(long, short, env = "RTCROOM_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RecordsQuery {
    /// A member's sessions, newest first, with their sub-sessions and quality summary.
    Member {
        #[arg(long)]
        app: String,
        #[arg(long)]
        uid: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One session by id.
    Session { id: String },
    /// A day's sub-sessions (UTC), with their sessions and quality summary.
    Day {
        /// YYYY-MM-DD
        date: chrono::NaiveDate,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppsAction {
    /// List the apps, their key ids and domains (never the secrets).
    List,
}

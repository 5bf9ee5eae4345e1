//! The sections of the room server itself: `[server]`, `[room]`, `[auth]`, `[rtc]`,
//! `[billing]`, `[admin]`, `[log]`, `[geoip]`.

use rtcroom_core::Prices;
use rtcroom_protocol::RtcConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address of the HTTP and WebSocket listener.
    pub listen: SocketAddr,
    /// Largest accepted signaling frame, in bytes.
    pub max_frame_bytes: usize,
    /// Messages queued for one connection before it is cut off as too slow.
    pub outbound_queue: usize,
    /// Open signaling connections at most; more are refused with HTTP 503.
    pub max_connections: usize,
    /// Open TCP connections from one peer address at most (every kind: page, API,
    /// WebSocket); more are answered 503 and closed at once. Connections from
    /// `trusted_proxies` are not counted. 0: no limit.
    pub max_connections_per_ip: usize,
    /// A connection that has not joined a room this long after it opened (or after it
    /// left one) is closed, keepLive or not.
    pub join_timeout_secs: u64,
    /// One write to a client may take this long; a client that does not read for longer is
    /// disconnected (it keeps its place for the heartbeat timeout, as after any drop).
    pub write_timeout_secs: u64,
    /// An HTTP request's header must be complete this long after the connection opened
    /// or after the previous response (slowloris); otherwise the connection is closed.
    pub header_read_timeout_secs: u64,
    /// Where runtime data (SQLite database, generated secrets, spool) is kept.
    pub data_dir: PathBuf,
    /// The signaling URL handed out at login (e.g. `wss://rtc.example.com/ws`); empty: derived
    /// from the request's Host (and X-Forwarded-Proto/Host from a trusted proxy).
    pub public_url: String,
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For` / `Forwarded`,
    /// `X-Forwarded-Host` and `X-Forwarded-Proto` are believed; from any other peer they are
    /// ignored. Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// How long a SIGTERM may take: closing connections, writing the rooms snapshot and the
    /// queued records. The process exits when it is over, done or not.
    pub shutdown_secs: u64,
    /// TLS on the listener: a PEM file with the certificate chain (the server's certificate
    /// first) and a PEM file with its private key. Both empty: plain HTTP (behind a
    /// TLS-terminating proxy, or on localhost). Read again when they change.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Threads of the async runtime that serve connections, rooms and the APIs. 0: one per
    /// CPU core. Fewer leave cores to other processes on the machine (Redis, a database,
    /// another node).
    pub worker_threads: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_frame_bytes: rtcroom_protocol::DEFAULT_MAX_FRAME,
            outbound_queue: 256,
            max_connections: 100_000,
            max_connections_per_ip: 100,
            join_timeout_secs: 10,
            write_timeout_secs: 10,
            header_read_timeout_secs: 10,
            data_dir: PathBuf::from("data"),
            public_url: String::new(),
            trusted_proxies: Vec::new(),
            shutdown_secs: 10,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            worker_threads: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomSection {
    pub max_capacity: usize,
    pub heartbeat_timeout_secs: u64,
    pub report_stats_interval_secs: u64,
    /// Messages per second one connection may send on average, and the burst above it.
    pub rate_per_sec: u32,
    pub rate_burst: u32,
    /// Joins per second one client address may make on average, and the burst above it
    /// (0: no limit); beyond, a join is refused with result 14. Resumes do not count.
    pub joins_per_ip_per_sec: u32,
    pub joins_per_ip_burst: u32,
}

impl Default for RoomSection {
    fn default() -> Self {
        Self {
            max_capacity: 3,
            heartbeat_timeout_secs: 40,
            report_stats_interval_secs: 15,
            rate_per_sec: 50,
            rate_burst: 200,
            joins_per_ip_per_sec: 20,
            joins_per_ip_burst: 100,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Whether `join` needs a valid token. With `false`, any token is accepted (the
    /// original clients send a fixed one).
    pub required: bool,
    /// How long before a token expires the member is asked to renew it.
    pub token_prompt_secs: u64,
    /// Lifetime of the tokens this server mints at login.
    pub token_ttl_secs: u64,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            required: true,
            token_prompt_secs: 60,
            token_ttl_secs: 3600,
        }
    }
}

/// The `rtcConfig` handed to every pair.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtcSection {
    pub ice_servers: Vec<IceServerEntry>,
    pub ice_transport_policy: String,
    pub bundle_policy: String,
    pub rtcp_mux_policy: String,
}

impl Default for RtcSection {
    fn default() -> Self {
        let base = RtcConfig::with_servers(Vec::new());
        Self {
            ice_servers: Vec::new(),
            ice_transport_policy: base.ice_transport_policy,
            bundle_policy: base.bundle_policy,
            rtcp_mux_policy: base.rtcp_mux_policy,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IceServerEntry {
    pub urls: Vec<String>,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub credential: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingSection {
    /// Cents per started minute of a relayed (TURN) pair.
    pub turn_cents_per_minute: u64,
    /// Cents per started minute of a P2P (STUN) pair.
    pub stun_cents_per_minute: u64,
    /// Cents per started minute of a pair whose type the client did not know.
    pub unknown_cents_per_minute: u64,
}

impl Default for BillingSection {
    fn default() -> Self {
        let p = Prices::default();
        Self {
            turn_cents_per_minute: p.turn,
            stun_cents_per_minute: p.stun,
            unknown_cents_per_minute: p.unknown,
        }
    }
}

/// The operator API (`/api/rooms`, `/api/records`, ...).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// The bearer token of the operator API; empty disables the API.
    pub token: String,
}

/// `[geoip]`: where addresses are (docs/operations.md, "GeoIP").
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeoipSection {
    /// A MaxMind DB file (GeoLite2-City, or a DB-IP lite city or country file), read again
    /// when it changes. Empty: nothing is looked up (no countries in the report, no distance
    /// in ICE selection).
    pub database: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `human` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `rtcroom=debug,info`.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            format: "human".into(),
            level: "info".into(),
        }
    }
}

//! Logs and metrics. The engine's events become log lines here, with the call's ids as
//! fields (the document's levels: warn for a misbehaving client, info for the call flow),
//! and every counter of the process lives in one Prometheus registry served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rtcroom_core::{EngineStats, Event};
use rtcroom_protocol::ServerMsg;
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CmdLabel {
    pub cmd: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabel {
    pub cmd: &'static str,
    pub result: u8,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabel {
    pub cause: &'static str,
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    pub connections_opened: Counter,
    pub connections_closed: Counter,
    pub frames_in: Family<CmdLabel, Counter>,
    pub bytes_in: Counter,
    pub messages_out: Family<CmdLabel, Counter>,
    pub refusals: Family<RefusalLabel, Counter>,
    pub slow_clients: Counter,
    pub joins: Counter,
    pub rejoins: Counter,
    pub leaves: Family<CauseLabel, Counter>,
    pub client_reports: Counter,
    /// From a frame's arrival on its socket to its effects being queued for delivery.
    pub signaling_latency: Histogram,
    pub connections: Gauge,
    pub rooms: Gauge,
    pub members: Gauge,
    pub records_emitted: Counter,
}

fn build() -> (Metrics, Registry) {
    let m = Metrics {
        connections_opened: Counter::default(),
        connections_closed: Counter::default(),
        frames_in: Family::default(),
        bytes_in: Counter::default(),
        messages_out: Family::default(),
        refusals: Family::default(),
        slow_clients: Counter::default(),
        joins: Counter::default(),
        rejoins: Counter::default(),
        leaves: Family::default(),
        client_reports: Counter::default(),
        // 20 µs … ~1.3 s in factors of two.
        signaling_latency: Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.000_02, 2.0, 17),
        ),
        connections: Gauge::default(),
        rooms: Gauge::default(),
        members: Gauge::default(),
        records_emitted: Counter::default(),
    };
    let mut r = Registry::with_prefix("rtcroom");
    r.register(
        "connections_opened",
        "Signaling connections opened",
        m.connections_opened.clone(),
    );
    r.register(
        "connections_closed",
        "Signaling connections closed",
        m.connections_closed.clone(),
    );
    r.register(
        "frames_in",
        "Frames received, by command (invalid: could not be decoded)",
        m.frames_in.clone(),
    );
    r.register("bytes_in", "Bytes of frames received", m.bytes_in.clone());
    r.register(
        "messages_out",
        "Messages queued for clients, by command",
        m.messages_out.clone(),
    );
    r.register(
        "refusals",
        "Requests answered with a non-zero result, by command and result",
        m.refusals.clone(),
    );
    r.register(
        "slow_clients",
        "Connections cut off because they did not read",
        m.slow_clients.clone(),
    );
    r.register("joins", "Successful joins (new members)", m.joins.clone());
    r.register(
        "rejoins",
        "Joins of a uid already in its room (reconnects)",
        m.rejoins.clone(),
    );
    r.register(
        "leaves",
        "Members that left a room, by cause",
        m.leaves.clone(),
    );
    r.register(
        "client_reports",
        "reportInfo messages with a non-zero result",
        m.client_reports.clone(),
    );
    r.register(
        "signaling_latency_seconds",
        "From a frame's arrival to its answers and relays being queued",
        m.signaling_latency.clone(),
    );
    r.register(
        "open_connections",
        "Open signaling connections",
        m.connections.clone(),
    );
    r.register("rooms", "Rooms with at least one member", m.rooms.clone());
    r.register(
        "members",
        "Members in rooms (including those waiting to reconnect)",
        m.members.clone(),
    );
    r.register(
        "records_emitted",
        "Call records produced by the engine",
        m.records_emitted.clone(),
    );
    (m, r)
}

static METRICS: OnceLock<(Metrics, Registry)> = OnceLock::new();

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS.get_or_init(build).0
}

/// The Prometheus text exposition of every metric, with the engine's gauges set from `stats`.
pub fn render(stats: EngineStats) -> String {
    let (m, registry) = METRICS.get_or_init(build);
    m.connections.set(stats.connections as i64);
    m.rooms.set(stats.rooms as i64);
    m.members.set(stats.members as i64);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}

pub fn sent(msg: &ServerMsg) {
    metrics()
        .messages_out
        .get_or_create(&CmdLabel { cmd: msg.name() })
        .inc();
}

pub fn received(cmd: &'static str, bytes: usize) {
    let m = metrics();
    m.frames_in.get_or_create(&CmdLabel { cmd }).inc();
    m.bytes_in.inc_by(bytes as u64);
}

pub fn handled_in(elapsed: Duration) {
    metrics().signaling_latency.observe(elapsed.as_secs_f64());
}

/// Log one engine event and count it.
pub fn event(e: &Event) {
    let m = metrics();
    match e {
        Event::Joined {
            app_id,
            room_id,
            uid,
            session_id,
            rejoin,
        } => {
            if *rejoin {
                m.rejoins.inc()
            } else {
                m.joins.inc()
            };
            tracing::info!(app = %app_id, room = %room_id, uid = %uid, session = %session_id, rejoin, "joined");
        }
        Event::Left {
            app_id,
            room_id,
            uid,
            session_id,
            cause,
        } => {
            m.leaves
                .get_or_create(&CauseLabel {
                    cause: cause.as_str(),
                })
                .inc();
            tracing::info!(app = %app_id, room = %room_id, uid = %uid, session = %session_id, cause = cause.as_str(), "left");
        }
        Event::Detached {
            app_id,
            room_id,
            uid,
            session_id,
        } => {
            tracing::info!(app = %app_id, room = %room_id, uid = %uid, session = %session_id, "connection dropped; waiting for a reconnect");
        }
        Event::ClientReport {
            app_id,
            room_id,
            uid,
            session_id,
            result,
            desc,
        } => {
            m.client_reports.inc();
            tracing::warn!(app = %app_id, room = %room_id, uid = %uid, session = %session_id, result, desc = %desc, "client reported a problem");
        }
        Event::Refused {
            conn,
            cmd,
            result,
            desc,
        } => {
            m.refusals
                .get_or_create(&RefusalLabel {
                    cmd,
                    result: *result,
                })
                .inc();
            tracing::warn!(conn = conn.0, cmd, result, desc = %desc, "request refused");
        }
    }
}

/// Install the log subscriber: human-readable by default, JSON lines with `json`.
pub fn init(format: &str, level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

//! Every counter of the process, in Prometheus registries served at `/metrics`: the
//! process's own, the record writer's gauges (only while records are on), and the gauges set
//! at scrape time from the ICE registry, the embedded TURN server and the report schedule.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Metric;
use prometheus_client::registry::Registry;
use rtcroom_core::EngineStats;
use rtcroom_protocol::ServerMsg;
use std::sync::OnceLock;
use std::time::Duration;

pub use super::cluster_metrics::cluster;

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
    /// Connections closed because a write to the client took longer than
    /// `[server] write_timeout_secs`.
    pub write_timeouts: Counter,
    /// TCP connections refused at once: their address had `[server] max_connections_per_ip`.
    pub connections_refused_per_ip: Counter,
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
    /// Log lines the log queue could not take (`ops::log`).
    pub log_lines_dropped: Counter,
    /// Threads of the async runtime (`[server] worker_threads`, or one per CPU core).
    pub runtime_workers: Gauge,
}

fn build() -> (Metrics, Registry) {
    let m = new_metrics();
    let mut r = Registry::with_prefix("rtcroom");
    register_traffic(&m, &mut r);
    register_rooms(&m, &mut r);
    (m, r)
}

fn new_metrics() -> Metrics {
    Metrics {
        connections_opened: Counter::default(),
        connections_closed: Counter::default(),
        frames_in: Family::default(),
        bytes_in: Counter::default(),
        messages_out: Family::default(),
        refusals: Family::default(),
        slow_clients: Counter::default(),
        write_timeouts: Counter::default(),
        connections_refused_per_ip: Counter::default(),
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
        log_lines_dropped: Counter::default(),
        runtime_workers: Gauge::default(),
    }
}

/// Connections, frames, messages and latency.
fn register_traffic(m: &Metrics, r: &mut Registry) {
    reg(
        r,
        "connections_opened",
        "Signaling connections opened",
        &m.connections_opened,
    );
    reg(
        r,
        "connections_closed",
        "Signaling connections closed",
        &m.connections_closed,
    );
    reg(
        r,
        "frames_in",
        "Frames received, by command (invalid: could not be decoded)",
        &m.frames_in,
    );
    reg(r, "bytes_in", "Bytes of frames received", &m.bytes_in);
    reg(
        r,
        "messages_out",
        "Messages queued for clients, by command",
        &m.messages_out,
    );
    reg(
        r,
        "refusals",
        "Requests answered with a non-zero result, by command and result",
        &m.refusals,
    );
    reg(
        r,
        "slow_clients",
        "Connections cut off because they did not read",
        &m.slow_clients,
    );
    reg(
        r,
        "write_timeouts",
        "Connections closed because a write to the client took longer than [server] write_timeout_secs",
        &m.write_timeouts,
    );
    reg(
        r,
        "connections_refused_per_ip",
        "TCP connections refused because their address had [server] max_connections_per_ip open",
        &m.connections_refused_per_ip,
    );
}

/// Rooms, members, records and the process's own log queue.
fn register_rooms(m: &Metrics, r: &mut Registry) {
    reg(r, "joins", "Successful joins (new members)", &m.joins);
    reg(
        r,
        "rejoins",
        "Joins of a uid already in its room (reconnects)",
        &m.rejoins,
    );
    reg(r, "leaves", "Members that left a room, by cause", &m.leaves);
    reg(
        r,
        "client_reports",
        "reportInfo messages with a non-zero result",
        &m.client_reports,
    );
    reg(
        r,
        "signaling_latency_seconds",
        "From a frame's arrival to its answers and relays being queued",
        &m.signaling_latency,
    );
    reg(
        r,
        "open_connections",
        "Open signaling connections (sockets this node holds)",
        &m.connections,
    );
    reg(r, "rooms", "Rooms with at least one member", &m.rooms);
    reg(
        r,
        "members",
        "Members in rooms (including those waiting to reconnect)",
        &m.members,
    );
    reg(
        r,
        "records_emitted",
        "Call records produced by the engine",
        &m.records_emitted,
    );
    reg(
        r,
        "log_lines_dropped",
        "Log lines dropped because the log queue was full (stderr was not read fast enough)",
        &m.log_lines_dropped,
    );
    reg(
        r,
        "runtime_workers",
        "Threads of the async runtime ([server] worker_threads, or one per CPU core)",
        &m.runtime_workers,
    );
}

/// Register one metric under `name` (the registry adds the `rtcroom_` prefix).
fn reg<M: Metric + Clone>(r: &mut Registry, name: &str, help: &str, metric: &M) {
    r.register(name, help, metric.clone());
}

static METRICS: OnceLock<(Metrics, Registry)> = OnceLock::new();

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS.get_or_init(build).0
}

/// The Prometheus text exposition of every metric, with the engine's gauges set from `stats`
/// and the record writer's from `records`. Without a writer (records off) the writer's series
/// are left out, so that `database_up` never reads 0 for a database that is off on purpose.
pub fn render(stats: EngineStats, records: Option<rtcroom_store::WriterStats>) -> String {
    let (m, registry) = METRICS.get_or_init(build);
    // The sockets this node holds (in a cluster, the engine also counts sockets other nodes
    // hold for the rooms it owns, and not its own sockets bound to rooms owned elsewhere).
    let open = m
        .connections_opened
        .get()
        .saturating_sub(m.connections_closed.get());
    m.connections.set(i64::try_from(open).unwrap_or(i64::MAX));
    m.rooms.set(stats.rooms as i64);
    m.members.set(stats.members as i64);
    let mut out = String::new();
    prometheus_client::encoding::text::encode_registry(&mut out, registry)
        .expect("writing to a String cannot fail");
    if let Some(s) = records {
        let (w, writer_registry) = writer_gauges();
        w.set(s);
        prometheus_client::encoding::text::encode_registry(&mut out, writer_registry)
            .expect("writing to a String cannot fail");
    }
    prometheus_client::encoding::text::encode_registry(&mut out, observed_registry())
        .expect("writing to a String cannot fail");
    super::cluster_metrics::encode(&mut out);
    prometheus_client::encoding::text::encode_eof(&mut out)
        .expect("writing to a String cannot fail");
    out
}

/// A thread's handles on one family's counters, by the address and length of their
/// `'static` label: `Family::get_or_create` hashes the label (SipHash) and takes the
/// family's lock, which three times per relayed offer was about 1.4 % of its instructions.
/// A handle is the family's own counter (a clone shares it); a name written at two
/// addresses is two entries for one counter.
type Handles = std::cell::RefCell<Vec<((usize, usize), Counter)>>;

thread_local! {
    static FRAMES_IN: Handles = const { std::cell::RefCell::new(Vec::new()) };
    static MESSAGES_OUT: Handles = const { std::cell::RefCell::new(Vec::new()) };
}

fn count(
    handles: &'static std::thread::LocalKey<Handles>,
    family: &Family<CmdLabel, Counter>,
    cmd: &'static str,
) {
    let key = (cmd.as_ptr() as usize, cmd.len());
    handles.with_borrow_mut(|h| match h.iter().find(|(k, _)| *k == key) {
        Some((_, counter)) => {
            counter.inc();
        }
        None => {
            let counter = family.get_or_create(&CmdLabel { cmd }).clone();
            counter.inc();
            h.push((key, counter));
        }
    });
}

pub fn sent(msg: &ServerMsg) {
    count(&MESSAGES_OUT, &metrics().messages_out, msg.name());
}

pub fn received(cmd: &'static str, bytes: usize) {
    let m = metrics();
    count(&FRAMES_IN, &m.frames_in, cmd);
    m.bytes_in.inc_by(bytes as u64);
}

pub fn handled_in(elapsed: Duration) {
    metrics().signaling_latency.observe(elapsed.as_secs_f64());
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IceLabel {
    pub ip: String,
    /// The TURN port: servers sharing an address are told apart by it.
    pub port: String,
}

/// The record writer's gauges, set at scrape time from its counters; in a registry of their
/// own, exported only while records are on.
#[derive(Debug, Default)]
struct WriterGauges {
    record_queue_depth: Gauge,
    records_spooled: Gauge,
    records_written: Gauge,
    record_write_errors: Gauge,
    records_dropped: Gauge,
    records_channel_high_water: Gauge,
    database_up: Gauge,
}

impl WriterGauges {
    fn set(&self, s: rtcroom_store::WriterStats) {
        let set = |g: &Gauge, v: u64| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        set(&self.record_queue_depth, s.queue_depth);
        set(&self.records_spooled, s.spooled);
        set(&self.records_written, s.written);
        set(&self.record_write_errors, s.write_errors);
        set(&self.records_dropped, s.dropped);
        set(&self.records_channel_high_water, s.channel_high_water);
        self.database_up.set(i64::from(s.db_up));
    }
}

fn writer_gauges() -> &'static (WriterGauges, Registry) {
    static W: OnceLock<(WriterGauges, Registry)> = OnceLock::new();
    W.get_or_init(|| {
        let w = WriterGauges::default();
        let mut r = Registry::with_prefix("rtcroom");
        reg(
            &mut r,
            "record_queue_depth",
            "Call records accepted and not yet in the database",
            &w.record_queue_depth,
        );
        reg(
            &mut r,
            "records_spooled",
            "Call records in the spool file (the database was away)",
            &w.records_spooled,
        );
        reg(
            &mut r,
            "records_written",
            "Call records written to the database since start",
            &w.records_written,
        );
        reg(
            &mut r,
            "record_write_errors",
            "Failed record write attempts since start",
            &w.record_write_errors,
        );
        reg(
            &mut r,
            "records_dropped",
            "Call records sent after the writer stopped (never while it runs)",
            &w.records_dropped,
        );
        reg(
            &mut r,
            "records_channel_high_water",
            "The most call records waiting for the writer's intake at once since start",
            &w.records_channel_high_water,
        );
        reg(
            &mut r,
            "database_up",
            "1 when the last record write or check reached the database",
            &w.database_up,
        );
        (w, r)
    })
}

/// ICE, TURN and report gauges, set at scrape time from their owners' counters.
#[derive(Debug, Default)]
pub struct Observed {
    pub ice_headroom_kbps: Family<IceLabel, Gauge>,
    pub ice_tx_kbps: Family<IceLabel, Gauge>,
    pub ice_in_rotation: Family<IceLabel, Gauge>,
    pub turn_allocations: Gauge,
    pub turn_allocations_total: Gauge,
    pub turn_allocations_refused: Gauge,
    pub turn_auth_refused: Gauge,
    pub turn_relayed_bytes: Gauge,
    pub turn_relayed_packets: Gauge,
    pub turn_peer_denied_packets: Gauge,
    pub turn_permissions_refused: Gauge,
    pub turn_allocations_refused_user_quota: Gauge,
    pub turn_bandwidth_dropped_packets: Gauge,
    pub turn_bandwidth_dropped_bytes: Gauge,
    pub turn_stream_connections_total: Gauge,
    pub turn_stream_connections_refused: Gauge,
    pub turn_stream_dropped_packets: Gauge,
    pub turn_credentials_too_long: Gauge,
    pub report_runs: Counter,
    pub report_failures: Counter,
}

/// Set the embedded TURN server's gauges from its counters.
pub fn observe_turn(c: Option<rtcroom_turn::CounterSnapshot>) {
    let Some(c) = c else { return };
    let o = observed();
    let set = |g: &Gauge, v: u64| {
        g.set(i64::try_from(v).unwrap_or(i64::MAX));
    };
    set(&o.turn_allocations, c.allocations_active);
    set(&o.turn_allocations_total, c.allocations_total);
    set(&o.turn_allocations_refused, c.allocations_refused);
    set(&o.turn_auth_refused, c.auth_refused);
    set(
        &o.turn_relayed_bytes,
        c.peer_tx_bytes.saturating_add(c.peer_rx_bytes),
    );
    set(
        &o.turn_relayed_packets,
        c.peer_tx_packets.saturating_add(c.peer_rx_packets),
    );
    set(&o.turn_peer_denied_packets, c.peer_denied_packets);
    set(&o.turn_permissions_refused, c.permissions_refused);
    set(
        &o.turn_allocations_refused_user_quota,
        c.allocations_refused_user_quota,
    );
    set(
        &o.turn_bandwidth_dropped_packets,
        c.bandwidth_dropped_packets,
    );
    set(&o.turn_bandwidth_dropped_bytes, c.bandwidth_dropped_bytes);
    set(&o.turn_stream_connections_total, c.stream_connections_total);
    set(
        &o.turn_stream_connections_refused,
        c.stream_connections_refused,
    );
    set(&o.turn_stream_dropped_packets, c.stream_dropped_packets);
    set(&o.turn_credentials_too_long, c.credentials_too_long);
}

/// A daily report run ended (`ok`: sent).
pub fn report_run(ok: bool) {
    let o = observed();
    o.report_runs.inc();
    if !ok {
        o.report_failures.inc();
    }
}

fn observed() -> &'static Observed {
    static O: OnceLock<Observed> = OnceLock::new();
    O.get_or_init(Observed::default)
}

/// Set the ICE servers' gauges.
pub fn observe_ice(servers: &[rtcroom_ice::ServerStatus]) {
    let o = observed();
    o.ice_headroom_kbps.clear();
    o.ice_tx_kbps.clear();
    o.ice_in_rotation.clear();
    for s in servers {
        let l = IceLabel {
            ip: s.ip.clone(),
            port: s.turn_port.to_string(),
        };
        o.ice_headroom_kbps
            .get_or_create(&l)
            .set(i64::try_from(s.headroom_kbps).unwrap_or(i64::MAX));
        o.ice_tx_kbps
            .get_or_create(&l)
            .set(i64::try_from(s.tx_kbps).unwrap_or(i64::MAX));
        o.ice_in_rotation
            .get_or_create(&l)
            .set(i64::from(s.healthy));
    }
}

fn observed_registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| {
        let o = observed();
        let mut r = Registry::with_prefix("rtcroom");
        let families: [(&str, &str, &Family<IceLabel, Gauge>); 3] = [
            ("ice_headroom_kbps", "Bandwidth left on each registered ICE server", &o.ice_headroom_kbps),
            ("ice_tx_kbps", "Reported send rate of each registered ICE server", &o.ice_tx_kbps),
            ("ice_in_rotation", "1 when the ICE server gets new pairs", &o.ice_in_rotation),
        ];
        let gauges: [(&str, &str, &Gauge); 15] = [
            ("turn_allocations", "Live allocations on the embedded TURN server", &o.turn_allocations),
            ("turn_allocations_created", "Allocations the embedded TURN server granted since start", &o.turn_allocations_total),
            ("turn_allocations_refused", "Allocations refused at the cap since start", &o.turn_allocations_refused),
            ("turn_auth_refused", "TURN requests with wrong or expired credentials since start", &o.turn_auth_refused),
            ("turn_relayed_bytes", "Bytes relayed to and from peers since start", &o.turn_relayed_bytes),
            ("turn_relayed_packets", "Datagrams relayed to and from peers since start", &o.turn_relayed_packets),
            ("turn_peer_denied_packets", "Datagrams the peer filter dropped since start", &o.turn_peer_denied_packets),
            ("turn_permissions_refused", "CreatePermission and ChannelBind requests refused (403) for naming a refused peer since start", &o.turn_permissions_refused),
            ("turn_allocations_refused_user_quota", "Allocations refused (486) because the user held [turn] max_allocations_per_user since start", &o.turn_allocations_refused_user_quota),
            ("turn_bandwidth_dropped_packets", "Relayed datagrams dropped by [turn] allocation_bytes_per_sec since start", &o.turn_bandwidth_dropped_packets),
            ("turn_bandwidth_dropped_bytes", "Bytes of relayed datagrams dropped by [turn] allocation_bytes_per_sec since start", &o.turn_bandwidth_dropped_bytes),
            ("turn_stream_connections_total", "TURN connections over TCP and TLS accepted since start", &o.turn_stream_connections_total),
            ("turn_stream_connections_refused", "TURN connections over TCP or TLS closed at once for [turn] max_connections since start", &o.turn_stream_connections_refused),
            ("turn_stream_dropped_packets", "Messages to TURN clients over TCP or TLS dropped because the client read too slowly, since start", &o.turn_stream_dropped_packets),
            ("turn_credentials_too_long", "TURN requests refused (401) for a credential outliving [turn] max_credential_lifetime_secs since start", &o.turn_credentials_too_long),
        ];
        let counters: [(&str, &str, &Counter); 2] = [
            ("report_runs", "Scheduled daily report runs", &o.report_runs),
            ("report_failures", "Scheduled daily report runs that failed (retried)", &o.report_failures),
        ];
        for (name, help, m) in families {
            reg(&mut r, name, help, m);
        }
        for (name, help, m) in gauges {
            reg(&mut r, name, help, m);
        }
        for (name, help, m) in counters {
            reg(&mut r, name, help, m);
        }
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_name_reaches_its_familys_counter_from_every_thread_and_address() {
        thread_local! {
            static HANDLES: Handles = const { std::cell::RefCell::new(Vec::new()) };
        }
        let family = Family::<CmdLabel, Counter>::default();
        count(&HANDLES, &family, "unitTestCmd");
        count(&HANDLES, &family, "unitTestCmd");
        std::thread::scope(|s| {
            s.spawn(|| count(&HANDLES, &family, "unitTestCmd"));
        });
        let elsewhere: &'static str = String::from("unitTestCmd").leak();
        count(&HANDLES, &family, elsewhere);
        count(&HANDLES, &family, "otherCmd");
        let got = |cmd| family.get_or_create(&CmdLabel { cmd }).get();
        assert_eq!((got("unitTestCmd"), got("otherCmd")), (4, 1));
        assert_eq!(HANDLES.with_borrow(Vec::len), 3);
    }
}

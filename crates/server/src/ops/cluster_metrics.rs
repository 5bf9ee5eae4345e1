//! The cluster's metrics (`[cluster]`), in a registry of their own that `/metrics` shows only
//! on a node of a cluster.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirLabel {
    pub dir: &'static str,
}

/// Every cluster metric of the node.
#[derive(Debug)]
pub struct ClusterMetrics {
    /// Live nodes seen in the registry (this one included).
    pub nodes: Gauge,
    /// Rooms whose engine state this node holds.
    pub rooms_owned: Gauge,
    /// Members this node serves whose sockets are on other nodes.
    pub remote_members: Gauge,
    pub bus_messages_out: Counter,
    pub bus_messages_in: Counter,
    pub bus_bytes_out: Counter,
    pub bus_bytes_in: Counter,
    /// Envelopes that could not be published (Redis away) or were for a connection gone.
    pub bus_dropped: Counter,
    /// An edge's envelopes that reached no owner (it died) and were held for the next one.
    pub bus_held: Counter,
    /// Held envelopes sent on to a room's next owner (or to its old one, back in the registry).
    pub bus_held_resent: Counter,
    /// Held envelopes dropped: over the bound, or the room not taken over in time.
    pub bus_held_dropped: Counter,
    /// One pipelined PUBLISH round trip: until Redis has handed the envelopes to the
    /// subscribers' connections.
    pub bus_publish: Histogram,
    /// 1 while Redis does not answer.
    pub degraded: Gauge,
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static METRICS: OnceLock<(ClusterMetrics, Registry)> = OnceLock::new();

fn build() -> (ClusterMetrics, Registry) {
    let messages: Family<DirLabel, Counter> = Family::default();
    let bytes: Family<DirLabel, Counter> = Family::default();
    // One statement each: `get_or_create` holds the family's read lock while its guard lives,
    // and creating a second child takes the write lock.
    let messages_out = messages.get_or_create(&DirLabel { dir: "out" }).clone();
    let messages_in = messages.get_or_create(&DirLabel { dir: "in" }).clone();
    let bytes_out = bytes.get_or_create(&DirLabel { dir: "out" }).clone();
    let bytes_in = bytes.get_or_create(&DirLabel { dir: "in" }).clone();
    let m = ClusterMetrics {
        nodes: Gauge::default(),
        rooms_owned: Gauge::default(),
        remote_members: Gauge::default(),
        bus_messages_out: messages_out,
        bus_messages_in: messages_in,
        bus_bytes_out: bytes_out,
        bus_bytes_in: bytes_in,
        bus_dropped: Counter::default(),
        bus_held: Counter::default(),
        bus_held_resent: Counter::default(),
        bus_held_dropped: Counter::default(),
        // 50 µs … ~1.6 s in factors of two.
        bus_publish: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            0.000_05, 2.0, 16,
        )),
        degraded: Gauge::default(),
    };
    let mut r = Registry::with_prefix("rtcroom_cluster");
    r.register(
        "nodes",
        "Live nodes in the cluster's registry",
        m.nodes.clone(),
    );
    r.register("rooms_owned", "Rooms this node owns", m.rooms_owned.clone());
    r.register(
        "remote_members",
        "Connections this node serves for sockets on other nodes",
        m.remote_members.clone(),
    );
    r.register(
        "bus_messages",
        "Envelopes over the Redis bus, by direction",
        messages,
    );
    r.register(
        "bus_bytes",
        "Bytes of envelopes over the Redis bus, by direction",
        bytes,
    );
    r.register(
        "bus_dropped",
        "Envelopes dropped: Redis did not take them, or their connection was gone",
        m.bus_dropped.clone(),
    );
    r.register(
        "bus_held",
        "Envelopes to an owner that did not listen (it died), held for the room's next owner",
        m.bus_held.clone(),
    );
    r.register(
        "bus_held_resent",
        "Held envelopes sent on to the room's next owner",
        m.bus_held_resent.clone(),
    );
    r.register(
        "bus_held_dropped",
        "Held envelopes dropped: over the bound, or the room not taken over in time",
        m.bus_held_dropped.clone(),
    );
    r.register(
        "bus_publish_seconds",
        "Round trip of one pipelined PUBLISH to Redis (the bus's relay latency)",
        m.bus_publish.clone(),
    );
    r.register(
        "degraded",
        "1 while Redis does not answer this node",
        m.degraded.clone(),
    );
    (m, r)
}

/// The cluster metrics (created on first use).
pub fn cluster() -> &'static ClusterMetrics {
    &METRICS.get_or_init(build).0
}

/// Show the cluster metrics at `/metrics` (a node of a cluster).
pub fn enable() {
    ENABLED.store(true, Ordering::Release);
}

/// Append the cluster metrics to a text exposition, on a node of a cluster.
pub fn encode(out: &mut String) {
    if ENABLED.load(Ordering::Acquire) {
        let (_, registry) = METRICS.get_or_init(build);
        prometheus_client::encoding::text::encode_registry(out, registry)
            .expect("writing to a String cannot fail");
    }
}

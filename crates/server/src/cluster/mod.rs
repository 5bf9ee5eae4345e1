//! The cluster (`[cluster]`): several nodes on one Redis, any node serving any member.
//!
//! Each node keeps its one hub and one engine. A room's state lives in exactly one node's
//! engine, its owner's (`owner`: a key per room in Redis). A socket whose room another node
//! owns is bound to that owner (`edge`): its frames go there as text, and the owner serves
//! it through an ordinary hub link (`remote`), so the engine never knows. Nodes talk over
//! Redis pub/sub (`bus`), say they are alive in the registry (`registry`), and the link to
//! Redis (`link`) says whether the node is degraded. Without `[cluster]` none of this runs
//! and no Redis is touched.
//!
//! The owner keeps each room's state in Redis (`state`); when an owner dies, a node with
//! members in its rooms takes them over (`failover`); a draining node hands its rooms to
//! live nodes; after a Redis outage the nodes reconcile to one owner per room.
//!
//! **Invariant:** the engine stays pure and one per node; the cluster only feeds the hub
//! messages any connection could send (`Open`, `Frame`, `Closed`) and the room moves of
//! the engine's cluster API (`Adopt`, `Release`, `EndRooms`).

pub mod bus;
pub mod edge;
pub mod failover;
pub mod ice;
pub mod link;
pub mod moves;
pub mod owner;
pub mod registry;
pub mod remote;
pub mod resp;
pub mod state;
pub mod views;

use crate::config::ClusterSection;
use crate::ops::alerts::Alerts;
use crate::ops::metrics;
use crate::signaling::hub::{Hub, RoomState};
use crate::signaling::route::{Edge, Owner, Payload, Socketside};
use bus::{Bus, Envelope};
use edge::Edges;
use failover::{Outcome, Taker};
use futures_util::future::BoxFuture;
use link::Link;
use owner::Claim;
use registry::NodeInfo;
use remote::Remotes;
use rtcroom_core::{ConnId, Grant, RoomRef};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// What a node needs to join the cluster.
#[derive(Debug, Clone)]
pub struct Settings {
    pub section: ClusterSection,
    /// This node's id (`[cluster] node_id`, or the host name and listen port).
    pub node_id: String,
    /// This node's own signaling URL.
    pub public_url: String,
    pub outbound_queue: usize,
    pub max_frame: usize,
    /// `[turn] secret` when it is set: the embedded TURN servers of the nodes share it, so
    /// each node hands out the others' (see `ice`).
    pub turn_secret: Option<String>,
}

/// This node in the cluster.
pub struct Cluster {
    pub link: Arc<Link>,
    bus: Bus,
    edges: Edges,
    remotes: Remotes,
    hub: Hub,
    settings: Settings,
    started_at: u64,
    /// The live nodes of the last heartbeat.
    nodes: Mutex<Vec<NodeInfo>>,
    draining: AtomicBool,
    /// The drain is done and the node left the registry.
    left: AtomicBool,
    /// Until when no node counts as dead (Redis just came back: the nodes re-register and
    /// re-subscribe over the next heartbeats).
    grace: Mutex<tokio::time::Instant>,
    asks: Mutex<HashMap<u64, mpsc::UnboundedSender<serde_json::Value>>>,
    next_ask: AtomicU64,
    /// The cluster's embedded TURN servers as this node knows them.
    turns: ice::Turns,
    /// This node's embedded TURN server's notes, for `share_embedded_loop`.
    embedded_tx: mpsc::Sender<rtcroom_ice::IceCommand>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("me", &self.settings.node_id)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Join the cluster: the bus, the subscription, the heartbeat. Redis need not answer yet.
    /// A node restarted under the same id first waits until its previous run has been seen
    /// dead by the others (so that they take over what it held); a live node of the same id
    /// refuses the start.
    pub async fn start(
        settings: Settings,
        hub: Hub,
        alerts: Alerts,
        states: mpsc::Receiver<Vec<RoomState>>,
        reserved: mpsc::Receiver<(String, u64)>,
    ) -> anyhow::Result<Arc<Self>> {
        crate::ops::cluster_metrics::enable();
        let me = settings.node_id.clone();
        let link = Arc::new(Link::open(
            &settings.section.redis,
            &settings.section.key_prefix,
            &me,
            alerts,
        )?);
        registry::wait_for_previous_run(
            &link,
            Duration::from_millis(settings.section.heartbeat_ms),
            Duration::from_millis(settings.section.dead_after_ms),
        )
        .await?;
        let (dead_tx, dead_rx) = mpsc::unbounded_channel();
        let (bounced_tx, bounced_rx) = mpsc::unbounded_channel();
        let bus = Bus::start(link.clone(), dead_tx, bounced_tx);
        let (embedded_tx, embedded_rx) = mpsc::channel(16);
        let cluster = Arc::new(Self {
            turns: ice::Turns::new(settings.turn_secret.as_deref()),
            embedded_tx,
            edges: Edges::new(
                bus.clone(),
                hub.clone(),
                me.clone(),
                settings.max_frame,
                Duration::from_millis(settings.section.dead_after_ms),
                // A dead owner's key expires within `dead_after_ms`; the next heartbeat sees
                // it gone and the takers claim its rooms.
                Duration::from_millis(
                    settings.section.dead_after_ms + 3 * settings.section.heartbeat_ms,
                ),
            ),
            remotes: Remotes::new(
                hub.clone(),
                bus.clone(),
                me.clone(),
                settings.outbound_queue,
                settings.max_frame,
            ),
            link,
            bus,
            hub,
            settings,
            started_at: crate::clock::now().0,
            nodes: Mutex::default(),
            draining: AtomicBool::new(false),
            left: AtomicBool::new(false),
            grace: Mutex::new(tokio::time::Instant::now()),
            asks: Mutex::default(),
            next_ask: AtomicU64::new(1),
        });
        tokio::spawn(cluster.clone().listen());
        tokio::spawn(cluster.clone().heartbeat());
        tokio::spawn(cluster.clone().on_dead(dead_rx));
        tokio::spawn(cluster.clone().on_bounced(bounced_rx));
        tokio::spawn(cluster.clone().write_states(states));
        tokio::spawn(cluster.clone().share_reserved_loop(reserved));
        tokio::spawn(cluster.clone().share_embedded_loop(embedded_rx));
        tracing::info!(node = %me, "joined the cluster");
        Ok(cluster)
    }

    pub fn me(&self) -> &str {
        &self.settings.node_id
    }

    /// Since when Redis has not answered (Unix ms), if it has not.
    pub fn degraded_since(&self) -> Option<u64> {
        self.link.degraded_since()
    }

    /// The live nodes of the last heartbeat.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.lock().expect("nodes lock").clone()
    }

    /// The signaling URL login hands out: `[cluster] signaling_url`, else the least-loaded
    /// live node's own, else this node's.
    pub fn signaling_url(&self) -> String {
        if !self.settings.section.signaling_url.is_empty() {
            return self.settings.section.signaling_url.clone();
        }
        let nodes = self.nodes();
        registry::least_loaded(&nodes)
            .map(|n| n.public_url.clone())
            .unwrap_or_else(|| self.settings.public_url.clone())
    }

    /// Every signaling URL login may hand out (for the page's connect-src).
    pub fn signaling_urls(&self) -> Vec<String> {
        if !self.settings.section.signaling_url.is_empty() {
            return vec![self.settings.section.signaling_url.clone()];
        }
        let mut urls: Vec<String> = self.nodes().into_iter().map(|n| n.public_url).collect();
        urls.push(self.settings.public_url.clone());
        urls.sort();
        urls.dedup();
        urls
    }

    fn heartbeat_every(&self) -> Duration {
        Duration::from_millis(self.settings.section.heartbeat_ms)
    }

    /// The subscription to this node's channel and the ICE channel, renewed when it breaks.
    async fn listen(self: Arc<Self>) {
        let channel = self.link.bus_channel(self.me());
        let ice = self.link.ice_channel();
        let info = self.link.client.get_connection_info().clone();
        loop {
            match self.subscribe(&info, &channel, &ice).await {
                Ok(conn) => {
                    let mut conn = conn.into_feed();
                    // A node that starts (or a subscription renewed) learns the ICE servers
                    // the others took.
                    self.load_ice().await;
                    let broke = loop {
                        let reply = match conn.reply().await {
                            Ok(r) => r,
                            Err(e) => break e,
                        };
                        // `message <channel> <payload>`; the subscription's confirmations
                        // are the only other replies.
                        let resp::Reply::Array(parts) = reply else {
                            continue;
                        };
                        let [
                            resp::Reply::Bulk(Some(kind)),
                            resp::Reply::Bulk(Some(from)),
                            resp::Reply::Bulk(Some(payload)),
                        ] = parts.as_slice()
                        else {
                            continue;
                        };
                        let bytes = conn.bytes();
                        if &bytes[kind.clone()] != b"message" {
                            continue;
                        }
                        if &bytes[from.clone()] == ice.as_bytes() {
                            self.apply_ice(&bytes[payload.clone()]).await;
                        } else {
                            self.dispatch(&bytes[payload.clone()]).await;
                        }
                    };
                    tracing::warn!(error = %broke, "cluster: the bus subscription broke; renewing it");
                }
                Err(e) => self.link.trouble(&e),
            }
            tokio::time::sleep(self.heartbeat_every()).await;
        }
    }

    /// A connection of the bus's own, subscribed to this node's channel and the ICE channel.
    async fn subscribe(
        &self,
        info: &redis::ConnectionInfo,
        channel: &str,
        ice: &str,
    ) -> std::io::Result<resp::Conn> {
        let mut conn = resp::Conn::connect(info).await?;
        let mut out = Vec::new();
        resp::command(
            &mut out,
            &[b"SUBSCRIBE", channel.as_bytes(), ice.as_bytes()],
        );
        conn.write(&out).await?;
        for _ in 0..2 {
            let confirmed = tokio::time::timeout(Duration::from_secs(1), conn.reply()).await;
            match confirmed {
                Ok(Ok(resp::Reply::Array(_))) => {}
                Ok(Ok(resp::Reply::Error(e))) => return Err(std::io::Error::other(e)),
                Ok(Ok(other)) => {
                    return Err(std::io::Error::other(format!(
                        "redis: {other:?} in answer to SUBSCRIBE"
                    )));
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "redis: no answer to SUBSCRIBE",
                    ));
                }
            }
        }
        Ok(conn)
    }

    /// One envelope from another node, handled in arrival order.
    async fn dispatch(self: &Arc<Self>, payload: &[u8]) {
        let m = metrics::cluster();
        m.bus_messages_in.inc();
        m.bus_bytes_in.inc_by(payload.len() as u64);
        let envelope = match bus::decode(payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "cluster: an envelope that does not parse; dropped");
                return;
            }
        };
        match envelope {
            Envelope::Open { edge, conn, ip, at } => {
                let at = at.and_then(|(lat, lon)| rtcroom_ice::GeoPoint::new(lat, lon));
                self.remotes.open((edge, conn), ip, at).await;
            }
            Envelope::Frame {
                edge,
                conn,
                text,
                grant,
                binary,
            } => {
                self.remotes
                    .frame(&(edge, conn), &text, binary, grant)
                    .await;
            }
            Envelope::Closed { edge, conn, clean } => {
                self.remotes.closed(&(edge, conn), clean).await;
            }
            Envelope::Deliver { conn, items, .. } => self.edges.deliver(conn, items).await,
            Envelope::Moved { owner, conns } => self.edges.moved(&owner, &conns).await,
            Envelope::LetGo { edge, conn } => {
                // The hub is asked now, in order after the socket's frames; the answer goes
                // out once what the hub sent the socket is on its way.
                let asked = self.remotes.let_go((edge.clone(), conn)).await;
                let this = self.clone();
                tokio::spawn(async move {
                    let released = this.remotes.let_go_answer(asked).await;
                    let owner = this.me().to_owned();
                    let gone = Envelope::LetGone {
                        owner,
                        conn,
                        released,
                    };
                    this.bus.send(&edge, &gone).await;
                });
            }
            Envelope::LetGone {
                owner,
                conn,
                released,
            } => self.edges.let_gone(&owner, conn, released),
            Envelope::End { app, room } => {
                tracing::warn!(%app, %room, "cluster: after the outage another node keeps this room; ending our copy (its members reconnect and join there)");
                let room = RoomRef {
                    app_id: app,
                    room_id: room,
                };
                self.hub.end_rooms(vec![room]).await;
            }
            Envelope::Ask { from, id, question } => {
                let this = self.clone();
                tokio::spawn(async move {
                    let body = this.answer(question).await.to_string();
                    this.bus.send(&from, &Envelope::Answer { id, body }).await;
                });
            }
            Envelope::Answer { id, body } => {
                if let Some(tx) = self.asks.lock().expect("asks lock").get(&id) {
                    let _ = tx.send(serde_json::from_str(&body).unwrap_or_default());
                }
            }
        }
    }

    /// Say this node is alive every `heartbeat_ms`; notice dead nodes and Redis coming back.
    async fn heartbeat(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.heartbeat_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut alive: BTreeSet<String> = BTreeSet::new();
        let mut grace = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            if self.left.load(Ordering::Acquire) {
                return;
            }
            let stats = tokio::time::timeout(Duration::from_secs(1), self.hub.stats())
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            metrics::cluster().rooms_owned.set(stats.rooms as i64);
            let info = NodeInfo {
                id: self.me().to_owned(),
                public_url: self.settings.public_url.clone(),
                members: stats.members as u64,
                rooms: stats.rooms as u64,
                started_at: self.started_at,
                draining: self.draining.load(Ordering::Acquire),
            };
            let ttl = self.settings.section.dead_after_ms;
            match registry::beat(&self.link, &info, ttl).await {
                Ok(nodes) => {
                    metrics::cluster().nodes.set(nodes.len() as i64);
                    let mut now: BTreeSet<String> = nodes.iter().map(|n| n.id.clone()).collect();
                    *self.nodes.lock().expect("nodes lock") = nodes;
                    if self.link.answered().is_some() {
                        // The other nodes re-register over the next beats: none counts as
                        // dead until a whole `dead_after_ms` has passed.
                        grace = tokio::time::Instant::now()
                            + Duration::from_millis(self.settings.section.dead_after_ms);
                        *self.grace.lock().expect("grace lock") = grace;
                        tokio::spawn(self.clone().reconcile());
                    }
                    if tokio::time::Instant::now() < grace {
                        now.extend(alive.iter().cloned());
                        alive = now;
                        continue;
                    }
                    for gone in alive.difference(&now) {
                        self.node_dead(gone).await;
                    }
                    self.edges.sweep(&now).await;
                    // Owners that died before this node saw them alive.
                    for owner in self.edges.owners() {
                        if owner != self.me() && !now.contains(&owner) {
                            self.node_dead(&owner).await;
                        }
                    }
                    alive = now;
                }
                Err(e) => self.link.failed(&e),
            }
        }
    }

    /// Nodes the publisher found not listening.
    async fn on_dead(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<String>) {
        while let Some(node) = rx.recv().await {
            // Redis away or just back: nobody listens for a moment; the heartbeat decides.
            let grace = *self.grace.lock().expect("grace lock");
            if self.degraded_since().is_some() || tokio::time::Instant::now() < grace {
                continue;
            }
            // A node whose key is still there is only between subscriptions; the heartbeat
            // decides for it.
            let key: redis::RedisResult<i64> = redis::cmd("EXISTS")
                .arg(self.link.node_key(&node))
                .query_async(&mut self.link.conn())
                .await;
            if matches!(key, Ok(0)) {
                self.node_dead(&node).await;
            }
        }
    }

    /// An edge's envelopes that reached no owner: held for the room's next one.
    /// What the publisher hands back, in order: fences follow the bounces before them.
    async fn on_bounced(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<bus::Back>) {
        while let Some(back) = rx.recv().await {
            match back {
                bus::Back::Bounce(bounce) => self.edges.bounced(bounce).await,
                bus::Back::Passed(conn) => self.edges.passed(ConnId(conn)).await,
            }
        }
    }

    /// Node `node` is dead: sockets of its on our rooms dropped; rooms it owned that our
    /// sockets are in taken over.
    async fn node_dead(self: &Arc<Self>, node: &str) {
        if node == self.me() {
            return;
        }
        tracing::info!(node, "cluster: a node is dead");
        self.edges.owner_dead(node);
        self.remotes.edge_dead(node).await;
        self.forget_embedded_of(node).await;
        // Rooms our sockets are in first; then every other room it owned, so that members
        // who never come back are closed in the records by the engine that adopts them.
        let mut rooms = self.edges.rooms_of(node);
        match state::owned_by(&self.link, node).await {
            Ok(owned) => rooms.extend(owned),
            Err(e) => self.link.trouble(&e),
        }
        rooms.sort();
        rooms.dedup();
        let taker = self.taker();
        for room in &rooms {
            match taker.take_from_dead(room, node).await {
                Ok(Outcome::Lost) => {}
                Ok(outcome) => {
                    tracing::info!(
                        node,
                        app = %room.app_id,
                        room = %room.room_id,
                        ?outcome,
                        "cluster: took over a room of a dead node"
                    );
                    // Our sockets of the room that the state did not seat (their join never
                    // reached the dead node) reconnect now, and resume here.
                    self.edges.close_bound_in(node, room);
                }
                Err(e) => self.link.trouble(&e),
            }
        }
        if let Err(e) = state::forget_owner(&self.link, node).await {
            self.link.trouble(&e);
        }
        // Rooms another node took over move our sockets with `Moved`; a socket still bound
        // to the dead node after that was in no state that was kept: it reconnects.
        let this = self.clone();
        let node = node.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(this.heartbeat_every() * 2).await;
            let n = this.edges.close_bound_to(&node);
            if n > 0 {
                tracing::info!(
                    node,
                    sockets = n,
                    "cluster: sockets of a dead node's rooms that nobody took over are told to reconnect"
                );
            }
        });
    }

    /// What a take-over needs, with the live nodes of the last heartbeat.
    fn taker(&self) -> Taker<'_> {
        Taker {
            link: &self.link,
            edges: &self.edges,
            remotes: &self.remotes,
            hub: &self.hub,
            bus: &self.bus,
            alive: self.nodes().into_iter().map(|n| n.id).collect(),
        }
    }

    /// Keep the rooms' states in Redis as the hub hands them over.
    async fn write_states(self: Arc<Self>, mut rx: mpsc::Receiver<Vec<RoomState>>) {
        while let Some(batch) = rx.recv().await {
            if self.degraded_since().is_some() {
                continue;
            }
            if let Err(e) = state::write(&self.link, &self.remotes, batch).await {
                self.link.trouble(&e);
            }
        }
    }
}

impl Edge for Cluster {
    fn owner_of<'a>(&'a self, app: &'a str, room: &'a str) -> BoxFuture<'a, Owner> {
        Box::pin(async move {
            if self.degraded_since().is_some() {
                return Owner::Here;
            }
            match owner::claim(&self.link, app, room).await {
                Ok(Claim::Mine) => Owner::Here,
                Ok(Claim::Live(node)) => Owner::Node(node),
                Ok(Claim::Dead(dead)) => {
                    // The first member back after its owner died: take the room over now.
                    let r = RoomRef {
                        app_id: app.to_owned(),
                        room_id: room.to_owned(),
                    };
                    match self.taker().take_from_dead(&r, &dead).await {
                        Ok(Outcome::Lost) => match owner::owner(&self.link, app, room).await {
                            Ok(Some(o)) if o != self.me() => Owner::Node(o),
                            _ => Owner::Here,
                        },
                        Ok(_) => Owner::Here,
                        Err(e) => {
                            self.link.trouble(&e);
                            Owner::Here
                        }
                    }
                }
                Err(e) => {
                    self.link.trouble(&e);
                    Owner::Here
                }
            }
        })
    }

    fn bind<'a>(&'a self, owner: String, socket: Socketside) -> BoxFuture<'a, ()> {
        Box::pin(self.edges.bind(owner, socket))
    }

    fn frame<'a>(&'a self, conn: ConnId, payload: Payload, grant: Grant) -> BoxFuture<'a, ()> {
        Box::pin(self.edges.frame(conn, payload, grant))
    }

    fn closed<'a>(&'a self, conn: ConnId, clean: bool) -> BoxFuture<'a, ()> {
        Box::pin(self.edges.closed(conn, clean))
    }

    fn serving(&self, conn: ConnId) -> Option<Owner> {
        self.edges.serving(conn)
    }

    fn let_go<'a>(&'a self, conn: ConnId) -> BoxFuture<'a, bool> {
        Box::pin(self.edges.let_go(conn))
    }
}

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
//! **Invariant:** the engine stays pure and one per node; the cluster only feeds the hub
//! messages any connection could send (`Open`, `Frame`, `Closed`) and `Attach` for
//! connections the engine seated itself.

pub mod bus;
pub mod edge;
pub mod link;
pub mod owner;
pub mod registry;
pub mod remote;

use crate::config::ClusterSection;
use crate::ops::alerts::Alerts;
use crate::ops::metrics;
use crate::signaling::hub::Hub;
use crate::signaling::route::{Edge, Owner, Socketside};
use bus::{Bus, Envelope, Question};
use edge::Edges;
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use link::Link;
use owner::Claim;
use registry::NodeInfo;
use remote::Remotes;
use rtcroom_core::{ConnId, Grant};
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
    asks: Mutex<HashMap<u64, mpsc::UnboundedSender<serde_json::Value>>>,
    next_ask: AtomicU64,
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
    pub fn start(settings: Settings, hub: Hub, alerts: Alerts) -> anyhow::Result<Arc<Self>> {
        crate::ops::cluster_metrics::enable();
        let me = settings.node_id.clone();
        let link = Arc::new(Link::open(
            &settings.section.redis,
            &settings.section.key_prefix,
            &me,
            alerts,
        )?);
        let (dead_tx, dead_rx) = mpsc::unbounded_channel();
        let bus = Bus::start(link.clone(), dead_tx);
        let cluster = Arc::new(Self {
            edges: Edges::new(bus.clone(), hub.clone(), me.clone(), settings.max_frame),
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
            asks: Mutex::default(),
            next_ask: AtomicU64::new(1),
        });
        tokio::spawn(cluster.clone().listen());
        tokio::spawn(cluster.clone().heartbeat());
        tokio::spawn(cluster.clone().on_dead(dead_rx));
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
        loop {
            match self.link.client.get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if let Err(e) = pubsub.subscribe(&channel).await {
                        self.link.failed(&e);
                    } else {
                        let mut stream = pubsub.into_on_message();
                        while let Some(msg) = stream.next().await {
                            self.dispatch(msg.get_payload_bytes()).await;
                        }
                        tracing::warn!("cluster: the bus subscription broke; renewing it");
                    }
                }
                Err(e) => self.link.failed(&e),
            }
            tokio::time::sleep(self.heartbeat_every()).await;
        }
    }

    /// One envelope from another node, handled in arrival order.
    async fn dispatch(self: &Arc<Self>, payload: &[u8]) {
        let m = metrics::cluster();
        m.bus_messages_in.inc();
        m.bus_bytes_in.inc_by(payload.len() as u64);
        let envelope: Envelope = match serde_json::from_slice(payload) {
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
            } => {
                self.remotes
                    .frame(&(edge, conn), &text, Grant::from(grant))
                    .await;
            }
            Envelope::Closed { edge, conn, clean } => {
                self.remotes.closed(&(edge, conn), clean).await;
            }
            Envelope::Deliver { conn, items, .. } => self.edges.deliver(conn, items).await,
            Envelope::Moved { owner, conns } => self.edges.moved(&owner, &conns),
            Envelope::Adopt { from, app, room } => {
                tracing::info!(%from, %app, %room, "cluster: asked to adopt a room");
            }
            Envelope::Ask { from, id, question } => {
                let this = self.clone();
                tokio::spawn(async move {
                    let body = this.answer(question).await;
                    this.bus.send(&from, &Envelope::Answer { id, body }).await;
                });
            }
            Envelope::Answer { id, body } => {
                if let Some(tx) = self.asks.lock().expect("asks lock").get(&id) {
                    let _ = tx.send(body);
                }
            }
        }
    }

    /// This node's answer to a cluster-wide question.
    async fn answer(&self, question: Question) -> serde_json::Value {
        match question {
            Question::Rooms => {
                serde_json::to_value(rooms_view(self.hub.rooms().await.unwrap_or_default()))
                    .unwrap_or_default()
            }
            Question::Stats => {
                let s = self.hub.stats().await.unwrap_or_default();
                serde_json::json!({"connections": s.connections, "rooms": s.rooms, "members": s.members})
            }
            Question::Kick {
                app,
                room,
                uid,
                why,
            } => serde_json::Value::Bool(self.hub.kick(app, room, uid, why).await),
        }
    }

    /// Ask every live node (this one included) and gather the answers that come within 1 s.
    pub async fn ask_all(&self, question: Question) -> Vec<serde_json::Value> {
        let nodes = self.nodes();
        let mut answers = vec![self.answer(question.clone()).await];
        let others: Vec<&NodeInfo> = nodes.iter().filter(|n| n.id != self.me()).collect();
        if others.is_empty() {
            return answers;
        }
        let id = self.next_ask.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.asks.lock().expect("asks lock").insert(id, tx);
        let from = self.me().to_owned();
        for n in &others {
            let ask = Envelope::Ask {
                from: from.clone(),
                id,
                question: question.clone(),
            };
            self.bus.send(&n.id, &ask).await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while answers.len() < others.len() + 1 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(body)) => answers.push(body),
                _ => break,
            }
        }
        self.asks.lock().expect("asks lock").remove(&id);
        answers
    }

    /// Kick a member wherever its room lives: here, or at its owner.
    pub async fn kick(&self, app: String, room: String, uid: String, why: String) -> bool {
        let owner = owner::owner(&self.link, &app, &room).await.ok().flatten();
        match owner {
            Some(o) if o != self.me() => {
                let question = Question::Kick {
                    app,
                    room,
                    uid,
                    why,
                };
                self.ask_one(&o, question).await == Some(serde_json::Value::Bool(true))
            }
            _ => self.hub.kick(app, room, uid, why).await,
        }
    }

    async fn ask_one(&self, node: &str, question: Question) -> Option<serde_json::Value> {
        let id = self.next_ask.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.asks.lock().expect("asks lock").insert(id, tx);
        let from = self.me().to_owned();
        self.bus
            .send(node, &Envelope::Ask { from, id, question })
            .await;
        let answer = tokio::time::timeout(Duration::from_secs(1), rx.recv())
            .await
            .ok()
            .flatten();
        self.asks.lock().expect("asks lock").remove(&id);
        answer
    }

    /// Say this node is alive every `heartbeat_ms`; notice dead nodes and Redis coming back.
    async fn heartbeat(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.heartbeat_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut alive: BTreeSet<String> = BTreeSet::new();
        loop {
            tick.tick().await;
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
                    let now: BTreeSet<String> = nodes.iter().map(|n| n.id.clone()).collect();
                    *self.nodes.lock().expect("nodes lock") = nodes;
                    if self.link.answered().is_some() {
                        tokio::spawn(self.clone().reconcile());
                    }
                    for gone in alive.difference(&now) {
                        self.node_dead(gone).await;
                    }
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

    /// Node `node` is dead: sockets of its on our rooms dropped; rooms it owned that our
    /// sockets are in taken over.
    async fn node_dead(self: &Arc<Self>, node: &str) {
        if node == self.me() {
            return;
        }
        tracing::info!(node, "cluster: a node is dead");
        self.remotes.edge_dead(node).await;
        let orphans = self.edges.bound_to(node);
        if !orphans.is_empty() {
            tracing::warn!(
                node,
                sockets = orphans.len(),
                "cluster: the owner of rooms our members are in is dead"
            );
        }
    }

    /// Redis is back after an outage: every room this node holds gets one owner.
    async fn reconcile(self: Arc<Self>) {
        let rooms = self.hub.rooms().await.unwrap_or_default();
        for r in rooms {
            match owner::reconcile(&self.link, &r.app_id, &r.room_id).await {
                Ok(Claim::Mine) => {}
                Ok(other) => {
                    tracing::warn!(app = %r.app_id, room = %r.room_id, owner = ?other, "cluster: another node keeps this room")
                }
                Err(e) => {
                    self.link.failed(&e);
                    return;
                }
            }
        }
    }

    /// SIGTERM: stop taking members (the registry says so), and tell the sockets bound to
    /// other nodes to reconnect (close 1012); they resume through the load balancer on a
    /// live node. The hub's restart then does the same for this node's own sockets.
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.edges.close_all();
        if let Err(e) = registry::leave(&self.link).await {
            self.link.failed(&e);
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
                    match owner::take(&self.link, app, room, &dead, self.me()).await {
                        Ok(true) => Owner::Here,
                        Ok(false) => match owner::owner(&self.link, app, room).await {
                            Ok(Some(o)) if o != self.me() => Owner::Node(o),
                            _ => Owner::Here,
                        },
                        Err(e) => {
                            self.link.failed(&e);
                            Owner::Here
                        }
                    }
                }
                Err(e) => {
                    self.link.failed(&e);
                    Owner::Here
                }
            }
        })
    }

    fn bind<'a>(&'a self, owner: String, socket: Socketside) -> BoxFuture<'a, ()> {
        Box::pin(self.edges.bind(owner, socket))
    }

    fn frame<'a>(&'a self, conn: ConnId, text: String, grant: Grant) -> BoxFuture<'a, ()> {
        Box::pin(self.edges.frame(conn, text, grant))
    }

    fn closed<'a>(&'a self, conn: ConnId, clean: bool) -> BoxFuture<'a, ()> {
        Box::pin(self.edges.closed(conn, clean))
    }
}

/// The operator's view of rooms, as `/api/rooms` shows them.
pub fn rooms_view(rooms: Vec<rtcroom_core::RoomInfo>) -> Vec<serde_json::Value> {
    rooms
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "appId": r.app_id,
                "roomId": r.room_id,
                "roomName": r.room_name,
                "members": r.members.into_iter().map(|m| serde_json::json!({
                    "uid": m.uid,
                    "uname": m.uname,
                    "sessionId": m.session_id.to_string(),
                    "joinedAt": m.joined_at.as_secs(),
                    "connected": m.connected,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

//! The owner's side of members whose sockets are on other nodes: each gets a connection
//! number of its own range (from 2^62) and an ordinary hub link whose queue is drained by a
//! forwarding task that serializes and publishes to the edge node. The engine and the hub
//! do not know the difference.

use super::bus::{Bus, Envelope, Item};
use crate::ops::metrics;
use crate::signaling::hub::{Hub, HubMsg, Outbound};
use crate::signaling::queue;
use rtcroom_core::{CloseReason, ConnId, Grant};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Connections of members on other nodes are numbered from here (local ones count up from
/// 1, restored placeholders from 2^63).
pub const REMOTE_BASE: u64 = 1 << 62;

/// A socket on another node: that node's id and its connection number there.
pub type EdgeConn = (String, u64);

#[derive(Debug, Default)]
struct Table {
    by_edge: HashMap<EdgeConn, ConnId>,
    edge_of: HashMap<ConnId, EdgeConn>,
    /// Sockets whose room was handed to another node (a drain): their frames until the new
    /// owner moves them are dropped, not answered.
    handed: std::collections::HashSet<EdgeConn>,
    /// Each link's forwarding task: resolves when it has published the last of its queue.
    forwarded: HashMap<ConnId, oneshot::Receiver<()>>,
    next: u64,
}

/// The remote members this node serves.
#[derive(Debug)]
pub struct Remotes {
    table: Mutex<Table>,
    hub: Hub,
    bus: Bus,
    me: String,
    outbound_queue: usize,
    max_frame: usize,
}

impl Remotes {
    pub fn new(hub: Hub, bus: Bus, me: String, outbound_queue: usize, max_frame: usize) -> Self {
        Self {
            table: Mutex::default(),
            hub,
            bus,
            me,
            outbound_queue,
            max_frame,
        }
    }

    /// A local number and a forwarding link for a socket on `edge`; `None` when it has one.
    #[allow(clippy::type_complexity)]
    pub fn link(
        &self,
        edge: &EdgeConn,
    ) -> Option<(ConnId, queue::Sender<Outbound>, oneshot::Sender<()>)> {
        let (done_tx, done_rx) = oneshot::channel();
        let local = {
            let mut t = self.table.lock().expect("remotes lock");
            if t.by_edge.contains_key(edge) {
                return None;
            }
            t.next += 1;
            let local = ConnId(REMOTE_BASE | t.next);
            t.by_edge.insert(edge.clone(), local);
            t.edge_of.insert(local, edge.clone());
            t.forwarded.insert(local, done_rx);
            metrics::cluster()
                .remote_members
                .set(t.by_edge.len() as i64);
            local
        };
        let (out_tx, out_rx) = queue::channel(self.outbound_queue);
        let (kill_tx, kill_rx) = oneshot::channel();
        let (bus, me, to) = (self.bus.clone(), self.me.clone(), edge.clone());
        tokio::spawn(async move {
            forward(bus, me, to, out_rx, kill_rx).await;
            drop(done_tx);
        });
        Some((local, out_tx, kill_tx))
    }

    /// A socket on `edge` opens here (it joins a room of this node).
    pub async fn open(&self, edge: EdgeConn, ip: String, at: Option<rtcroom_ice::GeoPoint>) {
        let Some((conn, out, kill)) = self.link(&edge) else {
            return;
        };
        self.hub
            .send(HubMsg::Open {
                conn,
                ip,
                at,
                out,
                kill,
            })
            .await;
    }

    pub fn local(&self, edge: &EdgeConn) -> Option<ConnId> {
        self.table
            .lock()
            .expect("remotes lock")
            .by_edge
            .get(edge)
            .copied()
    }

    /// A frame of a remote socket: decoded again here, then to the hub as any other.
    pub async fn frame(&self, edge: &EdgeConn, text: &str, binary: Option<usize>, grant: Grant) {
        let Some(conn) = self.local(edge) else {
            if self
                .table
                .lock()
                .expect("remotes lock")
                .handed
                .contains(edge)
            {
                metrics::cluster().bus_dropped.inc();
                return;
            }
            // A socket this node does not serve (it counted it dropped, e.g. its node was
            // taken for dead): the client is told to reconnect, and resumes with its key.
            metrics::cluster().bus_dropped.inc();
            let items = vec![Item::Close(CloseReason::ServiceRestart)];
            let owner = self.me.clone();
            let (node, conn) = edge.clone();
            self.bus
                .send(&node, &Envelope::Deliver { owner, conn, items })
                .await;
            return;
        };
        let at = std::time::Instant::now();
        let frame = match binary {
            Some(len) => Err(rtcroom_protocol::decode_binary(len, self.max_frame)),
            None => rtcroom_protocol::decode(text, self.max_frame),
        };
        self.hub
            .send(HubMsg::Frame {
                conn,
                frame,
                grant,
                at,
            })
            .await;
    }

    fn forget(&self, edge: &EdgeConn) -> Option<ConnId> {
        let mut t = self.table.lock().expect("remotes lock");
        let conn = t.by_edge.remove(edge)?;
        t.edge_of.remove(&conn);
        t.forwarded.remove(&conn);
        metrics::cluster()
            .remote_members
            .set(t.by_edge.len() as i64);
        Some(conn)
    }

    /// A remote socket closed.
    pub async fn closed(&self, edge: &EdgeConn, clean: bool) {
        if let Some(conn) = self.forget(edge) {
            self.hub.send(HubMsg::Closed { conn, clean }).await;
        }
    }

    /// The edge asks to let a socket go (its `join` names a room another node serves): ask
    /// the hub, in order after the socket's earlier frames. [`Remotes::let_go_answer`] then
    /// says whether it let it go.
    pub async fn let_go(&self, edge: EdgeConn) -> LetGo {
        let Some(conn) = self.local(&edge) else {
            // A socket this node does not serve: nothing of it is in flight here, unless its
            // room was handed away and its new owner has not moved it yet.
            let handed = self
                .table
                .lock()
                .expect("remotes lock")
                .handed
                .contains(&edge);
            return LetGo::Known(!handed);
        };
        let (tx, rx) = oneshot::channel();
        if self.hub.send(HubMsg::LetGo { conn, reply: tx }).await {
            LetGo::Asked(edge, rx)
        } else {
            LetGo::Known(false)
        }
    }

    /// Whether the hub let the socket go; when it did, resolves only once everything the
    /// hub queued for the socket has been published to the edge (so the answer, published
    /// next, arrives after it), and the socket is forgotten here.
    pub async fn let_go_answer(&self, asked: LetGo) -> bool {
        let (edge, rx) = match asked {
            LetGo::Known(released) => return released,
            LetGo::Asked(edge, rx) => (edge, rx),
        };
        if !rx.await.unwrap_or(false) {
            return false;
        }
        let done = {
            let mut t = self.table.lock().expect("remotes lock");
            let conn = t.by_edge.remove(&edge);
            conn.and_then(|c| {
                t.edge_of.remove(&c);
                t.forwarded.remove(&c)
            })
        };
        metrics::cluster()
            .remote_members
            .set(self.table.lock().expect("remotes lock").by_edge.len() as i64);
        // The hub dropped the link: its forwarding task publishes what is queued and ends.
        if let Some(done) = done {
            let _ = done.await;
        }
        true
    }

    /// Node `node` is dead: its sockets are dropped (their members may resume elsewhere).
    pub async fn edge_dead(&self, node: &str) {
        let gone: Vec<EdgeConn> = {
            let t = self.table.lock().expect("remotes lock");
            t.by_edge
                .keys()
                .filter(|(n, _)| n == node)
                .cloned()
                .collect()
        };
        if !gone.is_empty() {
            tracing::info!(
                node,
                members = gone.len(),
                "cluster: a node with members of our rooms is dead; its sockets count as dropped"
            );
        }
        for edge in gone {
            self.closed(&edge, false).await;
        }
    }

    /// The socket a local connection number stands for, when it is remote.
    pub fn edge_of(&self, conn: ConnId) -> Option<EdgeConn> {
        self.table
            .lock()
            .expect("remotes lock")
            .edge_of
            .get(&conn)
            .cloned()
    }

    /// Forget a remote socket without telling the hub (its room was handed over).
    pub fn drop_link(&self, conn: ConnId) {
        let mut t = self.table.lock().expect("remotes lock");
        if let Some(edge) = t.edge_of.remove(&conn) {
            t.by_edge.remove(&edge);
            t.handed.insert(edge);
        }
        t.forwarded.remove(&conn);
        metrics::cluster()
            .remote_members
            .set(t.by_edge.len() as i64);
    }
}

/// A [`Remotes::let_go`] under way.
#[derive(Debug)]
pub enum LetGo {
    /// Answered at once.
    Known(bool),
    /// The hub was asked about this socket.
    Asked(EdgeConn, oneshot::Receiver<bool>),
}

/// Drain one remote connection's queue to its edge node, in order, a batch per envelope.
async fn forward(
    bus: Bus,
    me: String,
    (edge, conn): EdgeConn,
    mut rx: queue::Receiver<Outbound>,
    kill: oneshot::Receiver<()>,
) {
    let mut kill = Some(kill);
    loop {
        let first = tokio::select! {
            biased;
            cut = async {
                match kill.as_mut() {
                    Some(k) => k.await.is_ok(),
                    None => std::future::pending().await,
                }
            } => {
                if cut {
                    let items = vec![Item::Cut];
                    bus.send(&edge, &Envelope::Deliver { owner: me.clone(), conn, items }).await;
                    return;
                }
                // The hub let go of the switch (the connection closed): drain what is left.
                kill = None;
                continue;
            }
            item = rx.recv() => match item {
                Some(item) => item,
                None => return,
            },
        };
        let mut items = vec![item(first)];
        while items.len() < 64 {
            match rx.try_recv() {
                Ok(next) => items.push(item(next)),
                Err(_) => break,
            }
        }
        let owner = me.clone();
        bus.send(&edge, &Envelope::Deliver { owner, conn, items })
            .await;
    }
}

fn item(out: Outbound) -> Item {
    match out {
        Outbound::Msg(msg) => {
            let mut bytes = Vec::with_capacity(256);
            msg.write_json(&mut bytes);
            Item::Text(bytes)
        }
        Outbound::Text(text) => Item::Text(text),
        Outbound::Close(reason) => Item::Close(reason),
    }
}

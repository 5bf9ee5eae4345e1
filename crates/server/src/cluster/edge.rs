//! The edge's side: sockets on this node whose room another node owns. Their frames go to the
//! owner as text; what the owner sends them arrives as [`Item`]s and goes into the socket's
//! own queue. A socket whose queue is full is cut off and the owner told it dropped.

use super::bus::{Bus, Envelope, Item, WireGrant};
use crate::ops::metrics;
use crate::signaling::hub::{Hub, HubMsg, Outbound};
use crate::signaling::queue;
use crate::signaling::route::{Payload, Socketside};
use rtcroom_core::{CloseReason, ConnId, Grant, RoomRef};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

#[derive(Debug)]
struct Bound {
    /// The node serving the socket now; this node's own id after it adopted the room.
    owner: String,
    room: RoomRef,
    /// This node closes the socket (a drain, or its owner is gone): the owner hears a drop,
    /// not a leave, whatever the client answers.
    closing: bool,
    out: queue::Sender<Outbound>,
    kill: Option<oneshot::Sender<()>>,
}

/// The bound sockets of this node.
#[derive(Debug)]
pub struct Edges {
    table: Mutex<HashMap<ConnId, Bound>>,
    bus: Bus,
    hub: Hub,
    me: String,
    max_frame: usize,
}

impl Edges {
    pub fn new(bus: Bus, hub: Hub, me: String, max_frame: usize) -> Self {
        Self {
            table: Mutex::default(),
            bus,
            hub,
            me,
            max_frame,
        }
    }

    /// Serve `socket` through `owner` from now on.
    pub async fn bind(&self, owner: String, socket: Socketside) {
        let Socketside {
            conn,
            app,
            room,
            ip,
            at,
            out,
            kill,
        } = socket;
        self.table.lock().expect("edges lock").insert(
            conn,
            Bound {
                owner: owner.clone(),
                room: RoomRef {
                    app_id: app,
                    room_id: room,
                },
                closing: false,
                out,
                kill: Some(kill),
            },
        );
        let at = at.map(|p| (p.lat(), p.lon()));
        let edge = self.me.clone();
        let open = Envelope::Open {
            edge,
            conn: conn.0,
            ip,
            at,
        };
        self.bus.send(&owner, &open).await;
    }

    fn owner(&self, conn: ConnId) -> Option<String> {
        let t = self.table.lock().expect("edges lock");
        t.get(&conn).map(|b| b.owner.clone())
    }

    /// A frame of a bound socket, to its owner (this node's hub after an adoption here).
    pub async fn frame(&self, conn: ConnId, payload: Payload, grant: Grant) {
        let Some(owner) = self.owner(conn) else {
            return;
        };
        let (text, binary) = match payload {
            Payload::Text(text) => (text, None),
            Payload::Binary(len) => (String::new(), Some(len)),
        };
        if owner == self.me {
            let at = std::time::Instant::now();
            let frame = match binary {
                Some(len) => Err(rtcroom_protocol::decode_binary(len, self.max_frame)),
                None => rtcroom_protocol::decode(&text, self.max_frame),
            };
            let msg = HubMsg::Frame {
                conn,
                frame,
                grant,
                at,
            };
            self.hub.send(msg).await;
            return;
        }
        let edge = self.me.clone();
        let grant = WireGrant::from(grant);
        let frame = Envelope::Frame {
            edge,
            conn: conn.0,
            text,
            grant,
            binary,
        };
        self.bus.send(&owner, &frame).await;
    }

    /// A bound socket closed.
    pub async fn closed(&self, conn: ConnId, clean: bool) {
        let Some(bound) = self.table.lock().expect("edges lock").remove(&conn) else {
            return;
        };
        let clean = clean && !bound.closing;
        if bound.owner == self.me {
            self.hub.send(HubMsg::Closed { conn, clean }).await;
        } else {
            let edge = self.me.clone();
            let closed = Envelope::Closed {
                edge,
                conn: conn.0,
                clean,
            };
            self.bus.send(&bound.owner, &closed).await;
        }
    }

    /// What the owner sends a socket. A full queue cuts the client off; the owner hears it
    /// as a dropped socket.
    pub async fn deliver(&self, conn: u64, items: Vec<Item>) {
        let conn = ConnId(conn);
        let mut dropped_by = None;
        {
            let mut t = self.table.lock().expect("edges lock");
            let Some(bound) = t.get_mut(&conn) else {
                metrics::cluster().bus_dropped.inc();
                return;
            };
            for item in items {
                let outbound = match item {
                    Item::Text(text) => Outbound::Text(text),
                    Item::Close(reason) => Outbound::Close(CloseReason::from(reason)),
                    Item::Cut => {
                        if let Some(kill) = bound.kill.take() {
                            let _ = kill.send(());
                        }
                        // The owner forgets the socket when it hears it dropped.
                        dropped_by = Some(bound.owner.clone());
                        t.remove(&conn);
                        break;
                    }
                };
                if let Err(queue::TrySendError::Full(_)) = bound.out.try_send(outbound) {
                    tracing::warn!(
                        conn = conn.0,
                        "outbound queue full; disconnecting a client that does not read"
                    );
                    metrics::metrics().slow_clients.inc();
                    if let Some(kill) = bound.kill.take() {
                        let _ = kill.send(());
                    }
                    dropped_by = Some(bound.owner.clone());
                    t.remove(&conn);
                    break;
                }
            }
        }
        if let Some(owner) = dropped_by {
            let edge = self.me.clone();
            let closed = Envelope::Closed {
                edge,
                conn: conn.0,
                clean: false,
            };
            self.bus.send(&owner, &closed).await;
        }
    }

    /// These sockets are served by `owner` from now on (a failover or a drain moved their room).
    pub fn moved(&self, owner: &str, conns: &[u64]) {
        let mut t = self.table.lock().expect("edges lock");
        for c in conns {
            if let Some(b) = t.get_mut(&ConnId(*c)) {
                b.owner = owner.to_owned();
            }
        }
    }

    /// The owners this node's sockets are bound to (to notice when one dies).
    pub fn owners(&self) -> Vec<String> {
        let t = self.table.lock().expect("edges lock");
        let mut owners: Vec<String> = t.values().map(|b| b.owner.clone()).collect();
        owners.sort();
        owners.dedup();
        owners
    }

    /// The rooms of the sockets bound to `owner`.
    pub fn rooms_of(&self, owner: &str) -> Vec<RoomRef> {
        let t = self.table.lock().expect("edges lock");
        let mut rooms: Vec<RoomRef> = t
            .values()
            .filter(|b| b.owner == owner)
            .map(|b| b.room.clone())
            .collect();
        rooms.sort();
        rooms.dedup();
        rooms
    }

    /// Close the sockets of `room` still bound to `owner` with 1012 (this node took the room
    /// over and they were not seated in it).
    pub fn close_bound_in(&self, owner: &str, room: &RoomRef) {
        let mut t = self.table.lock().expect("edges lock");
        for b in t
            .values_mut()
            .filter(|b| b.owner == owner && &b.room == room)
        {
            b.closing = true;
            let _ = b.out.try_send(Outbound::Close(CloseReason::ServiceRestart));
        }
    }

    /// Close the sockets still bound to `owner` with 1012 (its rooms found no new owner that
    /// knows them): the clients reconnect and join again.
    pub fn close_bound_to(&self, owner: &str) -> usize {
        let mut t = self.table.lock().expect("edges lock");
        let mut n = 0;
        for b in t.values_mut().filter(|b| b.owner == owner) {
            b.closing = true;
            let _ = b.out.try_send(Outbound::Close(CloseReason::ServiceRestart));
            n += 1;
        }
        n
    }

    /// The queue and kill switch of a bound socket, to attach it to this node's hub (this
    /// node adopted its room).
    pub fn attach_here(
        &self,
        conn: ConnId,
    ) -> Option<(queue::Sender<Outbound>, oneshot::Sender<()>)> {
        let mut t = self.table.lock().expect("edges lock");
        let b = t.get_mut(&conn)?;
        b.owner = self.me.clone();
        let (kill_tx, kill_rx) = oneshot::channel();
        // The socket's own switch stays here; the hub gets one that fires it.
        let socket_kill = b.kill.take()?;
        tokio::spawn(async move {
            if kill_rx.await.is_ok() {
                let _ = socket_kill.send(());
            }
        });
        Some((b.out.clone(), kill_tx))
    }

    /// Tell every bound socket to reconnect (close 1012): this node drains.
    pub fn close_all(&self) {
        let mut t = self.table.lock().expect("edges lock");
        for b in t.values_mut() {
            b.closing = true;
            let _ = b.out.try_send(Outbound::Close(CloseReason::ServiceRestart));
        }
    }
}

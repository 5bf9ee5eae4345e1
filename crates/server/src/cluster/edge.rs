//! The edge's side: sockets on this node whose room another node owns. Their frames go to the
//! owner as text; what the owner sends them arrives as [`Item`]s and goes into the socket's
//! own queue. A socket whose queue is full is cut off and the owner told it dropped.
//!
//! **Held envelopes.** An envelope for the owner that reached no subscriber (the owner died,
//! its room not yet taken over) comes back from the publisher ([`Bounce`]) and is held here,
//! per connection, in the order it was sent (every envelope of a connection is numbered);
//! the connection's later envelopes wait behind it. When the room's next owner is known (a
//! `Moved` from it, or this node adopted the room) they go there, in order, before anything
//! newer. An envelope to the old owner may still be on its way then (its PUBLISH not yet
//! answered): until a fence queued behind it has passed the publisher ([`Edges::passed`]),
//! which hands fences back after the bounces queued before them, everything the connection
//! sends is held, so that a late bounce takes its place by number. Held envelopes are
//! dropped (counted in `rtcroom_cluster_bus_held_dropped_total`, logged, the socket told to
//! reconnect) when a connection holds more than [`HELD_MAX`] or [`HELD_MAX_BYTES`], or when
//! nobody took the room over within `dead_after_ms` and three heartbeats; an owner still in
//! the registry by then (it was only between subscriptions) is sent them again. A socket
//! that waits for the answer to its `LetGo` is let go instead ([`Edges::let_go`]).
//!
//! **A question whose owner died.** A `LetGo` that reached its owner is not answered if the
//! owner dies first (no bounce tells so). When the socket's room moves, the question is asked
//! again of the room's next owner, after what the socket holds (unless it is held itself and
//! goes there anyway); an answer counts only from the node last asked. When nobody seats the
//! member, the socket is let go as for a held question.

use super::bus::{Bounce, Bus, Envelope, Item};
use crate::ops::metrics;
use crate::signaling::hub::{Hub, HubMsg, Outbound};
use crate::signaling::queue;
use crate::signaling::route::{Owner, Payload, Socketside};
use rtcroom_core::{CloseReason, ConnId, Grant, RoomRef};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::time;

/// At most this many envelopes held per connection.
pub const HELD_MAX: usize = 256;
/// At most this many bytes of envelopes held per connection.
pub const HELD_MAX_BYTES: usize = 1 << 20;

/// A connection's envelopes that reached no owner, by number.
#[derive(Debug)]
struct Held {
    /// The first bounce.
    since: Instant,
    items: VecDeque<(u64, Vec<u8>)>,
    bytes: usize,
    /// Being sent on (to the new owner, or to this node's hub): new ones join the queue.
    flushing: bool,
    /// This node adopts the room and its hub does not have the connection yet: wait.
    parked: bool,
    /// Bounced again by the owner being flushed to (it does not listen either): held for
    /// after this flush, not sent round again.
    again: Vec<(u64, Vec<u8>)>,
}

impl Held {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            items: VecDeque::new(),
            bytes: 0,
            flushing: false,
            parked: false,
            again: Vec::new(),
        }
    }

    /// Add `payload` in its place by number; `false` when the bound is passed.
    fn insert(&mut self, seq: u64, payload: Vec<u8>) -> bool {
        self.bytes += payload.len();
        let at = self.items.partition_point(|(s, _)| *s < seq);
        self.items.insert(at, (seq, payload));
        self.items.len() + self.again.len() <= HELD_MAX && self.bytes <= HELD_MAX_BYTES
    }

    fn len(&self) -> usize {
        self.items.len() + self.again.len()
    }
}

/// A `LetGo` of a bound socket that waits for its answer.
#[derive(Debug)]
struct Asked {
    /// The node asked last: only its answer counts.
    to: String,
    /// The question's number (a bounce of it is held and goes on with the rest).
    seq: u64,
    /// Until when the edge waits for an answer; put off when the question bounces, when its
    /// owner is seen dead, and when it is asked again. On tokio's clock (std's own outside
    /// tests), so that a test with paused time can pass it deterministically.
    until: time::Instant,
}

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
    /// The number of the connection's next envelope to its owner.
    next_seq: u64,
    held: Option<Held>,
    /// Envelopes numbered for the bus but not yet in its queue (a fence waits for them).
    queuing: u32,
    /// A fence to queue once `queuing` is back to 0.
    fence_due: bool,
    /// Fences on their way: the socket's owner changed, and what was sent to the previous
    /// one may still come back (bounce); until they pass, everything is held.
    fences: u32,
    /// The socket closed while envelopes were held: the entry stays until they (its
    /// `Closed` last) are sent on or dropped.
    gone: bool,
    /// Its `LetGo`, while the edge waits for the answer.
    ask: Option<Asked>,
}

impl Bound {
    /// The owner changed: hold everything until what was sent to the previous one has been
    /// answered (a bounce of it then goes first, in its place by number). `true` when the
    /// fence is to be queued now (else once the envelope being queued is).
    fn fence(&mut self) -> bool {
        self.held.get_or_insert_with(Held::new);
        self.fences += 1;
        if self.queuing > 0 {
            self.fence_due = true;
            false
        } else {
            true
        }
    }

    /// Drop what is held (counted and logged) and tell the socket to reconnect.
    fn drop_held(&mut self, conn: ConnId, why: &str) {
        let Some(held) = self.held.take() else {
            return;
        };
        let n = held.len();
        metrics::cluster().bus_held_dropped.inc_by(n as u64);
        tracing::warn!(
            conn = conn.0,
            owner = %self.owner,
            envelopes = n,
            why,
            "cluster: envelopes held for a dead owner dropped; the client is told to reconnect"
        );
        self.closing = true;
        let _ = self
            .out
            .try_send(Outbound::Close(CloseReason::ServiceRestart));
    }
}

/// Where a frame goes.
enum Route {
    /// This node's hub (it adopted the room), as text, binary length, grant.
    Hub(String, Option<usize>, Grant),
    Bus(String, u64, Vec<u8>),
    Held,
}

/// The bound sockets of this node.
#[derive(Debug)]
pub struct Edges {
    table: Mutex<HashMap<ConnId, Bound>>,
    /// Sockets whose owner was asked to let them go, and who waits for the answer.
    letting: Mutex<HashMap<ConnId, oneshot::Sender<bool>>>,
    bus: Bus,
    hub: Hub,
    me: String,
    max_frame: usize,
    /// How long to wait for an owner's answer to `LetGo` (it may have died meanwhile).
    patience: Duration,
    /// How long envelopes are held for a room to be taken over.
    hold_for: Duration,
}

impl Edges {
    pub fn new(
        bus: Bus,
        hub: Hub,
        me: String,
        max_frame: usize,
        patience: Duration,
        hold_for: Duration,
    ) -> Self {
        Self {
            table: Mutex::default(),
            letting: Mutex::default(),
            bus,
            hub,
            me,
            max_frame,
            patience,
            hold_for,
        }
    }

    /// Who serves bound socket `conn` now (`Here` after this node took its room over).
    pub fn serving(&self, conn: ConnId) -> Option<Owner> {
        let owner = self.owner(conn)?;
        Some(if owner == self.me {
            Owner::Here
        } else {
            Owner::Node(owner)
        })
    }

    /// Ask the node serving bound socket `conn` to let it go (its `join` names a room another
    /// node serves); when it does, the socket is no longer bound here. `false` when its
    /// member is in a room there, or no answer came within `patience`.
    ///
    /// The question is one of the socket's numbered envelopes: when its owner died, it is
    /// held with them and goes to the room's next owner, which answers; when the room's next
    /// owner did not seat the member (it had left), or nobody took the room over, nothing of
    /// the socket is pending anywhere any more and it is let go
    /// ([`Edges::release_asked`]): the join goes on, with no reconnect. When the owner dies
    /// after the question reached it, the room's next owner is asked again once it is known
    /// ([`Edges::moved`], or this node's hub after an adoption here), or the socket is let go
    /// as above. The edge waits `patience` and `hold_for` for an answer, from the question
    /// and again from each of these: its bounce, its owner seen dead, its asking again.
    pub async fn let_go(&self, conn: ConnId) -> bool {
        /// Where the question goes.
        enum Ask {
            /// This node's hub serves the socket and nothing of it is held: asked at once.
            Hub,
            Bus(String, u64, Vec<u8>),
            /// Behind what the socket holds (its owner died, or this node adopts its room).
            Held,
        }
        let (tx, mut rx) = oneshot::channel();
        self.letting.lock().expect("edges lock").insert(conn, tx);
        let ask = {
            let mut t = self.table.lock().expect("edges lock");
            match t.get_mut(&conn) {
                None => None,
                Some(b) if b.owner == self.me && b.held.is_none() => Some(Ask::Hub),
                Some(b) => {
                    let seq = b.next_seq;
                    b.next_seq += 1;
                    let edge = self.me.clone();
                    let payload = super::bus::encode(&Envelope::LetGo { edge, conn: conn.0 });
                    b.ask = Some(Asked {
                        to: b.owner.clone(),
                        seq,
                        until: time::Instant::now() + self.patience + self.hold_for,
                    });
                    Some(match &mut b.held {
                        Some(h) => {
                            metrics::cluster().bus_held.inc();
                            if !h.insert(seq, payload) {
                                b.drop_held(conn, "more held than the bound");
                            }
                            Ask::Held
                        }
                        None => {
                            b.queuing += 1;
                            Ask::Bus(b.owner.clone(), seq, payload)
                        }
                    })
                }
            }
        };
        let released = match ask {
            None => true,
            Some(Ask::Hub) => self.hub.let_go(conn).await,
            Some(ask) => {
                if let Ask::Bus(owner, seq, payload) = ask {
                    self.bus.send_held(&owner, conn.0, seq, payload).await;
                    self.queued(conn).await;
                }
                // The owner answers; or it died (before or after the question reached it):
                // its room's next owner answers, or the room is settled without the member.
                loop {
                    match self.ask_until(conn) {
                        Some(until) if until > time::Instant::now() => {
                            if let Ok(answer) = time::timeout_at(until, &mut rx).await {
                                break answer.unwrap_or(false);
                            }
                        }
                        // Waited long enough, or the socket is gone (a release answered).
                        _ => break rx.try_recv().unwrap_or(false),
                    }
                }
            }
        };
        self.letting.lock().expect("edges lock").remove(&conn);
        let mut t = self.table.lock().expect("edges lock");
        if released {
            t.remove(&conn);
        } else if let Some(b) = t.get_mut(&conn) {
            b.ask = None;
        }
        released
    }

    /// Until when the edge waits for the answer to socket `conn`'s `LetGo`.
    fn ask_until(&self, conn: ConnId) -> Option<time::Instant> {
        let t = self.table.lock().expect("edges lock");
        t.get(&conn)?.ask.as_ref().map(|a| a.until)
    }

    /// `owner`'s answer to a `LetGo`: everything it sent the socket before has been delivered
    /// to its queue. An answer from another node than the one asked last (an owner that was
    /// taken for dead, its room moved and the question asked again) is ignored.
    pub fn let_gone(&self, owner: &str, conn: u64, released: bool) {
        {
            let mut t = self.table.lock().expect("edges lock");
            if let Some(b) = t.get_mut(&ConnId(conn)) {
                if b.ask.as_ref().is_some_and(|a| a.to != owner) {
                    tracing::info!(
                        conn,
                        from = owner,
                        "cluster: an answer to LetGo from a node no longer asked; ignored"
                    );
                    return;
                }
                b.ask = None;
            }
        }
        if let Some(tx) = self
            .letting
            .lock()
            .expect("edges lock")
            .remove(&ConnId(conn))
        {
            let _ = tx.send(released);
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
                next_seq: 1,
                held: None,
                queuing: 0,
                fence_due: false,
                fences: 0,
                gone: false,
                ask: None,
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
        let payload = super::bus::encode(&open);
        self.bus.send_held(&owner, conn.0, 0, payload).await;
    }

    /// A frame of a bound socket, to its owner (this node's hub after an adoption here).
    pub async fn frame(&self, conn: ConnId, payload: Payload, grant: Grant) {
        let (text, binary) = match payload {
            Payload::Text(text) => (text, None),
            Payload::Binary(len) => (String::new(), Some(len)),
        };
        let route = {
            let mut t = self.table.lock().expect("edges lock");
            let Some(b) = t.get_mut(&conn) else {
                return;
            };
            if b.owner == self.me && b.held.is_none() {
                Route::Hub(text, binary, grant)
            } else {
                let seq = b.next_seq;
                b.next_seq += 1;
                let frame = Envelope::Frame {
                    edge: self.me.clone(),
                    conn: conn.0,
                    text,
                    grant,
                    binary,
                };
                let payload = super::bus::encode(&frame);
                match &mut b.held {
                    Some(h) => {
                        metrics::cluster().bus_held.inc();
                        if !h.insert(seq, payload) {
                            b.drop_held(conn, "more held than the bound");
                        }
                        Route::Held
                    }
                    None => {
                        b.queuing += 1;
                        Route::Bus(b.owner.clone(), seq, payload)
                    }
                }
            }
        };
        match route {
            Route::Hub(text, binary, grant) => {
                let at = Instant::now();
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
            }
            Route::Bus(owner, seq, payload) => {
                self.bus.send_held(&owner, conn.0, seq, payload).await;
                self.queued(conn).await;
            }
            Route::Held => {}
        }
    }

    /// An envelope of `conn` numbered under the lock is in the bus's queue now: a fence that
    /// waited for it follows it.
    async fn queued(&self, conn: ConnId) {
        let fence = {
            let mut t = self.table.lock().expect("edges lock");
            match t.get_mut(&conn) {
                Some(b) => {
                    b.queuing = b.queuing.saturating_sub(1);
                    let due = b.queuing == 0 && b.fence_due;
                    if due {
                        b.fence_due = false;
                    }
                    due
                }
                None => false,
            }
        };
        if fence {
            self.bus.fence(conn.0).await;
        }
    }

    /// A fence of `conn` passed the bus: what it held goes to its owner now.
    pub async fn passed(&self, conn: ConnId) {
        {
            let mut t = self.table.lock().expect("edges lock");
            let Some(b) = t.get_mut(&conn) else {
                return;
            };
            b.fences = b.fences.saturating_sub(1);
        }
        self.flush(conn).await;
    }

    /// A bound socket closed.
    pub async fn closed(&self, conn: ConnId, clean: bool) {
        let (owner, seq, clean) = {
            let mut t = self.table.lock().expect("edges lock");
            let Some(b) = t.get_mut(&conn) else {
                return;
            };
            let clean = clean && !b.closing;
            let seq = b.next_seq;
            b.next_seq += 1;
            if let Some(h) = &mut b.held {
                // Behind what is held, and the entry stays for it.
                let closed = Envelope::Closed {
                    edge: self.me.clone(),
                    conn: conn.0,
                    clean,
                };
                metrics::cluster().bus_held.inc();
                h.insert(seq, super::bus::encode(&closed));
                b.gone = true;
                b.kill = None;
                return;
            }
            let b = t.remove(&conn).expect("looked up above");
            (b.owner, seq, clean)
        };
        if owner == self.me {
            self.hub.send(HubMsg::Closed { conn, clean }).await;
        } else {
            let edge = self.me.clone();
            let closed = Envelope::Closed {
                edge,
                conn: conn.0,
                clean,
            };
            let payload = super::bus::encode(&closed);
            self.bus.send_held(&owner, conn.0, seq, payload).await;
        }
    }

    /// An envelope of this node's that reached no subscriber: held for the room's next
    /// owner, or sent on to it at once if the room moved meanwhile.
    pub async fn bounced(&self, bounce: Bounce) {
        let conn = ConnId(bounce.conn);
        let flush = {
            let mut t = self.table.lock().expect("edges lock");
            let Some(b) = t.get_mut(&conn) else {
                // The socket closed and its `Closed` found no owner either.
                metrics::cluster().bus_held_dropped.inc();
                tracing::info!(conn = conn.0, owner = %bounce.node, "cluster: an envelope of a closed socket reached no owner; dropped");
                return;
            };
            metrics::cluster().bus_held.inc();
            let moved = b.owner != bounce.node;
            if let Some(a) = b.ask.as_mut().filter(|a| a.seq == bounce.seq) {
                // The question reached no owner: the room's next one answers, or it is
                // settled without the member, within `hold_for`.
                a.until = time::Instant::now() + self.patience + self.hold_for;
            }
            let held = b.held.get_or_insert_with(Held::new);
            let within = if held.flushing && !moved {
                held.bytes += bounce.payload.len();
                held.again.push((bounce.seq, bounce.payload));
                held.len() <= HELD_MAX && held.bytes <= HELD_MAX_BYTES
            } else {
                held.insert(bounce.seq, bounce.payload)
            };
            if !within {
                b.drop_held(conn, "more held than the bound");
                if b.gone {
                    t.remove(&conn);
                }
                return;
            }
            moved
        };
        if flush {
            self.flush(conn).await;
        }
    }

    /// Send what `conn` holds to its owner now (this node's hub if it is this node), in
    /// order; what the connection sends meanwhile follows it.
    async fn flush(&self, conn: ConnId) {
        {
            let mut t = self.table.lock().expect("edges lock");
            let Some(b) = t.get_mut(&conn) else {
                return;
            };
            let fenced = b.fences > 0;
            let Some(h) = b.held.as_mut() else {
                return;
            };
            if h.flushing || h.parked || fenced {
                return;
            }
            h.flushing = true;
            // The socket waits for the answer to a `LetGo` of a previous owner, which
            // reached it (every bounce of it is in by now, the fences passed): ask again.
            if let Some(a) = b.ask.as_mut().filter(|a| a.to != b.owner) {
                let held = h.items.iter().chain(&h.again).any(|(s, _)| *s == a.seq);
                if !held {
                    let seq = b.next_seq;
                    b.next_seq += 1;
                    let edge = self.me.clone();
                    let payload = super::bus::encode(&Envelope::LetGo { edge, conn: conn.0 });
                    metrics::cluster().bus_held.inc();
                    h.insert(seq, payload);
                    tracing::info!(
                        conn = conn.0,
                        asked = %a.to,
                        owner = %b.owner,
                        "cluster: a LetGo its owner did not answer is asked again of the room's next owner"
                    );
                    a.seq = seq;
                }
                a.to = b.owner.clone();
                a.until = time::Instant::now() + self.patience + self.hold_for;
            }
        }
        loop {
            let (owner, seq, payload) = {
                let mut t = self.table.lock().expect("edges lock");
                let Some(b) = t.get_mut(&conn) else {
                    return;
                };
                let Some(h) = b.held.as_mut() else {
                    return;
                };
                match h.items.pop_front() {
                    Some((seq, payload)) => {
                        h.bytes -= payload.len();
                        (b.owner.clone(), seq, payload)
                    }
                    None if h.again.is_empty() => {
                        b.held = None;
                        if b.gone {
                            t.remove(&conn);
                        }
                        return;
                    }
                    None => {
                        // The owner flushed to did not listen either: hold the rest anew.
                        let again = std::mem::take(&mut h.again);
                        let mut next = Held::new();
                        for (seq, payload) in again {
                            next.insert(seq, payload);
                        }
                        b.held = Some(next);
                        return;
                    }
                }
            };
            metrics::cluster().bus_held_resent.inc();
            if owner == self.me {
                self.to_hub(conn, &payload).await;
            } else {
                self.bus.send_held(&owner, conn.0, seq, payload).await;
            }
        }
    }

    /// A held envelope to this node's hub (this node adopted the room).
    async fn to_hub(&self, conn: ConnId, payload: &[u8]) {
        match super::bus::decode(payload) {
            Ok(Envelope::Frame {
                text,
                grant,
                binary,
                ..
            }) => {
                let frame = match binary {
                    Some(len) => Err(rtcroom_protocol::decode_binary(len, self.max_frame)),
                    None => rtcroom_protocol::decode(&text, self.max_frame),
                };
                let at = Instant::now();
                let msg = HubMsg::Frame {
                    conn,
                    frame,
                    grant,
                    at,
                };
                self.hub.send(msg).await;
            }
            Ok(Envelope::Closed { clean, .. }) => {
                self.hub.send(HubMsg::Closed { conn, clean }).await;
            }
            // A `LetGo` the dead owner never saw: this node's hub answers it.
            Ok(Envelope::LetGo { .. }) => {
                let released = self.hub.let_go(conn).await;
                self.let_gone(&self.me, conn.0, released);
            }
            // An `Open` the dead owner never saw: the adoption seated the member already.
            _ => {}
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
                    Item::Close(reason) => Outbound::Close(reason),
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

    /// These sockets are served by `owner` from now on (a failover or a drain moved their
    /// room); what they hold goes there first.
    ///
    /// What the socket sent the previous owner may still be on its way, and come back
    /// (bounce) only after this: until a fence queued behind it has passed the bus
    /// ([`Edges::passed`]), everything the socket sends is held, so that a late bounce goes
    /// to the new owner in its place by number, not behind newer envelopes.
    pub async fn moved(&self, owner: &str, conns: &[u64]) {
        let mut fence = Vec::new();
        let mut flush = Vec::new();
        {
            let mut t = self.table.lock().expect("edges lock");
            for c in conns {
                let conn = ConnId(*c);
                let Some(b) = t.get_mut(&conn) else {
                    continue;
                };
                if b.owner == owner {
                    if b.held.is_some() {
                        flush.push(conn);
                    }
                    continue;
                }
                b.owner = owner.to_owned();
                if b.fence() {
                    fence.push(conn);
                }
            }
        }
        for conn in fence {
            self.bus.fence(conn.0).await;
        }
        for conn in flush {
            self.flush(conn).await;
        }
    }

    /// Socket `conn`, bound to a dead owner, waits for the answer to its `LetGo`, and its
    /// room was settled without it (taken over without seating it, or by nobody): nothing of
    /// the socket is pending anywhere, so it is let go (what it held for the dead owner is
    /// dropped, counted) and its join goes on. `false` when it waits for no answer.
    fn release_asked(&self, conn: ConnId, b: &mut Bound) -> bool {
        let Some(tx) = self.letting.lock().expect("edges lock").remove(&conn) else {
            return false;
        };
        b.ask = None;
        let n = b.held.take().map_or(0, |h| h.len());
        metrics::cluster().bus_held_dropped.inc_by(n as u64);
        tracing::info!(
            conn = conn.0,
            owner = %b.owner,
            envelopes = n,
            "cluster: a socket that asked its dead owner to let it go is let go (its room was settled without it)"
        );
        let _ = tx.send(true);
        true
    }

    /// Node `node` is seen dead: a socket bound to it that waits for the answer to its
    /// `LetGo` waits on until its room is settled (a `Moved`, or let go).
    pub fn owner_dead(&self, node: &str) {
        let mut t = self.table.lock().expect("edges lock");
        let until = time::Instant::now() + self.patience + self.hold_for;
        for b in t.values_mut().filter(|b| b.owner == node) {
            if let Some(a) = &mut b.ask {
                a.until = a.until.max(until);
            }
        }
    }

    /// The node serving bound socket `conn`.
    fn owner(&self, conn: ConnId) -> Option<String> {
        let t = self.table.lock().expect("edges lock");
        t.get(&conn).map(|b| b.owner.clone())
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
    /// over and they were not seated in it); what they held is dropped.
    pub fn close_bound_in(&self, owner: &str, room: &RoomRef) {
        let mut t = self.table.lock().expect("edges lock");
        for (conn, b) in t
            .iter_mut()
            .filter(|(_, b)| b.owner == owner && &b.room == room)
        {
            if self.release_asked(*conn, b) {
                continue;
            }
            b.drop_held(*conn, "the room's new owner did not seat the member");
            b.closing = true;
            let _ = b.out.try_send(Outbound::Close(CloseReason::ServiceRestart));
        }
        t.retain(|_, b| !(b.gone && b.held.is_none()));
    }

    /// Close the sockets still bound to `owner` with 1012 (its rooms found no new owner that
    /// knows them): the clients reconnect and join again. What they held is dropped.
    pub fn close_bound_to(&self, owner: &str) -> usize {
        let mut t = self.table.lock().expect("edges lock");
        let mut n = 0;
        for (conn, b) in t.iter_mut().filter(|(_, b)| b.owner == owner) {
            if self.release_asked(*conn, b) {
                continue;
            }
            b.drop_held(*conn, "nobody took the room over");
            b.closing = true;
            let _ = b.out.try_send(Outbound::Close(CloseReason::ServiceRestart));
            n += usize::from(!b.gone);
        }
        t.retain(|_, b| !(b.gone && b.held.is_none()));
        n
    }

    /// The queue and kill switch of a bound socket, to attach it to this node's hub (this
    /// node adopted its room). What it holds, and what it sends from now on, waits until
    /// [`Edges::attached`].
    pub fn attach_here(
        &self,
        conn: ConnId,
    ) -> Option<(queue::Sender<Outbound>, oneshot::Sender<()>)> {
        let mut t = self.table.lock().expect("edges lock");
        let b = t.get_mut(&conn)?;
        if b.gone {
            return None;
        }
        b.owner = self.me.clone();
        let (kill_tx, kill_rx) = oneshot::channel();
        // The socket's own switch stays here; the hub gets one that fires it.
        let socket_kill = b.kill.take()?;
        tokio::spawn(async move {
            if kill_rx.await.is_ok() {
                let _ = socket_kill.send(());
            }
        });
        // Held (a fence follows in `attached`) until what went to the previous owner is
        // answered, as for a `Moved`.
        b.held.get_or_insert_with(Held::new).parked = true;
        Some((b.out.clone(), kill_tx))
    }

    /// The hub has the sockets attached by [`Edges::attach_here`]: what they held goes to it.
    pub async fn attached(&self, conns: &[ConnId]) {
        for conn in conns {
            let fence = {
                let mut t = self.table.lock().expect("edges lock");
                let Some(b) = t.get_mut(conn) else {
                    continue;
                };
                if let Some(h) = &mut b.held {
                    h.parked = false;
                }
                b.fence()
            };
            if fence {
                self.bus.fence(conn.0).await;
            }
        }
    }

    /// Once a heartbeat: envelopes held longer than `hold_for` are sent again to an owner
    /// still in the registry (`live`: it was only between subscriptions), else dropped.
    pub async fn sweep(&self, live: &BTreeSet<String>) {
        let mut again = Vec::new();
        {
            let mut t = self.table.lock().expect("edges lock");
            for (conn, b) in t.iter_mut() {
                let Some(h) = &b.held else {
                    continue;
                };
                if h.flushing || h.parked || b.fences > 0 || h.since.elapsed() < self.hold_for {
                    continue;
                }
                if b.owner != self.me && live.contains(&b.owner) {
                    let h = b.held.take().expect("held");
                    let items = h.items.into_iter().chain(h.again);
                    again.push((*conn, b.owner.clone(), items.collect::<Vec<_>>()));
                } else if !self.release_asked(*conn, b) {
                    b.drop_held(*conn, "nobody took the room over in time");
                }
            }
            t.retain(|_, b| !(b.gone && b.held.is_none()));
        }
        for (conn, owner, items) in again {
            for (seq, payload) in items {
                metrics::cluster().bus_held_resent.inc();
                self.bus.send_held(&owner, conn.0, seq, payload).await;
            }
        }
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

#[cfg(test)]
mod tests {
    //! The edge's ordering with the publisher played by the test: each step is an event the
    //! real bus could deliver in this order (a bounce comes back one publish round trip after
    //! its envelope was queued; a `Moved` may arrive on the subscription before it).

    use super::*;
    use crate::cluster::bus::Outgoing;
    use tokio::sync::mpsc;

    const CONN: u64 = 7;
    /// How long the edge waits for an owner's answer (`dead_after_ms`).
    const PATIENCE: Duration = Duration::from_secs(30);
    /// How long envelopes are held for a room to be taken over.
    const HOLD_FOR: Duration = Duration::from_secs(60);

    fn edges() -> (Edges, mpsc::Receiver<Outgoing>, mpsc::Receiver<HubMsg>) {
        let (bus, published) = Bus::unpublished();
        let (hub, hub_rx) = Hub::unanswered();
        let edges = Edges::new(bus, hub, "edge".into(), 64 * 1024, PATIENCE, HOLD_FOR);
        (edges, published, hub_rx)
    }

    /// Bind socket [`CONN`] to `owner`; its queue. The `Open` (number 0) is read.
    async fn bind(
        edges: &Edges,
        published: &mut mpsc::Receiver<Outgoing>,
        owner: &str,
    ) -> queue::Receiver<Outbound> {
        let (out, rx) = queue::channel(16);
        let (kill, _) = oneshot::channel();
        let socket = Socketside {
            conn: ConnId(CONN),
            app: "10000".into(),
            room: "r1".into(),
            ip: "127.0.0.1".into(),
            at: None,
            out,
            kill,
        };
        edges.bind(owner.into(), socket).await;
        let open = published.try_recv().expect("the Open is queued");
        assert_eq!((open.node(), open.held()), (Some(owner), Some((CONN, 0))));
        rx
    }

    async fn frame(edges: &Edges, text: &str) {
        let payload = Payload::Text(text.into());
        edges.frame(ConnId(CONN), payload, Grant::Unchecked).await;
    }

    /// Everything queued for the bus now: (node or `fence`, number, frame text).
    fn queued(published: &mut mpsc::Receiver<Outgoing>) -> Vec<(String, u64, String)> {
        let mut all = Vec::new();
        while let Ok(o) = published.try_recv() {
            if let Some(c) = o.fence() {
                all.push(("fence".into(), c, String::new()));
                continue;
            }
            let text = match super::super::bus::decode(o.payload()) {
                Ok(Envelope::Frame { text, .. }) => text,
                Ok(Envelope::LetGo { .. }) => "letGo".into(),
                other => format!("{other:?}"),
            };
            let (_, seq) = o.held().expect("an edge's envelope");
            all.push((o.node().expect("a node").to_owned(), seq, text));
        }
        all
    }

    /// The socket's `LetGo`, numbered `seq`, coming back from node "a".
    fn let_go_bounce(seq: u64) -> Bounce {
        let question = Envelope::LetGo {
            edge: "edge".into(),
            conn: CONN,
        };
        Bounce {
            node: "a".into(),
            conn: CONN,
            seq,
            payload: super::super::bus::encode(&question),
        }
    }

    fn bounce(seq: u64, text: &str) -> Bounce {
        let frame = Envelope::Frame {
            edge: "edge".into(),
            conn: CONN,
            text: text.into(),
            grant: Grant::Unchecked,
            binary: None,
        };
        Bounce {
            node: "a".into(),
            conn: CONN,
            seq,
            payload: super::super::bus::encode(&frame),
        }
    }

    fn row(node: &str, seq: u64, text: &str) -> (String, u64, String) {
        (node.into(), seq, text.into())
    }

    #[tokio::test]
    async fn a_bounce_that_comes_back_after_moved_goes_before_newer_envelopes() {
        let (edges, mut published, _hub) = edges();
        let _socket = bind(&edges, &mut published, "a").await;
        frame(&edges, "f1").await;
        assert_eq!(queued(&mut published), [row("a", 1, "f1")]);
        // `a` died with f1 on its way; `b` took the room over and says so before f1's
        // PUBLISH was answered.
        edges.moved("b", &[CONN]).await;
        frame(&edges, "f2").await;
        // Nothing goes to `b` before what went to `a` is answered: the fence follows f1.
        assert_eq!(queued(&mut published), [row("fence", CONN, "")]);
        edges.bounced(bounce(1, "f1")).await;
        assert_eq!(queued(&mut published), []);
        // The fence passes (after f1's bounce, as the publisher hands them back in order).
        edges.passed(ConnId(CONN)).await;
        frame(&edges, "f3").await;
        assert_eq!(
            queued(&mut published),
            [row("b", 1, "f1"), row("b", 2, "f2"), row("b", 3, "f3")]
        );
    }

    #[tokio::test]
    async fn a_move_whose_envelopes_all_reached_the_old_owner_holds_nothing_back() {
        let (edges, mut published, _hub) = edges();
        let _socket = bind(&edges, &mut published, "a").await;
        frame(&edges, "f1").await;
        edges.moved("b", &[CONN]).await;
        frame(&edges, "f2").await;
        assert_eq!(
            queued(&mut published),
            [row("a", 1, "f1"), row("fence", CONN, "")]
        );
        // f1 reached `a` (a drain): no bounce; the fence passes.
        edges.passed(ConnId(CONN)).await;
        frame(&edges, "f3").await;
        assert_eq!(
            queued(&mut published),
            [row("b", 2, "f2"), row("b", 3, "f3")]
        );
    }

    #[tokio::test]
    async fn bounces_on_both_sides_of_moved_keep_their_numbers_order() {
        let (edges, mut published, _hub) = edges();
        let _socket = bind(&edges, &mut published, "a").await;
        frame(&edges, "f1").await;
        frame(&edges, "f2").await;
        edges.bounced(bounce(1, "f1")).await;
        frame(&edges, "f3").await; // held behind f1
        edges.moved("b", &[CONN]).await;
        // f2 was in the same batch as f1, or the next: its bounce comes after `Moved`.
        edges.bounced(bounce(2, "f2")).await;
        edges.passed(ConnId(CONN)).await;
        assert_eq!(
            queued(&mut published),
            [
                row("a", 1, "f1"),
                row("a", 2, "f2"),
                row("fence", CONN, ""),
                row("b", 1, "f1"),
                row("b", 2, "f2"),
                row("b", 3, "f3"),
            ]
        );
    }

    #[tokio::test]
    async fn a_let_go_that_its_dead_owner_never_saw_is_granted_once_the_room_is_settled() {
        let (edges, mut published, _hub) = edges();
        let edges = std::sync::Arc::new(edges);
        let mut socket = bind(&edges, &mut published, "a").await;
        frame(&edges, "leave").await;
        assert_eq!(queued(&mut published), [row("a", 1, "leave")]);
        let asking = tokio::spawn({
            let edges = edges.clone();
            async move { edges.let_go(ConnId(CONN)).await }
        });
        // The question is the socket's next envelope, to the same owner.
        let letgo = loop {
            let q = queued(&mut published);
            if !q.is_empty() {
                break q;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(letgo, [row("a", 2, "letGo")]);
        edges.bounced(bounce(1, "leave")).await;
        edges.bounced(let_go_bounce(2)).await;
        // The room's new owner (this node or another) did not seat the member.
        let room = RoomRef {
            app_id: "10000".into(),
            room_id: "r1".into(),
        };
        edges.close_bound_in("a", &room);
        assert!(asking.await.unwrap(), "the socket is let go");
        assert!(edges.serving(ConnId(CONN)).is_none(), "no longer bound");
        assert!(
            socket.try_recv().is_err(),
            "the socket is not told to reconnect"
        );
    }

    /// Ask to let socket [`CONN`] go (after its `leave`, number 1); the task asking, once
    /// its question (number 2) is queued to `owner`.
    async fn ask_let_go(
        edges: &std::sync::Arc<Edges>,
        published: &mut mpsc::Receiver<Outgoing>,
        owner: &str,
    ) -> tokio::task::JoinHandle<bool> {
        frame(edges, "leave").await;
        assert_eq!(queued(published), [row(owner, 1, "leave")]);
        let asking = tokio::spawn({
            let edges = edges.clone();
            async move { edges.let_go(ConnId(CONN)).await }
        });
        let letgo = loop {
            let q = queued(published);
            if !q.is_empty() {
                break q;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(letgo, [row(owner, 2, "letGo")]);
        asking
    }

    #[tokio::test]
    async fn a_let_go_its_owner_died_without_answering_is_asked_again_of_the_next_owner() {
        let (edges, mut published, _hub) = edges();
        let edges = std::sync::Arc::new(edges);
        let _socket = bind(&edges, &mut published, "a").await;
        let asking = ask_let_go(&edges, &mut published, "a").await;
        // `a` got both and died before answering (no bounce); `b` took the room over, seating
        // the member, and says so.
        edges.owner_dead("a");
        edges.moved("b", &[CONN]).await;
        assert_eq!(queued(&mut published), [row("fence", CONN, "")]);
        edges.passed(ConnId(CONN)).await;
        assert_eq!(queued(&mut published), [row("b", 3, "letGo")]);
        // A late answer of `a` (it was only stalled) no longer counts; `b`'s does.
        edges.let_gone("a", CONN, true);
        tokio::task::yield_now().await;
        assert!(
            !asking.is_finished(),
            "the answer of a node no longer asked"
        );
        edges.let_gone("b", CONN, false);
        assert!(
            !asking.await.unwrap(),
            "b's answer: the member sits in its room"
        );
        assert_eq!(edges.serving(ConnId(CONN)), Some(Owner::Node("b".into())));
    }

    /// Time is tokio's, paused: it moves only when the test advances it.
    #[tokio::test(start_paused = true)]
    async fn a_let_go_whose_owner_is_seen_dead_waits_past_its_first_deadline_for_the_next_owner() {
        let (edges, mut published, _hub) = edges();
        let edges = std::sync::Arc::new(edges);
        let mut socket = bind(&edges, &mut published, "a").await;
        let asking = ask_let_go(&edges, &mut published, "a").await;
        // `a` got the question and died before answering (no bounce); it is seen dead a
        // second before the edge would stop waiting for its answer.
        time::advance(PATIENCE + HOLD_FOR - Duration::from_secs(1)).await;
        edges.owner_dead("a");
        // Its room is being taken over meanwhile; the first deadline passes.
        time::advance(Duration::from_secs(10)).await;
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        assert!(
            !asking.is_finished(),
            "the socket waits on until its room is settled"
        );
        assert!(
            socket.try_recv().is_err(),
            "the socket is not told to reconnect"
        );
        // `b` took the room over and says so: it is asked again, and lets the member go.
        edges.moved("b", &[CONN]).await;
        edges.passed(ConnId(CONN)).await;
        assert_eq!(
            queued(&mut published),
            [row("fence", CONN, ""), row("b", 3, "letGo")]
        );
        edges.let_gone("b", CONN, true);
        assert!(asking.await.unwrap(), "the join goes on");
        assert!(edges.serving(ConnId(CONN)).is_none(), "no longer bound");
        assert!(
            socket.try_recv().is_err(),
            "the socket is not told to reconnect"
        );
    }

    #[tokio::test]
    async fn a_let_go_that_bounced_goes_to_the_next_owner_once() {
        let (edges, mut published, _hub) = edges();
        let edges = std::sync::Arc::new(edges);
        let _socket = bind(&edges, &mut published, "a").await;
        let asking = ask_let_go(&edges, &mut published, "a").await;
        edges.bounced(bounce(1, "leave")).await;
        edges.bounced(let_go_bounce(2)).await;
        edges.moved("b", &[CONN]).await;
        edges.passed(ConnId(CONN)).await;
        assert_eq!(
            queued(&mut published),
            [
                row("fence", CONN, ""),
                row("b", 1, "leave"),
                row("b", 2, "letGo")
            ]
        );
        edges.let_gone("b", CONN, true);
        assert!(asking.await.unwrap(), "let go");
        assert!(edges.serving(ConnId(CONN)).is_none(), "no longer bound");
    }

    #[tokio::test]
    async fn a_let_go_its_owner_died_without_answering_is_granted_when_nobody_seats_the_member() {
        let (edges, mut published, _hub) = edges();
        let edges = std::sync::Arc::new(edges);
        let mut socket = bind(&edges, &mut published, "a").await;
        let asking = ask_let_go(&edges, &mut published, "a").await;
        edges.owner_dead("a");
        // Nobody moved the socket: its dead owner's rooms were taken over without it.
        assert_eq!(edges.close_bound_to("a"), 0);
        assert!(asking.await.unwrap(), "the socket is let go");
        assert!(edges.serving(ConnId(CONN)).is_none(), "no longer bound");
        assert!(
            socket.try_recv().is_err(),
            "the socket is not told to reconnect"
        );
    }

    #[tokio::test]
    async fn a_socket_of_a_room_taken_over_without_it_that_asked_nothing_reconnects() {
        let (edges, mut published, _hub) = edges();
        let mut socket = bind(&edges, &mut published, "a").await;
        frame(&edges, "f1").await;
        edges.bounced(bounce(1, "f1")).await;
        let room = RoomRef {
            app_id: "10000".into(),
            room_id: "r1".into(),
        };
        edges.close_bound_in("a", &room);
        assert!(matches!(
            socket.try_recv(),
            Ok(Outbound::Close(CloseReason::ServiceRestart))
        ));
    }
}

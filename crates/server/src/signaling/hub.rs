//! The hub: the one task that owns the room engine and carries out its effects.
//!
//! Connection tasks decode frames (in parallel, on their own tasks) and send typed inputs
//! here over a bounded channel; the hub feeds them to the engine in arrival order and
//! delivers each `Send` effect to the connection's bounded outbound queue with `try_send`.
//! A full queue means the client does not read: it is cut off, never waited for, so one
//! slow client cannot delay its room.
//!
//! **Invariant:** the hub never awaits anything but its own inbox and its timer; it does no
//! IO, so the engine step is never stalled by a socket, a database or a mail server. What it
//! hands on only queues: messages to bounded connection queues, records to the writer's
//! channel, alerts to the alert task, log lines to the log queue (`ops::log`).

use super::changes::Changed;
pub use super::changes::RoomState;
use super::queue;
use crate::clock::{engine_now, monotonic, now};
use crate::ops::alerts::Alerts;
use crate::ops::{metrics, telemetry};
use rtcroom_core::{
    Adopted, CloseReason, ConnId, Effect, Engine, EngineStats, Entropy, Grant, Input, RoomInfo,
    RoomRef, Snapshot,
};
use rtcroom_protocol::{DecodeError, Request, ServerMsg};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What the hub delivers to a connection task.
#[derive(Debug)]
pub enum Outbound {
    // Boxed: a queued message's slot is paid by every queue it passes through (160 bytes
    // unboxed), and an SDP is one allocation either way.
    Msg(Box<ServerMsg>),
    /// A message serialized elsewhere, as its UTF-8 text: by the node that owns the member's
    /// room (`[cluster]`). Written as it is, not checked again: only the owner's serializer
    /// makes these, and the bus between the nodes is Redis the cluster trusts.
    Text(Vec<u8>),
    Close(CloseReason),
}

/// Messages to the hub.
// Frames dominate the inbox; boxing them would cost an allocation per frame.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum HubMsg {
    Open {
        conn: ConnId,
        ip: String,
        /// Where GeoIP places `ip`, if it does.
        at: Option<rtcroom_ice::GeoPoint>,
        out: queue::Sender<Outbound>,
        /// Fired by the hub to cut the connection off at once.
        kill: oneshot::Sender<()>,
    },
    Frame {
        conn: ConnId,
        frame: Result<Request, DecodeError>,
        grant: Grant,
        /// When the frame arrived on its socket.
        at: std::time::Instant,
    },
    Closed {
        conn: ConnId,
        clean: bool,
    },
    Rooms(oneshot::Sender<Vec<RoomInfo>>),
    Stats(oneshot::Sender<EngineStats>),
    Kick {
        app_id: String,
        room_id: String,
        uid: String,
        why: String,
        reply: oneshot::Sender<bool>,
    },
    Shutdown(oneshot::Sender<()>),
    /// The server is about to restart: the hub answers with the snapshot of its rooms and
    /// from then on feeds the engine nothing that would change them (no input, no timer).
    /// It waits for `Restart` once the snapshot is kept, or `Shutdown` when it cannot be.
    Freeze(oneshot::Sender<Snapshot>),
    /// Every client is told to reconnect (close 1012), nobody leaves; then the hub stops.
    Restart(oneshot::Sender<()>),
    /// An ICE server registered, deregistered or reported (the ICE HTTP API).
    Ice {
        command: rtcroom_ice::IceCommand,
        reply: oneshot::Sender<rtcroom_ice::Reply>,
    },
    IceServers(oneshot::Sender<Vec<rtcroom_ice::ServerStatus>>),
    /// `[cluster]`: another node's embedded TURN server registered (or registered again).
    IcePeer {
        registration: rtcroom_ice::Register,
        reply: oneshot::Sender<rtcroom_ice::Reply>,
    },
    /// `[cluster]`: reservations (`(ip, kbps)`) another node's selections made.
    IceReserved(Vec<(String, u64)>),
    /// `[cluster]`: seat the rooms of `snapshot` (a failover or a drain elsewhere) beside
    /// this engine's own; `seats` names the connection each member sits on (with its link),
    /// members not named wait for a resume.
    Adopt {
        snapshot: Box<Snapshot>,
        seats: Vec<Seat>,
        reply: oneshot::Sender<Result<Adopted, String>>,
    },
    /// `[cluster]`: hand a room away (a drain), nobody told: its state, where each member
    /// sat, and the queues of its connections that were open (the hub forgets them).
    Release {
        room: RoomRef,
        reply: oneshot::Sender<Released>,
    },
    /// `[cluster]`: end rooms another node won after a split; their sockets get 1012.
    EndRooms(Vec<RoomRef>),
    /// `[cluster]`: hand every room's state to the writer again (Redis came back).
    Resync,
    /// `[cluster]`: a connection's `join` names a room another node serves. If its member
    /// is in no room here (it never joined, it left, its join was refused), the hub forgets
    /// the connection (as a clean close) and answers `true`: everything it sent the
    /// connection is in its queue already. `false`: it is a member here and stays.
    LetGo {
        conn: ConnId,
        reply: oneshot::Sender<bool>,
    },
    /// The rtcConfig for a login of `uid`.
    LoginRtc {
        uid: String,
        reply: oneshot::Sender<Option<rtcroom_protocol::SharedJson>>,
    },
}

/// Where a member of an adopted room sits: its room, uid, connection and that
/// connection's link.
#[derive(Debug)]
pub struct Seat {
    pub room: RoomRef,
    pub uid: String,
    pub conn: ConnId,
    pub out: queue::Sender<Outbound>,
    pub kill: oneshot::Sender<()>,
}

/// A room handed away: [`HubMsg::Release`].
#[derive(Debug)]
pub struct Released {
    pub snapshot: Snapshot,
    pub conns: Vec<(String, ConnId)>,
    pub handed: Vec<(ConnId, queue::Sender<Outbound>)>,
}

/// A cheap handle for sending to the hub.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: mpsc::Sender<HubMsg>,
}

impl Hub {
    /// A hub whose inbox nobody reads (while the receiver lives): a stuck engine, for tests.
    #[cfg(test)]
    pub fn unanswered() -> (Self, mpsc::Receiver<HubMsg>) {
        let (tx, rx) = mpsc::channel(1);
        (Self { tx }, rx)
    }

    pub async fn send(&self, msg: HubMsg) -> bool {
        self.tx.send(msg).await.is_ok()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> HubMsg) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    pub async fn rooms(&self) -> Option<Vec<RoomInfo>> {
        self.ask(HubMsg::Rooms).await
    }

    pub async fn stats(&self) -> Option<EngineStats> {
        self.ask(HubMsg::Stats).await
    }

    pub async fn kick(&self, app_id: String, room_id: String, uid: String, why: String) -> bool {
        self.ask(|reply| HubMsg::Kick {
            app_id,
            room_id,
            uid,
            why,
            reply,
        })
        .await
        .unwrap_or(false)
    }

    /// Hand an ICE command (register, report, deregister) to the engine; `None` once the
    /// engine has stopped.
    pub async fn ice(&self, command: rtcroom_ice::IceCommand) -> Option<rtcroom_ice::Reply> {
        self.ask(|reply| HubMsg::Ice { command, reply }).await
    }

    /// `[cluster]`: register another node's embedded TURN server; `None` once the engine has
    /// stopped.
    pub async fn ice_peer(
        &self,
        registration: rtcroom_ice::Register,
    ) -> Option<rtcroom_ice::Reply> {
        self.ask(|reply| HubMsg::IcePeer {
            registration,
            reply,
        })
        .await
    }

    /// `[cluster]`: hold reservations another node made, until each server's next report.
    pub async fn ice_reserved(&self, reserved: Vec<(String, u64)>) {
        self.send(HubMsg::IceReserved(reserved)).await;
    }

    pub async fn ice_servers(&self) -> Option<Vec<rtcroom_ice::ServerStatus>> {
        self.ask(HubMsg::IceServers).await
    }

    /// [`HubMsg::LetGo`]; `false` once the hub has stopped.
    pub async fn let_go(&self, conn: ConnId) -> bool {
        self.ask(|reply| HubMsg::LetGo { conn, reply })
            .await
            .unwrap_or(false)
    }

    pub async fn login_rtc(&self, uid: String) -> Option<rtcroom_protocol::SharedJson> {
        self.ask(|reply| HubMsg::LoginRtc { uid, reply })
            .await
            .flatten()
    }

    /// Seat adopted rooms (`[cluster]`); `None` once the hub has stopped.
    pub async fn adopt(
        &self,
        snapshot: Snapshot,
        seats: Vec<Seat>,
    ) -> Option<Result<Adopted, String>> {
        self.ask(|reply| HubMsg::Adopt {
            snapshot: Box::new(snapshot),
            seats,
            reply,
        })
        .await
    }

    /// Hand a room away (`[cluster]`); nobody is told.
    pub async fn release(&self, room: RoomRef) -> Option<Released> {
        self.ask(|reply| HubMsg::Release { room, reply }).await
    }

    /// Every room's state to the writer again (`[cluster]`).
    pub async fn resync(&self) {
        let _ = self.send(HubMsg::Resync).await;
    }

    /// End rooms another node won (`[cluster]`).
    pub async fn end_rooms(&self, rooms: Vec<RoomRef>) {
        let _ = self.send(HubMsg::EndRooms(rooms)).await;
    }

    /// Tell every member the server goes away and close every record; returns when done.
    pub async fn shutdown(&self) {
        let _ = self.ask(HubMsg::Shutdown).await;
    }

    /// The rooms as they are, for the next start; the engine stays as it is from then on
    /// (`None` once the hub has stopped). Follow with [`Hub::restart`] once the snapshot is
    /// kept, or with [`Hub::shutdown`] when it cannot be.
    pub async fn freeze(&self) -> Option<Snapshot> {
        self.ask(HubMsg::Freeze).await
    }

    /// Tell every client to reconnect (close 1012), nobody leaving, and stop the hub;
    /// returns when done.
    pub async fn restart(&self) {
        let _ = self.ask(HubMsg::Restart).await;
    }
}

/// Entropy straight from the operating system, read in blocks.
#[derive(Debug)]
pub struct OsEntropy {
    buf: [u8; 4096],
    pos: usize,
}

impl OsEntropy {
    pub fn new() -> Self {
        Self {
            buf: [0; 4096],
            pos: 4096,
        }
    }
}

impl Entropy for OsEntropy {
    fn next_u64(&mut self) -> u64 {
        if self.pos + 8 > self.buf.len() {
            getrandom::fill(&mut self.buf).expect("the operating system provides randomness");
            self.pos = 0;
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.buf[self.pos..self.pos + 8]);
        self.pos += 8;
        u64::from_le_bytes(word)
    }
}

/// Where the hub hands the effects that do not go to a connection: call records to the
/// record writer, alerts to the alert task. Both only queue, never wait.
#[derive(Debug, Clone, Default)]
pub struct Sinks {
    pub records: RecordSink,
    pub alerts: Alerts,
    /// `[cluster]`: the rooms that changed, for their copy in Redis (at most one batch per
    /// [`STATE_EVERY`]; a full queue keeps them for the next).
    pub states: Option<mpsc::Sender<Vec<RoomState>>>,
    /// `[cluster]`: the reservations of this engine's selections (`(ip, kbps)`), for the
    /// other nodes' registries. Never waited on: a full queue drops them (each lasts only
    /// until its server's next report anyway).
    pub reserved: Option<mpsc::Sender<(String, u64)>>,
}

/// How often changed rooms are handed to the cluster's state writer.
const STATE_EVERY: Duration = Duration::from_millis(100);

/// The hub's handle on the record writer. The default sink has no writer and discards every
/// record (call records off); it keeps nothing, so it grows no memory.
#[derive(Debug, Clone, Default)]
pub struct RecordSink {
    inner: Option<rtcroom_store::RecordSink>,
}

impl RecordSink {
    /// A sink into the record writer of `rtcroom-store`.
    pub fn new(sink: rtcroom_store::RecordSink) -> Self {
        Self { inner: Some(sink) }
    }

    /// Hand one record over; never blocks, never drops while the writer runs. A record sent
    /// after the writer stopped is counted in its `dropped` and logged.
    pub fn push(&self, record: rtcroom_core::Record) {
        if let Some(sink) = &self.inner
            && sink.try_send(record).is_err()
        {
            tracing::error!(
                critical = true,
                "the record writer has stopped; a call record was dropped"
            );
        }
    }
}

struct Link {
    out: queue::Sender<Outbound>,
    kill: Option<oneshot::Sender<()>>,
}

type Links = HashMap<ConnId, Link, foldhash::fast::FixedState>;

/// Start the hub task around `engine`; `inbox` bounds how many inputs may wait.
pub fn spawn<E: Entropy + Send + 'static>(
    engine: Engine<E>,
    sinks: Sinks,
    inbox: usize,
) -> (Hub, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(inbox);
    let task = tokio::spawn(run(engine, sinks, rx));
    (Hub { tx }, task)
}

async fn run<E: Entropy>(mut engine: Engine<E>, sinks: Sinks, mut rx: mpsc::Receiver<HubMsg>) {
    // Connection numbers are the server's own, so a fast hasher is safe here.
    let mut links: Links = Links::default();
    // Set by a restart: the engine's state is in the snapshot, so nothing may change it.
    let mut frozen = false;
    let mut batch = Vec::with_capacity(256);
    // ICE servers that stop reporting leave rotation; the registry is checked once a second.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut changed = Changed::new(&mut engine, sinks.states.clone());
    let mut flush = tokio::time::interval(STATE_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let sleep = engine.poll_timeout().map(|at| {
            // Deadlines are on the monotonic clock: a step of the wall clock moves none.
            let wait = at.0.saturating_sub(monotonic().0);
            tokio::time::Instant::now() + Duration::from_millis(wait)
        });
        tokio::select! {
            n = rx.recv_many(&mut batch, 256) => {
                if n == 0 {
                    break;
                }
                for msg in batch.drain(..) {
                    let arrived = match &msg {
                        HubMsg::Frame { at, .. } => Some(*at),
                        _ => None,
                    };
                    if let HubMsg::Resync = msg {
                        changed.all(&engine);
                        continue;
                    }
                    let stop = if frozen {
                        handle_frozen(&mut engine, &mut links, msg)
                    } else {
                        handle(&mut engine, &mut links, msg, &mut frozen)
                    };
                    drain(&mut engine, &mut links, &sinks);
                    if let Some(at) = arrived {
                        metrics::handled_in(at.elapsed());
                    }
                    if let Some(reply) = stop {
                        let _ = reply.send(());
                        return;
                    }
                }
            }
            () = async { tokio::time::sleep_until(sleep.unwrap_or_else(tokio::time::Instant::now)).await },
                if sleep.is_some() && !frozen => {
                engine.handle_timeout(engine_now());
            }
            _ = tick.tick(), if !frozen => {
                engine.ice_poll(engine_now());
            }
            _ = flush.tick(), if changed.on() => changed.flush(&engine),
        }
        drain(&mut engine, &mut links, &sinks);
        changed.note(&mut engine);
    }
}

/// Feed one message to the engine. Returns the reply channel of a shutdown, after which the
/// hub stops.
fn handle<E: Entropy>(
    engine: &mut Engine<E>,
    links: &mut Links,
    msg: HubMsg,
    frozen: &mut bool,
) -> Option<oneshot::Sender<()>> {
    let t = engine_now();
    match msg {
        HubMsg::Open {
            conn,
            ip,
            at,
            out,
            kill,
        } => {
            links.insert(
                conn,
                Link {
                    out,
                    kill: Some(kill),
                },
            );
            engine.handle(t, Input::Open { conn, ip, at });
        }
        HubMsg::Frame {
            conn, frame, grant, ..
        } => {
            engine.handle(t, Input::Frame { conn, frame, grant });
        }
        HubMsg::Closed { conn, clean } => {
            links.remove(&conn);
            engine.handle(t, Input::Closed { conn, clean });
        }
        HubMsg::Rooms(reply) => {
            let _ = reply.send(engine.rooms());
        }
        HubMsg::Stats(reply) => {
            let _ = reply.send(engine.stats());
        }
        HubMsg::Kick {
            app_id,
            room_id,
            uid,
            why,
            reply,
        } => {
            let _ = reply.send(engine.kick(t, &app_id, &room_id, &uid, &why));
        }
        HubMsg::Ice { command, reply } => {
            let _ = reply.send(engine.ice_command(t, command));
        }
        HubMsg::IceServers(reply) => {
            let _ = reply.send(engine.ice_servers(t));
        }
        HubMsg::IcePeer {
            registration,
            reply,
        } => {
            let _ = reply.send(engine.ice_register_peer(t, registration));
        }
        HubMsg::IceReserved(reserved) => engine.ice_reserved(&reserved),
        HubMsg::LoginRtc { uid, reply } => {
            let _ = reply.send(engine.login_rtc_config(t, &uid));
        }
        HubMsg::LetGo { conn, reply } => {
            let free = engine.room_of(conn).is_none();
            if free {
                links.remove(&conn);
                engine.handle(t, Input::Closed { conn, clean: true });
            }
            let _ = reply.send(free);
        }
        msg @ (HubMsg::Adopt { .. } | HubMsg::Release { .. } | HubMsg::EndRooms(_)) => {
            room_move(engine, links, msg);
        }
        // Taken by the loop before it gets here.
        HubMsg::Resync => {}
        HubMsg::Shutdown(reply) => {
            engine.shutdown(t);
            return Some(reply);
        }
        HubMsg::Freeze(reply) => {
            *frozen = true;
            let _ = reply.send(engine.snapshot(t));
        }
        HubMsg::Restart(reply) => {
            // Its close frames go out in the drain that follows this step.
            engine.restart(t);
            return Some(reply);
        }
    }
    None
}

/// `[cluster]`: a room move of the engine's cluster API.
fn room_move<E: Entropy>(engine: &mut Engine<E>, links: &mut Links, msg: HubMsg) {
    let t = engine_now();
    match msg {
        HubMsg::Adopt {
            snapshot,
            seats,
            reply,
        } => {
            let _ = reply.send(adopt(engine, links, *snapshot, seats));
        }
        HubMsg::Release { room, reply } => {
            let conns = engine.room_conns(&room);
            let (snapshot, handed) = engine.release_rooms(t, std::slice::from_ref(&room));
            let handed = handed
                .into_iter()
                .filter_map(|conn| links.remove(&conn).map(|l| (conn, l.out)))
                .collect();
            let _ = reply.send(Released {
                snapshot,
                conns,
                handed,
            });
        }
        HubMsg::EndRooms(rooms) => {
            engine.end_rooms(t, &rooms);
        }
        _ => {}
    }
}

/// Seat adopted rooms, each seated member's connection with its link.
fn adopt<E: Entropy>(
    engine: &mut Engine<E>,
    links: &mut Links,
    snapshot: Snapshot,
    seats: Vec<Seat>,
) -> Result<Adopted, String> {
    let mut at: HashMap<(RoomRef, String), ConnId> = HashMap::new();
    let conns: Vec<ConnId> = seats.iter().map(|s| s.conn).collect();
    for seat in seats {
        at.insert((seat.room, seat.uid), seat.conn);
        links.insert(
            seat.conn,
            Link {
                out: seat.out,
                kill: Some(seat.kill),
            },
        );
    }
    let seated = engine.adopt(engine_now(), snapshot, |room, uid| {
        at.get(&(room.clone(), uid.to_owned())).copied()
    });
    if seated.is_err() {
        for conn in conns {
            links.remove(&conn);
        }
    }
    seated.map_err(|e| e.to_string())
}

/// After `Freeze`: the snapshot is taken, so the engine gets no input that would change it.
/// A connection that still arrives is told to reconnect; queries are answered; `Restart`
/// tells every client to reconnect, `Shutdown` (the snapshot could not be kept) ends the
/// calls.
fn handle_frozen<E: Entropy>(
    engine: &mut Engine<E>,
    links: &mut Links,
    msg: HubMsg,
) -> Option<oneshot::Sender<()>> {
    match msg {
        HubMsg::Open { out, .. } => {
            let _ = out.try_send(Outbound::Close(CloseReason::ServiceRestart));
        }
        HubMsg::Frame { .. } => {}
        HubMsg::Closed { conn, .. } => {
            links.remove(&conn);
        }
        HubMsg::Kick { reply, .. } => {
            let _ = reply.send(false);
        }
        // Nothing changes any more: the connection stays where it is.
        HubMsg::LetGo { reply, .. } => {
            let _ = reply.send(false);
        }
        other => {
            return handle(engine, links, other, &mut true);
        }
    }
    None
}

/// Carry out every queued effect.
fn drain<E: Entropy>(engine: &mut Engine<E>, links: &mut Links, sinks: &Sinks) {
    while let Some(effect) = engine.poll_effect() {
        match effect {
            Effect::Send { conn, msg } => {
                metrics::sent(&msg);
                deliver(engine, links, conn, Outbound::Msg(Box::new(msg)));
            }
            Effect::Close { conn, reason } => deliver(engine, links, conn, Outbound::Close(reason)),
            Effect::Record(r) => {
                metrics::metrics().records_emitted.inc();
                sinks.records.push(r);
            }
            Effect::Event(rtcroom_core::Event::IceReserved { server, kbps }) => {
                if let Some(tx) = &sinks.reserved
                    && tx.try_send((server, kbps)).is_err()
                {
                    tracing::debug!("cluster: the reservation queue is full; one not shared");
                }
            }
            Effect::Event(e) => {
                if let Some(alert) = telemetry::event(&e, now()) {
                    sinks.alerts.raise(alert);
                }
            }
        }
    }
}

fn deliver<E: Entropy>(engine: &mut Engine<E>, links: &mut Links, conn: ConnId, item: Outbound) {
    let Some(link) = links.get_mut(&conn) else {
        return;
    };
    match link.out.try_send(item) {
        Ok(()) => {}
        Err(queue::TrySendError::Full(_)) => {
            // The client does not read: cut it off now and treat it as a dropped socket (it
            // keeps its place until the heartbeat timeout and may reconnect).
            tracing::warn!(
                conn = conn.0,
                "outbound queue full; disconnecting a client that does not read"
            );
            metrics::metrics().slow_clients.inc();
            if let Some(kill) = link.kill.take() {
                let _ = kill.send(());
            }
            links.remove(&conn);
            engine.handle(engine_now(), Input::Closed { conn, clean: false });
        }
        Err(queue::TrySendError::Closed(_)) => {
            // The connection task has ended; its Closed message is on its way.
        }
    }
}

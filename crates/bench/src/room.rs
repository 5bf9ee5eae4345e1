//! One room of k members, driven by one task: it behaves like k browsers running the
//! original web SDK.
//!
//! Members join one after the other. With `call` on, every pair walks the call flow as the
//! SDK does: the existing member offers on `notifyNewPeer` (with PeerJS, which has no rooms,
//! the newcomer calls the members already there), the other answers, both trickle
//! candidates, and each side reports `peerConnected` once it has the other's description
//! and candidates. Every member sends `keepLive` right after `respJoin` and then every few
//! seconds, and `reportStats` when connected and then periodically. Then the load: offers in
//! a closed loop (each relayed offer is answered at once by the next one) or at a fixed
//! rate, each carrying its send time inside the SDP. At the end members `leave`.

use crate::conn::{Connector, Ws};
use crate::stats::{LatencyBuf, Phase, Shared, micros_at, now_us};
use crate::wire::{self, Bodies, Desc, Ident, Kind, Proto};
use anyhow::{Context, bail};
use futures_util::stream::{BoxStream, SelectAll, SplitSink};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// What the receiver of a relayed description does during the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Reply {
    /// Nothing (the relayed offer is the whole exchange).
    None,
    /// Offer back: every relayed message is an offer (with its `respOffer`).
    Offer,
    /// Answer: offer → answer, as a renegotiation does.
    Answer,
}

/// The load a room puts on the server once every member is connected.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    None,
    /// Member 0 offers to member 1; the next offer goes out as soon as the reply arrives.
    Closed(Reply),
    /// Member 0 offers to member 1 this many times per second.
    Rate(f64, Reply),
}

#[derive(Debug, Clone)]
pub struct RoomCfg {
    pub call: bool,
    pub candidates: usize,
    pub keepalive: Duration,
    pub report_stats: Duration,
    pub load: Load,
    /// Send `leave` at the end (otherwise only a close frame).
    pub leave_on_stop: bool,
    /// How long to wait for connect + handshake, and for `respLeave`s at the end.
    pub step_timeout: Duration,
}

/// Spreads connection attempts at a fixed rate (0: as fast as the permits allow).
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    per_sec: f64,
    next: AtomicU64,
}

impl Pacer {
    pub fn new(per_sec: f64) -> Self {
        Self {
            start: Instant::now(),
            per_sec,
            next: AtomicU64::new(0),
        }
    }

    async fn wait(&self) {
        if self.per_sec <= 0.0 {
            return;
        }
        let slot = self.next.fetch_add(1, Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss)]
        let due = self.start + Duration::from_secs_f64(slot as f64 / self.per_sec);
        tokio::time::sleep_until(due.into()).await;
    }
}

/// What all room tasks share.
#[derive(Debug)]
pub struct Ctx {
    pub shared: Arc<Shared>,
    pub connector: Connector,
    pub bodies: Bodies,
    pub cfg: RoomCfg,
    pub pacer: Pacer,
    /// Connection attempts in flight (connect, handshake, join) at most.
    pub permits: Arc<Semaphore>,
    pub phase: watch::Receiver<Phase>,
    /// Prefix of every uid and room id of this run, so runs never meet on one server.
    pub run: String,
    pub time: String,
}

#[derive(Debug, Default, Clone)]
struct Link {
    /// The description from the other side has arrived (answer for the offerer, offer for
    /// the answerer).
    described: bool,
    candidates: usize,
    connected: bool,
}

#[derive(Debug)]
struct Member {
    me: Ident,
    sink: Option<SplitSink<Ws, Message>>,
    permit: Option<OwnedSemaphorePermit>,
    join_started: Instant,
    joined: bool,
    ready: bool,
    left: bool,
    links: Vec<Link>,
    variant: usize,
}

type Incoming = (usize, Result<Message, WsError>);

struct Room {
    ctx: Arc<Ctx>,
    first: usize,
    members: Vec<Member>,
    streams: SelectAll<BoxStream<'static, Incoming>>,
    latency: LatencyBuf,
}

/// Run one room of `size` members whose global indices start at `first`, until the
/// controller says stop.
pub async fn run(ctx: Arc<Ctx>, room_idx: usize, first: usize, size: usize) {
    let room_id = format!("{}r{room_idx}", ctx.run);
    let members = (0..size)
        .map(|j| Member {
            me: Ident {
                app: "10000",
                uid: format!("{}m{}", ctx.run, first + j),
                room: room_id.clone(),
                session: String::new(),
                time: ctx.time.clone(),
            },
            sink: None,
            permit: None,
            join_started: Instant::now(),
            joined: false,
            ready: false,
            left: false,
            links: vec![Link::default(); size],
            variant: first + j,
        })
        .collect();
    let mut room = Room {
        ctx: ctx.clone(),
        first,
        members,
        streams: SelectAll::new(),
        latency: LatencyBuf::default(),
    };
    if let Err(e) = room.drive().await {
        ctx.shared.error(|| format!("room {room_idx}: {e:#}"));
    }
    room.latency.flush(&ctx.shared);
    let unready = room.members.iter().filter(|m| !m.ready).count() as u64;
    ctx.shared
        .counters
        .failed
        .fetch_add(unready, Ordering::Relaxed);
    room.close_all().await;
}

impl Room {
    fn shared(&self) -> &Shared {
        &self.ctx.shared
    }

    fn proto(&self) -> Proto {
        self.ctx.connector.proto
    }

    fn index_of(&self, uid: &str) -> Option<usize> {
        let n: usize = uid
            .strip_prefix(self.ctx.run.as_str())?
            .strip_prefix('m')?
            .parse()
            .ok()?;
        n.checked_sub(self.first)
            .filter(|&j| j < self.members.len())
    }

    fn sending(&self) -> bool {
        matches!(self.shared().phase(), Phase::Load | Phase::Measure)
    }

    async fn drive(&mut self) -> anyhow::Result<()> {
        let ctx = self.ctx.clone();
        let mut phase = ctx.phase.clone();
        let size = self.members.len();
        self.add_member(0).await?;

        // Spread the periodic messages of different rooms over the period.
        #[allow(clippy::cast_precision_loss)]
        let frac = (self.first as f64 * 0.618_033_988_75).fract();
        let spread =
            move |period: Duration| tokio::time::Instant::now() + period.mul_f64(frac) + period;
        let mut keep = tokio::time::interval_at(spread(ctx.cfg.keepalive), ctx.cfg.keepalive);
        keep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stats =
            tokio::time::interval_at(spread(ctx.cfg.report_stats), ctx.cfg.report_stats);
        stats.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (rate, rate_period) = match ctx.cfg.load {
            Load::Rate(r, _) if r > 0.0 && size >= 2 => (true, Duration::from_secs_f64(1.0 / r)),
            _ => (false, Duration::from_secs(3600)),
        };
        // Missed offers go out at once with their scheduled time as the timestamp, so a
        // stalled sender shows up as latency instead of hiding it (no coordinated omission).
        let mut offers = tokio::time::interval_at(spread(rate_period), rate_period);
        offers.set_missed_tick_behavior(MissedTickBehavior::Burst);

        loop {
            tokio::select! {
                biased;
                changed = phase.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let p = *phase.borrow_and_update();
                    match p {
                        Phase::Load => {
                            // The fixed rate starts now: ticks missed during the setup must
                            // not burst out (a long ramp would otherwise send a flood of
                            // offers stamped seconds in the past).
                            offers.reset_at(spread(rate_period) - rate_period);
                            self.start_load().await;
                        }
                        Phase::Drain => self.latency.flush(&self.ctx.shared),
                        Phase::Stop => {
                            self.stop().await;
                            return Ok(());
                        }
                        Phase::Setup | Phase::Measure => {}
                    }
                }
                item = self.streams.next(), if !self.streams.is_empty() => match item {
                    Some((j, Ok(Message::Text(text)))) => self.on_text(j, text.as_str()).await?,
                    Some((j, Ok(Message::Close(frame)))) => {
                        self.lost(j, &format!("closed by the server: {frame:?}"));
                    }
                    Some((j, Err(e))) => self.lost(j, &e.to_string()),
                    Some((_, Ok(_))) => {}
                    None => {}
                },
                tick = offers.tick(), if rate && self.sending() => {
                    if self.members[0].links[1].connected {
                        let ts = micros_at(tick.into_std());
                        self.send_desc(0, 1, Desc::Offer, ts).await;
                    }
                }
                _ = keep.tick() => {
                    for j in 0..size {
                        if self.members[j].joined {
                            self.keep_alive(j).await;
                        }
                    }
                }
                _ = stats.tick(), if ctx.cfg.call && self.proto() == Proto::Rtcroom => {
                    for j in 0..size {
                        for x in 0..size {
                            if self.members[j].links[x].connected {
                                let frame = wire::report_stats(&self.members[j].me, &self.members[x].me.uid);
                                self.send(j, frame).await;
                            }
                        }
                    }
                }
            }
            if self.streams.is_empty() {
                // Every member is gone; nothing more can happen in this room.
                return Ok(());
            }
        }
    }

    /// Connect member `j` and send its join (PeerJS joins by connecting).
    async fn add_member(&mut self, j: usize) -> anyhow::Result<()> {
        let ctx = self.ctx.clone();
        ctx.pacer.wait().await;
        let permit = ctx.permits.clone().acquire_owned().await?;
        let started = Instant::now();
        let uid = self.members[j].me.uid.clone();
        let ws = match tokio::time::timeout(ctx.cfg.step_timeout, ctx.connector.connect(&uid)).await
        {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                self.shared().count(&self.shared().counters.connect_errors);
                return Err(e).context("connect");
            }
            Err(_) => {
                self.shared().count(&self.shared().counters.connect_errors);
                bail!("connect: no WebSocket within {:?}", ctx.cfg.step_timeout);
            }
        };
        self.shared().count(&self.shared().counters.connects);
        let (sink, stream) = ws.split();
        self.streams.push(stream.map(move |m| (j, m)).boxed());
        let m = &mut self.members[j];
        m.sink = Some(sink);
        m.permit = Some(permit);
        m.join_started = started;
        if self.proto() == Proto::Rtcroom {
            let frame = wire::join(&self.members[j].me);
            self.send(j, frame).await;
        }
        Ok(())
    }

    async fn send(&mut self, j: usize, frame: String) -> bool {
        let len = frame.len() as u64;
        let Some(sink) = self.members[j].sink.as_mut() else {
            return false;
        };
        match sink.send(Message::Text(frame.into())).await {
            Ok(()) => {
                let c = &self.ctx.shared.counters;
                c.frames_sent.fetch_add(1, Ordering::Relaxed);
                c.bytes_sent.fetch_add(len, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.lost(j, &format!("send: {e}"));
                false
            }
        }
    }

    /// A member's connection ended without the bench asking for it.
    fn lost(&mut self, j: usize, why: &str) {
        let m = &mut self.members[j];
        if m.sink.take().is_none() {
            return;
        }
        m.permit = None;
        if self.ctx.shared.phase() < Phase::Stop && !m.left {
            let uid = m.me.uid.clone();
            self.ctx.shared.count(&self.ctx.shared.counters.dropped);
            self.ctx
                .shared
                .error(|| format!("member {uid} lost its connection: {why}"));
        }
    }

    async fn keep_alive(&mut self, j: usize) {
        let frame = match self.proto() {
            Proto::Rtcroom => wire::keep_live(&self.members[j].me),
            Proto::PeerJs => wire::PEERJS_HEARTBEAT.to_owned(),
        };
        if self.send(j, frame).await {
            self.shared().count(&self.shared().counters.keepalives_sent);
        }
    }

    async fn send_desc(&mut self, j: usize, to: usize, kind: Desc, ts: u64) -> bool {
        self.members[j].variant = self.members[j].variant.wrapping_add(1);
        let m = &self.members[j];
        let frame = self
            .ctx
            .bodies
            .desc(&m.me, &self.members[to].me.uid, kind, m.variant, ts);
        self.send(j, frame).await
    }

    async fn send_candidates(&mut self, j: usize, to: usize) {
        for i in 0..self.ctx.cfg.candidates {
            let frame = self
                .ctx
                .bodies
                .candidate(&self.members[j].me, &self.members[to].me.uid, i);
            if !self.send(j, frame).await {
                return;
            }
        }
    }

    async fn start_load(&mut self) {
        let closed = matches!(self.ctx.cfg.load, Load::Closed(_));
        if closed && self.members.len() >= 2 && self.members[0].links[1].connected {
            self.send_desc(0, 1, Desc::Offer, now_us()).await;
        }
    }

    fn check(&self, j: usize, frame: &str) {
        if wire::result(frame) != 0 {
            let uid = &self.members[j].me.uid;
            let head: String = frame.chars().take(240).collect();
            self.shared().error(|| format!("{uid} got {head}"));
        }
    }

    fn record_latency(&mut self, frame: &str) {
        if self.ctx.shared.phase() != Phase::Measure {
            return;
        }
        if let Some(ts) = wire::timestamp(frame) {
            self.latency
                .record(&self.ctx.shared, now_us().saturating_sub(ts));
        }
    }

    async fn on_text(&mut self, j: usize, frame: &str) -> anyhow::Result<()> {
        let c = &self.ctx.shared.counters;
        c.frames_received.fetch_add(1, Ordering::Relaxed);
        let proto = self.proto();
        let from = wire::sender(proto, frame).and_then(|u| self.index_of(u));
        match wire::classify(proto, frame) {
            Kind::Joined => self.on_joined(j, frame).await?,
            Kind::NotifyNewPeer => {
                if let (true, Some(x)) = (self.ctx.cfg.call, from) {
                    self.send_desc(j, x, Desc::Offer, now_us()).await;
                }
            }
            Kind::RelayOffer => {
                self.shared().count(&self.shared().counters.relayed_offers);
                self.record_latency(frame);
                let Some(x) = from else {
                    bail!("relayOffer from an unknown member: {}", head(frame));
                };
                if self.members[j].links[x].connected {
                    match self.ctx.cfg.load {
                        Load::Closed(reply) | Load::Rate(_, reply) if self.sending() => {
                            match reply {
                                Reply::Offer => self.send_desc(j, x, Desc::Offer, now_us()).await,
                                Reply::Answer => self.send_desc(j, x, Desc::Answer, now_us()).await,
                                Reply::None => true,
                            };
                        }
                        _ => {}
                    }
                } else {
                    // The call flow: answer, then trickle candidates.
                    self.send_desc(j, x, Desc::Answer, now_us()).await;
                    self.send_candidates(j, x).await;
                    self.members[j].links[x].described = true;
                    self.maybe_connected(j, x).await;
                }
            }
            Kind::RelayAnswer => {
                self.shared().count(&self.shared().counters.relayed_answers);
                self.record_latency(frame);
                let Some(x) = from else {
                    bail!("relayAnswer from an unknown member: {}", head(frame));
                };
                if self.members[j].links[x].connected {
                    if matches!(self.ctx.cfg.load, Load::Closed(Reply::Answer)) && self.sending() {
                        self.send_desc(j, x, Desc::Offer, now_us()).await;
                    }
                } else {
                    self.members[j].links[x].described = true;
                    self.send_candidates(j, x).await;
                    self.maybe_connected(j, x).await;
                }
            }
            Kind::RelayCandidate => {
                self.shared()
                    .count(&self.shared().counters.relayed_candidates);
                if let Some(x) = from {
                    self.members[j].links[x].candidates += 1;
                    self.maybe_connected(j, x).await;
                }
            }
            Kind::RespOffer => {
                self.shared().count(&self.shared().counters.resp_offers);
                self.check(j, frame);
            }
            Kind::RespKeepLive => {
                self.shared().count(&self.shared().counters.resp_keeplive);
                self.check(j, frame);
            }
            Kind::RespPeerConnected => {
                self.shared()
                    .count(&self.shared().counters.resp_peer_connected);
                self.check(j, frame);
            }
            Kind::RespLeave => {
                self.shared().count(&self.shared().counters.resp_leave);
                self.check(j, frame);
            }
            Kind::RelayLeave => self.shared().count(&self.shared().counters.relayed_leave),
            Kind::Failure => {
                let uid = self.members[j].me.uid.clone();
                self.shared().error(|| format!("{uid} got {}", head(frame)));
            }
            Kind::Other => {}
        }
        Ok(())
    }

    async fn on_joined(&mut self, j: usize, frame: &str) -> anyhow::Result<()> {
        let proto = self.proto();
        if proto == Proto::Rtcroom && wire::result(frame) != 0 {
            self.shared().count(&self.shared().counters.join_refused);
            bail!("join refused: {}", head(frame));
        }
        if self.members[j].joined {
            bail!("a second respJoin: {}", head(frame));
        }
        self.shared().count(&self.shared().counters.joins);
        if self.ctx.shared.phase() == Phase::Measure {
            let took = self.members[j].join_started.elapsed();
            let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            self.latency.record(&self.ctx.shared, us);
        }
        let m = &mut self.members[j];
        m.joined = true;
        m.permit = None;
        if let Some(session) = wire::str_field(frame, "sessionId") {
            m.session_set(session);
        }
        // The SDK sends its first keepLive right after respJoin.
        self.keep_alive(j).await;
        if !self.ctx.cfg.call || self.members.len() == 1 {
            self.mark_ready(j);
        } else if proto == Proto::PeerJs {
            // PeerJS has no rooms: the newcomer calls the members already there.
            for x in 0..j {
                if self.members[x].joined {
                    self.send_desc(j, x, Desc::Offer, now_us()).await;
                }
            }
        }
        if j + 1 < self.members.len() {
            self.add_member(j + 1).await?;
        }
        Ok(())
    }

    fn mark_ready(&mut self, j: usize) {
        if !self.members[j].ready {
            self.members[j].ready = true;
            self.shared().count(&self.shared().counters.ready);
        }
    }

    async fn maybe_connected(&mut self, j: usize, x: usize) {
        let link = &self.members[j].links[x];
        if link.connected || !link.described || link.candidates < self.ctx.cfg.candidates {
            return;
        }
        self.members[j].links[x].connected = true;
        if self.proto() == Proto::Rtcroom {
            let frame = wire::peer_connected(&self.members[j].me, &self.members[x].me.uid);
            self.send(j, frame).await;
            // The first quality report goes out with the connection.
            let frame = wire::report_stats(&self.members[j].me, &self.members[x].me.uid);
            self.send(j, frame).await;
        }
        let n = self.members.len();
        if (0..n).all(|y| y == j || self.members[j].links[y].connected) {
            self.mark_ready(j);
        }
    }

    /// The end of the run: leave (waiting a little for the answers), then close.
    async fn stop(&mut self) {
        if !(self.ctx.cfg.leave_on_stop && self.proto() == Proto::Rtcroom) {
            return;
        }
        let mut expected = 0;
        for j in 0..self.members.len() {
            if self.members[j].joined && self.members[j].sink.is_some() {
                let frame = wire::leave(&self.members[j].me);
                if self.send(j, frame).await {
                    self.members[j].left = true;
                    expected += 1;
                }
            }
        }
        let deadline = tokio::time::Instant::now() + self.ctx.cfg.step_timeout;
        let mut got = 0;
        while got < expected {
            match tokio::time::timeout_at(deadline, self.streams.next()).await {
                Ok(Some((_, Ok(Message::Text(t))))) => {
                    if wire::classify(self.proto(), t.as_str()) == Kind::RespLeave {
                        got += 1;
                        self.shared().count(&self.shared().counters.resp_leave);
                        self.check(0, t.as_str());
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        if got < expected {
            let missing = expected - got;
            self.shared().error(|| {
                format!(
                    "{missing} respLeave missing after {:?}",
                    self.ctx.cfg.step_timeout
                )
            });
        }
    }

    async fn close_all(&mut self) {
        for m in &mut self.members {
            if let Some(mut sink) = m.sink.take() {
                let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
            }
        }
    }
}

impl Member {
    fn session_set(&mut self, session: &str) {
        session.clone_into(&mut self.me.session);
    }
}

fn head(frame: &str) -> String {
    frame.chars().take(240).collect()
}

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

mod load;
mod setup;
mod stop;

use crate::conn::{Connector, Ws};
use crate::stats::{LatencyBuf, Phase, Shared, micros_at, now_us};
use crate::wire::{self, Bodies, Desc, Ident, Kind, Proto};
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
                _ = keep.tick() => self.keep_all_alive().await,
                _ = stats.tick(), if ctx.cfg.call && self.proto() == Proto::Rtcroom => {
                    self.report_all_stats().await;
                }
            }
            if self.streams.is_empty() {
                // Every member is gone; nothing more can happen in this room.
                return Ok(());
            }
        }
    }

    /// A `keepLive` from every joined member.
    async fn keep_all_alive(&mut self) {
        for j in 0..self.members.len() {
            if self.members[j].joined {
                self.keep_alive(j).await;
            }
        }
    }

    /// A `reportStats` from every member about every remote it is connected to.
    async fn report_all_stats(&mut self) {
        let size = self.members.len();
        for j in 0..size {
            for x in 0..size {
                if self.members[j].links[x].connected {
                    self.report_stats(j, x).await;
                }
            }
        }
    }

    /// A `reportStats` from member `j` about member `x` (one quality row in the server's
    /// records), counted once sent.
    async fn report_stats(&mut self, j: usize, x: usize) {
        let frame = wire::report_stats(&self.members[j].me, &self.members[x].me.uid);
        if self.send(j, frame).await {
            let c = &self.ctx.shared.counters;
            c.reports_sent.fetch_add(1, Ordering::Relaxed);
        }
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

    fn check(&self, j: usize, frame: &str) {
        if wire::result(frame) != 0 {
            let uid = &self.members[j].me.uid;
            let head: String = frame.chars().take(240).collect();
            self.shared().error(|| format!("{uid} got {head}"));
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
            Kind::RelayOffer => self.on_relay_offer(j, from, frame).await?,
            Kind::RelayAnswer => self.on_relay_answer(j, from, frame).await?,
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
}

impl Member {
    fn session_set(&mut self, session: &str) {
        session.clone_into(&mut self.me.session);
    }
}

fn head(frame: &str) -> String {
    frame.chars().take(240).collect()
}

//! The room engine: connections, rooms, members, sub-sessions and their deadlines.
//!
//! One `Engine` owns every room of a server. It is a plain state machine: [`Engine::handle`]
//! and [`Engine::handle_timeout`] change state and queue [`Effect`]s; nothing else happens.
//! This module holds the public types and the dispatch of frames; each submodule does one
//! job: `state` (what is held), `conns` (connections, sending, rate limit), `identity` (who
//! a frame speaks as), `join`, `leave`, `relay`, `reports`, `tokens`, `deadlines`, `ice`,
//! `continuity` (restart, snapshot, restore), `cluster` (rooms handed between nodes).

mod cluster;
mod conns;
mod continuity;
mod deadlines;
mod ice;
mod identity;
mod join;
mod leave;
mod relay;
mod reports;
mod state;
mod tokens;

use crate::Millis;
use crate::config::EngineConfig;
use crate::effect::{Effect, Event};
use crate::ids::{Entropy, IdGen};
use crate::time::{Now, shift};
pub use cluster::{Adopted, RoomRef};
pub use continuity::{RestoreError, Snapshot};
use rtcroom_ice::{GeoPoint, Registry};
use rtcroom_protocol::{DecodeError, Refusal, Request, ResultCode};
use state::{Conn, NumMap, Room, RoomKey, RoomNo, Seat};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use ulid::Ulid;

/// A connection, numbered by the shell from 0 up (numbers from 2^63 up are the engine's
/// own, for members restored or adopted from a snapshot before they reconnect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// What the shell found when it checked the token of a `join` or `updateToken`.
/// The engine decides what the finding means (with [`crate::AuthMode`]); verifying signatures
/// is the shell's job, so this crate holds no keys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Grant {
    /// No token was checked: the request has none, or checking is off.
    Unchecked,
    /// A valid token for `app_id` (and `uid`, when the token names one) until `expires_at`.
    Valid {
        app_id: String,
        uid: Option<String>,
        expires_at: Millis,
    },
    /// A token that failed verification, and why.
    Invalid(String),
}

/// Something that happened on the outside.
// Frames dominate the inputs, so boxing them would add an allocation to almost every input
// to save space on the rare others.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input {
    /// A signaling connection opened from `ip`, which the shell places at `at` (GeoIP; `None`
    /// when unknown): ICE selection prefers the relay nearest to both members of a pair.
    Open {
        conn: ConnId,
        ip: String,
        at: Option<GeoPoint>,
    },
    /// A frame arrived, decoded by the shell (the engine answers decode errors too, so that
    /// answers keep the order of the frames).
    Frame {
        conn: ConnId,
        frame: Result<Request, DecodeError>,
        grant: Grant,
    },
    /// The socket closed: `clean` with a close frame, else it dropped.
    Closed { conn: ConnId, clean: bool },
}

/// Counts for health and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub connections: usize,
    pub rooms: usize,
    pub members: usize,
}

/// A member as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    pub uid: String,
    pub uname: String,
    pub session_id: Ulid,
    pub joined_at: Millis,
    /// False while the socket is gone and the member waits for a reconnect.
    pub connected: bool,
}

/// A room as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    pub app_id: String,
    pub room_id: String,
    pub room_name: String,
    pub members: Vec<MemberInfo>,
}

/// The room engine. `E` is its source of randomness (ids, assigned uids).
#[derive(Debug)]
pub struct Engine<E> {
    cfg: EngineConfig,
    ids: IdGen<E>,
    conns: NumMap<ConnId, Conn>,
    rooms: NumMap<RoomNo, Room>,
    /// The number of each room, by name.
    room_nos: HashMap<RoomKey, RoomNo>,
    next_room: u64,
    timers: BinaryHeap<Reverse<(Millis, ConnId)>>,
    /// The join rate limit's token bucket of each client address that joined lately.
    join_buckets: HashMap<Box<str>, state::Bucket>,
    /// `join_buckets` is swept of full buckets when it grows to this many entries.
    join_buckets_sweep_at: usize,
    out: VecDeque<Effect>,
    /// The ICE servers in rotation, in [`crate::IceMode::Registry`].
    ice: Option<Registry>,
    /// The wall clock minus the monotonic one at the latest input: every time held is
    /// monotonic, and this dates what is written down.
    wall_offset: i64,
    /// The next placeholder connection for a member seated from a snapshot without one:
    /// counted up for the engine's whole life, so that no two restores or adoptions ever
    /// hand out the same number.
    next_placeholder: u64,
    /// Rooms changed since the shell last asked; `None` until it first asks.
    changes: Option<state::Changes>,
}

/// What a request handler returns: done, or refused with a code and why.
type Handled = Result<(), Refusal>;

impl<E: Entropy> Engine<E> {
    pub fn new(cfg: EngineConfig, entropy: E) -> Self {
        Self {
            ids: IdGen::new(entropy),
            conns: NumMap::default(),
            rooms: NumMap::default(),
            room_nos: HashMap::new(),
            next_room: 0,
            timers: BinaryHeap::new(),
            join_buckets: HashMap::new(),
            join_buckets_sweep_at: conns::JOIN_BUCKETS_SWEEP,
            out: VecDeque::new(),
            ice: ice::registry_for(&cfg.ice),
            wall_offset: 0,
            next_placeholder: continuity::PLACEHOLDER_CONNS,
            changes: None,
            cfg,
        }
    }

    /// Take an input's time: keep how the wall clock stands to the monotonic one, and run
    /// on the monotonic time.
    fn clock(&mut self, now: impl Into<Now>) -> Millis {
        let now = now.into();
        self.wall_offset = now.offset();
        now.mono
    }

    /// A monotonic time as the wall clock read it (as it stands now).
    fn wall(&self, mono: Millis) -> Millis {
        shift(mono, self.wall_offset)
    }

    /// A wall-clock time on the monotonic clock (as it stands now).
    fn mono_of(&self, wall: Millis) -> Millis {
        shift(wall, self.wall_offset.saturating_neg())
    }

    /// The next effect to carry out, in the order the engine produced them.
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.out.pop_front()
    }

    /// When [`Engine::handle_timeout`] should next be called, on the monotonic clock.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            connections: self.conns.values().filter(|c| c.live).count(),
            rooms: self.rooms.len(),
            members: self.rooms.values().map(|r| r.members.len()).sum(),
        }
    }

    /// Every room and its members, for operators.
    pub fn rooms(&self) -> Vec<RoomInfo> {
        let mut rooms: Vec<RoomInfo> = self
            .rooms
            .values()
            .map(|r| RoomInfo {
                app_id: r.app_id.as_str().to_owned(),
                room_id: r.room_id.key().to_owned(),
                room_name: r.room_name.clone(),
                members: r
                    .members
                    .iter()
                    .map(|m| MemberInfo {
                        uid: m.uid.key().to_owned(),
                        uname: m.uname.as_str().to_owned(),
                        session_id: m.session_id,
                        joined_at: self.wall(m.joined_at),
                        connected: self.conns.get(&m.conn).is_some_and(|c| c.live),
                    })
                    .collect(),
            })
            .collect();
        rooms.sort_by(|a, b| (&a.app_id, &a.room_id).cmp(&(&b.app_id, &b.room_id)));
        rooms
    }

    pub fn handle(&mut self, now: impl Into<Now>, input: Input) {
        let now = self.clock(now);
        match input {
            Input::Open { conn, ip, at } => self.open(now, conn, ip, at),
            Input::Frame { conn, frame, grant } => self.frame(now, conn, frame, grant),
            Input::Closed { conn, clean } => self.closed(now, conn, clean),
        }
    }

    // ----- the room a seat is in, and its member -----

    fn room(&self, seat: Seat) -> &Room {
        self.rooms.get(&seat.room).expect("a seat's room exists")
    }

    fn room_mut(&mut self, seat: Seat) -> &mut Room {
        self.rooms
            .get_mut(&seat.room)
            .expect("a seat's room exists")
    }

    fn member(&self, seat: Seat) -> &state::Member {
        &self.room(seat).members[seat.idx]
    }

    fn member_mut(&mut self, seat: Seat) -> &mut state::Member {
        &mut self.room_mut(seat).members[seat.idx]
    }

    // ----- frames -----

    fn frame(
        &mut self,
        now: Millis,
        conn: ConnId,
        frame: Result<Request, DecodeError>,
        grant: Grant,
    ) {
        let Some(limited) = self.admit(now, conn) else {
            return;
        };
        let mut req = match frame {
            Ok(req) => req,
            Err(e) => return self.refuse_undecodable(conn, &e),
        };
        if limited {
            let detail = format!("at most {} messages per second", self.cfg.rate_per_sec);
            return self.refuse(conn, &req, Refusal::new(ResultCode::RateLimited, detail));
        }
        // Mutable so that a relay can take the `msg` it forwards instead of copying it.
        let result = match &mut req {
            Request::Join(j) => self.join(now, conn, j, &grant),
            Request::Leave(r) => self.leave(now, conn, &r.id),
            Request::Offer(r) => self.offer(now, conn, r),
            Request::Answer(r) => self.answer(now, conn, r),
            Request::Candidate(r) => self.candidate(conn, r),
            Request::KeepLive(r) => self.keep_live(conn, &r.id),
            Request::TurnTalkType(r) => self.turn_talk_type(conn, r),
            Request::PeerConnected(r) => self.peer_connected(now, conn, r),
            Request::ReportInfo(r) => self.report_info(now, conn, r),
            Request::ReportStats(r) => self.report_stats(now, conn, r),
            Request::UpdateToken(r) => self.update_token(conn, r, grant),
        };
        if let Err(refusal) = result {
            self.refuse(conn, &req, refusal);
        }
    }

    /// Answer a frame that did not decode, with the response `rtcroom-protocol` shapes.
    fn refuse_undecodable(&mut self, conn: ConnId, e: &DecodeError) {
        let refusal = Refusal::undecodable(e);
        let cmd = e.command().map_or("frame", |c| c.as_str());
        self.refused_event(conn, cmd, &refusal);
        let msg = e.refusal(refusal, self.cfg.report_stats_interval_secs);
        self.send(conn, msg);
    }

    /// Answer a refused request with its command's own response.
    fn refuse(&mut self, conn: ConnId, req: &Request, refusal: Refusal) {
        self.refused_event(conn, req.command().as_str(), &refusal);
        let msg = req.refusal(refusal, self.cfg.report_stats_interval_secs);
        self.send(conn, msg);
    }

    fn refused_event(&mut self, conn: ConnId, cmd: &'static str, refusal: &Refusal) {
        self.out.push_back(Effect::Event(Event::Refused {
            conn,
            cmd,
            result: refusal.code.code(),
            desc: refusal.desc.clone(),
        }));
    }
}

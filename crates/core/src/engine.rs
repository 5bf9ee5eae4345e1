//! The room engine: connections, rooms, members, sub-sessions and their deadlines.
//!
//! One `Engine` owns every room of a server. It is a plain state machine: [`Engine::handle`]
//! and [`Engine::handle_timeout`] change state and queue [`Effect`]s; nothing else happens.

use crate::Millis;
use crate::config::{AuthMode, EngineConfig, IceMode};
use crate::effect::{CloseReason, Effect, Event, LeaveCause};
use crate::ids::{Entropy, IdGen};
use crate::record::*;
use rtcroom_ice::{Chosen, HealthEvent, IceCommand, Media, Need, Registry, Reply, ServerStatus};
use rtcroom_protocol::*;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use ulid::Ulid;

/// A connection, numbered by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// What the shell found when it checked the token of a `join` or `updateToken`.
/// The engine decides what the finding means (with [`AuthMode`]); verifying signatures is
/// the shell's job, so this crate holds no keys.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// A signaling connection opened from `ip`.
    Open { conn: ConnId, ip: String },
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

/// Longest accepted `appId`, `roomId`, `uid` and `uname` (characters). Longer ones are refused
/// with result 3 rather than truncated, since clients adopt what the server echoes.
const MAX_ID_LEN: usize = 64;
/// Informational fields (os, browser, sdk, room name) are cut to this many characters.
const MAX_INFO_LEN: usize = 64;

/// A room as clients name it: only joins and operator requests look rooms up by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RoomKey {
    app: Box<str>,
    room: Box<str>,
}

/// A room as the engine numbers it, for the lookups every frame makes (cheap to copy and to
/// hash, and never chosen by a client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct RoomNo(u64);

/// Maps keyed by numbers the server assigns ([`ConnId`], [`RoomNo`]): a fast hasher with a
/// fixed seed is safe there, as no client chooses the keys, and it keeps the engine free of
/// randomness of its own (iteration order depends on the inputs only). Maps keyed by client
/// input keep SipHash.
type NumMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// Never joined.
    Fresh,
    /// Joined this room, as the member whose `conn` is this connection.
    Member(RoomNo),
    /// Was a member and is no longer (left, timed out, kicked, replaced).
    Gone,
}

#[derive(Debug)]
struct Conn {
    ip: String,
    /// The socket is open. A member whose socket dropped keeps its connection entry, not
    /// live, until it times out or rejoins.
    live: bool,
    /// A close was requested; frames still in flight are ignored.
    closing: bool,
    bound: Bound,
    last_seen: Millis,
    /// The earliest timer entry pending for this connection.
    scheduled: Option<Millis>,
    tokens: f64,
    tokens_at: Millis,
}

#[derive(Debug, Clone, Copy)]
struct TokenState {
    expires_at: Millis,
    prompted: bool,
}

#[derive(Debug)]
struct Sub {
    id: Ulid,
    remote_key: Box<str>,
    remote_session: Ulid,
    begun: bool,
    connected_at: Option<Millis>,
    connect_type: ConnectType,
    finished: bool,
    /// The ICE server chosen for the pair (the same on both directions).
    ice: Option<Arc<Chosen>>,
}

#[derive(Debug)]
struct Member {
    uid: Ident,
    uname: String,
    user_type: i64,
    talk_type: i64,
    conn: ConnId,
    ip: String,
    session_id: Ulid,
    joined_at: Millis,
    last_seen: Millis,
    /// Device state changed since join (index 0 camera, 1 mic, 2 screen, 3 system sound).
    devices: [Option<bool>; 4],
    /// This member's sub-sessions (self → remote), in creation order.
    subs: Vec<Sub>,
    token: Option<TokenState>,
}

impl Member {
    /// The current (latest unfinished) sub-session towards the member with `remote_key`.
    fn sub_to(&mut self, remote_key: &str) -> Option<&mut Sub> {
        self.subs
            .iter_mut()
            .rev()
            .find(|s| !s.finished && &*s.remote_key == remote_key)
    }
}

#[derive(Debug)]
struct Room {
    key: RoomKey,
    app_id: String,
    room_id: Ident,
    room_name: String,
    members: Vec<Member>,
}

#[derive(Debug, Clone, Copy)]
enum Due {
    Heartbeat,
    Prompt,
    Expire,
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
    out: VecDeque<Effect>,
    /// The ICE servers in rotation, in [`IceMode::Registry`].
    ice: Option<Registry>,
}

/// Where a request from a bound connection comes from.
struct From {
    key: RoomNo,
    idx: usize,
}

/// A refusal: the result code and its `desc`.
type Refusal = (ResultCode, String);

fn refusal(code: ResultCode, detail: impl Into<String>) -> Refusal {
    let detail = detail.into();
    if detail.is_empty() {
        (code, code.desc().to_owned())
    } else {
        (code, format!("{}: {detail}", code.desc()))
    }
}

fn cut(s: Option<String>) -> String {
    let s = s.unwrap_or_default();
    match s.char_indices().nth(MAX_INFO_LEN) {
        Some((i, _)) => s[..i].to_owned(),
        None => s,
    }
}

fn empty_ident() -> Ident {
    Ident::new("")
}

impl<E: Entropy> Engine<E> {
    pub fn new(cfg: EngineConfig, entropy: E) -> Self {
        Self {
            ids: IdGen::new(entropy),
            conns: NumMap::default(),
            rooms: NumMap::default(),
            room_nos: HashMap::new(),
            next_room: 0,
            timers: BinaryHeap::new(),
            out: VecDeque::new(),
            ice: match &cfg.ice {
                IceMode::Registry(c) => Some(Registry::new(c.clone())),
                IceMode::Static => None,
            },
            cfg,
        }
    }

    /// An ICE server (or its agent) registered, deregistered or reported its load. Answers
    /// with the plain-text reply of the ICE HTTP API.
    pub fn ice_command(&mut self, now: Millis, command: IceCommand) -> Reply {
        match self.ice.as_mut() {
            Some(registry) => registry.handle(now.0, command),
            // Without a registry there is nothing to register with.
            None => Reply::NotFound,
        }
    }

    /// The registered ICE servers and their load.
    pub fn ice_servers(&self, now: Millis) -> Vec<ServerStatus> {
        self.ice
            .as_ref()
            .map(|r| r.servers(now.0))
            .unwrap_or_default()
    }

    /// Check which ICE servers left rotation or came back; each change becomes an event.
    pub fn ice_poll(&mut self, now: Millis) {
        let Some(registry) = self.ice.as_mut() else {
            return;
        };
        for e in registry.poll_health(now.0) {
            let event = match e {
                HealthEvent::LeftRotation { ip, last_seen_ms } => Event::IceHealth {
                    ip,
                    in_rotation: false,
                    last_seen_ms: Some(last_seen_ms),
                },
                HealthEvent::Returned { ip } => Event::IceHealth {
                    ip,
                    in_rotation: true,
                    last_seen_ms: None,
                },
            };
            self.out.push_back(Effect::Event(event));
        }
    }

    /// The `rtcConfig` a login hands out: the server a new pair would get now (nothing is
    /// reserved), with credentials for `uid`; the static one without a registry.
    pub fn login_rtc_config(&self, now: Millis, uid: &str) -> Option<SharedJson> {
        match &self.ice {
            Some(registry) => registry
                .peek(now.0, None)
                .map(|c| SharedJson::rtc_config(&c.rtc_config(uid, now.0))),
            None => Some(self.cfg.rtc_config.clone()),
        }
    }

    fn rtc_for(&self, chosen: Option<&Chosen>, uid: &Ident, now: Millis) -> SharedJson {
        match chosen {
            Some(c) => SharedJson::rtc_config(&c.rtc_config(uid.key(), now.0)),
            None => self.cfg.rtc_config.clone(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Replace the `rtcConfig` handed to new pairs (the ICE registry changed).
    pub fn set_rtc_config(&mut self, rtc_config: SharedJson) {
        self.cfg.rtc_config = rtc_config;
    }

    /// The next effect to carry out, in the order the engine produced them.
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.out.pop_front()
    }

    /// When [`Engine::handle_timeout`] should next be called.
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
                app_id: r.app_id.clone(),
                room_id: r.room_id.key().to_owned(),
                room_name: r.room_name.clone(),
                members: r
                    .members
                    .iter()
                    .map(|m| MemberInfo {
                        uid: m.uid.key().to_owned(),
                        uname: m.uname.clone(),
                        session_id: m.session_id,
                        joined_at: m.joined_at,
                        connected: self.conns.get(&m.conn).is_some_and(|c| c.live),
                    })
                    .collect(),
            })
            .collect();
        rooms.sort_by(|a, b| (&a.app_id, &a.room_id).cmp(&(&b.app_id, &b.room_id)));
        rooms
    }

    pub fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::Open { conn, ip } => self.open(now, conn, ip),
            Input::Frame { conn, frame, grant } => self.frame(now, conn, frame, grant),
            Input::Closed { conn, clean } => self.closed(now, conn, clean),
        }
    }

    /// Act on every deadline at or before `now`: heartbeats, token prompts and expiries.
    pub fn handle_timeout(&mut self, now: Millis) {
        while let Some(&Reverse((at, conn))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if c.scheduled != Some(at) {
                continue; // superseded by an earlier entry
            }
            c.scheduled = None;
            match self.deadline(conn) {
                Some((due_at, due)) if due_at <= now => self.fire(now, conn, due),
                _ => {}
            }
            self.schedule(conn);
        }
    }

    /// Remove a member on an operator's request: it gets `systemKickUser`, the others
    /// `relayLeave`, and its connection is closed. False if no such member.
    pub fn kick(&mut self, now: Millis, app_id: &str, room_id: &str, uid: &str, why: &str) -> bool {
        let key = RoomKey {
            app: app_id.into(),
            room: room_id.into(),
        };
        let Some((&no, idx)) = self.room_nos.get(&key).and_then(|no| {
            let idx = self.rooms[no]
                .members
                .iter()
                .position(|m| m.uid.key() == uid)?;
            Some((no, idx))
        }) else {
            return false;
        };
        let from = From { key: no, idx };
        self.kick_member(
            now,
            from,
            why,
            LeaveCause::Kicked,
            CloseReason::Kicked(why.into()),
        );
        true
    }

    /// Tell every member the server is going away, close every record and connection.
    pub fn shutdown(&mut self, now: Millis) {
        let keys: Vec<RoomNo> = self.rooms.keys().copied().collect();
        for key in keys {
            while self.rooms.get(&key).is_some_and(|r| !r.members.is_empty()) {
                let from = From { key, idx: 0 };
                let why = "server is shutting down";
                self.kick_member(now, from, why, LeaveCause::Shutdown, CloseReason::Shutdown);
            }
        }
        let live: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.live && !c.closing)
            .map(|(id, _)| *id)
            .collect();
        for conn in live {
            self.close(conn, CloseReason::Shutdown);
        }
    }

    // ----- connections -----

    fn open(&mut self, now: Millis, conn: ConnId, ip: String) {
        self.conns.insert(
            conn,
            Conn {
                ip,
                live: true,
                closing: false,
                bound: Bound::Fresh,
                last_seen: now,
                scheduled: None,
                tokens: f64::from(self.cfg.rate_burst),
                tokens_at: now,
            },
        );
        self.schedule(conn);
    }

    fn closed(&mut self, now: Millis, conn: ConnId, clean: bool) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.live {
            return; // already known to be closed
        }
        c.live = false;
        match c.bound {
            Bound::Member(key) if clean && !c.closing => {
                if let Some(idx) = self.member_of(&key, conn) {
                    self.remove_member(now, From { key, idx }, LeaveCause::Closed);
                }
                self.conns.remove(&conn);
            }
            Bound::Member(key) if !c.closing => {
                // Dropped without a close frame: keep the place until the heartbeat timeout,
                // so that a reconnect with the same uid resumes.
                if let Some(room) = self.rooms.get(&key)
                    && let Some(m) = room.members.iter().find(|m| m.conn == conn)
                {
                    self.out.push_back(Effect::Event(Event::Detached {
                        app_id: room.app_id.clone(),
                        room_id: room.room_id.key().to_owned(),
                        uid: m.uid.key().to_owned(),
                        session_id: m.session_id,
                    }));
                }
            }
            _ => {
                self.conns.remove(&conn);
            }
        }
    }

    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.live {
                self.conns.remove(&conn);
                return;
            }
            if !c.closing {
                c.closing = true;
                self.out.push_back(Effect::Close { conn, reason });
            }
        }
    }

    fn send(&mut self, conn: ConnId, msg: ServerMsg) {
        if self.conns.get(&conn).is_some_and(|c| c.live && !c.closing) {
            self.out.push_back(Effect::Send { conn, msg });
        }
    }

    fn record(&mut self, r: Record) {
        self.out.push_back(Effect::Record(r));
    }

    fn member_of(&self, key: &RoomNo, conn: ConnId) -> Option<usize> {
        self.rooms
            .get(key)?
            .members
            .iter()
            .position(|m| m.conn == conn)
    }

    fn member(&mut self, from: &From) -> &mut Member {
        &mut self
            .rooms
            .get_mut(&from.key)
            .expect("bound room exists")
            .members[from.idx]
    }

    // ----- timers -----

    /// The earliest thing due on a connection, if any.
    fn deadline(&self, conn: ConnId) -> Option<(Millis, Due)> {
        let c = self.conns.get(&conn)?;
        if c.closing {
            return None;
        }
        let timeout = self.cfg.heartbeat_timeout_secs;
        let member = match &c.bound {
            Bound::Member(key) => self
                .rooms
                .get(key)
                .and_then(|r| r.members.iter().find(|m| m.conn == conn)),
            _ => None,
        };
        let Some(m) = member else {
            return Some((c.last_seen.plus_secs(timeout), Due::Heartbeat));
        };
        let mut best = (m.last_seen.plus_secs(timeout), Due::Heartbeat);
        if let (Some(t), AuthMode::Required { prompt_secs }) = (m.token, self.cfg.auth) {
            let prompt_at = t.expires_at.minus_secs(prompt_secs);
            if !t.prompted && prompt_at < best.0 {
                best = (prompt_at, Due::Prompt);
            }
            if t.expires_at < best.0 {
                best = (t.expires_at, Due::Expire);
            }
        }
        Some(best)
    }

    fn schedule(&mut self, conn: ConnId) {
        let Some((at, _)) = self.deadline(conn) else {
            return;
        };
        let c = self
            .conns
            .get_mut(&conn)
            .expect("deadline implies the connection");
        if c.scheduled.is_none_or(|s| at < s) {
            c.scheduled = Some(at);
            self.timers.push(Reverse((at, conn)));
        }
    }

    fn fire(&mut self, now: Millis, conn: ConnId, due: Due) {
        let bound = self.conns.get(&conn).map(|c| c.bound);
        let from = match bound {
            Some(Bound::Member(key)) => self.member_of(&key, conn).map(|idx| From { key, idx }),
            _ => None,
        };
        match (due, from) {
            (Due::Heartbeat, Some(from)) => {
                self.remove_member(now, from, LeaveCause::TimedOut);
                self.unbind(conn, CloseReason::HeartbeatTimeout);
            }
            (Due::Heartbeat, None) => self.close(conn, CloseReason::HeartbeatTimeout),
            (Due::Prompt, Some(from)) => {
                let room = &self.rooms[&from.key];
                let m = &room.members[from.idx];
                let Some(token) = m.token else { return };
                let msg = ServerMsg::SystemPromptToken(SystemPromptToken {
                    app_id: room.app_id.clone(),
                    room_id: room.room_id.clone(),
                    uid: m.uid.clone(),
                    expire_at: token.expires_at.as_secs(),
                });
                if let Some(t) = self.member(&from).token.as_mut() {
                    t.prompted = true;
                }
                self.send(conn, msg);
            }
            (Due::Expire, Some(from)) => {
                let why = "token is expire";
                self.kick_member(
                    now,
                    from,
                    why,
                    LeaveCause::TokenExpired,
                    CloseReason::TokenExpired,
                );
            }
            (Due::Prompt | Due::Expire, None) => {}
        }
    }

    /// After its member is gone, a connection stays open (it may join again) unless a
    /// reason to close it is given; a connection whose socket is already gone is forgotten.
    fn unbind(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.bound = Bound::Gone;
        }
        self.close(conn, reason);
    }

    fn kick_member(
        &mut self,
        now: Millis,
        from: From,
        why: &str,
        cause: LeaveCause,
        reason: CloseReason,
    ) {
        let room = &self.rooms[&from.key];
        let m = &room.members[from.idx];
        let conn = m.conn;
        let msg = ServerMsg::SystemKickUser(SystemKickUser {
            app_id: room.app_id.clone(),
            room_id: room.room_id.clone(),
            uid: m.uid.clone(),
            desc: why.to_owned(),
        });
        self.send(conn, msg);
        self.remove_member(now, from, cause);
        self.unbind(conn, reason);
    }

    // ----- frames -----

    fn frame(
        &mut self,
        now: Millis,
        conn: ConnId,
        frame: Result<Request, DecodeError>,
        grant: Grant,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing || !c.live {
            return;
        }
        c.last_seen = now;
        // Token bucket: `rate_per_sec` on average, `rate_burst` at once.
        let elapsed = now.0.saturating_sub(c.tokens_at.0) as f64 / 1000.0;
        c.tokens = (c.tokens + elapsed * f64::from(self.cfg.rate_per_sec))
            .min(f64::from(self.cfg.rate_burst));
        c.tokens_at = now;
        let limited = c.tokens < 1.0;
        if !limited {
            c.tokens -= 1.0;
        }
        if let Bound::Member(key) = c.bound
            && let Some(idx) = self.member_of(&key, conn)
        {
            self.member(&From { key, idx }).last_seen = now;
        }
        let mut req = match frame {
            Ok(req) => req,
            Err(e) => return self.refuse_decode(conn, e),
        };
        if limited {
            let detail = format!("at most {} messages per second", self.cfg.rate_per_sec);
            let (code, desc) = refusal(ResultCode::RateLimited, detail);
            return self.refuse(conn, &req, code, desc);
        }
        // Mutable so that a relay can take the `msg` it forwards instead of copying it.
        let result = match &mut req {
            Request::Join(j) => {
                let j = j.clone();
                return self.join(now, conn, j, grant);
            }
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
        if let Err((code, desc)) = result {
            self.refuse(conn, &req, code, desc);
        }
    }

    /// The member a bound connection speaks as, after checking the identity fields the
    /// message carries against the binding.
    fn bound(&self, conn: ConnId, id: &Identity) -> Result<From, Refusal> {
        let c = &self.conns[&conn];
        let key = match &c.bound {
            Bound::Fresh => return Err(refusal(ResultCode::NotAllowed, "join a room first")),
            Bound::Gone => return Err(refusal(ResultCode::UidNotFound, "")),
            Bound::Member(key) => key,
        };
        let room = &self.rooms[key];
        let idx = self
            .member_of(key, conn)
            .ok_or_else(|| refusal(ResultCode::UidNotFound, ""))?;
        let m = &room.members[idx];
        if let Some(uid) = &id.uid
            && uid != &m.uid
        {
            let d = format!("uid {uid} is not this connection's uid {}", m.uid);
            return Err(refusal(ResultCode::NotAllowed, d));
        }
        if let Some(room_id) = &id.room_id
            && room_id != &room.room_id
        {
            let d = format!(
                "roomId {room_id} is not this connection's room {}",
                room.room_id
            );
            return Err(refusal(ResultCode::NotAllowed, d));
        }
        if let Some(app_id) = &id.app_id
            && app_id != &room.app_id
        {
            let d = format!(
                "appId {app_id} is not this connection's app {}",
                room.app_id
            );
            return Err(refusal(ResultCode::NotAllowed, d));
        }
        Ok(From { key: *key, idx })
    }

    /// The remote member named by `remote`, which must be someone else in the same room.
    fn remote(&self, from: &From, remote: &Ident) -> Result<usize, Refusal> {
        let room = &self.rooms[&from.key];
        let idx = room
            .members
            .iter()
            .position(|m| m.uid.key() == remote.key())
            .ok_or_else(|| refusal(ResultCode::RemoteNotFound, ""))?;
        if idx == from.idx {
            return Err(refusal(
                ResultCode::ParseFailed,
                "remoteUid is your own uid",
            ));
        }
        Ok(idx)
    }

    /// Like [`Self::remote`], and the remote's socket must be open to relay to it.
    fn reachable(&self, from: &From, remote: &Ident) -> Result<(usize, ConnId), Refusal> {
        let idx = self.remote(from, remote)?;
        let conn = self.rooms[&from.key].members[idx].conn;
        if !self.conns.get(&conn).is_some_and(|c| c.live && !c.closing) {
            let d = "the remote user's connection dropped; it may rejoin shortly";
            return Err(refusal(ResultCode::RemoteNotFound, d));
        }
        Ok((idx, conn))
    }

    fn refuse_decode(&mut self, conn: ConnId, e: DecodeError) {
        let code = ResultCode::ParseFailed;
        let desc = format!("{}: {e}", code.desc());
        let msg = match &e {
            DecodeError::Invalid { cmd, echo, .. } => error_reply(
                *cmd,
                echo,
                None,
                code,
                desc.clone(),
                self.cfg.report_stats_interval_secs,
            ),
            _ => ServerMsg::GeneralMsgResp(GeneralMsgResp {
                result: code,
                desc: desc.clone(),
                data1: None,
                data2: None,
            }),
        };
        let cmd = e.command().map_or("frame", Command::as_str);
        self.refused_event(conn, cmd, code, &desc);
        self.send(conn, msg);
    }

    fn refuse(&mut self, conn: ConnId, req: &Request, code: ResultCode, desc: String) {
        let (id, remote) = match req {
            Request::Join(j) => {
                let id = Identity {
                    room_id: Some(j.room_id.clone()),
                    uid: j.uid.clone(),
                    ..Identity::default()
                };
                (id, None)
            }
            Request::Leave(r) => (r.id.clone(), None),
            Request::Offer(r) => (r.id.clone(), Some(&r.remote_uid)),
            Request::Answer(r) => (r.id.clone(), Some(&r.remote_uid)),
            Request::Candidate(r) => (r.id.clone(), Some(&r.remote_uid)),
            Request::KeepLive(r) => (r.id.clone(), None),
            Request::TurnTalkType(r) => (r.id.clone(), None),
            Request::PeerConnected(r) => (r.id.clone(), Some(&r.remote_uid)),
            Request::ReportInfo(r) => (r.id.clone(), None),
            Request::ReportStats(r) => (r.id.clone(), r.remote_uid.as_ref()),
            Request::UpdateToken(r) => (r.id.clone(), None),
        };
        let cmd = req.command();
        self.refused_event(conn, cmd.as_str(), code, &desc);
        let interval = self.cfg.report_stats_interval_secs;
        let msg = error_reply(cmd, &id, remote, code, desc, interval);
        self.send(conn, msg);
    }

    fn refused_event(&mut self, conn: ConnId, cmd: &'static str, code: ResultCode, desc: &str) {
        self.out.push_back(Effect::Event(Event::Refused {
            conn,
            cmd,
            result: code.code(),
            desc: desc.to_owned(),
        }));
    }

    // ----- join -----

    fn check_grant(
        &self,
        j: &Join,
        uid: Option<&Ident>,
        grant: &Grant,
    ) -> Result<Option<TokenState>, Refusal> {
        if self.cfg.auth == AuthMode::Open {
            return Ok(None);
        }
        match grant {
            Grant::Unchecked => Err(refusal(
                ResultCode::TokenInvalid,
                "the join carries no token",
            )),
            Grant::Invalid(why) => Err(refusal(ResultCode::TokenInvalid, why.clone())),
            Grant::Valid {
                app_id,
                uid: token_uid,
                expires_at,
            } => {
                if app_id != &j.app_id {
                    let d = format!("the token is for app {app_id}, not {}", j.app_id);
                    return Err(refusal(ResultCode::TokenInvalid, d));
                }
                if let Some(tu) = token_uid
                    && uid.is_none_or(|u| u.key() != tu)
                {
                    let d = format!("the token is for uid {tu}");
                    return Err(refusal(ResultCode::TokenInvalid, d));
                }
                Ok(Some(TokenState {
                    expires_at: *expires_at,
                    prompted: false,
                }))
            }
        }
    }

    fn join(&mut self, now: Millis, conn: ConnId, j: Join, grant: Grant) {
        match self.try_join(now, conn, &j, &grant) {
            Ok(()) => self.schedule(conn),
            Err((code, desc)) => {
                // A failed join still echoes what the client sent.
                let req = Request::Join(j);
                self.refuse(conn, &req, code, desc);
            }
        }
    }

    fn try_join(
        &mut self,
        now: Millis,
        conn: ConnId,
        j: &Join,
        grant: &Grant,
    ) -> Result<(), Refusal> {
        let too_long = |name: &str, v: &str| {
            (v.chars().count() > MAX_ID_LEN).then(|| {
                refusal(
                    ResultCode::ParseFailed,
                    format!("{name} is longer than {MAX_ID_LEN} characters"),
                )
            })
        };
        for (name, v) in [
            ("appId", Some(j.app_id.as_str())),
            ("roomId", Some(j.room_id.key())),
            ("uid", j.uid.as_ref().map(Ident::key)),
            ("uname", j.uname.as_deref()),
        ] {
            if let Some(e) = v.and_then(|v| too_long(name, v)) {
                return Err(e);
            }
        }
        let token = self.check_grant(j, j.uid.as_ref(), grant)?;
        let key = RoomKey {
            app: j.app_id.as_str().into(),
            room: j.room_id.key().into(),
        };
        if let Bound::Member(bound_no) = &self.conns[&conn].bound {
            let idx = self.member_of(bound_no, conn);
            let room = &self.rooms[bound_no];
            if room.key != key {
                let d = format!(
                    "this connection is in room {}; leave it first",
                    room.room_id
                );
                return Err(refusal(ResultCode::NotAllowed, d));
            }
            if let Some(idx) = idx
                && j.uid.as_ref().is_none_or(|u| u != &room.members[idx].uid)
            {
                let d = format!("this connection joined as uid {}", room.members[idx].uid);
                return Err(refusal(ResultCode::NotAllowed, d));
            }
        }
        let existing = j.uid.as_ref().and_then(|uid| {
            let no = *self.room_nos.get(&key)?;
            let idx = self.rooms[&no].members.iter().position(|m| &m.uid == uid)?;
            Some(From { key: no, idx })
        });
        match existing {
            Some(from) => self.rejoin(now, conn, j, from, token),
            None => self.join_new(now, conn, j, key, token),
        }
    }

    /// The same uid joins again (a reconnect): the member keeps its session and records,
    /// moves to this connection, and the pairing starts again.
    fn rejoin(
        &mut self,
        now: Millis,
        conn: ConnId,
        j: &Join,
        from: From,
        token: Option<TokenState>,
    ) -> Result<(), Refusal> {
        let ip = self.conns[&conn].ip.clone();
        let old_conn = {
            let m = self.member(&from);
            let old = m.conn;
            m.conn = conn;
            m.last_seen = now;
            m.ip = ip;
            m.talk_type = j.talk_type;
            m.user_type = j.user_type;
            if let Some(u) = &j.uname {
                m.uname.clone_from(u);
            }
            if token.is_some() {
                m.token = token;
            }
            old
        };
        if old_conn != conn {
            self.unbind(old_conn, CloseReason::Replaced);
        }
        self.conns.get_mut(&conn).expect("live").bound = Bound::Member(from.key);
        self.welcome(now, conn, j, &from, true);
        Ok(())
    }

    fn join_new(
        &mut self,
        now: Millis,
        conn: ConnId,
        j: &Join,
        key: RoomKey,
        token: Option<TokenState>,
    ) -> Result<(), Refusal> {
        let cap = self.cfg.max_capacity;
        let existing = self.room_nos.get(&key).copied();
        let count = existing.map_or(0, |no| self.rooms[&no].members.len());
        if count >= cap {
            let d = format!("room is full, it up to max number:{cap}");
            return Err((ResultCode::RoomFull, d));
        }
        let uid = match &j.uid {
            Some(uid) => uid.clone(),
            None => self.assign_uid(existing),
        };
        let uname = j
            .uname
            .clone()
            .unwrap_or_else(|| format!("client_{}", uid.key()));
        // One ICE server per pair, chosen before anything is created: a join that cannot be
        // served is refused whole.
        let mut chosen: Vec<Option<Arc<Chosen>>> = Vec::new();
        if let Some(registry) = self.ice.as_mut() {
            let media = |talk_type: i64| {
                if talk_type == 0 {
                    Media::AudioOnly
                } else {
                    Media::Video
                }
            };
            let talk_types: Vec<i64> = existing
                .map(|no| {
                    self.rooms[&no]
                        .members
                        .iter()
                        .map(|m| m.talk_type)
                        .collect()
                })
                .unwrap_or_default();
            for t in talk_types {
                match registry.select(now.0, Need::pair(media(t), media(j.talk_type)), None) {
                    Ok(c) => chosen.push(Some(Arc::new(c))),
                    Err(no_room) => {
                        return Err(refusal(ResultCode::IceBandwidthFull, no_room.to_string()));
                    }
                }
            }
        }
        let session_id = self.ids.next(now);
        let ip = self.conns[&conn].ip.clone();
        self.record(Record::SessionOpen(SessionOpen {
            session_id,
            app_id: j.app_id.clone(),
            room_id: j.room_id.key().to_owned(),
            user_id: uid.key().to_owned(),
            user_name: uname.clone(),
            user_type: j.user_type,
            talk_type: j.talk_type,
            user_ip: ip.clone(),
            os_name: cut(j.os_name.clone()),
            browser: cut(j.browser.clone()),
            sdk_info: cut(j.sdk_info.clone()),
            join_time: now,
        }));
        let mut newcomer = Member {
            uid,
            uname,
            user_type: j.user_type,
            talk_type: j.talk_type,
            conn,
            ip,
            session_id,
            joined_at: now,
            last_seen: now,
            devices: [None; 4],
            subs: Vec::new(),
            token,
        };
        let no = existing.unwrap_or_else(|| {
            self.next_room += 1;
            let no = RoomNo(self.next_room);
            self.room_nos.insert(key.clone(), no);
            no
        });
        let room = self.rooms.entry(no).or_insert_with(|| Room {
            key,
            app_id: j.app_id.clone(),
            room_id: j.room_id.clone(),
            room_name: cut(j.room_name.clone()),
            members: Vec::new(),
        });
        // Every pair that meets gets two sub-sessions, one per direction.
        let mut opened = Vec::new();
        let place = (room.app_id.as_str(), room.room_id.key());
        for (i, e) in room.members.iter_mut().enumerate() {
            let ice = chosen.get(i).cloned().flatten();
            let ice_ip = ice.as_ref().map_or("", |c| c.ip()).to_owned();
            let there = Sub {
                id: self.ids.next(now),
                remote_key: newcomer.uid.key().into(),
                remote_session: newcomer.session_id,
                begun: false,
                connected_at: None,
                connect_type: ConnectType::Unknown,
                finished: false,
                ice: ice.clone(),
            };
            let back = Sub {
                id: self.ids.next(now),
                remote_key: e.uid.key().into(),
                remote_session: e.session_id,
                begun: false,
                connected_at: None,
                connect_type: ConnectType::Unknown,
                finished: false,
                ice,
            };
            opened.push(sub_open(place, e, &newcomer, there.id, &ice_ip, now));
            opened.push(sub_open(place, &newcomer, e, back.id, &ice_ip, now));
            e.subs.push(there);
            newcomer.subs.push(back);
        }
        room.members.push(newcomer);
        let idx = room.members.len() - 1;
        for r in opened {
            self.record(Record::SubSessionOpen(r));
        }
        self.conns.get_mut(&conn).expect("live").bound = Bound::Member(no);
        self.welcome(now, conn, j, &From { key: no, idx }, false);
        Ok(())
    }

    /// `respJoin` to the joiner (with everyone already there), then `notifyNewPeer` to each
    /// of them: the existing members make the offers.
    fn welcome(&mut self, now: Millis, conn: ConnId, j: &Join, from: &From, rejoin: bool) {
        let room = &self.rooms[&from.key];
        let me = &room.members[from.idx];
        let peers: Vec<Peer> = room
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != from.idx)
            .map(|(_, m)| Peer {
                app_id: room.app_id.clone(),
                uid: m.uid.clone(),
                uname: m.uname.clone(),
                user_type: m.user_type,
                talk_type: m.talk_type,
            })
            .collect();
        let resp = ServerMsg::RespJoin(RespJoin {
            result: ResultCode::Ok,
            desc: ResultCode::Ok.desc().to_owned(),
            room_id: j.room_id.clone(),
            room_name: room.room_name.clone(),
            uid: j.uid.clone().unwrap_or_else(|| me.uid.clone()),
            uname: me.uname.clone(),
            session_id: Some(me.session_id),
            report_stats_interval: self.cfg.report_stats_interval_secs,
            user_list: (!peers.is_empty()).then_some(peers),
        });
        // Each existing member gets the rtcConfig of its pair with the newcomer.
        let notifies: Vec<(ConnId, ServerMsg)> = room
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != from.idx)
            .map(|(_, m)| {
                let chosen = m
                    .subs
                    .iter()
                    .rev()
                    .find(|s| !s.finished && &*s.remote_key == me.uid.key())
                    .and_then(|s| s.ice.as_deref());
                let notify = ServerMsg::NotifyNewPeer(NotifyNewPeer {
                    uid: me.uid.clone(),
                    uname: me.uname.clone(),
                    user_type: me.user_type,
                    talk_type: me.talk_type,
                    rtc_config: self.rtc_for(chosen, &m.uid, now),
                });
                (m.conn, notify)
            })
            .collect();
        let event = Event::Joined {
            app_id: room.app_id.clone(),
            room_id: room.room_id.key().to_owned(),
            uid: me.uid.key().to_owned(),
            session_id: me.session_id,
            rejoin,
        };
        self.send(conn, resp);
        for (other, notify) in notifies {
            self.send(other, notify);
        }
        self.out.push_back(Effect::Event(event));
    }

    fn assign_uid(&mut self, room: Option<RoomNo>) -> Ident {
        loop {
            let candidate = format!("{:09}", self.ids.below(1_000_000_000));
            let taken = room.is_some_and(|no| {
                self.rooms[&no]
                    .members
                    .iter()
                    .any(|m| m.uid.key() == candidate)
            });
            if !taken {
                return Ident::new(&candidate);
            }
        }
    }

    // ----- leaving -----

    /// Take a member out of its room: the others get `relayLeave`, every sub-session of the
    /// member and towards it is finished and billed, the session row is closed.
    fn remove_member(&mut self, now: Millis, from: From, cause: LeaveCause) {
        let prices = self.cfg.prices;
        let timed_out = cause == LeaveCause::TimedOut;
        let room = self.rooms.get_mut(&from.key).expect("bound room exists");
        let mut m = room.members.remove(from.idx);
        let mut records = Vec::new();
        for s in m.subs.iter_mut().filter(|s| !s.finished) {
            records.push(finish(s, now, timed_out, prices));
        }
        let mut notify = Vec::new();
        for o in &mut room.members {
            for s in o
                .subs
                .iter_mut()
                .filter(|s| !s.finished && s.remote_session == m.session_id)
            {
                records.push(finish(s, now, timed_out, prices));
            }
            notify.push(o.conn);
        }
        let event = Event::Left {
            app_id: room.app_id.clone(),
            room_id: room.room_id.key().to_owned(),
            uid: m.uid.key().to_owned(),
            session_id: m.session_id,
            cause,
        };
        if room.members.is_empty()
            && let Some(gone) = self.rooms.remove(&from.key)
        {
            self.room_nos.remove(&gone.key);
        }
        let relay = ServerMsg::RelayLeave(RelayLeave {
            uid: m.uid.clone(),
            uname: m.uname.clone(),
            user_type: m.user_type,
        });
        for conn in notify {
            self.send(conn, relay.clone());
        }
        for r in records {
            self.record(Record::SubSessionFinish(r));
        }
        self.record(Record::SessionClose(SessionClose {
            session_id: m.session_id,
            leave_time: now,
            duration_secs: now.secs_since(m.joined_at),
            timed_out,
        }));
        self.out.push_back(Effect::Event(event));
    }

    fn leave(&mut self, now: Millis, conn: ConnId, id: &Identity) -> Result<(), Refusal> {
        let from = self.bound(conn, id)?;
        let m = self.member(&from);
        let resp = ServerMsg::RespLeave(RespLeave {
            uid: m.uid.clone(),
            uname: m.uname.clone(),
            user_type: m.user_type,
            result: ResultCode::Ok,
            desc: ResultCode::Ok.desc().to_owned(),
        });
        self.send(conn, resp);
        self.remove_member(now, from, LeaveCause::Leave);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.bound = Bound::Gone;
        }
        Ok(())
    }

    // ----- relays -----

    fn offer(&mut self, now: Millis, conn: ConnId, r: &mut Offer) -> Result<(), Refusal> {
        let from = self.bound(conn, &r.id)?;
        let (ridx, rconn) = self.reachable(&from, &r.remote_uid)?;
        let room = self.rooms.get_mut(&from.key).expect("bound room exists");
        let (me, remote) = pair_mut(&mut room.members, from.idx, ridx);
        let mine = me
            .sub_to(remote.uid.key())
            .ok_or_else(|| refusal(ResultCode::RemoteNotFound, ""))?;
        let my_sub = mine.id;
        let begin = !std::mem::replace(&mut mine.begun, true);
        let theirs_sub = remote
            .sub_to(me.uid.key())
            .ok_or_else(|| refusal(ResultCode::RemoteNotFound, ""))?;
        let (theirs, chosen) = (theirs_sub.id, theirs_sub.ice.clone());
        let (me, remote) = (&room.members[from.idx], &room.members[ridx]);
        let rtc_config = match chosen.as_deref() {
            Some(c) => SharedJson::rtc_config(&c.rtc_config(remote.uid.key(), now.0)),
            None => self.cfg.rtc_config.clone(),
        };
        let relay = ServerMsg::RelayOffer(RelayOffer {
            uid: me.uid.clone(),
            uname: me.uname.clone(),
            remote_uid: remote.uid.clone(),
            sub_session_id: theirs,
            msg: r.msg.take(),
            rtc_config,
            is_ice_reset: r.is_ice_reset,
        });
        let resp = ServerMsg::RespOffer(RespOffer {
            remote_uid: remote.uid.clone(),
            result: ResultCode::Ok,
            desc: ResultCode::Ok.desc().to_owned(),
            sub_session_id: Some(my_sub),
        });
        self.send(rconn, relay);
        self.send(conn, resp);
        if begin {
            self.record(Record::SubSessionBegin(SubSessionBegin {
                sub_session_id: my_sub,
                begin_time: now,
            }));
        }
        Ok(())
    }

    fn answer(&mut self, now: Millis, conn: ConnId, r: &mut Answer) -> Result<(), Refusal> {
        let from = self.bound(conn, &r.id)?;
        let (ridx, rconn) = self.reachable(&from, &r.remote_uid)?;
        let room = self.rooms.get_mut(&from.key).expect("bound room exists");
        let (me, remote) = pair_mut(&mut room.members, from.idx, ridx);
        let relay = ServerMsg::RelayAnswer(RelayAnswer {
            connect_type: r.connect_type,
            uid: me.uid.clone(),
            uname: me.uname.clone(),
            remote_uid: remote.uid.clone(),
            msg: r.msg.take(),
        });
        let begin = me.sub_to(remote.uid.key()).and_then(|s| {
            let first = !std::mem::replace(&mut s.begun, true);
            first.then_some(s.id)
        });
        self.send(rconn, relay);
        if let Some(id) = begin {
            self.record(Record::SubSessionBegin(SubSessionBegin {
                sub_session_id: id,
                begin_time: now,
            }));
        }
        Ok(())
    }

    fn candidate(&mut self, conn: ConnId, r: &mut Candidate) -> Result<(), Refusal> {
        let from = self.bound(conn, &r.id)?;
        let (ridx, rconn) = self.reachable(&from, &r.remote_uid)?;
        let room = &self.rooms[&from.key];
        let (me, remote) = (&room.members[from.idx], &room.members[ridx]);
        let relay = ServerMsg::RelayCandidate(RelayCandidate {
            uid: me.uid.clone(),
            uname: me.uname.clone(),
            remote_uid: remote.uid.clone(),
            msg: r.msg.take(),
        });
        self.send(rconn, relay);
        Ok(())
    }

    fn keep_live(&mut self, conn: ConnId, id: &Identity) -> Result<(), Refusal> {
        self.bound(conn, id)?;
        let resp = ServerMsg::RespKeepLive(RespKeepLive {
            result: ResultCode::Ok,
            desc: ResultCode::Ok.desc().to_owned(),
        });
        self.send(conn, resp);
        Ok(())
    }

    fn turn_talk_type(&mut self, conn: ConnId, r: &TurnTalkType) -> Result<(), Refusal> {
        let from = self.bound(conn, &r.id)?;
        let me = self.member(&from);
        me.devices[usize::from(r.index)] = Some(r.enable);
        let (uid, uname) = (me.uid.clone(), me.uname.clone());
        let resp = ServerMsg::RespTurnTalkType(RespTurnTalkType {
            uid: uid.clone(),
            result: ResultCode::Ok,
            desc: ResultCode::Ok.desc().to_owned(),
        });
        self.send(conn, resp);
        let relay = ServerMsg::RelayTurnTalkType(RelayTurnTalkType {
            uid,
            uname,
            index: r.index,
            enable: r.enable,
        });
        let others: Vec<ConnId> = self.rooms[&from.key]
            .members
            .iter()
            .filter(|m| m.conn != conn)
            .map(|m| m.conn)
            .collect();
        for other in others {
            self.send(other, relay.clone());
        }
        Ok(())
    }

    fn peer_connected(
        &mut self,
        now: Millis,
        conn: ConnId,
        r: &PeerConnected,
    ) -> Result<(), Refusal> {
        let from = self.bound(conn, &r.id)?;
        let ridx = self.remote(&from, &r.remote_uid)?;
        let room = self.rooms.get_mut(&from.key).expect("bound room exists");
        let (me, remote) = pair_mut(&mut room.members, from.idx, ridx);
        let sub = me
            .sub_to(remote.uid.key())
            .ok_or_else(|| refusal(ResultCode::RemoteNotFound, ""))?;
        let connect_time = *sub.connected_at.get_or_insert(now);
        sub.connect_type = r.connect_type;
        let connect = SubSessionConnect {
            sub_session_id: sub.id,
            connect_time,
            connect_type: r.connect_type,
        };
        let resp = ServerMsg::RespPeerConnected(RespPeerConnected {
            uid: me.uid.clone(),
            uname: me.uname.clone(),
            remote_uid: remote.uid.clone(),
            result: ResultCode::Ok,
            desc: ResultCode::Ok.desc().to_owned(),
        });
        // The remote may have joined after this member changed its devices: tell it the
        // current state, so that it shows who is muted (orig).
        let states: Vec<ServerMsg> = (0u8..4)
            .filter_map(|i| {
                me.devices[usize::from(i)].map(|enable| {
                    ServerMsg::RelayTurnTalkType(RelayTurnTalkType {
                        uid: me.uid.clone(),
                        uname: me.uname.clone(),
                        index: i,
                        enable,
                    })
                })
            })
            .collect();
        let rconn = remote.conn;
        self.send(conn, resp);
        for s in states {
            self.send(rconn, s);
        }
        self.record(Record::SubSessionConnect(connect));
        Ok(())
    }

    fn report_info(&mut self, now: Millis, conn: ConnId, r: &ReportInfo) -> Result<(), Refusal> {
        let from = self.bound(conn, &r.id)?;
        let id = self.ids.next(now);
        let room = &self.rooms[&from.key];
        let m = &room.members[from.idx];
        let info = ClientInfo {
            id,
            session_id: m.session_id,
            app_id: room.app_id.clone(),
            room_id: room.room_id.key().to_owned(),
            user_id: m.uid.key().to_owned(),
            result: r.result,
            desc: r.desc.clone(),
            data1: r.data1.as_ref().map(|d| d.get().to_owned()),
            data2: r.data2.as_ref().map(|d| d.get().to_owned()),
            create_time: now,
        };
        if r.result != 0 {
            self.out.push_back(Effect::Event(Event::ClientReport {
                app_id: info.app_id.clone(),
                room_id: info.room_id.clone(),
                uid: info.user_id.clone(),
                session_id: info.session_id,
                result: r.result,
                desc: r.desc.clone(),
            }));
        }
        self.record(Record::ClientInfo(info));
        Ok(())
    }

    fn report_stats(&mut self, now: Millis, conn: ConnId, r: &ReportStats) -> Result<(), Refusal> {
        let from = self.bound(conn, &r.id)?;
        let id = self.ids.next(now);
        let m = &self.rooms[&from.key].members[from.idx];
        // The reporter's own sub-session towards the remote, found by the remote's uid (the
        // latest one, finished or not: stats may trail a leave) or by the id it was given.
        let sub = r
            .remote_uid
            .as_ref()
            .and_then(|remote| m.subs.iter().rev().find(|s| &*s.remote_key == remote.key()))
            .or_else(|| {
                let wanted = r.sub_session_id.as_deref()?;
                m.subs.iter().find(|s| s.id.to_string() == wanted)
            })
            .ok_or_else(|| refusal(ResultCode::RemoteNotFound, ""))?;
        let q = Quality {
            id,
            sub_session_id: sub.id,
            session_id: m.session_id,
            user_id: m.uid.key().to_owned(),
            remote_user_id: sub.remote_key.to_string(),
            create_time: now,
            stats: r.stats.clone(),
        };
        self.record(Record::Quality(q));
        Ok(())
    }

    fn update_token(&mut self, conn: ConnId, r: &UpdateToken, grant: Grant) -> Result<(), Refusal> {
        let from = self.bound(conn, &r.id)?;
        let expire_at = if let AuthMode::Required { .. } = self.cfg.auth {
            let room = &self.rooms[&from.key];
            let m = &room.members[from.idx];
            let (app_id, uid, expires_at) = match grant {
                Grant::Valid {
                    app_id,
                    uid,
                    expires_at,
                } => (app_id, uid, expires_at),
                Grant::Invalid(why) => return Err(refusal(ResultCode::TokenInvalid, why)),
                Grant::Unchecked => return Err(refusal(ResultCode::TokenInvalid, "no token")),
            };
            if app_id != room.app_id {
                let d = format!("the token is for app {app_id}, not {}", room.app_id);
                return Err(refusal(ResultCode::TokenInvalid, d));
            }
            if let Some(u) = uid
                && u != m.uid.key()
            {
                return Err(refusal(
                    ResultCode::TokenInvalid,
                    format!("the token is for uid {u}"),
                ));
            }
            self.member(&from).token = Some(TokenState {
                expires_at,
                prompted: false,
            });
            expires_at.as_secs()
        } else {
            0
        };
        let resp = ServerMsg::RespUpdateToken(RespUpdateToken {
            result: ResultCode::Ok,
            desc: ResultCode::Ok.desc().to_owned(),
            expire_at,
        });
        self.send(conn, resp);
        self.schedule(conn);
        Ok(())
    }
}

/// Two distinct members of one room, both mutable.
fn pair_mut(members: &mut [Member], a: usize, b: usize) -> (&mut Member, &mut Member) {
    assert_ne!(a, b, "a pair is two members");
    if a < b {
        let (l, r) = members.split_at_mut(b);
        (&mut l[a], &mut r[0])
    } else {
        let (l, r) = members.split_at_mut(a);
        (&mut r[0], &mut l[b])
    }
}

fn sub_open(
    (app_id, room_id): (&str, &str),
    me: &Member,
    remote: &Member,
    id: Ulid,
    ice_ip: &str,
    now: Millis,
) -> SubSessionOpen {
    SubSessionOpen {
        sub_session_id: id,
        session_id: me.session_id,
        app_id: app_id.to_owned(),
        room_id: room_id.to_owned(),
        user_id: me.uid.key().to_owned(),
        remote_user_id: remote.uid.key().to_owned(),
        remote_user_name: remote.uname.clone(),
        remote_user_ip: remote.ip.clone(),
        ice_ip: ice_ip.to_owned(),
        created: now,
    }
}

fn finish(s: &mut Sub, now: Millis, timed_out: bool, prices: crate::Prices) -> SubSessionFinish {
    s.finished = true;
    let (duration_secs, status) = match (s.connected_at, timed_out) {
        (Some(at), false) => (now.secs_since(at), SubStatus::ConnectedLeft),
        (Some(at), true) => (now.secs_since(at), SubStatus::ConnectedTimedOut),
        (None, false) => (0, SubStatus::NeverConnectedLeft),
        (None, true) => (0, SubStatus::NeverConnectedTimedOut),
    };
    let per_minute = match s.connect_type {
        ConnectType::Turn => prices.turn,
        ConnectType::Stun => prices.stun,
        ConnectType::Unknown => prices.unknown,
    };
    SubSessionFinish {
        sub_session_id: s.id,
        finish_time: now,
        duration_secs,
        status,
        cost_cents: duration_secs.div_ceil(60) * per_minute,
    }
}

/// The command's own response carrying a refusal (protocol.md: every join gets a
/// `respJoin`; frames that are not requests get `generalMsgResp`).
fn error_reply(
    cmd: Command,
    id: &Identity,
    remote: Option<&Ident>,
    result: ResultCode,
    desc: String,
    report_stats_interval: u64,
) -> ServerMsg {
    let uid = id.uid.clone().unwrap_or_else(empty_ident);
    let remote_uid = remote.cloned().unwrap_or_else(empty_ident);
    match cmd {
        Command::Join => ServerMsg::RespJoin(RespJoin {
            result,
            desc,
            room_id: id.room_id.clone().unwrap_or_else(empty_ident),
            room_name: String::new(),
            uid,
            uname: String::new(),
            session_id: None,
            report_stats_interval,
            user_list: None,
        }),
        Command::Leave => ServerMsg::RespLeave(RespLeave {
            uid,
            uname: String::new(),
            user_type: 0,
            result,
            desc,
        }),
        Command::Offer => ServerMsg::RespOffer(RespOffer {
            remote_uid,
            result,
            desc,
            sub_session_id: None,
        }),
        Command::Answer => ServerMsg::RespAnswer(RespAnswer {
            uid,
            uname: String::new(),
            remote_uid,
            result,
            desc,
        }),
        Command::Candidate => ServerMsg::RespCandidate(RespCandidate {
            uid,
            uname: String::new(),
            remote_uid,
            result,
            desc,
        }),
        Command::PeerConnected => ServerMsg::RespPeerConnected(RespPeerConnected {
            uid,
            uname: String::new(),
            remote_uid,
            result,
            desc,
        }),
        Command::KeepLive => ServerMsg::RespKeepLive(RespKeepLive { result, desc }),
        Command::TurnTalkType => {
            ServerMsg::RespTurnTalkType(RespTurnTalkType { uid, result, desc })
        }
        Command::UpdateToken => ServerMsg::RespUpdateToken(RespUpdateToken {
            result,
            desc,
            expire_at: 0,
        }),
        Command::ReportInfo | Command::ReportStats => ServerMsg::GeneralMsgResp(GeneralMsgResp {
            result,
            desc,
            data1: None,
            data2: None,
        }),
    }
}

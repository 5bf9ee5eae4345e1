//! Continuity across a restart: [`Engine::restart`] tells every client to reconnect without
//! anyone leaving, [`Engine::snapshot`] captures the rooms, members, sessions and
//! sub-sessions as plain data, and [`Engine::restore`] seats them again in a new engine,
//! each member without a connection until it resumes with its resume key.
//!
//! A snapshot holds resume keys, so its `Debug` never shows them; whoever writes it to disk
//! keeps the file private to the server.

use super::state::{Conn, Member, Membership, Room, RoomKey, RoomNo, Sub, TokenState};
use super::{ConnId, Engine};
use crate::Millis;
use crate::effect::{CloseReason, Effect};
use crate::ids::Entropy;
use crate::time::shift;
use rtcroom_protocol::{ConnectType, Ident, ResumeKey};
use std::collections::HashSet;
use std::fmt;
use ulid::Ulid;

/// The version of the snapshot's shape; a snapshot of another version is not restored.
const VERSION: u32 = 1;

/// Connection numbers from here up are the engine's own: a member restored or adopted
/// without a connection sits on a placeholder connection (never live) until it resumes. The
/// shell numbers its connections from 0 up and never reaches them.
pub(super) const PLACEHOLDER_CONNS: u64 = 1 << 63;

/// Everything a restarted server needs to keep its calls: rooms, members (with their
/// sessions, resume keys, tokens and when they were last heard) and sub-sessions. With the
/// `serde` feature it serializes; its fields are private so that only [`Engine::restore`]
/// reads it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Snapshot {
    version: u32,
    /// Unix ms.
    taken_at: u64,
    rooms: Vec<SnapRoom>,
}

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct SnapRoom {
    app_id: String,
    /// The room id's JSON text as first received (`"22"` or `22`).
    room_id: String,
    room_name: String,
    members: Vec<SnapMember>,
}

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct SnapMember {
    /// The uid's JSON text as first received.
    uid: String,
    uname: String,
    user_type: i64,
    talk_type: i64,
    ip: String,
    session_id: String,
    joined_at: u64,
    last_seen: u64,
    devices: [Option<bool>; 4],
    subs: Vec<SnapSub>,
    /// The token's expiry (Unix ms) and whether its prompt was sent.
    token: Option<(u64, bool)>,
    resume_key: SecretText,
}

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct SnapSub {
    id: String,
    remote_key: String,
    remote_session: String,
    begun: bool,
    connected_at: Option<u64>,
    connect_type: String,
    finished: bool,
    ice_ip: String,
}

/// A resume key in a snapshot: serialized as it is, never shown by `Debug`.
#[derive(Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
struct SecretText(String);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("…")
    }
}

impl Snapshot {
    /// When the snapshot was taken: a shell ignores one older than the heartbeat timeout,
    /// whose members could not have resumed anyway.
    pub fn taken_at(&self) -> Millis {
        Millis(self.taken_at)
    }

    /// Rooms in the snapshot.
    pub fn rooms(&self) -> usize {
        self.rooms.len()
    }

    /// Members in the snapshot.
    pub fn members(&self) -> usize {
        self.rooms.iter().map(|r| r.members.len()).sum()
    }

    /// Each room's app id and room id (its JSON text), in the snapshot's order.
    pub(super) fn room_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rooms
            .iter()
            .map(|r| (r.app_id.as_str(), r.room_id.as_str()))
    }
}

/// Why [`Engine::restore`] did not take a snapshot. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreError {
    /// Written by a server with another snapshot format.
    Version { found: u32, expected: u32 },
    /// The engine already has rooms; a snapshot is restored into a new engine.
    NotEmpty,
    /// The snapshot does not describe a state the engine can be in.
    Invalid(String),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version { found, expected } => write!(
                f,
                "snapshot format version {found}, this server reads version {expected}"
            ),
            Self::NotEmpty => f.write_str("the engine already has rooms"),
            Self::Invalid(why) => write!(f, "the snapshot is inconsistent: {why}"),
        }
    }
}

impl std::error::Error for RestoreError {}

fn invalid(why: impl Into<String>) -> RestoreError {
    RestoreError::Invalid(why.into())
}

fn ulid(text: &str) -> Result<Ulid, RestoreError> {
    Ulid::from_string(text).map_err(|_| invalid(format!("{text:?} is not a ULID")))
}

fn ident(text: &str) -> Result<Ident, RestoreError> {
    Ident::from_json(text).ok_or_else(|| invalid(format!("{text:?} is not an identifier")))
}

impl<E: Entropy> Engine<E> {
    /// The server restarts: every connection is closed with
    /// [`CloseReason::ServiceRestart`] (WebSocket 1012), and nobody leaves: members keep
    /// their place, sessions and sub-sessions stay open, no record is written. Each member
    /// is then as if its connection had dropped: it may resume with its resume key within
    /// the heartbeat timeout (here, or in the engine a [`Snapshot`] is restored into).
    pub fn restart(&mut self, now: impl Into<crate::Now>) {
        self.clock(now);
        let mut conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.reachable())
            .map(|(id, _)| *id)
            .collect();
        conns.sort_unstable();
        for conn in conns {
            let Some(seat) = self.seat_of_conn(conn) else {
                self.close(conn, CloseReason::ServiceRestart);
                continue;
            };
            // The socket is gone as far as the engine is concerned: nothing more is sent
            // to it and its close is not a leave.
            if let Some(c) = self.conns.get_mut(&conn) {
                c.live = false;
            }
            self.out.push_back(Effect::Close {
                conn,
                reason: CloseReason::ServiceRestart,
            });
            self.detached(seat);
        }
    }

    /// The rooms, members, sessions and sub-sessions as they are at `now`, for
    /// [`Engine::restore`]. Connections, the ICE registry and rate limits are not kept: the
    /// clients reconnect, ICE servers register again.
    /// Its times are wall-clock times, as `now` reads them: a monotonic clock does not
    /// outlive the process.
    pub fn snapshot(&self, now: impl Into<crate::Now>) -> Snapshot {
        self.snapshot_of(now.into(), self.rooms.values())
    }

    /// A snapshot of `rooms` (in the order of their names, whatever the order given).
    pub(super) fn snapshot_of<'a>(
        &self,
        now: crate::Now,
        rooms: impl Iterator<Item = &'a Room>,
    ) -> Snapshot {
        let offset = now.offset();
        let mut rooms: Vec<&Room> = rooms.collect();
        rooms.sort_by(|a, b| (&a.key.app, &a.key.room).cmp(&(&b.key.app, &b.key.room)));
        Snapshot {
            version: VERSION,
            taken_at: now.wall.0,
            rooms: rooms
                .into_iter()
                .map(|r| SnapRoom {
                    app_id: r.app_id.as_str().to_owned(),
                    room_id: r.room_id.raw_json().to_owned(),
                    room_name: r.room_name.clone(),
                    members: r.members.iter().map(|m| snap_member(m, offset)).collect(),
                })
                .collect(),
        }
    }

    /// Seat the rooms and members of `snapshot` in this engine, which must have no rooms.
    /// Each member is without a connection, as if its connection had just dropped: it
    /// resumes with its resume key, and one that does not come back within the heartbeat
    /// timeout of when it was last heard is removed as timed out, its records closed at
    /// that last-heard time. Nothing is recorded by the restore itself: the records of the
    /// calls continue.
    pub fn restore(
        &mut self,
        now: impl Into<crate::Now>,
        snapshot: Snapshot,
    ) -> Result<(), RestoreError> {
        let now = self.clock(now);
        let rooms = self.unsnap(&snapshot)?;
        if !self.rooms.is_empty() {
            return Err(RestoreError::NotEmpty);
        }
        self.seat_rooms(now, rooms, WaitFrom::LastHeard, |_, _| None);
        Ok(())
    }

    /// The rooms of a snapshot, checked whole: its version, each room
    /// ([`unsnap_room`]), and no room twice. Its times are put on the monotonic clock as
    /// the latest input reads it.
    pub(super) fn unsnap(&self, snapshot: &Snapshot) -> Result<Vec<Room>, RestoreError> {
        if snapshot.version != VERSION {
            return Err(RestoreError::Version {
                found: snapshot.version,
                expected: VERSION,
            });
        }
        let back = self.wall_offset.saturating_neg();
        let rooms = snapshot
            .rooms
            .iter()
            .map(|r| unsnap_room(r, back))
            .collect::<Result<Vec<_>, _>>()?;
        let mut keys = HashSet::new();
        if let Some(dup) = rooms.iter().find(|r| !keys.insert(r.key.clone())) {
            return Err(invalid(format!("room {} appears twice", dup.room_id)));
        }
        Ok(rooms)
    }

    /// Seat checked rooms beside the engine's own, skipping those it has already. Each
    /// member sits on the connection `seat` gives it, if the engine can seat it there
    /// ([`Self::can_seat`]; opened silently, heard now), else on a new placeholder until it
    /// resumes, waiting as `wait` says. Nothing is sent or recorded.
    pub(super) fn seat_rooms(
        &mut self,
        now: Millis,
        rooms: Vec<Room>,
        wait: WaitFrom,
        mut seat: impl FnMut(&Room, &Member) -> Option<ConnId>,
    ) -> Seating {
        let mut seating = Seating::default();
        for mut room in rooms {
            if self.room_nos.contains_key(&room.key) {
                seating.skipped.push(room.key);
                continue;
            }
            self.next_room += 1;
            let no = RoomNo(self.next_room);
            for idx in 0..room.members.len() {
                let live = seat(&room, &room.members[idx]).filter(|&c| self.can_seat(c));
                let m = &mut room.members[idx];
                let heard = m.last_seen;
                if let Some(conn) = live {
                    m.conn = conn;
                    m.last_seen = now;
                    m.restored = None;
                    seating.seated += 1;
                } else {
                    m.conn = ConnId(self.next_placeholder);
                    self.next_placeholder += 1;
                    m.restored = Some(heard);
                    if wait == WaitFrom::Now {
                        m.last_seen = now;
                    }
                    seating.waiting += 1;
                }
                self.seat_conn(now, no, m, live.is_some());
            }
            let conns: Vec<ConnId> = room.members.iter().map(|m| m.conn).collect();
            self.room_nos.insert(room.key.clone(), no);
            seating.rooms.push(room.key.clone());
            self.rooms.insert(no, room);
            for conn in conns {
                self.schedule(conn);
            }
            self.touch(no);
        }
        seating
    }

    /// Whether a member may be seated on the shell's connection `conn`: a number of the
    /// shell's (below the placeholders), and either unknown to the engine or open and in
    /// no room (never joined, or left).
    fn can_seat(&self, conn: ConnId) -> bool {
        conn.0 < PLACEHOLDER_CONNS
            && self
                .conns
                .get(&conn)
                .is_none_or(|c| c.reachable() && !matches!(c.membership, Membership::In(_)))
    }

    /// The connection entry of member `m`, just seated in room `no`: its live connection
    /// (opened silently, or the open one the engine knows, now a member) or its
    /// placeholder (never live, last heard when the member was).
    fn seat_conn(&mut self, now: Millis, no: RoomNo, m: &Member, live: bool) {
        if let Some(c) = self.conns.get_mut(&m.conn) {
            c.membership = Membership::In(no);
            c.last_seen = now;
            return;
        }
        let conn = Conn {
            ip: m.ip.clone(),
            // Places are not kept in a snapshot: a member gets one again when it resumes on
            // a new connection.
            at: None,
            live,
            closing: false,
            membership: Membership::In(no),
            roomless_since: now,
            last_seen: if live { now } else { m.last_seen },
            scheduled: None,
            tokens: f64::from(self.cfg.rate_burst),
            tokens_at: now,
        };
        self.conns.insert(m.conn, conn);
    }
}

/// From when a member seated without a connection waits for its resume (the heartbeat
/// timeout); either way its records close at when it was last heard if it never comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WaitFrom {
    /// When it was last heard: a restart, whose snapshot was taken as the process ended.
    LastHeard,
    /// The seating: an adoption, whose snapshot may be older than the member's latest
    /// keepLive (a keepLive alone changes no snapshot, so none was written for it).
    Now,
}

/// What [`Engine::seat_rooms`] did.
#[derive(Debug, Default)]
pub(super) struct Seating {
    pub rooms: Vec<RoomKey>,
    pub skipped: Vec<RoomKey>,
    pub seated: usize,
    pub waiting: usize,
}

/// A member as the snapshot keeps it: its times on the wall clock (`offset`: wall − mono).
fn snap_member(m: &Member, offset: i64) -> SnapMember {
    let wall = |t: Millis| shift(t, offset).0;
    SnapMember {
        uid: m.uid.raw_json().to_owned(),
        uname: m.uname.as_str().to_owned(),
        user_type: m.user_type,
        talk_type: m.talk_type,
        ip: m.ip.as_str().to_owned(),
        session_id: m.session_id.to_string(),
        joined_at: wall(m.joined_at),
        // A member waiting on a placeholder was last heard before it was seated.
        last_seen: wall(m.restored.unwrap_or(m.last_seen)),
        devices: m.devices,
        subs: m
            .subs
            .iter()
            .map(|s| SnapSub {
                id: s.id.to_string(),
                remote_key: s.remote_key.to_string(),
                remote_session: s.remote_session.to_string(),
                begun: s.begun,
                connected_at: s.connected_at.map(wall),
                connect_type: s.connect_type.as_str().to_owned(),
                finished: s.finished,
                ice_ip: s.ice_ip.to_string(),
            })
            .collect(),
        token: m.token.map(|t| (t.expires_wall.0, t.prompted)),
        resume_key: SecretText(m.resume_key.expose().to_owned()),
    }
}

/// A room of a snapshot, checked: identifiers and ids parse, a uid is in the room once,
/// and every open sub-session points at a member of the room and its session.
fn unsnap_room(r: &SnapRoom, back: i64) -> Result<Room, RestoreError> {
    let room_id = ident(&r.room_id)?;
    let mut members = Vec::with_capacity(r.members.len());
    for m in &r.members {
        members.push(unsnap_member(m, back)?);
    }
    if members.is_empty() {
        return Err(invalid(format!("room {room_id} has no members")));
    }
    let mut uids = HashSet::new();
    for m in &members {
        if !uids.insert(m.uid.key()) {
            return Err(invalid(format!("uid {} is twice in room {room_id}", m.uid)));
        }
        for s in m.subs.iter().filter(|s| !s.finished) {
            let remote = members
                .iter()
                .find(|o| o.uid.key() == &*s.remote_key && o.uid != m.uid);
            if remote.is_none_or(|o| o.session_id != s.remote_session) {
                return Err(invalid(format!(
                    "sub-session {} of uid {} points at no member of room {room_id}",
                    s.id, m.uid
                )));
            }
        }
    }
    Ok(Room {
        key: RoomKey::new(&r.app_id, room_id.key()),
        app_id: r.app_id.as_str().into(),
        room_id,
        room_name: r.room_name.clone(),
        members,
    })
}

/// A member of a snapshot, its times back on the monotonic clock (`back`: mono − wall).
fn unsnap_member(m: &SnapMember, back: i64) -> Result<Member, RestoreError> {
    let mono = |t: u64| shift(Millis(t), back);
    if m.resume_key.0.is_empty() {
        return Err(invalid("a member has no resume key"));
    }
    let subs = m
        .subs
        .iter()
        .map(|s| {
            Ok(Sub {
                id: ulid(&s.id)?,
                remote_key: s.remote_key.as_str().into(),
                remote_session: ulid(&s.remote_session)?,
                begun: s.begun,
                connected_at: s.connected_at.map(mono),
                connect_type: ConnectType::parse(&s.connect_type),
                finished: s.finished,
                // The registration is not kept: the pair's server is known by its address.
                ice: None,
                ice_ip: s.ice_ip.as_str().into(),
            })
        })
        .collect::<Result<Vec<_>, RestoreError>>()?;
    Ok(Member {
        at: None,
        uid: ident(&m.uid)?,
        uname: m.uname.as_str().into(),
        user_type: m.user_type,
        talk_type: m.talk_type,
        // Replaced by its seat or its placeholder when seated.
        conn: ConnId(PLACEHOLDER_CONNS),
        ip: m.ip.as_str().into(),
        session_id: ulid(&m.session_id)?,
        joined_at: mono(m.joined_at),
        last_seen: mono(m.last_seen),
        devices: m.devices,
        subs,
        token: m.token.map(|(at, prompted)| TokenState {
            expires_at: mono(at),
            expires_wall: Millis(at),
            prompted,
        }),
        resume_key: ResumeKey::new(m.resume_key.0.as_str()),
        restored: None,
    })
}

//! What the engine holds: connections, rooms, members and their sub-sessions, and the small
//! accessors that find a member from the [`Seat`] a request was resolved to.

use super::ConnId;
use crate::{Millis, Text};
use rtcroom_ice::Chosen;
use rtcroom_protocol::{ConnectType, Ident, ResumeKey};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use ulid::Ulid;

/// A room as clients name it: only joins and operator requests look rooms up by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct RoomKey {
    pub app: Box<str>,
    pub room: Box<str>,
}

impl RoomKey {
    pub fn new(app_id: &str, room_id: &str) -> Self {
        Self {
            app: app_id.into(),
            room: room_id.into(),
        }
    }
}

/// A room as the engine numbers it, for the lookups every frame makes (cheap to copy and to
/// hash, and never chosen by a client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct RoomNo(pub u64);

/// Maps keyed by numbers the server assigns ([`ConnId`], [`RoomNo`]): a fast hasher with a
/// fixed seed is safe there, as no client chooses the keys, and it keeps the engine free of
/// randomness of its own (iteration order depends on the inputs only). Maps keyed by client
/// input keep SipHash.
pub(super) type NumMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// Where a member sits: its room's number and its index among the room's members. Valid
/// until the room's member list next changes, so it is resolved per request and never kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seat {
    pub room: RoomNo,
    pub idx: usize,
}

/// What a connection is to the rooms: the answer to "who may this connection speak as?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Membership {
    /// Never joined.
    NotJoined,
    /// Joined this room, as the member whose `conn` is this connection.
    In(RoomNo),
    /// Was a member and is no longer (left, timed out, kicked, replaced, resumed elsewhere).
    Departed,
}

#[derive(Debug)]
pub(super) struct Conn {
    pub ip: Text,
    /// Where the shell placed the address (GeoIP), if it could.
    pub at: Option<rtcroom_ice::GeoPoint>,
    /// The socket is open. A member whose socket dropped keeps its connection entry, not
    /// live, until it times out or rejoins.
    pub live: bool,
    /// A close was requested; frames still in flight are ignored.
    pub closing: bool,
    pub membership: Membership,
    /// Since when the connection is in no room (opened, or left): the join timeout runs from
    /// here while it is not a member.
    pub roomless_since: Millis,
    pub last_seen: Millis,
    /// The earliest timer entry pending for this connection.
    pub scheduled: Option<Millis>,
    /// The rate limiter's token bucket: messages the connection may still send at once.
    pub tokens: f64,
    pub tokens_at: Millis,
}

impl Conn {
    /// Whether messages may still be queued for the connection.
    pub fn reachable(&self) -> bool {
        self.live && !self.closing
    }
}

/// A token bucket: how many messages may still be sent at once, as of `at`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    pub tokens: f64,
    pub at: Millis,
}

impl Bucket {
    pub fn full(burst: u32, now: Millis) -> Self {
        Self {
            tokens: f64::from(burst),
            at: now,
        }
    }

    /// Refill at `rate` per second up to `burst`, then take one token if there is one.
    /// Whether one was taken.
    pub fn take(&mut self, now: Millis, rate: u32, burst: u32) -> bool {
        self.refill(now, rate, burst);
        let ok = self.tokens >= 1.0;
        if ok {
            self.tokens -= 1.0;
        }
        ok
    }

    fn refill(&mut self, now: Millis, rate: u32, burst: u32) {
        let elapsed = now.0.saturating_sub(self.at.0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(burst));
        self.at = self.at.max(now);
    }

    /// Whether the bucket is full again at `now` (it then holds nothing worth keeping).
    pub fn is_full(mut self, now: Millis, rate: u32, burst: u32) -> bool {
        self.refill(now, rate, burst);
        self.tokens >= f64::from(burst)
    }
}

/// The expiry of a member's token, and whether it was already reminded of it.
#[derive(Debug, Clone, Copy)]
pub(super) struct TokenState {
    /// On the monotonic clock, for the deadlines.
    pub expires_at: Millis,
    /// As the token says (Unix time), for what the client is told and the snapshot.
    pub expires_wall: Millis,
    pub prompted: bool,
}

/// One direction of a pair: a member's sub-session towards one remote member.
#[derive(Debug)]
pub(super) struct Sub {
    pub id: Ulid,
    pub remote_key: Text,
    pub remote_session: Ulid,
    pub begun: bool,
    pub connected_at: Option<Millis>,
    pub connect_type: ConnectType,
    pub finished: bool,
    /// The ICE server chosen for the pair (the same on both directions).
    pub ice: Option<Arc<Chosen>>,
    /// That server's address ("" without one), kept apart so that it outlives a restart
    /// (a snapshot keeps the address, not the registration).
    pub ice_ip: Text,
}

impl Sub {
    /// A new sub-session towards `remote`, on the pair's ICE server at `ice_ip`.
    pub fn towards(id: Ulid, remote: &Member, ice: Option<Arc<Chosen>>, ice_ip: Text) -> Self {
        Self {
            id,
            remote_key: Text::from(&remote.uid),
            remote_session: remote.session_id,
            begun: false,
            connected_at: None,
            connect_type: ConnectType::Unknown,
            finished: false,
            ice_ip,
            ice,
        }
    }

    /// Marks the sub-session as begun; true the first time only.
    pub fn begin(&mut self) -> bool {
        !std::mem::replace(&mut self.begun, true)
    }
}

#[derive(Debug)]
pub(super) struct Member {
    pub uid: Ident,
    pub uname: Text,
    pub user_type: i64,
    pub talk_type: i64,
    pub conn: ConnId,
    pub ip: Text,
    /// The place of its connection's address, for choosing the nearest relay.
    pub at: Option<rtcroom_ice::GeoPoint>,
    pub session_id: Ulid,
    pub joined_at: Millis,
    pub last_seen: Millis,
    /// Device state changed since join (index 0 camera, 1 mic, 2 screen, 3 system sound).
    pub devices: [Option<bool>; 4],
    /// This member's sub-sessions (self → remote), in creation order.
    pub subs: Vec<Sub>,
    pub token: Option<TokenState>,
    /// The member's proof for a `join` that resumes it on another connection.
    pub resume_key: ResumeKey,
    /// Seated from a snapshot (restored or adopted) on a placeholder connection and not
    /// resumed since: when it was last heard. If it does not come back within the heartbeat
    /// timeout, its records close at that time, not when the engine noticed.
    pub restored: Option<Millis>,
}

impl Member {
    /// The current (latest unfinished) sub-session towards the member with `remote_key`.
    pub fn sub_to(&self, remote_key: &str) -> Option<&Sub> {
        self.subs
            .iter()
            .rev()
            .find(|s| !s.finished && &*s.remote_key == remote_key)
    }

    /// [`Self::sub_to`], to change it.
    pub fn sub_to_mut(&mut self, remote_key: &str) -> Option<&mut Sub> {
        self.subs
            .iter_mut()
            .rev()
            .find(|s| !s.finished && &*s.remote_key == remote_key)
    }
}

/// The rooms whose snapshot changed since the shell last asked
/// ([`super::Engine::take_changed_rooms`]). Held only once the shell asked: a server that
/// never asks (a single node) keeps nothing for it.
#[derive(Debug, Default)]
pub(super) struct Changes {
    /// Rooms that changed and still exist, by number (numbers are never reused).
    pub rooms: HashSet<RoomNo, foldhash::fast::FixedState>,
    /// Rooms removed since (their last member left, timed out or was ended).
    pub gone: Vec<RoomKey>,
}

#[derive(Debug)]
pub(super) struct Room {
    pub key: RoomKey,
    pub app_id: Text,
    pub room_id: Ident,
    pub room_name: String,
    pub members: Vec<Member>,
}

impl Room {
    /// The index of the member with this uid.
    pub fn index_of_uid(&self, uid: &str) -> Option<usize> {
        self.members.iter().position(|m| m.uid.key() == uid)
    }

    /// The index of the member whose connection is `conn`.
    pub fn index_of_conn(&self, conn: ConnId) -> Option<usize> {
        self.members.iter().position(|m| m.conn == conn)
    }

    /// Every member but the one at `idx`.
    pub fn others(&self, idx: usize) -> impl Iterator<Item = &Member> {
        self.members
            .iter()
            .enumerate()
            .filter(move |(i, _)| *i != idx)
            .map(|(_, m)| m)
    }

    /// Two distinct members, both mutable.
    pub fn pair_mut(&mut self, a: usize, b: usize) -> (&mut Member, &mut Member) {
        assert_ne!(a, b, "a pair is two members");
        if a < b {
            let (l, r) = self.members.split_at_mut(b);
            (&mut l[a], &mut r[0])
        } else {
            let (l, r) = self.members.split_at_mut(a);
            (&mut r[0], &mut l[b])
        }
    }
}

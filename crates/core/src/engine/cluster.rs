//! Rooms handed between the nodes of a cluster. Each room lives in one node's engine, its
//! owner; the shell keeps a copy of each owned room's [`Snapshot`] elsewhere (written when
//! [`Engine::take_changed_rooms`] names the room) and moves rooms with
//! [`Engine::release_rooms`] on one node and [`Engine::adopt`] on another. Neither says
//! anything to anyone: the members' calls go on as if nothing happened. A room whose
//! ownership was lost to another node is ended with [`Engine::end_rooms`].
//!
//! This module never sends, records or closes anything for a move; only `end_rooms` does,
//! and then every record of the room's members is closed once, as at any departure.

use super::continuity::WaitFrom;
use super::state::{Room, RoomKey, RoomNo, Seat};
use super::{ConnId, Engine, RestoreError, Snapshot};
use crate::effect::{CloseReason, LeaveCause};
use crate::ids::Entropy;
use crate::time::Now;

/// A room's name in the cluster: its app and the room id's key text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RoomRef {
    pub app_id: String,
    pub room_id: String,
}

impl RoomRef {
    fn of(key: &RoomKey) -> Self {
        Self {
            app_id: key.app.to_string(),
            room_id: key.room.to_string(),
        }
    }

    fn key(&self) -> RoomKey {
        RoomKey::new(&self.app_id, &self.room_id)
    }
}

/// What [`Engine::adopt`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adopted {
    /// The rooms now held here, in the snapshot's order.
    pub rooms: Vec<RoomRef>,
    /// The rooms of the snapshot this engine held already, left as they were.
    pub skipped: Vec<RoomRef>,
    /// Members seated on the live connection the shell gave.
    pub seated: usize,
    /// Members on a placeholder, waiting for a resume.
    pub waiting: usize,
}

impl Snapshot {
    /// The rooms in the snapshot, in its order. A room id that is not an identifier is left
    /// out (such a snapshot is refused whole by [`Engine::adopt`] and [`Engine::restore`]).
    pub fn room_refs(&self) -> Vec<RoomRef> {
        self.room_names()
            .filter_map(|(app_id, room_json)| {
                let room_id = rtcroom_protocol::Ident::from_json(room_json)?;
                Some(RoomRef {
                    app_id: app_id.to_owned(),
                    room_id: room_id.key().to_owned(),
                })
            })
            .collect()
    }
}

impl<E: Entropy> Engine<E> {
    /// Rooms whose snapshot-relevant state changed since the last call: created, removed,
    /// a member joined, left, resumed, timed out or lost its connection, a sub-session
    /// begun, connected or finished, devices, a token, seated by a restore or an adoption.
    /// A keepLive alone, a candidate, or an offer or answer on a pair already begun, is no
    /// change. Removed rooms are included (a snapshot of them finds nothing). Rooms handed
    /// away by [`Self::release_rooms`] are not: they changed owner, not state.
    ///
    /// Changes are kept from the first call on: it names every room the engine holds, and a
    /// room created and removed before it is never named.
    pub fn take_changed_rooms(&mut self) -> Vec<RoomRef> {
        let Some(changes) = self.changes.replace(Default::default()) else {
            let mut all: Vec<RoomRef> = self.rooms.values().map(|r| RoomRef::of(&r.key)).collect();
            all.sort_unstable();
            return all;
        };
        let mut changed: Vec<RoomRef> = changes
            .rooms
            .iter()
            .filter_map(|no| self.rooms.get(no))
            .map(|r| RoomRef::of(&r.key))
            .chain(changes.gone.iter().map(RoomRef::of))
            .collect();
        changed.sort_unstable();
        changed.dedup();
        changed
    }

    /// Note that room `no` changed, once the shell follows changes.
    pub(super) fn touch(&mut self, no: RoomNo) {
        if let Some(changes) = self.changes.as_mut() {
            changes.rooms.insert(no);
        }
    }

    /// Forget room `no` and its name (together, always: a stale name would seat the next
    /// join in a room that is gone); `report` it as removed to the next
    /// [`Self::take_changed_rooms`] or not (it was handed away).
    pub(super) fn remove_room(&mut self, no: RoomNo, report: bool) -> Option<Room> {
        let room = self.rooms.remove(&no)?;
        self.room_nos.remove(&room.key);
        if let Some(changes) = self.changes.as_mut() {
            changes.rooms.remove(&no);
            if report {
                changes.gone.push(room.key.clone());
            }
        }
        Some(room)
    }

    /// The room a connection's member is in (its placeholder's too).
    pub fn room_of(&self, conn: ConnId) -> Option<RoomRef> {
        let seat = self.seat_of_conn(conn)?;
        Some(RoomRef::of(&self.room(seat).key))
    }

    /// Each member of a room (its uid's key text) with the connection it sits on:
    /// placeholders included (numbers from 2^63 up), and connections that dropped while
    /// the member waits for its resume. Empty if the room is not here.
    pub fn room_conns(&self, room: &RoomRef) -> Vec<(String, ConnId)> {
        let Some(no) = self.room_nos.get(&room.key()) else {
            return Vec::new();
        };
        self.rooms[no]
            .members
            .iter()
            .map(|m| (m.uid.key().to_owned(), m.conn))
            .collect()
    }

    /// A snapshot of only these rooms (those not here are skipped), for
    /// [`Self::adopt`] on another node.
    pub fn snapshot_rooms(&self, now: impl Into<Now>, rooms: &[RoomRef]) -> Snapshot {
        let nos = self.numbers_of(rooms);
        self.snapshot_of(now.into(), nos.iter().map(|no| &self.rooms[no]))
    }

    /// The numbers of the rooms named that are here, each once.
    fn numbers_of(&self, rooms: &[RoomRef]) -> Vec<RoomNo> {
        let mut nos: Vec<RoomNo> = Vec::with_capacity(rooms.len());
        for no in rooms.iter().filter_map(|r| self.room_nos.get(&r.key())) {
            if !nos.contains(no) {
                nos.push(*no);
            }
        }
        nos
    }

    /// Take rooms out, for another node to [`Self::adopt`]: nobody leaves, nothing is
    /// recorded, sent or closed. Their members' connections are forgotten (a frame that
    /// still arrives on one is ignored, as on a connection never opened) and those whose
    /// sockets are open are returned (sorted) so that the shell hands them on; placeholders
    /// and dropped ones are forgotten with the rooms. Rooms not here are skipped.
    pub fn release_rooms(
        &mut self,
        now: impl Into<Now>,
        rooms: &[RoomRef],
    ) -> (Snapshot, Vec<ConnId>) {
        let now = now.into();
        self.clock(now);
        let nos = self.numbers_of(rooms);
        let snapshot = self.snapshot_of(now, nos.iter().map(|no| &self.rooms[no]));
        let mut handed = Vec::new();
        for no in nos {
            let Some(room) = self.remove_room(no, false) else {
                continue;
            };
            for m in &room.members {
                if self.conns.remove(&m.conn).is_some_and(|c| c.live) {
                    handed.push(m.conn);
                }
            }
        }
        handed.sort_unstable();
        (snapshot, handed)
    }

    /// Seat the rooms of `snapshot` beside this engine's own rooms ([`Self::restore`]
    /// needs an empty engine; this does not). For each member, `seat(room, uid)` gives the
    /// live connection it is on now (opened silently by the engine, or one the engine knows
    /// that is open and in no room; no join timeout; heard now), or `None`: the member
    /// waits on a placeholder for its resume until the heartbeat timeout counted from now
    /// (the adoption), its records closed at its last-heard time if it never comes. A
    /// connection the engine cannot seat a member on (one of the engine's own numbers, or
    /// one already a member here) counts as `None`. A room that already exists here is
    /// skipped and named in the report. Nothing is sent, nothing is recorded. The shell
    /// gives no `Input::Open` for a connection a member is seated on (that would make it a
    /// connection in no room again); frames and its close come as for any other.
    ///
    /// A snapshot of another version or an inconsistent one is refused whole, and nothing
    /// is seated.
    pub fn adopt(
        &mut self,
        now: impl Into<Now>,
        snapshot: Snapshot,
        mut seat: impl FnMut(&RoomRef, &str) -> Option<ConnId>,
    ) -> Result<Adopted, RestoreError> {
        let now = self.clock(now);
        let rooms = self.unsnap(&snapshot)?;
        let seating = self.seat_rooms(now, rooms, WaitFrom::Now, |room, m| {
            seat(&RoomRef::of(&room.key), m.uid.key())
        });
        Ok(Adopted {
            rooms: seating.rooms.iter().map(RoomRef::of).collect(),
            skipped: seating.skipped.iter().map(RoomRef::of).collect(),
            seated: seating.seated,
            waiting: seating.waiting,
        })
    }

    /// End rooms (this node lost them to another after a split): every member leaves as if
    /// kicked by the server (its sub-sessions finished and billed, its session closed;
    /// `Left` events with [`LeaveCause::Kicked`]), each live connection is closed with 1012
    /// ([`CloseReason::ServiceRestart`]: the client reconnects, and joins anew on the
    /// room's owner, which does not know its resume key), and nobody is told of the others
    /// leaving: they are all going. Returns the connections closed (sorted). Rooms not here
    /// are skipped.
    pub fn end_rooms(&mut self, now: impl Into<Now>, rooms: &[RoomRef]) -> Vec<ConnId> {
        let now = self.clock(now);
        let mut closed = Vec::new();
        for no in self.numbers_of(rooms) {
            let conns: Vec<ConnId> = self.rooms[&no].members.iter().map(|m| m.conn).collect();
            // Closed first: nothing is sent to a closing connection, so no `relayLeave`
            // goes out as the members are taken out one by one.
            for conn in conns {
                if self.conns.get(&conn).is_some_and(|c| c.reachable()) {
                    closed.push(conn);
                }
                self.unbind(conn, CloseReason::ServiceRestart);
            }
            while self.rooms.get(&no).is_some_and(|r| !r.members.is_empty()) {
                self.remove_member(now, Seat { room: no, idx: 0 }, LeaveCause::Kicked);
            }
        }
        closed.sort_unstable();
        closed
    }
}

//! Leaving: a member's own `leave`, an operator's kick, a shutdown; every way out finishes
//! and bills the member's sub-sessions and closes its session.

use super::state::{Membership, RoomKey, RoomNo, Seat, Sub};
use super::{ConnId, Engine, Handled};
use crate::effect::{CloseReason, Effect, Event, LeaveCause};
use crate::ids::Entropy;
use crate::record::{Record, SessionClose, SubSessionFinish, SubStatus};
use crate::{Millis, Prices};
use rtcroom_protocol::{Identity, RelayLeave, RespLeave, ResultCode, ServerMsg, SystemKickUser};

impl<E: Entropy> Engine<E> {
    /// Remove a member on an operator's request: it gets `systemKickUser`, the others
    /// `relayLeave`, and its connection is closed. False if no such member.
    pub fn kick(
        &mut self,
        now: impl Into<crate::Now>,
        app_id: &str,
        room_id: &str,
        uid: &str,
        why: &str,
    ) -> bool {
        let now = self.clock(now);
        let key = RoomKey::new(app_id, room_id);
        let Some(seat) = self.room_nos.get(&key).and_then(|&room| {
            let idx = self.rooms[&room].index_of_uid(uid)?;
            Some(Seat { room, idx })
        }) else {
            return false;
        };
        let reason = CloseReason::Kicked(why.into());
        self.kick_member(now, seat, why, LeaveCause::Kicked, reason);
        true
    }

    /// Tell every member the server is going away, close every record and connection.
    pub fn shutdown(&mut self, now: impl Into<crate::Now>) {
        let now = self.clock(now);
        let rooms: Vec<RoomNo> = self.rooms.keys().copied().collect();
        for room in rooms {
            while self.rooms.get(&room).is_some_and(|r| !r.members.is_empty()) {
                let seat = Seat { room, idx: 0 };
                let why = "server is shutting down";
                self.kick_member(now, seat, why, LeaveCause::Shutdown, CloseReason::Shutdown);
            }
        }
        let live: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.reachable())
            .map(|(id, _)| *id)
            .collect();
        for conn in live {
            self.close(conn, CloseReason::Shutdown);
        }
    }

    /// Tell a member why it is removed (`systemKickUser`), remove it and close its connection.
    pub(super) fn kick_member(
        &mut self,
        now: Millis,
        seat: Seat,
        why: &str,
        cause: LeaveCause,
        reason: CloseReason,
    ) {
        let (room, m) = (self.room(seat), self.member(seat));
        let conn = m.conn;
        let msg = ServerMsg::SystemKickUser(SystemKickUser {
            app_id: room.app_id.as_str().to_owned(),
            room_id: room.room_id.clone(),
            uid: m.uid.clone(),
            desc: why.to_owned(),
        });
        self.send(conn, msg);
        self.remove_member(now, seat, cause);
        self.unbind(conn, reason);
    }

    pub(super) fn leave(&mut self, now: Millis, conn: ConnId, id: &Identity) -> Handled {
        let seat = self.speaker(conn, id)?;
        let m = self.member(seat);
        let resp = ServerMsg::RespLeave(RespLeave {
            uid: m.uid.clone(),
            uname: m.uname.as_str().to_owned(),
            user_type: m.user_type,
            result: ResultCode::Ok,
            desc: ResultCode::Ok.desc().to_owned(),
        });
        self.send(conn, resp);
        self.remove_member(now, seat, LeaveCause::Leave);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.membership = Membership::Departed;
            c.roomless_since = now;
        }
        self.schedule(conn);
        Ok(())
    }

    /// Take a member out of its room: the others get `relayLeave`, every sub-session of the
    /// member and towards it is finished and billed, the session row is closed.
    pub(super) fn remove_member(&mut self, now: Millis, seat: Seat, cause: LeaveCause) {
        let prices = self.cfg.prices;
        let wall = self.wall(now);
        let timed_out = cause == LeaveCause::TimedOut;
        let room = self.room_mut(seat);
        let mut m = room.members.remove(seat.idx);
        let mut records = Vec::new();
        for s in m.subs.iter_mut().filter(|s| !s.finished) {
            records.push(finish(s, (now, wall), timed_out, prices));
        }
        let mut notify = Vec::new();
        for o in &mut room.members {
            for s in o
                .subs
                .iter_mut()
                .filter(|s| !s.finished && s.remote_session == m.session_id)
            {
                records.push(finish(s, (now, wall), timed_out, prices));
            }
            notify.push(o.conn);
        }
        let event = Event::Left {
            app_id: room.app_id.as_str().to_owned(),
            room_id: room.room_id.key().to_owned(),
            uid: m.uid.key().to_owned(),
            session_id: m.session_id,
            cause,
        };
        if room.members.is_empty() {
            self.remove_room(seat.room, true);
        } else {
            self.touch(seat.room);
        }
        let relay = ServerMsg::RelayLeave(RelayLeave {
            uid: m.uid.clone(),
            uname: m.uname.as_str().to_owned(),
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
            leave_time: wall,
            duration_secs: now.secs_since(m.joined_at),
            timed_out,
        }));
        self.out.push_back(Effect::Event(event));
    }
}

/// Finish a sub-session and bill it: per started minute connected (on the monotonic clock,
/// `now`), at the price of how it connected; dated `wall`.
fn finish(
    s: &mut Sub,
    (now, wall): (Millis, Millis),
    timed_out: bool,
    prices: Prices,
) -> SubSessionFinish {
    s.finished = true;
    let (duration_secs, status) = match (s.connected_at, timed_out) {
        (Some(at), false) => (now.secs_since(at), SubStatus::ConnectedLeft),
        (Some(at), true) => (now.secs_since(at), SubStatus::ConnectedTimedOut),
        (None, false) => (0, SubStatus::NeverConnectedLeft),
        (None, true) => (0, SubStatus::NeverConnectedTimedOut),
    };
    SubSessionFinish {
        sub_session_id: s.id,
        finish_time: wall,
        duration_secs,
        status,
        cost_cents: prices.cost_cents(s.connect_type, duration_secs),
    }
}

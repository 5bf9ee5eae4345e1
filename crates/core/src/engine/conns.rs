//! Connections: opening and closing them, queueing messages and records, the rate limit.

use super::state::{Conn, Membership, Seat};
use super::{ConnId, Engine};
use crate::Millis;
use crate::effect::{CloseReason, Effect, Event, LeaveCause};
use crate::ids::Entropy;
use crate::record::Record;
use rtcroom_protocol::ServerMsg;

/// The join limit's buckets are swept of full ones (addresses not joining lately) when they
/// reach this many, and then at twice what remains.
pub(super) const JOIN_BUCKETS_SWEEP: usize = 1024;

impl<E: Entropy> Engine<E> {
    /// Count a join from the connection's client address against `joins_per_ip_per_sec`
    /// (and its burst); whether it is within the limit.
    pub(super) fn admit_join(&mut self, now: Millis, conn: ConnId) -> bool {
        let (rate, burst) = (self.cfg.joins_per_ip_per_sec, self.cfg.joins_per_ip_burst);
        if rate == 0 {
            return true;
        }
        let Some(ip) = self.conns.get(&conn).map(|c| c.ip.as_str()) else {
            return true;
        };
        if self.join_buckets.len() >= self.join_buckets_sweep_at {
            self.join_buckets
                .retain(|_, b| !b.is_full(now, rate, burst));
            self.join_buckets_sweep_at = (self.join_buckets.len() * 2).max(JOIN_BUCKETS_SWEEP);
        }
        match self.join_buckets.get_mut(ip) {
            Some(b) => b.take(now, rate, burst),
            None => {
                let mut b = super::state::Bucket::full(burst, now);
                let ok = b.take(now, rate, burst);
                self.join_buckets.insert(ip.into(), b);
                ok
            }
        }
    }

    pub(super) fn open(
        &mut self,
        now: Millis,
        conn: ConnId,
        ip: String,
        at: Option<rtcroom_ice::GeoPoint>,
    ) {
        self.conns.insert(
            conn,
            Conn {
                ip: ip.into(),
                at,
                live: true,
                closing: false,
                membership: Membership::NotJoined,
                roomless_since: now,
                last_seen: now,
                scheduled: None,
                tokens: f64::from(self.cfg.rate_burst),
                tokens_at: now,
            },
        );
        self.schedule(conn);
    }

    pub(super) fn closed(&mut self, now: Millis, conn: ConnId, clean: bool) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.live {
            return; // already known to be closed
        }
        c.live = false;
        match c.membership {
            Membership::In(room) if clean && !c.closing => {
                if let Some(seat) = self.seat_of(room, conn) {
                    self.remove_member(now, seat, LeaveCause::Closed);
                }
                self.conns.remove(&conn);
            }
            Membership::In(room) if !c.closing => {
                // Dropped without a close frame: keep the place until the heartbeat timeout,
                // so that a reconnect with the same uid resumes.
                if let Some(seat) = self.seat_of(room, conn) {
                    self.detached(seat);
                }
            }
            _ => {
                self.conns.remove(&conn);
            }
        }
    }

    /// Tells the shell that the member in `seat` lost its connection and keeps its place.
    pub(super) fn detached(&mut self, seat: Seat) {
        // Not in the snapshot, but in where its members sit ([`Engine::room_conns`]).
        self.touch(seat.room);
        let (room, m) = (self.room(seat), self.member(seat));
        let event = Event::Detached {
            app_id: room.app_id.as_str().to_owned(),
            room_id: room.room_id.key().to_owned(),
            uid: m.uid.key().to_owned(),
            session_id: m.session_id,
        };
        self.out.push_back(Effect::Event(event));
    }

    /// Ask the shell to close a connection (once); a connection whose socket is already gone
    /// is forgotten instead.
    pub(super) fn close(&mut self, conn: ConnId, reason: CloseReason) {
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

    /// After its member is gone, a connection stays open (it may join again) unless a
    /// reason to close it is given; a connection whose socket is already gone is forgotten.
    pub(super) fn unbind(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.membership = Membership::Departed;
        }
        self.close(conn, reason);
    }

    /// Queue `msg` for a connection whose socket is open and not closing; drop it otherwise.
    pub(super) fn send(&mut self, conn: ConnId, msg: ServerMsg) {
        if self.conns.get(&conn).is_some_and(Conn::reachable) {
            self.out.push_back(Effect::Send { conn, msg });
        }
    }

    pub(super) fn record(&mut self, r: Record) {
        self.out.push_back(Effect::Record(r));
    }

    /// The seat of the member whose connection is `conn`, in room `room`.
    pub(super) fn seat_of(&self, room: super::RoomNo, conn: ConnId) -> Option<Seat> {
        let idx = self.rooms.get(&room)?.index_of_conn(conn)?;
        Some(Seat { room, idx })
    }

    /// The seat of the member a connection joined as, if it is one.
    pub(super) fn seat_of_conn(&self, conn: ConnId) -> Option<Seat> {
        match self.conns.get(&conn)?.membership {
            Membership::In(room) => self.seat_of(room, conn),
            _ => None,
        }
    }

    /// Take a frame's arrival into account: the connection and its member were heard from,
    /// and the token bucket (`rate_per_sec` on average, `rate_burst` at once) pays for it.
    /// `None` when the frame is to be ignored (the connection is closing or gone), else
    /// whether the frame is over the rate limit.
    pub(super) fn admit(&mut self, now: Millis, conn: ConnId) -> Option<bool> {
        let (rate, burst) = (self.cfg.rate_per_sec, self.cfg.rate_burst);
        let c = self.conns.get_mut(&conn).filter(|c| c.reachable())?;
        c.last_seen = now;
        let elapsed = now.0.saturating_sub(c.tokens_at.0) as f64 / 1000.0;
        c.tokens = (c.tokens + elapsed * f64::from(rate)).min(f64::from(burst));
        c.tokens_at = now;
        let limited = c.tokens < 1.0;
        if !limited {
            c.tokens -= 1.0;
        }
        if let Some(seat) = self.seat_of_conn(conn) {
            self.member_mut(seat).last_seen = now;
        }
        Some(limited)
    }
}

//! Deadlines: heartbeats, the join timeout, token prompts and token expiries. One lazy min-heap entry per
//! connection; activity only updates a timestamp, and a popped entry re-arms at the real
//! deadline, so a keepLive costs O(1).

use super::state::Seat;
use super::{ConnId, Engine};
use crate::Millis;
use crate::config::AuthMode;
use crate::effect::{CloseReason, LeaveCause};
use crate::ids::Entropy;
use rtcroom_protocol::{ServerMsg, SystemPromptToken};
use std::cmp::Reverse;

/// What falls due on a connection.
#[derive(Debug, Clone, Copy)]
enum Due {
    Heartbeat,
    /// In no room for the join timeout.
    Join,
    Prompt,
    Expire,
}

impl<E: Entropy> Engine<E> {
    /// Act on every deadline at or before `now`: heartbeats, token prompts and expiries.
    /// `now.mono` is what deadlines are compared with.
    pub fn handle_timeout(&mut self, now: impl Into<crate::Now>) {
        let now = self.clock(now);
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

    /// The earliest thing due on a connection, if any.
    fn deadline(&self, conn: ConnId) -> Option<(Millis, Due)> {
        let c = self.conns.get(&conn)?;
        if c.closing {
            return None;
        }
        let timeout = self.cfg.heartbeat_timeout_secs;
        let Some(seat) = self.seat_of_conn(conn) else {
            let heartbeat = (c.last_seen.plus_secs(timeout), Due::Heartbeat);
            let join = (
                c.roomless_since.plus_secs(self.cfg.join_timeout_secs),
                Due::Join,
            );
            return Some(if join.0 < heartbeat.0 {
                join
            } else {
                heartbeat
            });
        };
        let m = self.member(seat);
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

    /// Make sure the heap holds an entry no later than the connection's deadline.
    pub(super) fn schedule(&mut self, conn: ConnId) {
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
        match (due, self.seat_of_conn(conn)) {
            (Due::Heartbeat, Some(seat)) => {
                // A member seated from a snapshot that never came back was last heard
                // before the restart or the move: its records end then, not when the
                // server noticed.
                let at = self
                    .member(seat)
                    .restored
                    .map_or(now, |heard| heard.min(now));
                self.remove_member(at, seat, LeaveCause::TimedOut);
                self.unbind(conn, CloseReason::HeartbeatTimeout);
            }
            (Due::Heartbeat, None) => self.close(conn, CloseReason::HeartbeatTimeout),
            (Due::Join, None) => self.close(conn, CloseReason::JoinTimeout),
            (Due::Join, Some(_)) => {}
            (Due::Prompt, Some(seat)) => self.prompt_token(conn, seat),
            (Due::Expire, Some(seat)) => {
                let why = "token is expire";
                let (cause, reason) = (LeaveCause::TokenExpired, CloseReason::TokenExpired);
                self.kick_member(now, seat, why, cause, reason);
            }
            (Due::Prompt | Due::Expire, None) => {}
        }
    }

    /// Remind a member that its token is about to expire (once per token).
    fn prompt_token(&mut self, conn: ConnId, seat: Seat) {
        let (room, m) = (self.room(seat), self.member(seat));
        let Some(token) = m.token else { return };
        let msg = ServerMsg::SystemPromptToken(SystemPromptToken {
            app_id: room.app_id.as_str().to_owned(),
            room_id: room.room_id.clone(),
            uid: m.uid.clone(),
            expire_at: token.expires_wall.as_secs(),
        });
        if let Some(t) = self.member_mut(seat).token.as_mut() {
            t.prompted = true;
        }
        self.touch(seat.room);
        self.send(conn, msg);
    }
}

//! Joining: a new member (its session, a sub-session per direction with every member
//! already there, `respJoin` and `notifyNewPeer`), the member again on its own connection,
//! or the member resuming on a new connection with its resume key. A join for a uid that is
//! a member of the room, from another connection and without that member's key, is refused:
//! nobody takes a member's place without its proof.

use super::state::{Member, Membership, Room, RoomKey, RoomNo, Seat, Sub, TokenState};
use super::{ConnId, Engine, Grant, Handled};
use crate::effect::{CloseReason, Effect, Event};
use crate::ids::{Entropy, IdGen};
use crate::record::{Record, SessionOpen, SubSessionOpen};
use crate::{Millis, Text};
use rtcroom_ice::Chosen;
use rtcroom_protocol::{
    Field, Ident, Join, NotifyNewPeer, Peer, Refusal, RespJoin, ResultCode, ServerMsg,
};
use std::sync::Arc;
use ulid::Ulid;

/// Longest accepted `appId`, `roomId`, `uid` and `uname` (characters). Longer ones are refused
/// with result 3 rather than truncated, since clients adopt what the server echoes.
const MAX_ID_LEN: usize = 64;
/// Informational fields (os, browser, sdk, room name) are cut to this many characters.
const MAX_INFO_LEN: usize = 64;

fn cut(s: Option<String>) -> String {
    let s = s.unwrap_or_default();
    match s.char_indices().nth(MAX_INFO_LEN) {
        Some((i, _)) => s[..i].to_owned(),
        None => s,
    }
}

impl<E: Entropy> Engine<E> {
    pub(super) fn join(
        &mut self,
        now: Millis,
        conn: ConnId,
        j: &mut Join,
        grant: &Grant,
    ) -> Handled {
        for (field, v) in [
            (Field::AppId, Some(j.app_id.as_str())),
            (Field::RoomId, Some(j.room_id.key())),
            (Field::Uid, j.uid.as_ref().map(Ident::key)),
            (Field::Uname, j.uname.as_deref()),
        ] {
            if v.is_some_and(|v| v.chars().count() > MAX_ID_LEN) {
                return Err(Refusal::too_long(field, MAX_ID_LEN));
            }
        }
        // A resume creates nothing (same session, same sub-sessions) and a whole office
        // behind one address resumes at once after a restart: only other joins count.
        if j.resume_key.is_none() && !self.admit_join(now, conn) {
            let d = format!(
                "at most {} joins per second from one address; retry in a few seconds",
                self.cfg.joins_per_ip_per_sec
            );
            return Err(Refusal::new(ResultCode::RateLimited, d));
        }
        let token = self.check_grant(j, grant)?;
        let key = RoomKey::new(&j.app_id, j.room_id.key());
        self.check_rejoin_allowed(conn, j, &key)?;
        let existing = j.uid.as_ref().and_then(|uid| {
            let room = *self.room_nos.get(&key)?;
            let idx = self.rooms[&room].index_of_uid(uid.key())?;
            Some(Seat { room, idx })
        });
        match (existing, &j.resume_key) {
            (Some(seat), Some(proof)) => {
                let m = self.member(seat);
                if !m.resume_key.matches(proof) {
                    let d = format!("{} is not uid {}'s", Field::ResumeKey, m.uid);
                    return Err(Refusal::new(ResultCode::NotAllowed, d));
                }
                self.resume(now, conn, j, seat, token);
            }
            // The connection the member is on may join again without its key.
            (Some(seat), None) if self.member(seat).conn == conn => {
                self.rejoin(now, conn, j, seat, token);
            }
            (Some(seat), None) => {
                let d = format!(
                    "uid {} is in this room; a reconnect must carry its {}",
                    self.member(seat).uid,
                    Field::ResumeKey
                );
                return Err(Refusal::new(ResultCode::NotAllowed, d));
            }
            // A key resumes one member of one room; it never opens a new session, so that a
            // client whose member is gone (it left, timed out, or the key is from another
            // room or app) learns it instead of silently starting over.
            (None, Some(_)) => {
                let uid = j.uid.as_ref().map_or(String::new(), ToString::to_string);
                let d = format!(
                    "no member uid {uid} in room {} to resume with this {}",
                    j.room_id,
                    Field::ResumeKey
                );
                return Err(Refusal::new(ResultCode::NotAllowed, d));
            }
            (None, None) => self.join_new(now, conn, j, key, token)?,
        }
        self.schedule(conn);
        Ok(())
    }

    /// A connection that is already a member may only join its own room again, as itself.
    fn check_rejoin_allowed(&self, conn: ConnId, j: &Join, key: &RoomKey) -> Handled {
        let Membership::In(room_no) = self.conns[&conn].membership else {
            return Ok(());
        };
        let room = &self.rooms[&room_no];
        if &room.key != key {
            let d = format!(
                "this connection is in room {}; leave it first",
                room.room_id
            );
            return Err(Refusal::new(ResultCode::NotAllowed, d));
        }
        if let Some(m) = room.index_of_conn(conn).map(|idx| &room.members[idx])
            && j.uid.as_ref().is_none_or(|u| u != &m.uid)
        {
            let d = format!("this connection joined as uid {}", m.uid);
            return Err(Refusal::new(ResultCode::NotAllowed, d));
        }
        Ok(())
    }

    /// The member joins again on the connection it is on: it keeps its session and records,
    /// and the pairing starts again (the others get `notifyNewPeer` and offer anew).
    fn rejoin(
        &mut self,
        now: Millis,
        conn: ConnId,
        j: &Join,
        seat: Seat,
        token: Option<TokenState>,
    ) {
        self.take_seat(now, conn, j, seat, token);
        self.welcome(now, conn, j, seat, Welcome::Rejoin);
    }

    /// The member comes back with its resume key, typically on a new connection after its
    /// old one dropped or the server restarted: it takes its place on this connection with
    /// the same session and sub-sessions, the old connection is closed, and the others are
    /// told nothing, so no peer connection is rebuilt.
    fn resume(
        &mut self,
        now: Millis,
        conn: ConnId,
        j: &Join,
        seat: Seat,
        token: Option<TokenState>,
    ) {
        self.take_seat(now, conn, j, seat, token);
        self.member_mut(seat).restored = None;
        self.welcome(now, conn, j, seat, Welcome::Resume);
    }

    /// Move the member at `seat` to `conn` with what the join says about it; its previous
    /// connection, if another, is closed as replaced.
    fn take_seat(
        &mut self,
        now: Millis,
        conn: ConnId,
        j: &Join,
        seat: Seat,
        token: Option<TokenState>,
    ) {
        let (ip, at) = (self.conns[&conn].ip.clone(), self.conns[&conn].at);
        let m = self.member_mut(seat);
        let old_conn = std::mem::replace(&mut m.conn, conn);
        m.last_seen = now;
        m.ip = ip;
        m.at = at;
        m.talk_type = j.talk_type;
        m.user_type = j.user_type;
        if let Some(u) = &j.uname
            && *m.uname != **u
        {
            m.uname = Text::from(u);
        }
        if token.is_some() {
            m.token = token;
        }
        if old_conn != conn {
            self.unbind(old_conn, CloseReason::Replaced);
        }
        self.conns.get_mut(&conn).expect("live").membership = Membership::In(seat.room);
        self.touch(seat.room);
    }

    fn join_new(
        &mut self,
        now: Millis,
        conn: ConnId,
        j: &mut Join,
        key: RoomKey,
        token: Option<TokenState>,
    ) -> Handled {
        let cap = self.cfg.max_capacity;
        let existing = self.room_nos.get(&key).copied();
        let count = existing.map_or(0, |no| self.rooms[&no].members.len());
        if count >= cap {
            // The original server's whole text, which clients may match on, so it is not
            // prefixed with the code's standard text as other refusals are.
            let desc = format!("room is full, it up to max number:{cap}");
            return Err(Refusal {
                code: ResultCode::RoomFull,
                desc,
            });
        }
        let uid = match &j.uid {
            Some(uid) => uid.clone(),
            None => self.assign_uid(existing),
        };
        // One ICE server per pair, chosen before anything is created: a join that cannot be
        // served is refused whole.
        let chosen = self.choose_ice(now, existing, j.talk_type, self.conns[&conn].at)?;
        let no = existing.unwrap_or_else(|| self.open_room(j, key));
        let newcomer = self.open_session(now, conn, j, no, uid, token);
        let wall = self.wall(now);
        let room = self.rooms.get_mut(&no).expect("just opened");
        let opened = pair_up(&mut self.ids, room, newcomer, &chosen, wall);
        let idx = room.members.len() - 1;
        for r in opened {
            self.record(Record::SubSessionOpen(r));
        }
        self.conns.get_mut(&conn).expect("live").membership = Membership::In(no);
        self.touch(no);
        self.welcome(now, conn, j, Seat { room: no, idx }, Welcome::New);
        Ok(())
    }

    /// The newcomer as a member, its session opened and recorded.
    /// The record shares the text the member and its room (`no`) hold; the client's
    /// system, browser and SDK, which the engine does not keep, are moved out of the join.
    fn open_session(
        &mut self,
        now: Millis,
        conn: ConnId,
        j: &mut Join,
        no: RoomNo,
        uid: Ident,
        token: Option<TokenState>,
    ) -> Member {
        let uname = match &j.uname {
            Some(u) => Text::from(u),
            None => Text::from(format!("client_{}", uid.key())),
        };
        let session_id = self.ids.next(self.wall(now));
        let (ip, at) = (self.conns[&conn].ip.clone(), self.conns[&conn].at);
        let room = &self.rooms[&no];
        let (app_id, room_id) = (room.app_id.clone(), Text::from(&room.room_id));
        self.record(Record::SessionOpen(SessionOpen {
            session_id,
            app_id,
            room_id,
            user_id: Text::from(&uid),
            user_name: uname.clone(),
            user_type: j.user_type,
            talk_type: j.talk_type,
            user_ip: ip.clone(),
            os_name: cut(j.os_name.take()),
            browser: cut(j.browser.take()),
            sdk_info: cut(j.sdk_info.take()),
            join_time: self.wall(now),
        }));
        Member {
            uid,
            uname,
            user_type: j.user_type,
            talk_type: j.talk_type,
            conn,
            ip,
            at,
            session_id,
            joined_at: now,
            last_seen: now,
            devices: [None; 4],
            subs: Vec::new(),
            token,
            resume_key: self.ids.resume_key(),
            restored: None,
        }
    }

    /// A new, empty room under a new number.
    fn open_room(&mut self, j: &Join, key: RoomKey) -> RoomNo {
        self.next_room += 1;
        let no = RoomNo(self.next_room);
        self.room_nos.insert(key.clone(), no);
        let room = Room {
            key,
            app_id: Text::from(&j.app_id),
            room_id: j.room_id.clone(),
            room_name: cut(j.room_name.clone()),
            members: Vec::new(),
        };
        self.rooms.insert(no, room);
        no
    }

    /// `respJoin` to the joiner (with everyone already there), then, unless it resumed,
    /// `notifyNewPeer` to each of them: the existing members make the offers.
    fn welcome(&mut self, now: Millis, conn: ConnId, j: &Join, seat: Seat, how: Welcome) {
        let (room, me) = (self.room(seat), self.member(seat));
        let peers: Vec<Peer> = room
            .others(seat.idx)
            .map(|m| Peer {
                app_id: room.app_id.as_str().to_owned(),
                uid: m.uid.clone(),
                uname: m.uname.as_str().to_owned(),
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
            uname: me.uname.as_str().to_owned(),
            session_id: Some(me.session_id),
            report_stats_interval: self.cfg.report_stats_interval_secs,
            user_list: (!peers.is_empty()).then_some(peers),
            resume_key: me.resume_key.clone(),
            heartbeat_timeout: self.cfg.heartbeat_timeout_secs,
            resumed: how == Welcome::Resume,
        });
        // Each existing member gets the rtcConfig of its pair with the newcomer.
        let notifies: Vec<(ConnId, ServerMsg)> = room
            .others(seat.idx)
            .filter(|_| how != Welcome::Resume)
            .map(|m| {
                let chosen = m.sub_to(me.uid.key()).and_then(|s| self.pair_ice(s));
                let notify = ServerMsg::NotifyNewPeer(NotifyNewPeer {
                    uid: me.uid.clone(),
                    uname: me.uname.as_str().to_owned(),
                    user_type: me.user_type,
                    talk_type: me.talk_type,
                    rtc_config: self.rtc_for(chosen.as_deref(), &m.uid, self.wall(now)),
                });
                (m.conn, notify)
            })
            .collect();
        let event = Event::Joined {
            app_id: room.app_id.as_str().to_owned(),
            room_id: room.room_id.key().to_owned(),
            uid: me.uid.key().to_owned(),
            session_id: me.session_id,
            rejoin: how != Welcome::New,
        };
        self.send(conn, resp);
        for (other, notify) in notifies {
            self.send(other, notify);
        }
        self.out.push_back(Effect::Event(event));
    }

    /// A nine-digit uid no member of the room has, for a join without one.
    fn assign_uid(&mut self, room: Option<RoomNo>) -> Ident {
        loop {
            let candidate = format!("{:09}", self.ids.below(1_000_000_000));
            let taken = room.is_some_and(|no| self.rooms[&no].index_of_uid(&candidate).is_some());
            if !taken {
                return Ident::new(&candidate);
            }
        }
    }
}

/// How a join seats its member, which decides what the others are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Welcome {
    /// A new member: a new session; the others get `notifyNewPeer`.
    New,
    /// The member again, on the connection it is on: the others get `notifyNewPeer`.
    Rejoin,
    /// The member on a new connection with its resume key: the others are told nothing.
    Resume,
}

/// Seat the newcomer in `room`: every pair it forms gets two sub-sessions, one per
/// direction, on the pair's ICE server (`chosen[i]` for the member at index `i`). Returns the
/// records of the sub-sessions opened.
fn pair_up<E: Entropy>(
    ids: &mut IdGen<E>,
    room: &mut Room,
    mut newcomer: Member,
    chosen: &[Option<Arc<Chosen>>],
    wall: Millis,
) -> Vec<SubSessionOpen> {
    let mut opened = Vec::new();
    let place = (&room.app_id, &room.room_id);
    for (i, e) in room.members.iter_mut().enumerate() {
        let ice = chosen.get(i).cloned().flatten();
        let ice_ip = ice.as_ref().map_or(Text::EMPTY, |c| Text::from(c.ip()));
        let there = Sub::towards(ids.next(wall), &newcomer, ice.clone(), ice_ip.clone());
        let back = Sub::towards(ids.next(wall), e, ice, ice_ip.clone());
        opened.push(sub_open(place, e, &newcomer, there.id, &ice_ip, wall));
        opened.push(sub_open(place, &newcomer, e, back.id, &ice_ip, wall));
        // Exact growth: a first push would make room for four, and every idle member of
        // every room pays for the slots it never uses.
        e.subs.reserve_exact(1);
        e.subs.push(there);
        newcomer.subs.reserve_exact(1);
        newcomer.subs.push(back);
    }
    room.members.reserve_exact(1);
    room.members.push(newcomer);
    opened
}

/// The record of `me`'s sub-session towards `remote`: all its text shared with the engine's.
fn sub_open(
    (app_id, room_id): (&Text, &Ident),
    me: &Member,
    remote: &Member,
    id: Ulid,
    ice_ip: &Text,
    wall: Millis,
) -> SubSessionOpen {
    SubSessionOpen {
        sub_session_id: id,
        session_id: me.session_id,
        app_id: app_id.clone(),
        room_id: Text::from(room_id),
        user_id: Text::from(&me.uid),
        remote_user_id: Text::from(&remote.uid),
        remote_user_name: remote.uname.clone(),
        remote_user_ip: remote.ip.clone(),
        ice_ip: ice_ip.clone(),
        created: wall,
    }
}

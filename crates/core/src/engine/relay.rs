//! Requests between members: offers, answers and candidates relayed to the remote, device
//! changes relayed to the room, `peerConnected` and `keepLive`. Every relay carries the
//! sender's member uid, never a uid the frame claims.

use super::{ConnId, Engine, Handled};
use crate::Millis;
use crate::ids::Entropy;
use crate::record::{Record, SubSessionBegin, SubSessionConnect};
use crate::time::shift;
use rtcroom_protocol::{
    Answer, Candidate, Identity, Offer, PeerConnected, Refusal, RelayAnswer, RelayCandidate,
    RelayOffer, RelayTurnTalkType, RespKeepLive, RespOffer, RespPeerConnected, RespTurnTalkType,
    ResultCode, ServerMsg, TurnTalkType,
};

fn no_sub() -> Refusal {
    Refusal::new(ResultCode::RemoteNotFound, "")
}

impl<E: Entropy> Engine<E> {
    pub(super) fn offer(&mut self, now: Millis, conn: ConnId, r: &mut Offer) -> Handled {
        let seat = self.speaker(conn, &r.id)?;
        let (remote_seat, rconn) = self.reachable(seat, &r.remote_uid)?;
        let (me, remote) = self.room_mut(seat).pair_mut(seat.idx, remote_seat.idx);
        let mine = me.sub_to_mut(remote.uid.key()).ok_or_else(no_sub)?;
        let (my_sub, begin) = (mine.id, mine.begin());
        let their_sub = remote.sub_to(me.uid.key()).ok_or_else(no_sub)?.id;
        let (me, remote) = (self.member(seat), self.member(remote_seat));
        let chosen = remote.sub_to(me.uid.key()).and_then(|s| self.pair_ice(s));
        let relay = ServerMsg::RelayOffer(RelayOffer {
            uid: me.uid.clone(),
            uname: me.uname.as_str().to_owned(),
            remote_uid: remote.uid.clone(),
            sub_session_id: their_sub,
            msg: r.msg.take(),
            rtc_config: self.rtc_for(chosen.as_deref(), &remote.uid, self.wall(now)),
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
            self.touch(seat.room);
            self.record(Record::SubSessionBegin(SubSessionBegin {
                sub_session_id: my_sub,
                begin_time: self.wall(now),
            }));
        }
        Ok(())
    }

    pub(super) fn answer(&mut self, now: Millis, conn: ConnId, r: &mut Answer) -> Handled {
        let seat = self.speaker(conn, &r.id)?;
        let (remote_seat, rconn) = self.reachable(seat, &r.remote_uid)?;
        let (me, remote) = self.room_mut(seat).pair_mut(seat.idx, remote_seat.idx);
        let relay = ServerMsg::RelayAnswer(RelayAnswer {
            connect_type: r.connect_type,
            uid: me.uid.clone(),
            uname: me.uname.as_str().to_owned(),
            remote_uid: remote.uid.clone(),
            msg: r.msg.take(),
        });
        let begun = me
            .sub_to_mut(remote.uid.key())
            .and_then(|s| s.begin().then_some(s.id));
        self.send(rconn, relay);
        if let Some(id) = begun {
            self.touch(seat.room);
            self.record(Record::SubSessionBegin(SubSessionBegin {
                sub_session_id: id,
                begin_time: self.wall(now),
            }));
        }
        Ok(())
    }

    pub(super) fn candidate(&mut self, conn: ConnId, r: &mut Candidate) -> Handled {
        let seat = self.speaker(conn, &r.id)?;
        let (remote_seat, rconn) = self.reachable(seat, &r.remote_uid)?;
        let (me, remote) = (self.member(seat), self.member(remote_seat));
        let relay = ServerMsg::RelayCandidate(RelayCandidate {
            uid: me.uid.clone(),
            uname: me.uname.as_str().to_owned(),
            remote_uid: remote.uid.clone(),
            msg: r.msg.take(),
        });
        self.send(rconn, relay);
        Ok(())
    }

    pub(super) fn keep_live(&mut self, conn: ConnId, id: &Identity) -> Handled {
        self.speaker(conn, id)?;
        let resp = ServerMsg::RespKeepLive(RespKeepLive {
            result: ResultCode::Ok,
            desc: ResultCode::Ok.desc().to_owned(),
        });
        self.send(conn, resp);
        Ok(())
    }

    pub(super) fn turn_talk_type(&mut self, conn: ConnId, r: &TurnTalkType) -> Handled {
        let seat = self.speaker(conn, &r.id)?;
        let me = self.member_mut(seat);
        me.devices[usize::from(r.index)] = Some(r.enable);
        let (uid, uname) = (me.uid.clone(), me.uname.as_str().to_owned());
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
        self.touch(seat.room);
        let others: Vec<ConnId> = self.room(seat).others(seat.idx).map(|m| m.conn).collect();
        for other in others {
            self.send(other, relay.clone());
        }
        Ok(())
    }

    pub(super) fn peer_connected(
        &mut self,
        now: Millis,
        conn: ConnId,
        r: &PeerConnected,
    ) -> Handled {
        let seat = self.speaker(conn, &r.id)?;
        let remote_seat = self.remote(seat, &r.remote_uid)?;
        let wall_offset = self.wall_offset;
        let (me, remote) = self.room_mut(seat).pair_mut(seat.idx, remote_seat.idx);
        let sub = me.sub_to_mut(remote.uid.key()).ok_or_else(no_sub)?;
        let connect_time = shift(*sub.connected_at.get_or_insert(now), wall_offset);
        sub.connect_type = r.connect_type;
        let connect = SubSessionConnect {
            sub_session_id: sub.id,
            connect_time,
            connect_type: r.connect_type,
        };
        let resp = ServerMsg::RespPeerConnected(RespPeerConnected {
            uid: me.uid.clone(),
            uname: me.uname.as_str().to_owned(),
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
                        uname: me.uname.as_str().to_owned(),
                        index: i,
                        enable,
                    })
                })
            })
            .collect();
        let rconn = remote.conn;
        self.touch(seat.room);
        self.send(conn, resp);
        for s in states {
            self.send(rconn, s);
        }
        self.record(Record::SubSessionConnect(connect));
        Ok(())
    }
}

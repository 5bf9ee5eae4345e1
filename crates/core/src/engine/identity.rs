//! Who a frame speaks as: a connection speaks only as the member it joined as, and names
//! only other members of the same room as its remote.

use super::state::{Conn, Membership, Seat};
use super::{ConnId, Engine};
use crate::ids::Entropy;
use rtcroom_protocol::{Field, Ident, Identity, Refusal, ResultCode};

impl<E: Entropy> Engine<E> {
    /// The seat of the member a joined connection speaks as, after checking the identity
    /// fields the message carries (`uid`, `roomId`, `appId`) against its membership.
    pub(super) fn speaker(&self, conn: ConnId, id: &Identity) -> Result<Seat, Refusal> {
        let room = match self.conns[&conn].membership {
            Membership::NotJoined => {
                return Err(Refusal::new(ResultCode::NotAllowed, "join a room first"));
            }
            Membership::Departed => return Err(Refusal::new(ResultCode::UidNotFound, "")),
            Membership::In(room) => room,
        };
        let seat = self
            .seat_of(room, conn)
            .ok_or_else(|| Refusal::new(ResultCode::UidNotFound, ""))?;
        let (room, m) = (self.room(seat), self.member(seat));
        if let Some(uid) = &id.uid
            && uid != &m.uid
        {
            return Err(Refusal::not_yours(Field::Uid, uid, &m.uid));
        }
        if let Some(room_id) = &id.room_id
            && room_id != &room.room_id
        {
            return Err(Refusal::not_yours(Field::RoomId, room_id, &room.room_id));
        }
        if let Some(app_id) = &id.app_id
            && **app_id != *room.app_id
        {
            return Err(Refusal::not_yours(Field::AppId, app_id, &room.app_id));
        }
        Ok(seat)
    }

    /// The seat of the remote member named by `remote`, which must be someone else in the
    /// speaker's room.
    pub(super) fn remote(&self, speaker: Seat, remote: &Ident) -> Result<Seat, Refusal> {
        let idx = self
            .room(speaker)
            .index_of_uid(remote.key())
            .ok_or_else(|| Refusal::new(ResultCode::RemoteNotFound, ""))?;
        if idx == speaker.idx {
            return Err(Refusal::own_uid());
        }
        Ok(Seat { idx, ..speaker })
    }

    /// Like [`Self::remote`], and the remote's socket must be open to relay to it.
    pub(super) fn reachable(
        &self,
        speaker: Seat,
        remote: &Ident,
    ) -> Result<(Seat, ConnId), Refusal> {
        let seat = self.remote(speaker, remote)?;
        let conn = self.member(seat).conn;
        if !self.conns.get(&conn).is_some_and(Conn::reachable) {
            let d = "the remote user's connection dropped; it may rejoin shortly";
            return Err(Refusal::new(ResultCode::RemoteNotFound, d));
        }
        Ok((seat, conn))
    }
}

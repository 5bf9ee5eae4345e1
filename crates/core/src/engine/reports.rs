//! What clients report: `reportInfo` (a client-side result, recorded and, when non-zero,
//! an event) and `reportStats` (a quality sample of one sub-session).

use super::{ConnId, Engine, Handled};
use crate::effect::{Effect, Event};
use crate::ids::Entropy;
use crate::record::{ClientInfo, Quality, Record};
use crate::{Millis, Text};
use rtcroom_protocol::{Refusal, ReportInfo, ReportStats, ResultCode};

impl<E: Entropy> Engine<E> {
    pub(super) fn report_info(&mut self, now: Millis, conn: ConnId, r: &ReportInfo) -> Handled {
        let seat = self.speaker(conn, &r.id)?;
        let id = self.ids.next(self.wall(now));
        let (room, m) = (self.room(seat), self.member(seat));
        let info = ClientInfo {
            id,
            session_id: m.session_id,
            app_id: room.app_id.clone(),
            room_id: Text::from(&room.room_id),
            user_id: Text::from(&m.uid),
            result: r.result,
            desc: r.desc.clone(),
            data1: r.data1.as_ref().map(|d| d.get().to_owned()),
            data2: r.data2.as_ref().map(|d| d.get().to_owned()),
            create_time: self.wall(now),
        };
        if r.result != 0 {
            self.out.push_back(Effect::Event(Event::ClientReport {
                app_id: info.app_id.as_str().to_owned(),
                room_id: info.room_id.as_str().to_owned(),
                uid: info.user_id.as_str().to_owned(),
                session_id: info.session_id,
                result: r.result,
                desc: r.desc.clone(),
            }));
        }
        self.record(Record::ClientInfo(info));
        Ok(())
    }

    pub(super) fn report_stats(
        &mut self,
        now: Millis,
        conn: ConnId,
        r: &mut ReportStats,
    ) -> Handled {
        let seat = self.speaker(conn, &r.id)?;
        let id = self.ids.next(self.wall(now));
        let m = self.member(seat);
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
            .ok_or_else(|| Refusal::new(ResultCode::RemoteNotFound, ""))?;
        let q = Quality {
            id,
            sub_session_id: sub.id,
            session_id: m.session_id,
            user_id: Text::from(&m.uid),
            remote_user_id: sub.remote_key.clone(),
            create_time: self.wall(now),
            // Moved, not copied: the request is not used again.
            stats: std::mem::take(&mut r.stats),
        };
        self.record(Record::Quality(q));
        Ok(())
    }
}

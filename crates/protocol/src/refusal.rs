//! Refusals on the wire: which response answers a refused command, what it echoes, and how
//! its `desc` reads. The room engine decides *that* a request is refused and with which
//! [`ResultCode`]; this module alone shapes the answer.

use crate::{
    Command, DecodeError, GeneralMsgResp, Ident, Identity, Request, RespAnswer, RespJoin,
    RespKeepLive, RespLeave, RespOffer, RespTurnTalkType, RespUpdateToken, ResultCode, ResumeKey,
    ServerMsg,
};
use std::fmt;

/// A request field that a refusal's `desc` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    AppId,
    RoomId,
    Uid,
    Uname,
    RemoteUid,
    ResumeKey,
}

impl Field {
    /// The field's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AppId => "appId",
            Self::RoomId => "roomId",
            Self::Uid => "uid",
            Self::Uname => "uname",
            Self::RemoteUid => "remoteUid",
            Self::ResumeKey => "resumeKey",
        }
    }

    /// What the field names, in a sentence ("this connection's room").
    fn noun(self) -> &'static str {
        match self {
            Self::AppId => "app",
            Self::RoomId => "room",
            Self::Uid | Self::Uname | Self::RemoteUid => "uid",
            Self::ResumeKey => "key",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused request: its non-zero result code and the `desc` that says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ResultCode,
    pub desc: String,
}

impl Refusal {
    /// The code's standard text, followed by `detail` when there is one (protocol.md: the
    /// `desc` "says which").
    pub fn new(code: ResultCode, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let desc = if detail.is_empty() {
            code.desc().to_owned()
        } else {
            format!("{}: {detail}", code.desc())
        };
        Self { code, desc }
    }

    /// A frame that did not decode.
    pub fn undecodable(e: &DecodeError) -> Self {
        Self::new(ResultCode::ParseFailed, e.to_string())
    }

    /// A field longer than the server accepts.
    pub fn too_long(field: Field, max_chars: usize) -> Self {
        Self::new(
            ResultCode::ParseFailed,
            format!("{field} is longer than {max_chars} characters"),
        )
    }

    /// An identity field that names someone other than the connection's member.
    pub fn not_yours(field: Field, claimed: &dyn fmt::Display, bound: &dyn fmt::Display) -> Self {
        let noun = field.noun();
        Self::new(
            ResultCode::NotAllowed,
            format!("{field} {claimed} is not this connection's {noun} {bound}"),
        )
    }

    /// A `remoteUid` naming the sender itself.
    pub fn own_uid() -> Self {
        Self::new(
            ResultCode::ParseFailed,
            format!("{} is your own uid", Field::RemoteUid),
        )
    }
}

impl Request {
    /// The response that carries `refusal` back to the sender: the command's own response
    /// (protocol.md: every join gets a `respJoin`), echoing the identifiers it came with.
    /// `report_stats_interval` fills the field every `respJoin` carries.
    pub fn refusal(&self, refusal: Refusal, report_stats_interval: u64) -> ServerMsg {
        let (id, remote) = match self {
            Self::Join(j) => {
                let id = Identity {
                    room_id: Some(j.room_id.clone()),
                    uid: j.uid.clone(),
                    ..Identity::default()
                };
                (id, None)
            }
            Self::Leave(r) => (r.id.clone(), None),
            Self::Offer(r) => (r.id.clone(), Some(&r.remote_uid)),
            Self::Answer(r) => (r.id.clone(), Some(&r.remote_uid)),
            Self::Candidate(r) => (r.id.clone(), Some(&r.remote_uid)),
            Self::KeepLive(r) => (r.id.clone(), None),
            Self::TurnTalkType(r) => (r.id.clone(), None),
            Self::PeerConnected(r) => (r.id.clone(), Some(&r.remote_uid)),
            Self::ReportInfo(r) => (r.id.clone(), None),
            Self::ReportStats(r) => (r.id.clone(), r.remote_uid.as_ref()),
            Self::UpdateToken(r) => (r.id.clone(), None),
        };
        reply(self.command(), &id, remote, refusal, report_stats_interval)
    }
}

impl DecodeError {
    /// The answer to a frame that did not decode: the command's own response when the
    /// command is known (echoing what could be read), else `generalMsgResp`.
    pub fn refusal(&self, refusal: Refusal, report_stats_interval: u64) -> ServerMsg {
        match self {
            Self::Invalid { cmd, echo, .. } => {
                reply(*cmd, echo, None, refusal, report_stats_interval)
            }
            _ => general(refusal),
        }
    }
}

fn general(refusal: Refusal) -> ServerMsg {
    ServerMsg::GeneralMsgResp(GeneralMsgResp {
        result: refusal.code,
        desc: refusal.desc,
        data1: None,
        data2: None,
    })
}

/// The response of `cmd` carrying a refusal.
fn reply(
    cmd: Command,
    id: &Identity,
    remote: Option<&Ident>,
    refusal: Refusal,
    report_stats_interval: u64,
) -> ServerMsg {
    let empty = || Ident::new("");
    let uid = id.uid.clone().unwrap_or_else(empty);
    let remote_uid = remote.cloned().unwrap_or_else(empty);
    let Refusal { code: result, desc } = refusal;
    // `respAnswer`, `respCandidate` and `respPeerConnected` share one shape.
    let pair_reply = |uid, remote_uid, result, desc| RespAnswer {
        uid,
        uname: String::new(),
        remote_uid,
        result,
        desc,
    };
    match cmd {
        Command::Join => ServerMsg::RespJoin(RespJoin {
            result,
            desc,
            room_id: id.room_id.clone().unwrap_or_else(empty),
            room_name: String::new(),
            uid,
            uname: String::new(),
            session_id: None,
            report_stats_interval,
            user_list: None,
            resume_key: ResumeKey::default(),
            heartbeat_timeout: 0,
            resumed: false,
        }),
        Command::Leave => ServerMsg::RespLeave(RespLeave {
            uid,
            uname: String::new(),
            user_type: 0,
            result,
            desc,
        }),
        Command::Offer => ServerMsg::RespOffer(RespOffer {
            remote_uid,
            result,
            desc,
            sub_session_id: None,
        }),
        Command::Answer => ServerMsg::RespAnswer(pair_reply(uid, remote_uid, result, desc)),
        Command::Candidate => ServerMsg::RespCandidate(pair_reply(uid, remote_uid, result, desc)),
        Command::PeerConnected => {
            ServerMsg::RespPeerConnected(pair_reply(uid, remote_uid, result, desc))
        }
        Command::KeepLive => ServerMsg::RespKeepLive(RespKeepLive { result, desc }),
        Command::TurnTalkType => {
            ServerMsg::RespTurnTalkType(RespTurnTalkType { uid, result, desc })
        }
        Command::UpdateToken => ServerMsg::RespUpdateToken(RespUpdateToken {
            result,
            desc,
            expire_at: 0,
        }),
        Command::ReportInfo | Command::ReportStats => general(Refusal { code: result, desc }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_join_echoes_room_and_uid() {
        let req = crate::decode(
            r#"{"cmd":"join","appId":"1","roomId":22,"uid":"u"}"#,
            crate::DEFAULT_MAX_FRAME,
        )
        .expect("a valid join");
        let msg = req.refusal(Refusal::new(ResultCode::RoomFull, "max 3"), 15);
        assert_eq!(
            msg.to_json(),
            r#"{"cmd":"respJoin","result":1,"desc":"room is full: max 3","roomId":22,"roomName":"","uid":"u","uname":"","sessionId":"","reportStatsInterval":15,"userList":null,"resumeKey":"","heartbeatTimeout":0,"resumed":false}"#
        );
    }

    #[test]
    fn refusal_texts_name_the_wire_fields() {
        let r = Refusal::not_yours(Field::RoomId, &"r9", &"r1");
        assert_eq!(r.code, ResultCode::NotAllowed);
        assert_eq!(
            r.desc,
            "not allowed: roomId r9 is not this connection's room r1"
        );
        assert_eq!(
            Refusal::too_long(Field::Uname, 64).desc,
            "server parse the message faild, please check the format: uname is longer than 64 characters"
        );
        assert_eq!(
            Refusal::new(ResultCode::UidNotFound, "").desc,
            ResultCode::UidNotFound.desc()
        );
    }
}

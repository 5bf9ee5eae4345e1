//! Server → client: typed messages written as the exact JSON of protocol.md, `cmd` first
//! and the fields in the document's order.

use crate::{Ident, RawJson, ResultCode, ResumeKey, RtcConfig};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use std::sync::Arc;
use ulid::Ulid;

/// A JSON value prepared once and shared by many messages (an `rtcConfig`).
#[derive(Debug, Clone)]
pub struct SharedJson(Arc<RawValue>);

impl SharedJson {
    pub fn new<T: Serialize>(value: &T) -> Self {
        let text = serde_json::to_string(value).expect("config types always serialize");
        let raw = RawValue::from_string(text).expect("serde_json output is valid JSON");
        Self(Arc::from(raw))
    }

    pub fn rtc_config(config: &RtcConfig) -> Self {
        Self::new(config)
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for SharedJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for SharedJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

fn result_code<S: Serializer>(r: &ResultCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u8(r.code())
}

fn ulid_or_empty<S: Serializer>(id: &Option<Ulid>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => ulid(id, s),
        None => s.serialize_str(""),
    }
}

fn ulid<S: Serializer>(id: &Ulid, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; ulid::ULID_LEN];
    let text = id.array_to_str(&mut buf);
    s.serialize_str(text)
}

/// One entry of `respJoin.userList`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    pub app_id: String,
    pub uid: Ident,
    pub uname: String,
    pub user_type: i64,
    pub talk_type: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RespJoin {
    #[serde(serialize_with = "result_code")]
    pub result: ResultCode,
    pub desc: String,
    pub room_id: Ident,
    pub room_name: String,
    pub uid: Ident,
    pub uname: String,
    #[serde(serialize_with = "ulid_or_empty")]
    pub session_id: Option<Ulid>,
    pub report_stats_interval: u64,
    pub user_list: Option<Vec<Peer>>,
    // The fields below come after the document's, so that clients that read the document's
    // fields by position or ignore unknown ones are unaffected.
    /// The member's proof for a later `join` that resumes it; empty in a refusal.
    pub resume_key: ResumeKey,
    /// Seconds a member whose connection dropped keeps its place (0 in a refusal).
    pub heartbeat_timeout: u64,
    /// This join resumed the member: same session, same sub-sessions, the others were told
    /// nothing, so the client keeps its peer connections.
    pub resumed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyNewPeer {
    pub uid: Ident,
    pub uname: String,
    pub user_type: i64,
    pub talk_type: i64,
    pub rtc_config: SharedJson,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RespLeave {
    pub uid: Ident,
    pub uname: String,
    pub user_type: i64,
    #[serde(serialize_with = "result_code")]
    pub result: ResultCode,
    pub desc: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayLeave {
    pub uid: Ident,
    pub uname: String,
    pub user_type: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RespOffer {
    pub remote_uid: Ident,
    #[serde(serialize_with = "result_code")]
    pub result: ResultCode,
    pub desc: String,
    #[serde(serialize_with = "ulid_or_empty")]
    pub sub_session_id: Option<Ulid>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayOffer {
    pub uid: Ident,
    pub uname: String,
    pub remote_uid: Ident,
    #[serde(serialize_with = "ulid")]
    pub sub_session_id: Ulid,
    pub msg: RawJson,
    pub rtc_config: SharedJson,
    pub is_ice_reset: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RespAnswer {
    pub uid: Ident,
    pub uname: String,
    pub remote_uid: Ident,
    #[serde(serialize_with = "result_code")]
    pub result: ResultCode,
    pub desc: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayAnswer {
    pub connect_type: i64,
    pub uid: Ident,
    pub uname: String,
    pub remote_uid: Ident,
    pub msg: RawJson,
}

/// `respCandidate` has the same shape as `respAnswer`.
pub type RespCandidate = RespAnswer;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayCandidate {
    pub uid: Ident,
    pub uname: String,
    pub remote_uid: Ident,
    pub msg: RawJson,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RespKeepLive {
    #[serde(serialize_with = "result_code")]
    pub result: ResultCode,
    pub desc: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RespTurnTalkType {
    pub uid: Ident,
    #[serde(serialize_with = "result_code")]
    pub result: ResultCode,
    pub desc: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelayTurnTalkType {
    pub uid: Ident,
    pub uname: String,
    pub index: u8,
    pub enable: bool,
}

/// `respPeerConnected` has the same shape as `respAnswer`.
pub type RespPeerConnected = RespAnswer;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RespUpdateToken {
    #[serde(serialize_with = "result_code")]
    pub result: ResultCode,
    pub desc: String,
    /// Unix seconds at which the connection's token now expires; 0 when there is none.
    pub expire_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemPromptToken {
    pub app_id: String,
    pub room_id: Ident,
    pub uid: Ident,
    /// Unix seconds.
    pub expire_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemKickUser {
    pub app_id: String,
    pub room_id: Ident,
    pub uid: Ident,
    pub desc: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneralMsgResp {
    #[serde(serialize_with = "result_code")]
    pub result: ResultCode,
    pub desc: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data2: Option<String>,
}

/// Every message the room server sends on a signaling connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "cmd", rename_all = "camelCase")]
pub enum ServerMsg {
    RespJoin(RespJoin),
    NotifyNewPeer(NotifyNewPeer),
    RespLeave(RespLeave),
    RelayLeave(RelayLeave),
    RespOffer(RespOffer),
    RelayOffer(RelayOffer),
    RespAnswer(RespAnswer),
    RelayAnswer(RelayAnswer),
    RespCandidate(RespCandidate),
    RelayCandidate(RelayCandidate),
    RespKeepLive(RespKeepLive),
    RespTurnTalkType(RespTurnTalkType),
    RelayTurnTalkType(RelayTurnTalkType),
    RespPeerConnected(RespPeerConnected),
    RespUpdateToken(RespUpdateToken),
    SystemPromptToken(SystemPromptToken),
    SystemKickUser(SystemKickUser),
    GeneralMsgResp(GeneralMsgResp),
}

impl ServerMsg {
    /// The wire name of the message.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RespJoin(_) => "respJoin",
            Self::NotifyNewPeer(_) => "notifyNewPeer",
            Self::RespLeave(_) => "respLeave",
            Self::RelayLeave(_) => "relayLeave",
            Self::RespOffer(_) => "respOffer",
            Self::RelayOffer(_) => "relayOffer",
            Self::RespAnswer(_) => "respAnswer",
            Self::RelayAnswer(_) => "relayAnswer",
            Self::RespCandidate(_) => "respCandidate",
            Self::RelayCandidate(_) => "relayCandidate",
            Self::RespKeepLive(_) => "respKeepLive",
            Self::RespTurnTalkType(_) => "respTurnTalkType",
            Self::RelayTurnTalkType(_) => "relayTurnTalkType",
            Self::RespPeerConnected(_) => "respPeerConnected",
            Self::RespUpdateToken(_) => "respUpdateToken",
            Self::SystemPromptToken(_) => "systemPromptToken",
            Self::SystemKickUser(_) => "systemKickUser",
            Self::GeneralMsgResp(_) => "generalMsgResp",
        }
    }

    /// The `result` the message carries, if it is a response.
    pub fn result(&self) -> Option<ResultCode> {
        match self {
            Self::RespJoin(m) => Some(m.result),
            Self::RespLeave(m) => Some(m.result),
            Self::RespOffer(m) => Some(m.result),
            Self::RespAnswer(m) | Self::RespCandidate(m) | Self::RespPeerConnected(m) => {
                Some(m.result)
            }
            Self::RespKeepLive(m) => Some(m.result),
            Self::RespTurnTalkType(m) => Some(m.result),
            Self::RespUpdateToken(m) => Some(m.result),
            Self::GeneralMsgResp(m) => Some(m.result),
            _ => None,
        }
    }

    /// The exact JSON text of the message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }

    /// Append the JSON text of the message to `out` (the same text as [`Self::to_json`]).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(out, self).expect("server messages always serialize");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IceServer;

    #[test]
    fn resp_join_matches_the_documents_example() {
        let m = ServerMsg::RespJoin(RespJoin {
            result: ResultCode::Ok,
            desc: "ok".into(),
            room_id: Ident::new("22"),
            room_name: "talk-now".into(),
            uid: Ident::new("386082043"),
            uname: "client_216".into(),
            session_id: Some("01DD05Q5G8EA81MMTFRT0SZH3X".parse().unwrap()),
            report_stats_interval: 15,
            user_list: None,
            resume_key: ResumeKey::from_bits(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
            heartbeat_timeout: 40,
            resumed: false,
        });
        assert_eq!(
            m.to_json(),
            r#"{"cmd":"respJoin","result":0,"desc":"ok","roomId":"22","roomName":"talk-now","uid":"386082043","uname":"client_216","sessionId":"01DD05Q5G8EA81MMTFRT0SZH3X","reportStatsInterval":15,"userList":null,"resumeKey":"0123456789abcdeffedcba9876543210","heartbeatTimeout":40,"resumed":false}"#
        );
    }

    #[test]
    fn relay_offer_writes_msg_and_config_verbatim() {
        let cfg = RtcConfig::with_servers(vec![IceServer {
            credential: String::new(),
            urls: vec!["stun:127.0.0.1:3478".into()],
            username: String::new(),
        }]);
        let m = ServerMsg::RelayOffer(RelayOffer {
            uid: Ident::new("a"),
            uname: "A".into(),
            remote_uid: Ident::new("b"),
            sub_session_id: "01DD084WFA4J0EBG3WDHGE3HFR".parse().unwrap(),
            msg: RawJson::from_json(r#""{\"type\":\"offer\"}""#.into()).unwrap(),
            rtc_config: SharedJson::rtc_config(&cfg),
            is_ice_reset: false,
        });
        assert_eq!(
            m.to_json(),
            r#"{"cmd":"relayOffer","uid":"a","uname":"A","remoteUid":"b","subSessionId":"01DD084WFA4J0EBG3WDHGE3HFR","msg":"{\"type\":\"offer\"}","rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[{"credential":"","urls":["stun:127.0.0.1:3478"],"username":""}],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"},"isIceReset":false}"#
        );
    }
}

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
        let mut out = Vec::new();
        self.write_json(&mut out);
        String::from_utf8(out).expect("server messages are UTF-8")
    }

    /// Append the JSON text of the message to `out` (the same text as [`Self::to_json`]).
    /// The messages of every relayed offer, answer and candidate are written by hand: their
    /// header, then the `msg` as the client sent it (see `splice`); the others by serde.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Self::RelayOffer(m) => splice::relay_offer(out, m),
            Self::RespOffer(m) => splice::resp_offer(out, m),
            Self::RelayAnswer(m) => splice::relay_answer(out, m),
            Self::RelayCandidate(m) => splice::relay_candidate(out, m),
            _ => serde_json::to_writer(out, self).expect("server messages always serialize"),
        }
    }
}

/// The messages a relay sends, written straight into the output: the bytes serde would
/// write (`tests::spliced_messages_are_what_serde_writes`), without serde's per-field
/// machinery. A relayed offer is mostly its `msg`, which is copied once, as it came.
mod splice {
    use super::{RelayAnswer, RelayCandidate, RelayOffer, RespOffer};
    use crate::Ident;
    use std::io::Write;
    use ulid::Ulid;

    pub(super) fn relay_offer(out: &mut Vec<u8>, m: &RelayOffer) {
        out.extend_from_slice(br#"{"cmd":"relayOffer","uid":"#);
        member(out, &m.uid, &m.uname, &m.remote_uid);
        out.extend_from_slice(br#","subSessionId":"#);
        ulid(out, &m.sub_session_id);
        out.extend_from_slice(br#","msg":"#);
        out.extend_from_slice(m.msg.as_bytes());
        out.extend_from_slice(br#","rtcConfig":"#);
        out.extend_from_slice(m.rtc_config.get().as_bytes());
        out.extend_from_slice(if m.is_ice_reset {
            br#","isIceReset":true}"#
        } else {
            br#","isIceReset":false}"#
        });
    }

    pub(super) fn resp_offer(out: &mut Vec<u8>, m: &RespOffer) {
        out.extend_from_slice(br#"{"cmd":"respOffer","remoteUid":"#);
        out.extend_from_slice(m.remote_uid.raw_json().as_bytes());
        out.extend_from_slice(br#","result":"#);
        code(out, m.result.code());
        out.extend_from_slice(br#","desc":"#);
        string(out, &m.desc);
        out.extend_from_slice(br#","subSessionId":"#);
        match &m.sub_session_id {
            Some(id) => ulid(out, id),
            None => out.extend_from_slice(br#""""#),
        }
        out.push(b'}');
    }

    pub(super) fn relay_answer(out: &mut Vec<u8>, m: &RelayAnswer) {
        let _ = write!(
            out,
            r#"{{"cmd":"relayAnswer","connectType":{},"uid":"#,
            m.connect_type
        );
        member(out, &m.uid, &m.uname, &m.remote_uid);
        out.extend_from_slice(br#","msg":"#);
        out.extend_from_slice(m.msg.as_bytes());
        out.push(b'}');
    }

    pub(super) fn relay_candidate(out: &mut Vec<u8>, m: &RelayCandidate) {
        out.extend_from_slice(br#"{"cmd":"relayCandidate","uid":"#);
        member(out, &m.uid, &m.uname, &m.remote_uid);
        out.extend_from_slice(br#","msg":"#);
        out.extend_from_slice(m.msg.as_bytes());
        out.push(b'}');
    }

    /// `<uid>,"uname":<uname>,"remoteUid":<remote>`, as every relay carries them.
    fn member(out: &mut Vec<u8>, uid: &Ident, uname: &str, remote: &Ident) {
        out.extend_from_slice(uid.raw_json().as_bytes());
        out.extend_from_slice(br#","uname":"#);
        string(out, uname);
        out.extend_from_slice(br#","remoteUid":"#);
        out.extend_from_slice(remote.raw_json().as_bytes());
    }

    /// A result code's digits (`write!` costs the whole formatting machinery per offer).
    pub(super) fn code(out: &mut Vec<u8>, n: u8) {
        if n >= 100 {
            out.push(b'0' + n / 100);
        }
        if n >= 10 {
            out.push(b'0' + n / 10 % 10);
        }
        out.push(b'0' + n % 10);
    }

    fn ulid(out: &mut Vec<u8>, id: &Ulid) {
        let mut buf = [0u8; ulid::ULID_LEN];
        out.push(b'"');
        out.extend_from_slice(id.array_to_str(&mut buf).as_bytes());
        out.push(b'"');
    }

    /// A JSON string: as it is between quotes when nothing in it needs escaping, else as
    /// serde_json escapes it.
    fn string(out: &mut Vec<u8>, s: &str) {
        if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            serde_json::to_writer(out, s).expect("a string always serializes");
        } else {
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        }
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

    proptest::proptest! {
        /// The messages written by hand are byte for byte what serde writes, whatever the
        /// names, identifiers (strings or numbers) and `msg` (a string or an object).
        #[test]
        fn spliced_messages_are_what_serde_writes(
            uid in "[a-z0-9\"\\\\\n é]{1,8}",
            number in proptest::bool::ANY,
            uname in "[a-zA-Z\"\\\\\t\u{1}é]{0,8}",
            msg in proptest::sample::select(vec![
                r#""{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\"}""#,
                r#"{ "candidate" : "c", "n": [1, 2.5e3] }"#,
                r#""""#,
            ]),
            flags in (proptest::bool::ANY, proptest::bool::ANY, -3i64..5),
            result in proptest::sample::select(vec![
                ResultCode::Ok, ResultCode::RemoteNotFound, ResultCode::TokenInvalid,
                ResultCode::RateLimited,
            ]),
        ) {
            let (is_ice_reset, with_sub, connect_type) = flags;
            let uid = if number { Ident::from_json("-12.5e3").unwrap() } else { Ident::new(&uid) };
            let remote_uid = Ident::new("r");
            let msg = RawJson::from_json(msg.to_owned()).unwrap();
            let sub: Ulid = "01DD084WFA4J0EBG3WDHGE3HFR".parse().unwrap();
            let cfg = SharedJson::rtc_config(&RtcConfig::with_servers(Vec::new()));
            let msgs = [
                ServerMsg::RelayOffer(RelayOffer {
                    uid: uid.clone(), uname: uname.clone(), remote_uid: remote_uid.clone(),
                    sub_session_id: sub, msg: msg.clone(), rtc_config: cfg, is_ice_reset,
                }),
                ServerMsg::RespOffer(RespOffer {
                    remote_uid: uid.clone(), result,
                    desc: uname.clone(), sub_session_id: with_sub.then_some(sub),
                }),
                ServerMsg::RelayAnswer(RelayAnswer {
                    connect_type, uid: uid.clone(), uname: uname.clone(),
                    remote_uid: remote_uid.clone(), msg: msg.clone(),
                }),
                ServerMsg::RelayCandidate(RelayCandidate {
                    uid, uname, remote_uid, msg,
                }),
            ];
            for m in msgs {
                let serde = serde_json::to_string(&m).unwrap();
                proptest::prop_assert_eq!(m.to_json(), serde);
            }
        }
    }

    #[test]
    fn a_code_is_its_decimal_digits() {
        for n in [0u8, 6, 9, 10, 14, 99, 100, 255] {
            let mut out = Vec::new();
            super::splice::code(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
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

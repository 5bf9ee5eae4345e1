//! Client → server: one text frame into one typed [`Request`], liberally.
//!
//! Every field is first captured as borrowed raw JSON, then read with the tolerance that
//! protocol.md's "Liberal input" table allows. Unknown fields are skipped, `null` is absent.

use crate::stats::QualityStats;
use crate::{ConnectType, Ident, RawJson, ResumeKey};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// The commands a client may send to the room server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Join,
    Leave,
    Offer,
    Answer,
    Candidate,
    KeepLive,
    TurnTalkType,
    PeerConnected,
    ReportInfo,
    ReportStats,
    UpdateToken,
}

impl Command {
    pub const ALL: [Command; 11] = [
        Self::Join,
        Self::Leave,
        Self::Offer,
        Self::Answer,
        Self::Candidate,
        Self::KeepLive,
        Self::TurnTalkType,
        Self::PeerConnected,
        Self::ReportInfo,
        Self::ReportStats,
        Self::UpdateToken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Leave => "leave",
            Self::Offer => "offer",
            Self::Answer => "answer",
            Self::Candidate => "candidate",
            Self::KeepLive => "keepLive",
            Self::TurnTalkType => "turnTalkType",
            Self::PeerConnected => "peerConnected",
            Self::ReportInfo => "reportInfo",
            Self::ReportStats => "reportStats",
            Self::UpdateToken => "updateToken",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Why a frame could not become a [`Request`]. The room engine answers each with a
/// non-zero `result`: the command's own response when the command is known, else
/// `generalMsgResp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A binary WebSocket frame.
    Binary,
    /// A frame above the configured limit.
    TooLarge { len: usize, limit: usize },
    /// Not JSON at all, or broken JSON.
    NotJson(String),
    /// Valid JSON, but not an object.
    NotObject,
    /// An object without a usable `cmd`.
    MissingCmd,
    /// A `cmd` this server does not know.
    UnknownCmd(String),
    /// A known command with a missing or invalid field.
    Invalid {
        cmd: Command,
        field: &'static str,
        problem: String,
        /// The `uid` and `roomId` of the frame when they could be read, so that a failed
        /// `join` can still echo them.
        echo: Box<Identity>,
    },
}

impl DecodeError {
    /// The command whose response should carry the error, when it is known.
    pub fn command(&self) -> Option<Command> {
        match self {
            Self::Invalid { cmd, .. } => Some(*cmd),
            _ => None,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Binary => f.write_str("binary frames are not accepted; send JSON text"),
            Self::TooLarge { len, limit } => {
                write!(
                    f,
                    "frame of {len} bytes is above the limit of {limit} bytes"
                )
            }
            Self::NotJson(e) => write!(f, "not valid JSON: {e}"),
            Self::NotObject => f.write_str("the frame must be a JSON object"),
            Self::MissingCmd => f.write_str("field cmd is missing or not a string"),
            Self::UnknownCmd(c) => write!(f, "unknown cmd {c:?}"),
            Self::Invalid {
                cmd,
                field,
                problem,
                ..
            } => write!(f, "{}: field {field} {problem}", cmd.as_str()),
        }
    }
}

/// The identity fields most requests carry. After `join` the connection is bound, and
/// these are only checked against the binding (a mismatch is `result: 13`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub app_id: Option<String>,
    pub room_id: Option<Ident>,
    pub uid: Option<Ident>,
    pub session_id: Option<String>,
    /// The client's `time`, normalized to Unix milliseconds; kept for logs only.
    pub time_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub app_id: String,
    pub token: Option<String>,
    pub room_id: Ident,
    pub room_name: Option<String>,
    /// `None` when absent or empty: the server assigns one.
    pub uid: Option<Ident>,
    pub uname: Option<String>,
    pub user_type: i64,
    pub talk_type: i64,
    pub os_name: Option<String>,
    pub browser: Option<String>,
    pub sdk_info: Option<String>,
    pub time_ms: Option<u64>,
    /// The `resumeKey` of an earlier `respJoin`: this join asks to resume that member.
    pub resume_key: Option<ResumeKey>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Leave {
    pub id: Identity,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub id: Identity,
    pub remote_uid: Ident,
    pub msg: RawJson,
    pub is_ice_reset: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub id: Identity,
    pub remote_uid: Ident,
    pub msg: RawJson,
    pub connect_type: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: Identity,
    pub remote_uid: Ident,
    pub msg: RawJson,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeepLive {
    pub id: Identity,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TurnTalkType {
    pub id: Identity,
    /// 0 camera, 1 microphone, 2 screen share, 3 system sound.
    pub index: u8,
    pub enable: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PeerConnected {
    pub id: Identity,
    pub remote_uid: Ident,
    pub connect_type: ConnectType,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReportInfo {
    pub id: Identity,
    pub result: i64,
    pub desc: String,
    pub data1: Option<RawJson>,
    pub data2: Option<RawJson>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReportStats {
    pub id: Identity,
    pub sub_session_id: Option<String>,
    pub remote_uid: Option<Ident>,
    pub stats: QualityStats,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateToken {
    pub id: Identity,
    pub token: String,
}

/// One decoded client request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Join(Join),
    Leave(Leave),
    Offer(Offer),
    Answer(Answer),
    Candidate(Candidate),
    KeepLive(KeepLive),
    TurnTalkType(TurnTalkType),
    PeerConnected(PeerConnected),
    ReportInfo(ReportInfo),
    ReportStats(ReportStats),
    UpdateToken(UpdateToken),
}

impl Request {
    pub fn command(&self) -> Command {
        match self {
            Self::Join(_) => Command::Join,
            Self::Leave(_) => Command::Leave,
            Self::Offer(_) => Command::Offer,
            Self::Answer(_) => Command::Answer,
            Self::Candidate(_) => Command::Candidate,
            Self::KeepLive(_) => Command::KeepLive,
            Self::TurnTalkType(_) => Command::TurnTalkType,
            Self::PeerConnected(_) => Command::PeerConnected,
            Self::ReportInfo(_) => Command::ReportInfo,
            Self::ReportStats(_) => Command::ReportStats,
            Self::UpdateToken(_) => Command::UpdateToken,
        }
    }
}

/// Every field any request may carry, as the JSON text it arrived as (`null` included: it
/// means absent wherever a field is read).
#[derive(Default)]
struct Fields<'a> {
    cmd: Option<&'a str>,
    app_id: Option<&'a str>,
    token: Option<&'a str>,
    room_id: Option<&'a str>,
    room_name: Option<&'a str>,
    uid: Option<&'a str>,
    uname: Option<&'a str>,
    user_type: Option<&'a str>,
    talk_type: Option<&'a str>,
    time: Option<&'a str>,
    os_name: Option<&'a str>,
    os_info: Option<&'a str>,
    browser: Option<&'a str>,
    sdk_info: Option<&'a str>,
    session_id: Option<&'a str>,
    sub_session_id: Option<&'a str>,
    remote_uid: Option<&'a str>,
    remote_id: Option<&'a str>,
    msg: Option<&'a str>,
    is_ice_reset: Option<&'a str>,
    connect_type: Option<&'a str>,
    index: Option<&'a str>,
    enable: Option<&'a str>,
    result: Option<&'a str>,
    desc: Option<&'a str>,
    data1: Option<&'a str>,
    data2: Option<&'a str>,
    audio: Option<&'a str>,
    video: Option<&'a str>,
    resume_key: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// The fields of a frame that is a JSON object; a known field given twice is an error,
    /// unknown fields are skipped.
    fn read(frame: &'a str) -> Result<Self, DecodeError> {
        let mut f = Self::default();
        let mut twice = None;
        match crate::scan::members(frame, |key, value| match f.slot(key) {
            Some((name, slot)) if slot.is_some() => {
                twice.get_or_insert(name);
                false
            }
            Some((_, slot)) => {
                *slot = Some(value);
                true
            }
            None => true,
        }) {
            Ok(()) => Ok(f),
            Err(crate::scan::Refused::Member) => Err(DecodeError::NotJson(format!(
                "duplicate field `{}`",
                twice.unwrap_or_default()
            ))),
            Err(crate::scan::Refused::Syntax) => Err(not_json(frame)),
        }
    }

    /// Where the field of wire name `key` goes, and that name.
    fn slot(&mut self, key: &str) -> Option<(&'static str, &mut Option<&'a str>)> {
        Some(match key {
            "cmd" => ("cmd", &mut self.cmd),
            "appId" => ("appId", &mut self.app_id),
            "token" => ("token", &mut self.token),
            "roomId" => ("roomId", &mut self.room_id),
            "roomName" => ("roomName", &mut self.room_name),
            "uid" => ("uid", &mut self.uid),
            "uname" => ("uname", &mut self.uname),
            "userType" => ("userType", &mut self.user_type),
            "talkType" => ("talkType", &mut self.talk_type),
            "time" => ("time", &mut self.time),
            "osName" => ("osName", &mut self.os_name),
            "osInfo" => ("osInfo", &mut self.os_info),
            "browser" => ("browser", &mut self.browser),
            "sdkInfo" => ("sdkInfo", &mut self.sdk_info),
            "sessionId" => ("sessionId", &mut self.session_id),
            "subSessionId" => ("subSessionId", &mut self.sub_session_id),
            "remoteUid" => ("remoteUid", &mut self.remote_uid),
            "remoteId" => ("remoteId", &mut self.remote_id),
            "msg" => ("msg", &mut self.msg),
            "isIceReset" => ("isIceReset", &mut self.is_ice_reset),
            "connectType" => ("connectType", &mut self.connect_type),
            "index" => ("index", &mut self.index),
            "enable" => ("enable", &mut self.enable),
            "result" => ("result", &mut self.result),
            "desc" => ("desc", &mut self.desc),
            "data1" => ("data1", &mut self.data1),
            "data2" => ("data2", &mut self.data2),
            "audio" => ("audio", &mut self.audio),
            "video" => ("video", &mut self.video),
            "resumeKey" => ("resumeKey", &mut self.resume_key),
            _ => return None,
        })
    }
}

/// What is wrong with a frame that is not a JSON object, in serde_json's words.
fn not_json(frame: &str) -> DecodeError {
    match serde_json::from_str::<serde::de::IgnoredAny>(frame) {
        Ok(_) => DecodeError::NotObject,
        Err(e) => DecodeError::NotJson(e.to_string()),
    }
}

/// A field problem before the command is attached.
struct Bad(&'static str, String);

type Field<T> = Result<T, Bad>;

fn is_null(raw: &str) -> bool {
    raw == "null"
}

/// The text of `raw`, a JSON string the decoder's scan has checked: between its quotes when
/// it holds no escape, else unescaped by serde_json (which also refuses escapes that name no
/// character, such as a lone surrogate).
fn unquote(raw: &str) -> Result<Cow<'_, str>, serde_json::Error> {
    match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(text) if !text.contains('\\') => Ok(Cow::Borrowed(text)),
        _ => serde_json::from_str(raw),
    }
}

/// A JSON string, or a number taken as its text. Empty and `null` are absent.
fn text(name: &'static str, raw: Option<&str>) -> Field<Option<String>> {
    let Some(raw) = raw.filter(|r| !is_null(r)) else {
        return Ok(None);
    };
    let s = raw;
    if s.starts_with('"') {
        let v = unquote(s).map_err(|e| Bad(name, format!("is not a valid string: {e}")))?;
        Ok((!v.is_empty()).then(|| v.into_owned()))
    } else if s.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        Ok(Some(s.to_owned()))
    } else {
        Err(Bad(name, "must be a string".into()))
    }
}

/// An identifier: a string or a number, kept with its JSON text. Empty and `null` are absent.
fn ident(name: &'static str, raw: Option<&str>) -> Field<Option<Ident>> {
    let Some(raw) = raw.filter(|r| !is_null(r)) else {
        return Ok(None);
    };
    let s = raw;
    if s.starts_with('"') {
        let v = unquote(s).map_err(|e| Bad(name, format!("is not a valid string: {e}")))?;
        if v.is_empty() {
            return Ok(None);
        }
        no_control(name, &v)?;
        Ok(Some(Ident::of_valid(s, &v)))
    } else if s.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        Ok(Some(Ident::of_valid(s, s)))
    } else {
        Err(Bad(name, "must be a string or a number".into()))
    }
}

/// An identifier (`appId`, `roomId`, `uid`, `remoteUid`) names a row and a member: one with a
/// control character (NUL, a line break, ...) would be echoed with it but could be stored
/// without it, making two identifiers one record, so it is refused.
fn no_control(name: &'static str, v: &str) -> Field<()> {
    match v.chars().find(|c| c.is_control()) {
        Some(c) => Err(Bad(
            name,
            format!(
                "must not contain control characters (found U+{:04X}); use printable text",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// An application id: [`text`], without control characters.
fn app_id(raw: Option<&str>) -> Field<Option<String>> {
    let v = text("appId", raw)?;
    if let Some(v) = &v {
        no_control("appId", v)?;
    }
    Ok(v)
}

/// An integer: a number, or a string holding one.
fn int(name: &'static str, raw: Option<&str>) -> Field<Option<i64>> {
    let Some(raw) = raw.filter(|r| !is_null(r)) else {
        return Ok(None);
    };
    let s = raw;
    let unquoted;
    let body = if s.starts_with('"') {
        unquoted = unquote(s).map_err(|_| Bad(name, "must be a number".into()))?;
        unquoted.trim()
    } else {
        s
    };
    if body.is_empty() {
        return Ok(None);
    }
    if let Ok(v) = body.parse::<i64>() {
        return Ok(Some(v));
    }
    match body.parse::<f64>() {
        Ok(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
        _ => Err(Bad(name, format!("must be an integer, got {s}"))),
    }
}

/// A boolean: `true`/`false`, `"true"`/`"false"`, or `1`/`0`.
fn boolean(name: &'static str, raw: Option<&str>) -> Field<Option<bool>> {
    let Some(raw) = raw.filter(|r| !is_null(r)) else {
        return Ok(None);
    };
    match raw {
        "true" | "\"true\"" | "1" | "\"1\"" => Ok(Some(true)),
        "false" | "\"false\"" | "0" | "\"0\"" => Ok(Some(false)),
        other => Err(Bad(name, format!("must be true or false, got {other}"))),
    }
}

/// `time`: seconds or milliseconds, as a string or a number. Kept for logs only, so an
/// unreadable value is dropped rather than refused.
fn time_ms(raw: Option<&str>) -> Option<u64> {
    let v = int("time", raw).ok()??;
    let v = u64::try_from(v).ok()?;
    Some(if v > 100_000_000_000 {
        v
    } else {
        v.saturating_mul(1000)
    })
}

fn required<T>(name: &'static str, v: Field<Option<T>>) -> Field<T> {
    v?.ok_or_else(|| Bad(name, "is required".into()))
}

fn owned(raw: &str) -> RawJson {
    RawJson::from_valid(raw)
}

/// Where the `msg` of a decoded request comes from: a copy of its text, or a range of the
/// frame's buffer (`frame` is the buffer whose bytes the decoded text is).
#[derive(Clone, Copy)]
struct Source<'a> {
    frame: Option<&'a Arc<Vec<u8>>>,
}

impl Source<'_> {
    const COPY: Source<'static> = Source { frame: None };

    /// `raw`, a slice of the decoded text: shared when it lies in the frame's buffer.
    fn raw_json(self, raw: &str) -> RawJson {
        if let Some(frame) = self.frame {
            let start = (raw.as_ptr() as usize).wrapping_sub(frame.as_ptr() as usize);
            if start <= frame.len() && raw.len() <= frame.len() - start {
                return RawJson::shared(frame, start, start + raw.len());
            }
        }
        owned(raw)
    }
}

/// Decode a binary frame: always an error, so that the caller answers it uniformly.
pub fn decode_binary(len: usize, limit: usize) -> DecodeError {
    if len > limit {
        DecodeError::TooLarge { len, limit }
    } else {
        DecodeError::Binary
    }
}

/// Decode one text frame. Never panics, whatever the input.
pub fn decode(frame: &str, limit: usize) -> Result<Request, DecodeError> {
    decode_from(frame, limit, Source::COPY)
}

/// [`decode`] of a frame whose bytes are `frame`, shared: `text` is those bytes as text
/// (checked to be UTF-8 by the caller). The `msg` of an offer, answer or candidate is kept
/// as a range of `frame` instead of a copy; when `text` is not `frame`'s bytes, it is copied
/// as [`decode`] does.
pub fn decode_shared(
    frame: &Arc<Vec<u8>>,
    text: &str,
    limit: usize,
) -> Result<Request, DecodeError> {
    let source = if std::ptr::eq(text.as_ptr(), frame.as_ptr()) && text.len() == frame.len() {
        Source { frame: Some(frame) }
    } else {
        Source::COPY
    };
    decode_from(text, limit, source)
}

fn decode_from(frame: &str, limit: usize, source: Source<'_>) -> Result<Request, DecodeError> {
    if frame.len() > limit {
        return Err(DecodeError::TooLarge {
            len: frame.len(),
            limit,
        });
    }
    let f = Fields::read(frame)?;
    let cmd_name = match f.cmd.map(unquote) {
        Some(Ok(name)) => name,
        _ => return Err(DecodeError::MissingCmd),
    };
    let Some(cmd) = Command::from_name(&cmd_name) else {
        return Err(DecodeError::UnknownCmd(cmd_name.chars().take(64).collect()));
    };
    build(cmd, &f, source).map_err(|Bad(field, problem)| DecodeError::Invalid {
        cmd,
        field,
        problem,
        echo: Box::new(Identity {
            room_id: ident("roomId", f.room_id).ok().flatten(),
            uid: ident("uid", f.uid).ok().flatten(),
            ..Identity::default()
        }),
    })
}

fn identity(f: &Fields<'_>) -> Field<Identity> {
    Ok(Identity {
        app_id: app_id(f.app_id)?,
        room_id: ident("roomId", f.room_id)?,
        uid: ident("uid", f.uid)?,
        session_id: text("sessionId", f.session_id)?,
        time_ms: time_ms(f.time),
    })
}

fn msg(f: &Fields<'_>, source: Source<'_>) -> Field<RawJson> {
    match f.msg {
        Some(m) if !is_null(m) => Ok(source.raw_json(m)),
        _ => Err(Bad("msg", "is required".into())),
    }
}

fn remote(f: &Fields<'_>) -> Field<Option<Ident>> {
    match ident("remoteUid", f.remote_uid)? {
        Some(r) => Ok(Some(r)),
        None => ident("remoteId", f.remote_id),
    }
}

fn build(cmd: Command, f: &Fields<'_>, source: Source<'_>) -> Field<Request> {
    Ok(match cmd {
        Command::Join => Request::Join(Join {
            app_id: required("appId", app_id(f.app_id))?,
            token: text("token", f.token)?,
            room_id: required("roomId", ident("roomId", f.room_id))?,
            room_name: text("roomName", f.room_name)?,
            uid: ident("uid", f.uid)?,
            uname: text("uname", f.uname)?,
            user_type: int("userType", f.user_type)?.unwrap_or(0),
            talk_type: int("talkType", f.talk_type)?.unwrap_or(1),
            os_name: match text("osName", f.os_name)? {
                Some(o) => Some(o),
                None => text("osInfo", f.os_info)?,
            },
            browser: text("browser", f.browser)?,
            sdk_info: text("sdkInfo", f.sdk_info)?,
            time_ms: time_ms(f.time),
            resume_key: text("resumeKey", f.resume_key)?.map(ResumeKey::new),
        }),
        Command::Leave => Request::Leave(Leave { id: identity(f)? }),
        Command::Offer => Request::Offer(Offer {
            id: identity(f)?,
            remote_uid: required("remoteUid", remote(f))?,
            msg: msg(f, source)?,
            is_ice_reset: boolean("isIceReset", f.is_ice_reset)?.unwrap_or(false),
        }),
        Command::Answer => Request::Answer(Answer {
            id: identity(f)?,
            remote_uid: required("remoteUid", remote(f))?,
            msg: msg(f, source)?,
            // The document's relayAnswer carries the answerer's numeric connectType.
            connect_type: int("connectType", f.connect_type)
                .ok()
                .flatten()
                .unwrap_or(0),
        }),
        Command::Candidate => Request::Candidate(Candidate {
            id: identity(f)?,
            remote_uid: required("remoteUid", remote(f))?,
            msg: msg(f, source)?,
        }),
        Command::KeepLive => Request::KeepLive(KeepLive { id: identity(f)? }),
        Command::TurnTalkType => Request::TurnTalkType(turn_talk_type(f)?),
        Command::PeerConnected => Request::PeerConnected(PeerConnected {
            id: identity(f)?,
            remote_uid: required("remoteUid", remote(f))?,
            connect_type: text("connectType", f.connect_type)?
                .map_or(ConnectType::Unknown, |s| ConnectType::parse(&s)),
        }),
        Command::ReportInfo => Request::ReportInfo(ReportInfo {
            id: identity(f)?,
            result: int("result", f.result)?.unwrap_or(0),
            desc: text("desc", f.desc)?.unwrap_or_default(),
            data1: f.data1.filter(|r| !is_null(r)).map(owned),
            data2: f.data2.filter(|r| !is_null(r)).map(owned),
        }),
        Command::ReportStats => Request::ReportStats(report_stats(f)?),
        Command::UpdateToken => Request::UpdateToken(UpdateToken {
            id: identity(f)?,
            token: required("token", text("token", f.token))?,
        }),
    })
}

fn turn_talk_type(f: &Fields<'_>) -> Field<TurnTalkType> {
    let index = required("index", int("index", f.index))?;
    let index = u8::try_from(index)
        .ok()
        .filter(|i| *i <= 3)
        .ok_or_else(|| Bad("index", "must be 0, 1, 2 or 3".into()))?;
    Ok(TurnTalkType {
        id: identity(f)?,
        index,
        enable: required("enable", boolean("enable", f.enable))?,
    })
}

fn report_stats(f: &Fields<'_>) -> Field<ReportStats> {
    let id = identity(f)?;
    let sub_session_id = text("subSessionId", f.sub_session_id)?;
    let remote_uid = remote(f)?;
    if remote_uid.is_none() && sub_session_id.is_none() {
        return Err(Bad("remoteUid", "or subSessionId is required".into()));
    }
    let stats = QualityStats::parse(f.audio, f.video).map_err(|e| Bad("audio/video", e.0))?;
    Ok(ReportStats {
        id,
        sub_session_id,
        remote_uid,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = crate::DEFAULT_MAX_FRAME;

    #[test]
    fn the_documents_join_example_decodes() {
        let frame = r#"{"cmd":"join","appId":"10000","token":"xa3f3fsaf","roomId":"8004571670628757",
            "roomName":"talk-now","uid":"782920256","uname":"client_51","userType":0,"talkType":1,
            "time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}"#;
        let Ok(Request::Join(j)) = decode(frame, LIMIT) else {
            panic!("join did not decode")
        };
        assert_eq!(j.app_id, "10000");
        assert_eq!(j.room_id.key(), "8004571670628757");
        assert_eq!(j.room_id.raw_json(), "\"8004571670628757\"");
        assert_eq!(j.uid.as_ref().map(Ident::key), Some("782920256"));
        assert_eq!(j.time_ms, Some(1_560_138_845_000));
        assert_eq!(j.os_name.as_deref(), Some("Win32"));
        assert_eq!(j.talk_type, 1);
    }

    #[test]
    fn numbers_and_strings_are_read_alike() {
        let frame = r#"{"cmd":"join","appId":10000,"roomId":22,"uid":7,"userType":"0",
            "talkType":"1","time":1560138845123,"osInfo":"Linux"}"#;
        let Ok(Request::Join(j)) = decode(frame, LIMIT) else {
            panic!("join did not decode")
        };
        assert_eq!(j.app_id, "10000");
        assert_eq!(j.room_id.raw_json(), "22");
        assert_eq!(j.room_id, Ident::new("22"));
        assert_eq!(j.time_ms, Some(1_560_138_845_123));
        assert_eq!(j.os_name.as_deref(), Some("Linux"));
    }

    #[test]
    fn a_join_may_carry_a_resume_key() {
        let frame = r#"{"cmd":"join","appId":"1","roomId":"r","uid":"u","resumeKey":"k1"}"#;
        let Ok(Request::Join(j)) = decode(frame, LIMIT) else {
            panic!("join did not decode")
        };
        assert_eq!(j.resume_key.as_ref().map(ResumeKey::expose), Some("k1"));
        let frame = r#"{"cmd":"join","appId":"1","roomId":"r","uid":"u","resumeKey":""}"#;
        let Ok(Request::Join(j)) = decode(frame, LIMIT) else {
            panic!("join did not decode")
        };
        assert_eq!(j.resume_key, None);
    }

    #[test]
    fn msg_is_kept_byte_for_byte() {
        let frame = r#"{"cmd":"offer","remoteUid":"b","msg":{ "type" : "offer","sdp":"v=0\r\n" }}"#;
        let Ok(Request::Offer(o)) = decode(frame, LIMIT) else {
            panic!("offer did not decode")
        };
        assert_eq!(o.msg.get(), r#"{ "type" : "offer","sdp":"v=0\r\n" }"#);
        let frame = r#"{"cmd":"candidate","remoteId":"b","msg":"{\"candidate\":\"c\"}"}"#;
        let Ok(Request::Candidate(c)) = decode(frame, LIMIT) else {
            panic!("candidate did not decode")
        };
        assert_eq!(c.msg.get(), r#""{\"candidate\":\"c\"}""#);
        assert_eq!(c.remote_uid.key(), "b");
    }

    /// A frame decoded from its shared buffer keeps its `msg` as a range of that buffer, not a
    /// copy, and decodes to what [`decode`] makes of its text; a text that is not the buffer's
    /// bytes is copied.
    #[test]
    fn a_shared_frame_lends_its_msg() {
        let frames = [
            r#"{"cmd":"offer","roomId":"r","uid":"a","remoteUid":"b","msg":{ "type" : "offer","sdp":"v=0\r\né" },"isIceReset":true}"#,
            r#"{"msg":"{\"type\":\"answer\"}","cmd":"answer","remoteUid":2,"connectType":1}"#,
            r#"{"cmd":"candidate","remoteId":"b","msg":[1,{"c":null}]}"#,
        ];
        for text in frames {
            let buf = Arc::new(text.as_bytes().to_vec());
            let view = std::str::from_utf8(&buf).unwrap();
            let shared = decode_shared(&buf, view, LIMIT).expect("decodes");
            assert_eq!(shared, decode(text, LIMIT).unwrap(), "{text}");
            let msg = match &shared {
                Request::Offer(o) => &o.msg,
                Request::Answer(a) => &a.msg,
                Request::Candidate(c) => &c.msg,
                other => panic!("{other:?}"),
            };
            let inside = buf.as_ptr_range().contains(&msg.as_bytes().as_ptr());
            assert!(inside, "the msg of {text} was copied");
            assert_eq!(Arc::strong_count(&buf), 2, "the msg holds the frame");
            assert_eq!(msg.get().as_bytes(), msg.as_bytes());
            assert!(text.contains(msg.get()));

            let other = text.to_owned();
            let copied = decode_shared(&buf, &other, LIMIT).expect("decodes");
            assert_eq!(copied, shared);
            drop(shared);
            assert_eq!(
                Arc::strong_count(&buf),
                1,
                "the other text's msg is its own"
            );
            drop(copied);
        }
    }

    /// A `msg` taken out of a request (a relay) leaves `null` behind; what is taken is the
    /// same text, shared or not.
    #[test]
    fn a_taken_msg_leaves_null() {
        let text = r#"{"cmd":"candidate","remoteUid":"b","msg":{"candidate":"c"}}"#;
        let buf = Arc::new(text.as_bytes().to_vec());
        let view = std::str::from_utf8(&buf).unwrap();
        for decoded in [decode(text, LIMIT), decode_shared(&buf, view, LIMIT)] {
            let Ok(Request::Candidate(mut c)) = decoded else {
                panic!("candidate did not decode")
            };
            let taken = c.msg.take();
            assert_eq!(taken.get(), r#"{"candidate":"c"}"#);
            assert_eq!(c.msg.get(), "null");
            assert_eq!(c.msg.as_bytes(), b"null");
        }
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        assert_eq!(decode("[1,2]", LIMIT), Err(DecodeError::NotObject));
        assert!(matches!(
            decode("garbage", LIMIT),
            Err(DecodeError::NotJson(_))
        ));
        assert_eq!(decode("{}", LIMIT), Err(DecodeError::MissingCmd));
        assert_eq!(
            decode(r#"{"cmd":"dance"}"#, LIMIT),
            Err(DecodeError::UnknownCmd("dance".into()))
        );
        let Err(DecodeError::Invalid { cmd, field, .. }) =
            decode(r#"{"cmd":"offer","msg":{}}"#, LIMIT)
        else {
            panic!("expected a field error")
        };
        assert_eq!((cmd, field), (Command::Offer, "remoteUid"));
        let Err(DecodeError::Invalid { field, .. }) =
            decode(r#"{"cmd":"turnTalkType","index":7,"enable":true}"#, LIMIT)
        else {
            panic!("expected a field error")
        };
        assert_eq!(field, "index");
        assert!(matches!(
            decode(
                &format!(r#"{{"cmd":"keepLive","x":"{}"}}"#, "a".repeat(LIMIT)),
                LIMIT
            ),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    /// NUL, line breaks and every other control character in an identifier are refused,
    /// naming the field and the character; the refused value is not echoed.
    #[test]
    fn identifiers_with_control_characters_are_refused() {
        let cases = [
            (
                r#"{"cmd":"join","appId":"1","roomId":"r","uid":"bob\u0000"}"#,
                "uid",
                "U+0000",
            ),
            (
                r#"{"cmd":"join","appId":"1","roomId":"r\n2","uid":"bob"}"#,
                "roomId",
                "U+000A",
            ),
            (
                r#"{"cmd":"join","appId":"1\u001b","roomId":"r","uid":"bob"}"#,
                "appId",
                "U+001B",
            ),
            (r#"{"cmd":"keepLive","uid":"a\u007fb"}"#, "uid", "U+007F"),
            (
                r#"{"cmd":"offer","remoteUid":"b\u0085","msg":{}}"#,
                "remoteUid",
                "U+0085",
            ),
        ];
        for (frame, want_field, want_char) in cases {
            let Err(e @ DecodeError::Invalid { field, .. }) = decode(frame, LIMIT) else {
                panic!("{frame} was not refused")
            };
            assert_eq!(field, want_field, "{frame}");
            let text = e.to_string();
            assert!(
                text.contains("control characters") && text.contains(want_char),
                "{text}"
            );
            if let DecodeError::Invalid { echo, .. } = &e
                && let Some(echoed) = echo.uid.as_ref().or(echo.room_id.as_ref())
            {
                assert!(!echoed.key().chars().any(char::is_control), "{frame}");
            }
        }
        // Printable text of any script stays an identifier.
        let frame = r#"{"cmd":"join","appId":"1","roomId":"会议 1","uid":"zoë"}"#;
        assert!(matches!(decode(frame, LIMIT), Ok(Request::Join(_))));
    }

    #[test]
    fn report_stats_reads_loss_as_string_or_number() {
        let frame = r#"{"cmd":"reportStats","remoteId":"524965486",
            "audio":{"send":{"packetsLostRate":"0.00","bitRate":39},"recv":{"packetsLostRate":0.5,"bitRate":"39"}},
            "video":{"recv":{"frameRateRecv":30,"width":640,"height":480,"codecName":"VP8","packetsLostRate":"1.25","bitRate":607}}}"#;
        let Ok(Request::ReportStats(r)) = decode(frame, LIMIT) else {
            panic!("reportStats did not decode")
        };
        assert_eq!(r.stats.aud_rcv_lost_rate, 0.5);
        assert_eq!(r.stats.aud_rcv_bitrate, 39);
        assert_eq!(r.stats.vid_rcv_lost_rate, 1.25);
        assert_eq!(r.stats.recv_framerate_recv, 30);
        assert_eq!(r.stats.recv_codec, "VP8");
        let bad = r#"{"cmd":"reportStats","remoteId":"x","audio":{"recv":{"bitRate":-1}}}"#;
        assert!(matches!(
            decode(bad, LIMIT),
            Err(DecodeError::Invalid { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn no_string_panics_the_decoder(s in ".{0,300}") {
            let _ = decode(&s, 256);
        }

        /// Whatever a client writes as uid, roomId and appId, a decoded join holds no
        /// control character in them.
        #[test]
        fn no_decoded_identifier_holds_a_control_character(
            uid in "\\PC{0,4}[\\x00-\\x1f\\x7f-\\u{9f}]?\\PC{0,4}",
            room in "\\PC{0,4}[\\x00-\\x1f]?",
            app in "[0-9]{1,4}[\\x00\\n]?",
        ) {
            let frame = serde_json::json!({"cmd":"join","appId":app,"roomId":room,"uid":uid})
                .to_string();
            if let Ok(Request::Join(j)) = decode(&frame, crate::DEFAULT_MAX_FRAME) {
                let ids = [j.app_id.as_str(), j.room_id.key(), j.uid.as_ref().map_or("", Ident::key)];
                proptest::prop_assert!(ids.iter().all(|v| !v.chars().any(char::is_control)), "{frame}");
            }
        }

        #[test]
        fn no_object_of_known_fields_panics_the_decoder(
            cmd in proptest::sample::select(Command::ALL.map(Command::as_str).to_vec()),
            fields in proptest::collection::vec(
                (proptest::sample::select(vec!["uid","roomId","appId","remoteUid","remoteId","msg",
                    "index","enable","time","talkType","token","audio","video","connectType","isIceReset",
                    "subSessionId","data1","result","resumeKey"]),
                 proptest::sample::select(vec!["null","1","-1","1.5","\"\"","\"x\"","true","{}","[]",
                    "{\"recv\":{\"bitRate\":\"a\"}}","1e400","\"99999999999999999999\""])),
                0..8),
        ) {
            let mut frame = format!("{{\"cmd\":\"{cmd}\"");
            for (k, v) in fields {
                frame.push_str(&format!(",\"{k}\":{v}"));
            }
            frame.push('}');
            let copied = decode(&frame, crate::DEFAULT_MAX_FRAME);
            let buf = Arc::new(frame.into_bytes());
            let view = std::str::from_utf8(&buf).unwrap();
            let shared = decode_shared(&buf, view, crate::DEFAULT_MAX_FRAME);
            proptest::prop_assert_eq!(shared, copied, "{}", view);
        }
    }
}

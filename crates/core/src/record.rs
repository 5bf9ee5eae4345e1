//! Call records as the engine emits them: the rows of the document's three tables, as events.
//!
//! A store applies them in order. Each carries the id of the row it creates or updates, so a
//! store can apply a record twice (a retried batch) without doubling anything.

use crate::{Millis, Text};
use rtcroom_protocol::{ConnectType, QualityStats};
use ulid::Ulid;

/// Ids as their 26-character ULID text (ulid's own serde support needs its `std` feature,
/// which brings a random number generator this crate does not use).
#[cfg(feature = "serde")]
mod ulid_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use ulid::Ulid;

    pub fn serialize<S: Serializer>(id: &Ulid, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&id.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ulid, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ulid::from_string(&text).map_err(|_| D::Error::custom(format!("bad id {text:?}")))
    }
}

/// A member joined: a new `rtc_talk_sessions` row.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SessionOpen {
    #[cfg_attr(feature = "serde", serde(with = "ulid_text"))]
    pub session_id: Ulid,
    pub app_id: Text,
    pub room_id: Text,
    pub user_id: Text,
    pub user_name: Text,
    pub user_type: i64,
    pub talk_type: i64,
    pub user_ip: Text,
    pub os_name: String,
    pub browser: String,
    pub sdk_info: String,
    pub join_time: Millis,
}

/// The member left (or timed out, or was kicked): the session row is closed.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SessionClose {
    #[cfg_attr(feature = "serde", serde(with = "ulid_text"))]
    pub session_id: Ulid,
    pub leave_time: Millis,
    /// Seconds from join to leave.
    pub duration_secs: u64,
    pub timed_out: bool,
}

/// Two members met in a room: one `rtc_talk_subsessions` row for the direction
/// `user_id → remote_user_id`, belonging to `session_id`. The session's
/// `sub_session_ids` gains this id.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SubSessionOpen {
    #[cfg_attr(feature = "serde", serde(with = "ulid_text"))]
    pub sub_session_id: Ulid,
    #[cfg_attr(feature = "serde", serde(with = "ulid_text"))]
    pub session_id: Ulid,
    pub app_id: Text,
    pub room_id: Text,
    pub user_id: Text,
    pub remote_user_id: Text,
    pub remote_user_name: Text,
    pub remote_user_ip: Text,
    /// The ICE server handed to the pair, when one was (host part of its URL).
    pub ice_ip: Text,
    pub created: Millis,
}

/// The first offer (for the offerer's direction) or answer (for the answerer's) went out.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SubSessionBegin {
    #[cfg_attr(feature = "serde", serde(with = "ulid_text"))]
    pub sub_session_id: Ulid,
    pub begin_time: Millis,
}

/// `peerConnected`: media flows; billing starts at the first connect.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SubSessionConnect {
    #[cfg_attr(feature = "serde", serde(with = "ulid_text"))]
    pub sub_session_id: Ulid,
    /// The first connect time of the pair (unchanged by a later ICE restart).
    pub connect_time: Millis,
    /// The latest connect type reported.
    pub connect_type: ConnectType,
}

/// The sub-session's `status` column (orig): how the pair ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(into = "u8", try_from = "u8")
)]
#[repr(u8)]
pub enum SubStatus {
    ConnectedLeft = 0,
    ConnectedTimedOut = 1,
    NeverConnectedLeft = 2,
    NeverConnectedTimedOut = 3,
}

impl From<SubStatus> for u8 {
    fn from(s: SubStatus) -> u8 {
        s as u8
    }
}

impl TryFrom<u8> for SubStatus {
    type Error = String;

    /// The column value back (the spool stores it as the number).
    fn try_from(v: u8) -> Result<Self, String> {
        Ok(match v {
            0 => Self::ConnectedLeft,
            1 => Self::ConnectedTimedOut,
            2 => Self::NeverConnectedLeft,
            3 => Self::NeverConnectedTimedOut,
            _ => return Err(format!("bad sub-session status {v}")),
        })
    }
}

/// One of the two members left: the sub-session is finished and billed.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SubSessionFinish {
    #[cfg_attr(feature = "serde", serde(with = "ulid_text"))]
    pub sub_session_id: Ulid,
    pub finish_time: Millis,
    /// Seconds from connect to finish; 0 if the pair never connected.
    pub duration_secs: u64,
    pub status: SubStatus,
    /// Cents: started minutes × the price of the connect type.
    pub cost_cents: u64,
}

/// One `reportStats`: a `rtc_talk_quality_stats_infos` row.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Quality {
    /// Unique per report, so that a retried write is recognized.
    #[cfg_attr(feature = "serde", serde(with = "ulid_text"))]
    pub id: Ulid,
    #[cfg_attr(feature = "serde", serde(with = "ulid_text"))]
    pub sub_session_id: Ulid,
    #[cfg_attr(feature = "serde", serde(with = "ulid_text"))]
    pub session_id: Ulid,
    pub user_id: Text,
    pub remote_user_id: Text,
    pub create_time: Millis,
    pub stats: QualityStats,
}

/// One `reportInfo`: a client-side error or event, kept for the daily report.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ClientInfo {
    #[cfg_attr(feature = "serde", serde(with = "ulid_text"))]
    pub id: Ulid,
    #[cfg_attr(feature = "serde", serde(with = "ulid_text"))]
    pub session_id: Ulid,
    pub app_id: Text,
    pub room_id: Text,
    pub user_id: Text,
    pub result: i64,
    pub desc: String,
    pub data1: Option<String>,
    pub data2: Option<String>,
    pub create_time: Millis,
}

/// A change to the call records.
///
/// With the `serde` feature a record serializes as one object: its kind under `k`, then its
/// fields by name (ids as ULID text, times as Unix ms, `status` as its column number,
/// `connect_type` as its column text). The store's spool and journal keep records this way.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(tag = "k")
)]
pub enum Record {
    SessionOpen(SessionOpen),
    SessionClose(SessionClose),
    SubSessionOpen(SubSessionOpen),
    SubSessionBegin(SubSessionBegin),
    SubSessionConnect(SubSessionConnect),
    SubSessionFinish(SubSessionFinish),
    Quality(Quality),
    ClientInfo(ClientInfo),
}

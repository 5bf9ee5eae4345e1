//! Call records as the engine emits them: the rows of the document's three tables, as events.
//!
//! A store applies them in order. Each carries the id of the row it creates or updates, so a
//! store can apply a record twice (a retried batch) without doubling anything.

use crate::Millis;
use rtcroom_protocol::{ConnectType, QualityStats};
use ulid::Ulid;

/// A member joined: a new `rtc_talk_sessions` row.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionOpen {
    pub session_id: Ulid,
    pub app_id: String,
    pub room_id: String,
    pub user_id: String,
    pub user_name: String,
    pub user_type: i64,
    pub talk_type: i64,
    pub user_ip: String,
    pub os_name: String,
    pub browser: String,
    pub sdk_info: String,
    pub join_time: Millis,
}

/// The member left (or timed out, or was kicked): the session row is closed.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionClose {
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
pub struct SubSessionOpen {
    pub sub_session_id: Ulid,
    pub session_id: Ulid,
    pub app_id: String,
    pub room_id: String,
    pub user_id: String,
    pub remote_user_id: String,
    pub remote_user_name: String,
    pub remote_user_ip: String,
    /// The ICE server handed to the pair, when one was (host part of its URL).
    pub ice_ip: String,
    pub created: Millis,
}

/// The first offer (for the offerer's direction) or answer (for the answerer's) went out.
#[derive(Debug, Clone, PartialEq)]
pub struct SubSessionBegin {
    pub sub_session_id: Ulid,
    pub begin_time: Millis,
}

/// `peerConnected`: media flows; billing starts at the first connect.
#[derive(Debug, Clone, PartialEq)]
pub struct SubSessionConnect {
    pub sub_session_id: Ulid,
    /// The first connect time of the pair (unchanged by a later ICE restart).
    pub connect_time: Millis,
    /// The latest connect type reported.
    pub connect_type: ConnectType,
}

/// The sub-session's `status` column (orig): how the pair ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SubStatus {
    ConnectedLeft = 0,
    ConnectedTimedOut = 1,
    NeverConnectedLeft = 2,
    NeverConnectedTimedOut = 3,
}

/// One of the two members left: the sub-session is finished and billed.
#[derive(Debug, Clone, PartialEq)]
pub struct SubSessionFinish {
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
pub struct Quality {
    /// Unique per report, so that a retried write is recognized.
    pub id: Ulid,
    pub sub_session_id: Ulid,
    pub session_id: Ulid,
    pub user_id: String,
    pub remote_user_id: String,
    pub create_time: Millis,
    pub stats: QualityStats,
}

/// One `reportInfo`: a client-side error or event, kept for the daily report.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientInfo {
    pub id: Ulid,
    pub session_id: Ulid,
    pub app_id: String,
    pub room_id: String,
    pub user_id: String,
    pub result: i64,
    pub desc: String,
    pub data1: Option<String>,
    pub data2: Option<String>,
    pub create_time: Millis,
}

/// A change to the call records.
#[derive(Debug, Clone, PartialEq)]
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

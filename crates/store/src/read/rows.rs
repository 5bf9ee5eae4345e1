//! The rows the read side returns, as plain serde structs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One `rtc_talk_sessions` row: one member's join…leave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    pub session_id: String,
    pub app_id: String,
    pub room_id: String,
    pub user_id: String,
    pub user_name: String,
    pub user_type: i64,
    pub talk_type: i64,
    pub user_ip: String,
    /// Left by heartbeat timeout (or closed by restart recovery).
    pub time_out: bool,
    pub create_time: Option<DateTime<Utc>>,
    pub join_time: Option<DateTime<Utc>>,
    /// `None` while the member is in the room.
    pub leave_time: Option<DateTime<Utc>>,
    /// Seconds from join to leave.
    pub duration: i64,
    pub os_name: String,
    pub browser: String,
    pub sdk_info: String,
}

/// One `rtc_talk_subsessions` row: one direction of one pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubSessionRow {
    pub sub_session_id: String,
    pub session_id: String,
    pub app_id: String,
    pub room_id: String,
    pub user_id: String,
    /// -1 open; 0 connected and left; 1 connected and timed out; 2 never connected and
    /// left; 3 never connected and timed out.
    pub status: i64,
    pub remote_user_id: String,
    pub remote_user_name: String,
    pub remote_user_ip: String,
    pub ice_ip: String,
    /// `TURN`, `STUN`, `Unknown`, or empty if it never connected.
    pub connect_type: String,
    pub create_time: Option<DateTime<Utc>>,
    pub begin_time: Option<DateTime<Utc>>,
    pub connect_time: Option<DateTime<Utc>>,
    pub finish_time: Option<DateTime<Utc>>,
    /// Seconds from connect to finish.
    pub duration: i64,
    /// Cents.
    pub cost: i64,
}

/// Average, minimum and maximum of one quality column; `None` without reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub avg: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// The receive-side quality of a sub-session, over all its reports (the document: "in
/// analysis mainly the receiver's figures count").
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct QualitySummary {
    pub reports: i64,
    pub aud_rcv_bitrate: Stat,
    pub aud_rcv_lost_rate: Stat,
    pub vid_rcv_bitrate: Stat,
    pub vid_rcv_lost_rate: Stat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubSessionDetail {
    #[serde(flatten)]
    pub sub_session: SubSessionRow,
    pub quality: QualitySummary,
}

/// A session with its sub-sessions (oldest first) and their quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionDetail {
    #[serde(flatten)]
    pub session: SessionRow,
    /// The session's `sub_session_ids` column, split at the commas.
    pub sub_session_ids: Vec<String>,
    pub sub_sessions: Vec<SubSessionDetail>,
}

/// One row of a day's report: a sub-session, its session and its quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaySubSession {
    #[serde(flatten)]
    pub sub_session: SubSessionRow,
    /// `None` only if the session row is missing (records written by something else).
    pub session: Option<SessionRow>,
    pub quality: QualitySummary,
}

/// One `rtc_talk_client_infos` row: a `reportInfo` from a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientInfoRow {
    pub record_id: String,
    pub session_id: String,
    pub app_id: String,
    pub room_id: String,
    pub user_id: String,
    pub result: i64,
    pub desc: String,
    pub data1: Option<String>,
    pub data2: Option<String>,
    pub create_time: Option<DateTime<Utc>>,
}

/// One `rtc_talk_quality_stats_infos` row: one `reportStats` of one member about one remote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityRow {
    pub record_id: String,
    pub session_id: String,
    pub user_id: String,
    pub remote_user_id: String,
    pub sub_session_id: String,
    pub create_time: Option<DateTime<Utc>>,
    pub aud_send_lost_rate: f64,
    pub aud_send_bitrate: i64,
    pub aud_rcv_lost_rate: f64,
    pub aud_rcv_bitrate: i64,
    pub vid_send_lost_rate: f64,
    pub vid_send_bitrate: i64,
    pub send_width: i64,
    pub send_height: i64,
    pub send_framerate_sent: i64,
    pub send_codec: String,
    pub vid_rcv_lost_rate: f64,
    pub vid_rcv_bitrate: i64,
    pub recv_width: i64,
    pub recv_height: i64,
    pub recv_framerate_recv: i64,
    pub recv_codec: String,
}

/// How many rows each table holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCounts {
    pub sessions: i64,
    pub sub_sessions: i64,
    pub quality_reports: i64,
    pub client_infos: i64,
}

//! The rows the report reads: plain copies of the columns of the design document's tables
//! (section 4), as a store hands them over.
//!
//! These types are this crate's own, so that the report does not depend on any store: the
//! caller maps its rows onto them. Every time is UTC, as the document stores it.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One `rtc_talk_sessions` row: one join…leave of one member.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub session_id: String,
    pub app_id: String,
    pub user_id: String,
    pub user_name: String,
    /// 0 audio only, 1 audio and video (document 6.1); other values are shown as numbers.
    pub talk_type: i64,
    pub user_ip: String,
    pub os_name: String,
    pub browser: String,
    pub sdk_info: String,
    pub join_time: DateTime<Utc>,
    /// `None` while the member is still in the room.
    pub leave_time: Option<DateTime<Utc>>,
    /// Seconds from join to leave.
    pub duration_secs: u64,
    /// The `time_out` column: the member was removed by the heartbeat timeout.
    pub time_out: bool,
}

/// One `rtc_talk_subsessions` row: one direction `user → remote` of a pair, with the
/// aggregates of its `rtc_talk_quality_stats_infos` rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SubSessionRow {
    pub sub_session_id: String,
    pub session_id: String,
    pub status: SubStatus,
    pub remote_user_id: String,
    pub remote_user_name: String,
    pub remote_user_ip: String,
    pub ice_ip: String,
    pub connect_type: ConnectType,
    /// When the pair met in the room, if the store keeps it. Used to place a pair that never
    /// began (no offer or answer went out) on a day; without it the owning session's join
    /// time is used.
    pub created: Option<DateTime<Utc>>,
    pub begin_time: Option<DateTime<Utc>>,
    pub connect_time: Option<DateTime<Utc>>,
    pub finish_time: Option<DateTime<Utc>>,
    /// Seconds from connect to finish; 0 if the pair never connected.
    pub duration_secs: u64,
    /// Cents (分).
    pub cost_cents: u64,
    /// `None` when the client sent no quality report for this direction.
    pub quality: Option<QualityAgg>,
}

/// The receive-side quality of one sub-session, aggregated over its reports (the document:
/// "在做数据分析时主要考虑作为接收方的数据"). A store computes it with `COUNT`, `AVG`, `MIN` and
/// `MAX` over the sub-session's quality rows.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct QualityAgg {
    /// How many reports were aggregated (at least one).
    pub reports: u64,
    /// kbit/s.
    pub audio_bitrate: Stat,
    /// Percent of packets lost, 0–100 (`packetsLostRate`).
    pub audio_loss: Stat,
    /// kbit/s.
    pub video_bitrate: Stat,
    /// Percent of packets lost, 0–100.
    pub video_loss: Stat,
}

/// Average, minimum and maximum of one measure over a sub-session's reports.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Stat {
    pub avg: f64,
    pub min: f64,
    pub max: f64,
}

/// One `reportInfo` a client sent: its result code and description.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientInfoRow {
    pub session_id: String,
    pub app_id: String,
    pub user_id: String,
    /// 0 is "ok"; any other value is an error the client met (see the protocol's codes).
    pub result: i64,
    pub desc: String,
    pub create_time: DateTime<Utc>,
}

/// The sub-session's `status` column (orig), plus the column's default for a pair that has
/// not finished yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubStatus {
    /// The column's default (-1): the pair was still open when the rows were read.
    InProgress,
    /// 0: connected, then left normally.
    ConnectedLeft,
    /// 1: connected, then timed out.
    ConnectedTimedOut,
    /// 2: never connected, left normally.
    NeverConnectedLeft,
    /// 3: never connected, timed out.
    NeverConnectedTimedOut,
}

impl SubStatus {
    /// Reads the `status` column: 0–3 as the document numbers them, anything else (the
    /// column's default -1) as still in progress.
    pub fn from_column(v: i64) -> Self {
        match v {
            0 => Self::ConnectedLeft,
            1 => Self::ConnectedTimedOut,
            2 => Self::NeverConnectedLeft,
            3 => Self::NeverConnectedTimedOut,
            _ => Self::InProgress,
        }
    }

    /// The value of the `status` column.
    pub fn column(self) -> i64 {
        match self {
            Self::InProgress => -1,
            Self::ConnectedLeft => 0,
            Self::ConnectedTimedOut => 1,
            Self::NeverConnectedLeft => 2,
            Self::NeverConnectedTimedOut => 3,
        }
    }

    pub fn timed_out(self) -> bool {
        matches!(self, Self::ConnectedTimedOut | Self::NeverConnectedTimedOut)
    }
}

/// The `connect_type` column: how media flowed once the pair connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ConnectType {
    /// Relayed through a TURN server.
    #[serde(rename = "TURN")]
    Turn,
    /// Host or server-reflexive: peer to peer, or inside one network.
    #[serde(rename = "STUN")]
    Stun,
    /// The client connected but could not tell how.
    #[serde(rename = "Unknown")]
    Unknown,
    /// Empty column: the pair never reported a connection.
    #[serde(rename = "")]
    None,
}

impl ConnectType {
    /// Reads the column liberally: `TURN`/`STUN` in any case, empty as [`ConnectType::None`],
    /// anything else as unknown.
    pub fn from_column(v: &str) -> Self {
        let v = v.trim();
        if v.is_empty() {
            Self::None
        } else if v.eq_ignore_ascii_case("turn") {
            Self::Turn
        } else if v.eq_ignore_ascii_case("stun") {
            Self::Stun
        } else {
            Self::Unknown
        }
    }

    /// The column's spelling.
    pub fn column(self) -> &'static str {
        match self {
            Self::Turn => "TURN",
            Self::Stun => "STUN",
            Self::Unknown => "Unknown",
            Self::None => "",
        }
    }
}

impl SubSessionRow {
    /// Whether media ever flowed: the status says so, or an unfinished pair has a connect time.
    pub fn connected(&self) -> bool {
        match self.status {
            SubStatus::ConnectedLeft | SubStatus::ConnectedTimedOut => true,
            SubStatus::NeverConnectedLeft | SubStatus::NeverConnectedTimedOut => false,
            SubStatus::InProgress => self.connect_time.is_some(),
        }
    }

    /// The instant that places this sub-session on a day: its begin time, else the time the
    /// pair was created, else the owning session's join time.
    pub fn day_time(&self, owner: &SessionRow) -> DateTime<Utc> {
        self.begin_time.or(self.created).unwrap_or(owner.join_time)
    }

    /// Connected seconds as of `at`: the row's duration, or for a pair still open the time
    /// since it connected (the store writes the duration only at finish).
    pub fn seconds_at(&self, at: DateTime<Utc>) -> u64 {
        match (self.status, self.connect_time) {
            (SubStatus::InProgress, Some(c)) => {
                let open = u64::try_from((at - c).num_seconds()).unwrap_or(0);
                open.max(self.duration_secs)
            }
            _ => self.duration_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_column_round_trips_and_unknown_values_are_in_progress() {
        for v in -1..=3 {
            assert_eq!(SubStatus::from_column(v).column(), v);
        }
        assert_eq!(SubStatus::from_column(7), SubStatus::InProgress);
        assert!(SubStatus::from_column(3).timed_out());
        assert!(!SubStatus::from_column(2).timed_out());
    }

    #[test]
    fn connect_type_reads_liberally() {
        assert_eq!(ConnectType::from_column("TURN"), ConnectType::Turn);
        assert_eq!(ConnectType::from_column(" stun "), ConnectType::Stun);
        assert_eq!(ConnectType::from_column("Unknown"), ConnectType::Unknown);
        assert_eq!(ConnectType::from_column("relay?"), ConnectType::Unknown);
        assert_eq!(ConnectType::from_column(""), ConnectType::None);
    }
}

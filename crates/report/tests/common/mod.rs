//! Crafted rows for the tests: one realistic call at a time, changed per test with struct
//! update syntax.
#![allow(dead_code)]

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rtcroom_report::{
    ClientInfoRow, ConnectType, DayReport, QualityAgg, ReportConfig, SessionRow, Stat,
    SubSessionRow, SubStatus,
};

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub fn date(s: &str) -> NaiveDate {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A builder for 2026-11-22 in UTC, read at 00:05 the next morning.
pub fn day() -> DayReport {
    DayReport::new(config())
}

pub fn config() -> ReportConfig {
    ReportConfig::new(
        date("2026-11-22"),
        chrono_tz::Tz::UTC,
        t("2026-11-23T00:05:00Z"),
    )
}

/// A member who joined at `join` with video and left an hour later.
pub fn session(id: &str, user: &str, join: &str) -> SessionRow {
    let join = t(join);
    SessionRow {
        session_id: id.to_owned(),
        app_id: "app1".to_owned(),
        user_id: user.to_owned(),
        user_name: format!("name-{user}"),
        talk_type: 1,
        user_ip: "203.0.113.7".to_owned(),
        os_name: "Win32".to_owned(),
        browser: "chrome120.0".to_owned(),
        sdk_info: "1.0.0".to_owned(),
        join_time: join,
        leave_time: Some(join + Duration::hours(1)),
        duration_secs: 3600,
        time_out: false,
    }
}

pub fn stat(avg: f64, min: f64, max: f64) -> Stat {
    Stat { avg, min, max }
}

/// Good quality: 40 kbit/s audio, 800 kbit/s video, a little loss.
pub fn good() -> QualityAgg {
    quality(40.0, 0.1, 800.0, 0.2)
}

pub fn quality(
    audio_bitrate: f64,
    audio_loss: f64,
    video_bitrate: f64,
    video_loss: f64,
) -> QualityAgg {
    QualityAgg {
        reports: 40,
        audio_bitrate: stat(audio_bitrate, audio_bitrate * 0.8, audio_bitrate * 1.2),
        audio_loss: stat(audio_loss, 0.0, audio_loss * 3.0),
        video_bitrate: stat(video_bitrate, video_bitrate * 0.5, video_bitrate * 1.5),
        video_loss: stat(video_loss, 0.0, video_loss * 3.0),
    }
}

/// `owner → remote`, begun at `begin`, connected P2P two seconds later, ten minutes long,
/// free, with good quality.
pub fn sub(id: &str, owner: &SessionRow, remote: &str, begin: &str) -> SubSessionRow {
    let begin = t(begin);
    SubSessionRow {
        sub_session_id: id.to_owned(),
        session_id: owner.session_id.clone(),
        status: SubStatus::ConnectedLeft,
        remote_user_id: remote.to_owned(),
        remote_user_name: format!("name-{remote}"),
        remote_user_ip: "198.51.100.9".to_owned(),
        ice_ip: "192.0.2.1".to_owned(),
        connect_type: ConnectType::Stun,
        created: Some(begin - Duration::seconds(1)),
        begin_time: Some(begin),
        connect_time: Some(begin + Duration::seconds(2)),
        finish_time: Some(begin + Duration::seconds(602)),
        duration_secs: 600,
        cost_cents: 0,
        quality: Some(good()),
    }
}

/// A pair that never connected and was left normally.
pub fn never_connected(id: &str, owner: &SessionRow, remote: &str, begin: &str) -> SubSessionRow {
    SubSessionRow {
        status: SubStatus::NeverConnectedLeft,
        connect_type: ConnectType::None,
        connect_time: None,
        duration_secs: 0,
        quality: None,
        ..sub(id, owner, remote, begin)
    }
}

pub fn info(result: i64, desc: &str, at: &str) -> ClientInfoRow {
    ClientInfoRow {
        session_id: "s".to_owned(),
        app_id: "app1".to_owned(),
        user_id: "u".to_owned(),
        result,
        desc: desc.to_owned(),
        create_time: t(at),
    }
}

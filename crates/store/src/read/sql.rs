//! The read statements: the columns of each table and the SQL text in one dialect.

use super::{IN_SIZES, PAGE};
use crate::db::{Kind, Stmt};
use crate::dialect::Dialect;

pub(super) const SESSION_COLS: [(&str, Kind); 16] = [
    ("session_id", Kind::Str),
    ("app_id", Kind::Str),
    ("room_id", Kind::Str),
    ("user_id", Kind::Str),
    ("user_name", Kind::Str),
    ("user_type", Kind::I64),
    ("talk_type", Kind::I64),
    ("user_ip", Kind::Str),
    ("time_out", Kind::I64),
    ("create_time", Kind::Time),
    ("join_time", Kind::Time),
    ("leave_time", Kind::Time),
    ("duration", Kind::I64),
    ("os_name", Kind::Str),
    ("browser", Kind::Str),
    ("sdk_info", Kind::Str),
];

pub(super) const SUB_COLS: [(&str, Kind); 17] = [
    ("sub_session_id", Kind::Str),
    ("session_id", Kind::Str),
    ("app_id", Kind::Str),
    ("room_id", Kind::Str),
    ("user_id", Kind::Str),
    ("status", Kind::I64),
    ("remote_user_id", Kind::Str),
    ("remote_user_name", Kind::Str),
    ("remote_user_ip", Kind::Str),
    ("ice_ip", Kind::Str),
    ("connect_type", Kind::Str),
    ("create_time", Kind::Time),
    ("begin_time", Kind::Time),
    ("connect_time", Kind::Time),
    ("finish_time", Kind::Time),
    ("duration", Kind::I64),
    ("cost", Kind::I64),
];

pub(super) const INFO_COLS: [(&str, Kind); 10] = [
    ("record_id", Kind::Str),
    ("session_id", Kind::Str),
    ("app_id", Kind::Str),
    ("room_id", Kind::Str),
    ("user_id", Kind::Str),
    ("result", Kind::I64),
    ("description", Kind::Str),
    ("data1", Kind::Str),
    ("data2", Kind::Str),
    ("create_time", Kind::Time),
];

pub(super) const QUALITY_COLS: [(&str, Kind); 22] = [
    ("record_id", Kind::Str),
    ("session_id", Kind::Str),
    ("user_id", Kind::Str),
    ("remote_user_id", Kind::Str),
    ("sub_session_id", Kind::Str),
    ("create_time", Kind::Time),
    ("aud_send_lost_rate", Kind::F64),
    ("aud_send_bitrate", Kind::I64),
    ("aud_rcv_lost_rate", Kind::F64),
    ("aud_rcv_bitrate", Kind::I64),
    ("vid_send_lost_rate", Kind::F64),
    ("vid_send_bitrate", Kind::I64),
    ("send_width", Kind::I64),
    ("send_height", Kind::I64),
    ("send_framerate_sent", Kind::I64),
    ("send_codec", Kind::Str),
    ("vid_rcv_lost_rate", Kind::F64),
    ("vid_rcv_bitrate", Kind::I64),
    ("recv_width", Kind::I64),
    ("recv_height", Kind::I64),
    ("recv_framerate_recv", Kind::I64),
    ("recv_codec", Kind::Str),
];

/// The quality columns summarized per sub-session.
const QUALITY_STATS: [&str; 4] = [
    "aud_rcv_bitrate",
    "aud_rcv_lost_rate",
    "vid_rcv_bitrate",
    "vid_rcv_lost_rate",
];

/// The select list of `cols` on table alias `t`, integers cast so every driver returns
/// a 64-bit integer.
fn select_list(d: Dialect, alias: &str, cols: &[(&str, Kind)]) -> String {
    cols.iter()
        .map(|(c, k)| {
            let e = format!("{alias}.{c}");
            match k {
                Kind::I64 => d.int(&e),
                Kind::F64 => d.float(&e),
                Kind::Str | Kind::Time => e,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn kinds(cols: &[(&str, Kind)]) -> Vec<Kind> {
    cols.iter().map(|(_, k)| *k).collect()
}

fn in_list(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The read statements in one dialect, generated once.
#[derive(Debug)]
pub(crate) struct ReadSql {
    pub(super) member_sessions: Stmt,
    pub(super) session: Stmt,
    /// Sub-sessions of up to `IN_SIZES[i]` sessions.
    pub(super) subs_of_sessions: [Stmt; 2],
    /// Quality aggregates of up to `IN_SIZES[i]` sub-sessions.
    pub(super) quality_of_subs: [Stmt; 2],
    pub(super) day_page: Stmt,
    pub(super) info_page: Stmt,
    pub(super) session_page: Stmt,
    pub(super) reports: Stmt,
    pub(super) counts: Stmt,
    /// PostgreSQL only: refresh the planner's statistics before a day's stream. Right
    /// after a bulk load, before autovacuum has analyzed the tables, PostgreSQL estimates a
    /// few rows per day and picks a bitmap scan and a sort of every row after the cursor
    /// for each page (measured: 0.5 s per page at 100,000 rows instead of 2 ms).
    pub(super) analyze: Option<Stmt>,
}

impl ReadSql {
    pub(crate) fn new(d: Dialect) -> Self {
        let s = |t: String| -> Stmt { d.sql(&t).into() };
        let t_cols = select_list(d, "t", &SESSION_COLS);
        let s_cols = select_list(d, "s", &SUB_COLS);
        let aggs = quality_aggregates(d);
        let subs_of = |n| {
            s(format!(
                "SELECT {s_cols} FROM rtc_talk_subsessions s WHERE s.session_id IN ({}) \
                 ORDER BY s.create_time, s.id",
                in_list(n)
            ))
        };
        let quality_of = |n| {
            s(format!(
                "SELECT q.sub_session_id, {}, {aggs} FROM rtc_talk_quality_stats_infos q \
                 WHERE q.sub_session_id IN ({}) GROUP BY q.sub_session_id",
                d.int("COUNT(*)"),
                in_list(n)
            ))
        };
        ReadSql {
            member_sessions: s(format!(
                "SELECT {t_cols}, t.sub_session_ids FROM rtc_talk_sessions t \
                 WHERE t.app_id = ? AND t.user_id = ? ORDER BY t.join_time DESC, t.id DESC \
                 LIMIT ?"
            )),
            session: s(format!(
                "SELECT {t_cols}, t.sub_session_ids FROM rtc_talk_sessions t \
                 WHERE t.session_id = ?"
            )),
            subs_of_sessions: IN_SIZES.map(subs_of),
            quality_of_subs: IN_SIZES.map(quality_of),
            // Keyset paging on (create_time, id) after the cursor (c, last): rows with
            // create_time >= c, except those at c with an id <= last. Bounding the index
            // range by the cursor (not the day's start) keeps every page one index seek:
            // with `>= day start` PostgreSQL scanned and filtered all earlier rows again.
            day_page: s(format!(
                "SELECT {s_cols}, {t_cols}, {} FROM rtc_talk_subsessions s \
                 LEFT JOIN rtc_talk_sessions t ON t.session_id = s.session_id \
                 WHERE s.create_time >= ? AND s.create_time < ? \
                 AND (s.create_time > ? OR s.id > ?) \
                 ORDER BY s.create_time, s.id LIMIT {PAGE}",
                d.int("s.id")
            )),
            // Sessions by join time, paged the same way.
            session_page: s(format!(
                "SELECT {t_cols}, {} FROM rtc_talk_sessions t \
                 WHERE t.join_time >= ? AND t.join_time < ? \
                 AND (t.join_time > ? OR t.id > ?) \
                 ORDER BY t.join_time, t.id LIMIT {PAGE}",
                d.int("t.id")
            )),
            info_page: s(format!(
                "SELECT {}, {} FROM rtc_talk_client_infos i \
                 WHERE i.create_time >= ? AND i.create_time < ? \
                 AND (i.create_time > ? OR i.id > ?) \
                 ORDER BY i.create_time, i.id LIMIT {PAGE}",
                select_list(d, "i", &INFO_COLS),
                d.int("i.id")
            )),
            reports: s(format!(
                "SELECT {} FROM rtc_talk_quality_stats_infos q WHERE q.sub_session_id = ? \
                 ORDER BY q.create_time, q.id",
                select_list(d, "q", &QUALITY_COLS)
            )),
            counts: s(counts_sql(d)),
            analyze: (d == Dialect::Postgres).then(|| {
                s("ANALYZE rtc_talk_subsessions, rtc_talk_sessions, \
                   rtc_talk_quality_stats_infos, rtc_talk_client_infos"
                    .into())
            }),
        }
    }
}

/// `AVG, MIN, MAX` of each summarized quality column of alias `q`, as floats.
fn quality_aggregates(d: Dialect) -> String {
    QUALITY_STATS
        .iter()
        .map(|c| {
            ["AVG", "MIN", "MAX"]
                .iter()
                .map(|f| d.float(&format!("{f}(q.{c})")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One row with the row count of each table.
fn counts_sql(d: Dialect) -> String {
    format!(
        "SELECT {}",
        [
            "rtc_talk_sessions",
            "rtc_talk_subsessions",
            "rtc_talk_quality_stats_infos",
            "rtc_talk_client_infos",
        ]
        .map(|t| format!("(SELECT {} FROM {t})", d.int("COUNT(*)")))
        .join(", ")
    )
}

//! The read side: a member's calls, one session, and a day's sub-sessions and client
//! events for the daily report, as plain serde structs.
//!
//! Large reads are streamed: [`RowStream`] pages through the rows by the index
//! `(create_time, id)` in chunks of [`PAGE`], and fetches the quality aggregates of each
//! chunk with one grouped query, so a day of a million sub-sessions is never in memory at
//! once and no database connection is held between chunks.

use crate::db::{Kind, Pool, Stmt, Val};
use crate::dialect::Dialect;
use crate::error::StoreError;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Rows per page of a streamed read.
pub(crate) const PAGE: usize = 500;
/// IN lists are padded to one of these lengths, so that each statement text is prepared
/// once per connection instead of once per list length.
const IN_SIZES: [usize; 2] = [16, PAGE];

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

/// Rows that arrive as the database delivers them, chunk by chunk. A `futures` `Stream`;
/// [`RowStream::next`] serves callers without `StreamExt`. After an error it ends.
/// Dropping it stops the query.
#[derive(Debug)]
pub struct RowStream<T> {
    rx: mpsc::Receiver<Result<T, StoreError>>,
}

impl<T> RowStream<T> {
    pub async fn next(&mut self) -> Option<Result<T, StoreError>> {
        self.rx.recv().await
    }

    /// All rows in a `Vec`: for tests and small ranges.
    pub async fn collect(mut self) -> Result<Vec<T>, StoreError> {
        let mut all = Vec::new();
        while let Some(r) = self.next().await {
            all.push(r?);
        }
        Ok(all)
    }
}

impl<T> futures_core::Stream for RowStream<T> {
    type Item = Result<T, StoreError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

const SESSION_COLS: [(&str, Kind); 16] = [
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

const SUB_COLS: [(&str, Kind); 17] = [
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

const INFO_COLS: [(&str, Kind); 10] = [
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

const QUALITY_COLS: [(&str, Kind); 22] = [
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

fn kinds(cols: &[(&str, Kind)]) -> Vec<Kind> {
    cols.iter().map(|(_, k)| *k).collect()
}

fn in_list(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The read statements in one dialect, generated once.
#[derive(Debug)]
pub(crate) struct ReadSql {
    member_sessions: Stmt,
    session: Stmt,
    /// Sub-sessions of up to `IN_SIZES[i]` sessions.
    subs_of_sessions: [Stmt; 2],
    /// Quality aggregates of up to `IN_SIZES[i]` sub-sessions.
    quality_of_subs: [Stmt; 2],
    day_page: Stmt,
    info_page: Stmt,
    session_page: Stmt,
    reports: Stmt,
    counts: Stmt,
    /// PostgreSQL only: refresh the planner's statistics before a day's stream. Right
    /// after a bulk load, before autovacuum has analyzed the tables, PostgreSQL estimates a
    /// few rows per day and picks a bitmap scan and a sort of every row after the cursor
    /// for each page (measured: 0.5 s per page at 100,000 rows instead of 2 ms).
    analyze: Option<Stmt>,
}

impl ReadSql {
    pub(crate) fn new(d: Dialect) -> Self {
        let s = |t: String| -> Stmt { d.sql(&t).into() };
        let t_cols = select_list(d, "t", &SESSION_COLS);
        let s_cols = select_list(d, "s", &SUB_COLS);
        let aggs = QUALITY_STATS
            .iter()
            .map(|c| {
                ["AVG", "MIN", "MAX"]
                    .iter()
                    .map(|f| d.float(&format!("{f}(q.{c})")))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect::<Vec<_>>()
            .join(", ");
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
            counts: s(format!(
                "SELECT {}",
                [
                    "rtc_talk_sessions",
                    "rtc_talk_subsessions",
                    "rtc_talk_quality_stats_infos",
                    "rtc_talk_client_infos",
                ]
                .map(|t| format!("(SELECT {} FROM {t})", d.int("COUNT(*)")))
                .join(", ")
            )),
            analyze: (d == Dialect::Postgres).then(|| {
                s("ANALYZE rtc_talk_subsessions, rtc_talk_sessions, \
                   rtc_talk_quality_stats_infos, rtc_talk_client_infos"
                    .into())
            }),
        }
    }
}

/// Takes decoded values off a row, column by column.
struct Cols(std::vec::IntoIter<Val>);

impl Cols {
    fn new(row: Vec<Val>) -> Self {
        Cols(row.into_iter())
    }

    fn next(&mut self) -> Result<Val, StoreError> {
        self.0
            .next()
            .ok_or_else(|| StoreError::Corrupt("row has fewer columns than selected".into()))
    }

    fn opt_str(&mut self) -> Result<Option<String>, StoreError> {
        match self.next()? {
            Val::Str(s) => Ok(s),
            v => Err(StoreError::Corrupt(format!("expected text, got {v:?}"))),
        }
    }

    fn str(&mut self) -> Result<String, StoreError> {
        Ok(self.opt_str()?.unwrap_or_default())
    }

    fn opt_i64(&mut self) -> Result<Option<i64>, StoreError> {
        match self.next()? {
            Val::I64(v) => Ok(v),
            v => Err(StoreError::Corrupt(format!(
                "expected an integer, got {v:?}"
            ))),
        }
    }

    fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(self.opt_i64()?.unwrap_or_default())
    }

    fn f64(&mut self) -> Result<Option<f64>, StoreError> {
        match self.next()? {
            Val::F64(v) => Ok(v),
            v => Err(StoreError::Corrupt(format!("expected a number, got {v:?}"))),
        }
    }

    fn time(&mut self) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.next()? {
            Val::Time(t) => Ok(t.map(|t| t.and_utc())),
            v => Err(StoreError::Corrupt(format!("expected a time, got {v:?}"))),
        }
    }

    fn f64_or_zero(&mut self) -> Result<f64, StoreError> {
        Ok(self.f64()?.unwrap_or_default())
    }

    fn quality(&mut self) -> Result<QualityRow, StoreError> {
        Ok(QualityRow {
            record_id: self.str()?,
            session_id: self.str()?,
            user_id: self.str()?,
            remote_user_id: self.str()?,
            sub_session_id: self.str()?,
            create_time: self.time()?,
            aud_send_lost_rate: self.f64_or_zero()?,
            aud_send_bitrate: self.i64()?,
            aud_rcv_lost_rate: self.f64_or_zero()?,
            aud_rcv_bitrate: self.i64()?,
            vid_send_lost_rate: self.f64_or_zero()?,
            vid_send_bitrate: self.i64()?,
            send_width: self.i64()?,
            send_height: self.i64()?,
            send_framerate_sent: self.i64()?,
            send_codec: self.str()?,
            vid_rcv_lost_rate: self.f64_or_zero()?,
            vid_rcv_bitrate: self.i64()?,
            recv_width: self.i64()?,
            recv_height: self.i64()?,
            recv_framerate_recv: self.i64()?,
            recv_codec: self.str()?,
        })
    }

    fn session(&mut self) -> Result<SessionRow, StoreError> {
        Ok(SessionRow {
            session_id: self.str()?,
            app_id: self.str()?,
            room_id: self.str()?,
            user_id: self.str()?,
            user_name: self.str()?,
            user_type: self.i64()?,
            talk_type: self.i64()?,
            user_ip: self.str()?,
            time_out: self.i64()? != 0,
            create_time: self.time()?,
            join_time: self.time()?,
            leave_time: self.time()?,
            duration: self.i64()?,
            os_name: self.str()?,
            browser: self.str()?,
            sdk_info: self.str()?,
        })
    }

    /// A session from a LEFT JOIN: `None` when the joined row is missing.
    fn opt_session(&mut self) -> Result<Option<SessionRow>, StoreError> {
        let row = self.session()?;
        Ok((!row.session_id.is_empty()).then_some(row))
    }

    fn sub_session(&mut self) -> Result<SubSessionRow, StoreError> {
        Ok(SubSessionRow {
            sub_session_id: self.str()?,
            session_id: self.str()?,
            app_id: self.str()?,
            room_id: self.str()?,
            user_id: self.str()?,
            status: self.i64()?,
            remote_user_id: self.str()?,
            remote_user_name: self.str()?,
            remote_user_ip: self.str()?,
            ice_ip: self.str()?,
            connect_type: self.str()?,
            create_time: self.time()?,
            begin_time: self.time()?,
            connect_time: self.time()?,
            finish_time: self.time()?,
            duration: self.i64()?,
            cost: self.i64()?,
        })
    }

    fn stat(&mut self) -> Result<Stat, StoreError> {
        Ok(Stat {
            avg: self.f64()?,
            min: self.f64()?,
            max: self.f64()?,
        })
    }

    fn client_info(&mut self) -> Result<ClientInfoRow, StoreError> {
        Ok(ClientInfoRow {
            record_id: self.str()?,
            session_id: self.str()?,
            app_id: self.str()?,
            room_id: self.str()?,
            user_id: self.str()?,
            result: self.i64()?,
            desc: self.str()?,
            data1: self.opt_str()?,
            data2: self.opt_str()?,
            create_time: self.time()?,
        })
    }
}

fn session_kinds() -> Vec<Kind> {
    let mut k = kinds(&SESSION_COLS);
    k.push(Kind::Str);
    k
}

fn split_ids(ids: &str) -> Vec<String> {
    ids.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Runs the statement of `stmts` whose IN list fits, for `keys` in chunks of at most
/// [`PAGE`], each chunk padded to the statement's IN-list length.
async fn fetch_in(
    pool: &Pool,
    stmts: &[Stmt; 2],
    keys: &[String],
    kinds: &[Kind],
) -> Result<Vec<Vec<Val>>, StoreError> {
    let mut rows = Vec::new();
    for chunk in keys.chunks(PAGE) {
        let Some(first) = chunk.first() else { continue };
        let i = IN_SIZES.iter().position(|&n| n >= chunk.len()).unwrap_or(1);
        // Padding repeats a key: IN ignores duplicates.
        let args = (0..IN_SIZES[i])
            .map(|j| Val::Str(Some(chunk.get(j).unwrap_or(first).clone())))
            .collect();
        rows.extend(pool.fetch_all(&stmts[i], args, kinds).await?);
    }
    Ok(rows)
}

async fn quality_of(
    pool: &Pool,
    sql: &ReadSql,
    sub_ids: &[String],
) -> Result<HashMap<String, QualitySummary>, StoreError> {
    let mut k = vec![Kind::Str, Kind::I64];
    k.extend([Kind::F64; 12]);
    let rows = fetch_in(pool, &sql.quality_of_subs, sub_ids, &k).await?;
    rows.into_iter()
        .map(|row| {
            let mut c = Cols::new(row);
            let id = c.str()?;
            let q = QualitySummary {
                reports: c.i64()?,
                aud_rcv_bitrate: c.stat()?,
                aud_rcv_lost_rate: c.stat()?,
                vid_rcv_bitrate: c.stat()?,
                vid_rcv_lost_rate: c.stat()?,
            };
            Ok((id, q))
        })
        .collect()
}

/// Sessions with their sub-sessions and quality.
async fn details(
    pool: &Pool,
    sql: &ReadSql,
    rows: Vec<Vec<Val>>,
) -> Result<Vec<SessionDetail>, StoreError> {
    let mut sessions = Vec::with_capacity(rows.len());
    for row in rows {
        let mut c = Cols::new(row);
        let session = c.session()?;
        let ids = split_ids(&c.str()?);
        sessions.push((session, ids));
    }
    let keys: Vec<String> = sessions.iter().map(|(s, _)| s.session_id.clone()).collect();
    let mut subs: Vec<SubSessionRow> =
        fetch_in(pool, &sql.subs_of_sessions, &keys, &kinds(&SUB_COLS))
            .await?
            .into_iter()
            .map(|r| Cols::new(r).sub_session())
            .collect::<Result<_, _>>()?;
    let sub_ids: Vec<String> = subs.iter().map(|s| s.sub_session_id.clone()).collect();
    let mut quality = quality_of(pool, sql, &sub_ids).await?;
    let mut by_session: HashMap<String, Vec<SubSessionDetail>> = HashMap::new();
    for sub in subs.drain(..) {
        let q = quality.remove(&sub.sub_session_id).unwrap_or_default();
        by_session
            .entry(sub.session_id.clone())
            .or_default()
            .push(SubSessionDetail {
                sub_session: sub,
                quality: q,
            });
    }
    Ok(sessions
        .into_iter()
        .map(|(session, sub_session_ids)| SessionDetail {
            sub_sessions: by_session.remove(&session.session_id).unwrap_or_default(),
            session,
            sub_session_ids,
        })
        .collect())
}

pub(crate) async fn member_sessions(
    pool: &Pool,
    sql: &ReadSql,
    app_id: &str,
    user_id: &str,
    limit: u32,
) -> Result<Vec<SessionDetail>, StoreError> {
    let args = vec![
        Val::Str(Some(app_id.to_owned())),
        Val::Str(Some(user_id.to_owned())),
        Val::I64(Some(i64::from(limit))),
    ];
    let rows = pool
        .fetch_all(&sql.member_sessions, args, &session_kinds())
        .await?;
    details(pool, sql, rows).await
}

pub(crate) async fn session(
    pool: &Pool,
    sql: &ReadSql,
    session_id: &str,
) -> Result<Option<SessionDetail>, StoreError> {
    let args = vec![Val::Str(Some(session_id.to_owned()))];
    let rows = pool.fetch_all(&sql.session, args, &session_kinds()).await?;
    Ok(details(pool, sql, rows).await?.into_iter().next())
}

pub(crate) async fn quality_reports(
    pool: &Pool,
    sql: &ReadSql,
    sub_session_id: &str,
) -> Result<Vec<QualityRow>, StoreError> {
    let args = vec![Val::Str(Some(sub_session_id.to_owned()))];
    pool.fetch_all(&sql.reports, args, &kinds(&QUALITY_COLS))
        .await?
        .into_iter()
        .map(|r| Cols::new(r).quality())
        .collect()
}

pub(crate) async fn table_counts(pool: &Pool, sql: &ReadSql) -> Result<TableCounts, StoreError> {
    let rows = pool
        .fetch_all(&sql.counts, Vec::new(), &[Kind::I64; 4])
        .await?;
    let row = rows
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Corrupt("no row from COUNT".into()))?;
    let mut c = Cols::new(row);
    Ok(TableCounts {
        sessions: c.i64()?,
        sub_sessions: c.i64()?,
        quality_reports: c.i64()?,
        client_infos: c.i64()?,
    })
}

/// A UTC day as the half-open range `[00:00, next 00:00)`.
pub(crate) fn day_range(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
    (start, start + chrono::Duration::days(1))
}

/// Where a paged read goes on: the last row's `(create_time, id)`.
type Cursor = (NaiveDateTime, i64);

/// One page of `[from, to)` after `cursor`, and the cursor after it (`None` at the end).
/// `time_col` is the index of the paging `create_time` in the select list; the id is the
/// last column.
async fn fetch_page(
    pool: &Pool,
    stmt: &Stmt,
    kinds: &[Kind],
    time_col: usize,
    (_, to): Range,
    cursor: Cursor,
) -> Result<(Vec<Vec<Val>>, Option<Cursor>), StoreError> {
    // The first cursor is (from, 0), so `create_time >= cursor` also bounds the range.
    let args = vec![
        Val::Time(Some(cursor.0)),
        Val::Time(Some(to)),
        Val::Time(Some(cursor.0)),
        Val::I64(Some(cursor.1)),
    ];
    let page = pool.fetch_all(stmt, args, kinds).await?;
    if page.len() < PAGE {
        return Ok((page, None));
    }
    let next = page
        .last()
        .and_then(|row| match (row.get(time_col), row.last()) {
            (Some(Val::Time(Some(t))), Some(Val::I64(Some(id)))) => Some((*t, *id)),
            _ => None,
        });
    match next {
        Some(c) => Ok((page, Some(c))),
        None => Err(StoreError::Corrupt(
            "paged row without create_time or id".into(),
        )),
    }
}

async fn day_page(
    pool: Pool,
    sql: Arc<ReadSql>,
    range: Range,
    cursor: Cursor,
) -> Result<(Vec<DaySubSession>, Option<Cursor>), StoreError> {
    let mut k = kinds(&SUB_COLS);
    k.extend(kinds(&SESSION_COLS));
    k.push(Kind::I64);
    let time_col = SUB_COLS
        .iter()
        .position(|(c, _)| *c == "create_time")
        .unwrap_or(0);
    let (rows, next) = fetch_page(&pool, &sql.day_page, &k, time_col, range, cursor).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut c = Cols::new(row);
        let sub_session = c.sub_session()?;
        let session = c.opt_session()?;
        out.push(DaySubSession {
            sub_session,
            session,
            quality: QualitySummary::default(),
        });
    }
    let ids: Vec<String> = out
        .iter()
        .map(|d| d.sub_session.sub_session_id.clone())
        .collect();
    let mut quality = quality_of(&pool, &sql, &ids).await?;
    for d in &mut out {
        if let Some(q) = quality.remove(&d.sub_session.sub_session_id) {
            d.quality = q;
        }
    }
    Ok((out, next))
}

async fn info_page(
    pool: Pool,
    sql: Arc<ReadSql>,
    range: Range,
    cursor: Cursor,
) -> Result<(Vec<ClientInfoRow>, Option<Cursor>), StoreError> {
    let mut k = kinds(&INFO_COLS);
    k.push(Kind::I64);
    let time_col = INFO_COLS
        .iter()
        .position(|(c, _)| *c == "create_time")
        .unwrap_or(0);
    let (rows, next) = fetch_page(&pool, &sql.info_page, &k, time_col, range, cursor).await?;
    let out = rows
        .into_iter()
        .map(|r| Cols::new(r).client_info())
        .collect::<Result<_, _>>()?;
    Ok((out, next))
}

async fn session_page(
    pool: Pool,
    sql: Arc<ReadSql>,
    range: Range,
    cursor: Cursor,
) -> Result<(Vec<SessionRow>, Option<Cursor>), StoreError> {
    let mut k = kinds(&SESSION_COLS);
    k.push(Kind::I64);
    let time_col = SESSION_COLS
        .iter()
        .position(|(c, _)| *c == "join_time")
        .unwrap_or(0);
    let (rows, next) = fetch_page(&pool, &sql.session_page, &k, time_col, range, cursor).await?;
    let out = rows
        .into_iter()
        .map(|r| Cols::new(r).session())
        .collect::<Result<_, _>>()?;
    Ok((out, next))
}

type Range = (NaiveDateTime, NaiveDateTime);

/// Sends the items of every page of `range` into `tx`, page by page; stops at the end, at
/// the first error (which is sent), or when the receiver is gone.
async fn run_paged<T, F, Fut>(
    tx: mpsc::Sender<Result<T, StoreError>>,
    pool: Pool,
    sql: Arc<ReadSql>,
    range: Range,
    page: F,
) where
    F: Fn(Pool, Arc<ReadSql>, Range, Cursor) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<Cursor>), StoreError>>,
{
    if let Some(a) = &sql.analyze {
        // Only an owner may analyze; without it the stream still works, slower.
        if let Err(e) = pool.execute(a, Vec::new()).await {
            tracing::debug!(error = %e, "cannot refresh planner statistics");
        }
    }
    let mut cursor = (range.0, 0);
    loop {
        let (items, next) = match page(pool.clone(), Arc::clone(&sql), range, cursor).await {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        for item in items {
            if tx.send(Ok(item)).await.is_err() {
                return;
            }
        }
        match next {
            Some(c) => cursor = c,
            None => return,
        }
    }
}

pub(crate) fn stream_sub_sessions(
    pool: Pool,
    sql: Arc<ReadSql>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> RowStream<DaySubSession> {
    let (tx, rx) = mpsc::channel(PAGE);
    let range = (from.naive_utc(), to.naive_utc());
    tokio::spawn(run_paged(tx, pool, sql, range, day_page));
    RowStream { rx }
}

pub(crate) fn stream_client_infos(
    pool: Pool,
    sql: Arc<ReadSql>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> RowStream<ClientInfoRow> {
    let (tx, rx) = mpsc::channel(PAGE);
    let range = (from.naive_utc(), to.naive_utc());
    tokio::spawn(run_paged(tx, pool, sql, range, info_page));
    RowStream { rx }
}

pub(crate) fn stream_sessions(
    pool: Pool,
    sql: Arc<ReadSql>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> RowStream<SessionRow> {
    let (tx, rx) = mpsc::channel(PAGE);
    let range = (from.naive_utc(), to.naive_utc());
    tokio::spawn(run_paged(tx, pool, sql, range, session_page));
    RowStream { rx }
}

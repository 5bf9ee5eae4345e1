//! Writing records: each [`Record`] kind as idempotent SQL, applied in order in one
//! transaction per batch, and the restart recovery that closes what a crash left open.
//!
//! **Invariant:** applying the same sequence of items twice leaves the same rows as applying
//! it once. Inserts are keyed by the record's own id (session, sub-session, report) and skip
//! an existing row; updates set values rather than add to them; appending a sub-session id
//! to `sub_session_ids` checks that it is not there yet. The order of items matters (a
//! sub-session's Finish after its Connect) and is kept by the caller.

use crate::convert::{
    self, CODEC, CONNECT_TYPE, DATA, DESC, ICE, ID, INFO, IP, NAME, db_time, id_val, int_val,
    rate_val, secs_val, str_val, time_val, tiny_val,
};
use crate::db::{Kind, Stmt, Tx, Val};
use crate::dialect::Dialect;
use crate::error::StoreError;
use rtcroom_core::{
    ClientInfo, Millis, Prices, Quality, Record, SessionClose, SessionOpen, SubSessionConnect,
    SubSessionFinish, SubSessionOpen, SubStatus,
};
use rtcroom_protocol::ConnectType;

/// One unit of work for the writer: a record; the restart recovery, which is queued
/// behind the records of the previous run so that they are written before it; or a
/// checkpoint, which stamps the rows still open as alive at that time (what the recovery
/// after a crash bills up to).
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every item is a record; boxing would allocate once per record"
)]
pub(crate) enum Item {
    Record(Record),
    CloseOpen(Millis),
    Checkpoint(Millis),
}

/// What [`crate::Store::close_open_sessions`] closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Recovered {
    pub sessions: u64,
    pub sub_sessions: u64,
}

/// The write statements in one dialect, generated once.
#[derive(Debug)]
pub(crate) struct WriteSql {
    session_open: Stmt,
    session_close: Stmt,
    sub_open: Stmt,
    sub_append: Stmt,
    sub_begin: Stmt,
    sub_connect: Stmt,
    sub_finish: Stmt,
    /// Quality rows are inserted [`QUALITY_ROWS`]`[i]` at a time by `quality[i]`: one
    /// statement for many rows costs the database little more than one for a single row.
    pub(crate) quality: [Stmt; QUALITY_ROWS.len()],
    client_info: Stmt,
    alive_sessions: Stmt,
    alive_subs: Stmt,
    open_sessions: Stmt,
    close_session: Stmt,
    open_subs: Stmt,
    close_sub: Stmt,
}

const QUALITY_COLUMNS: &str = "record_id, session_id, user_id, remote_user_id, sub_session_id, \
    create_time, aud_send_lost_rate, aud_send_bitrate, aud_rcv_lost_rate, aud_rcv_bitrate, \
    vid_send_lost_rate, vid_send_bitrate, send_width, send_height, send_framerate_sent, \
    send_codec, vid_rcv_lost_rate, vid_rcv_bitrate, recv_width, recv_height, \
    recv_framerate_recv, recv_codec";

/// How many quality rows one insert takes: a run of quality records is written with the
/// largest that fits, then the next (64 rows bind 1,408 values, far below every backend's
/// limit).
pub(crate) const QUALITY_ROWS: [usize; 4] = [64, 16, 4, 1];

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Inserts `rows` quality rows, each unless one with its record id exists.
fn quality_text(d: Dialect, rows: usize) -> String {
    let row = format!("({})", placeholders(22));
    format!(
        "INSERT INTO rtc_talk_quality_stats_infos ({QUALITY_COLUMNS}) VALUES {}{}",
        vec![row; rows].join(", "),
        d.on_conflict_ignore("record_id")
    )
}

/// Inserts a session row unless one with its id exists.
fn session_open_text(d: Dialect) -> String {
    format!(
        "INSERT INTO rtc_talk_sessions (session_id, sub_session_ids, app_id, room_id, \
         user_id, user_name, user_type, talk_type, user_ip, time_out, create_time, \
         join_time, duration, os_name, browser, sdk_info) \
         VALUES (?, '', ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 0, ?, ?, ?){}",
        d.on_conflict_ignore("session_id")
    )
}

/// Inserts a sub-session row unless one with its id exists.
fn sub_open_text(d: Dialect) -> String {
    format!(
        "INSERT INTO rtc_talk_subsessions (sub_session_id, session_id, app_id, room_id, \
         user_id, status, remote_user_id, remote_user_name, remote_user_ip, ice_ip, \
         connect_type, create_time, duration, cost) \
         VALUES (?, ?, ?, ?, ?, -1, ?, ?, ?, ?, '', ?, 0, 0){}",
        d.on_conflict_ignore("sub_session_id")
    )
}

/// Appends ",<id>" to a session's `sub_session_ids` unless the list already holds the id.
fn sub_append_text(d: Dialect) -> String {
    let ids = "sub_session_ids";
    format!(
        "UPDATE rtc_talk_sessions SET {ids} = CASE WHEN {ids} = '' THEN ? ELSE {} END \
         WHERE session_id = ? AND {} NOT LIKE ?",
        d.concat(&[ids, "','", "?"]),
        d.concat(&["','", ids, "','"]),
    )
}

impl WriteSql {
    pub(crate) fn new(d: Dialect) -> Self {
        let s = |t: String| -> Stmt { d.sql(&t).into() };
        WriteSql {
            session_open: s(session_open_text(d)),
            session_close: s(
                "UPDATE rtc_talk_sessions SET leave_time = ?, duration = ?, \
                 time_out = ? WHERE session_id = ?"
                    .into(),
            ),
            sub_open: s(sub_open_text(d)),
            // Appends ",<id>" unless the list already holds the id (a retried batch).
            sub_append: s(sub_append_text(d)),
            // The first begin counts; the engine sends one per direction.
            sub_begin: s("UPDATE rtc_talk_subsessions SET begin_time = ? \
                 WHERE sub_session_id = ? AND begin_time IS NULL"
                .into()),
            // A connect never reopens a finished pair.
            sub_connect: s(
                "UPDATE rtc_talk_subsessions SET connect_time = ?, connect_type = ? \
                 WHERE sub_session_id = ? AND finish_time IS NULL"
                    .into(),
            ),
            sub_finish: s(
                "UPDATE rtc_talk_subsessions SET finish_time = ?, duration = ?, \
                 status = ?, cost = ? WHERE sub_session_id = ?"
                    .into(),
            ),
            quality: QUALITY_ROWS.map(|n| s(quality_text(d, n))),
            client_info: s(format!(
                "INSERT INTO rtc_talk_client_infos (record_id, session_id, app_id, room_id, \
                 user_id, result, description, data1, data2, create_time) VALUES ({}){}",
                placeholders(10),
                d.on_conflict_ignore("record_id")
            )),
            // Only forward: a checkpoint applied again (a retried batch, a replayed
            // journal) never moves a stamp back.
            alive_sessions: s("UPDATE rtc_talk_sessions SET last_alive = ? \
                 WHERE leave_time IS NULL AND (last_alive IS NULL OR last_alive < ?)"
                .into()),
            alive_subs: s("UPDATE rtc_talk_subsessions SET last_alive = ? \
                 WHERE finish_time IS NULL AND (last_alive IS NULL OR last_alive < ?)"
                .into()),
            open_sessions: s(
                "SELECT session_id, join_time, last_alive FROM rtc_talk_sessions \
                 WHERE leave_time IS NULL AND join_time <= ?"
                    .into(),
            ),
            close_session: s(
                "UPDATE rtc_talk_sessions SET leave_time = ?, duration = ?, \
                 time_out = 1 WHERE session_id = ? AND leave_time IS NULL"
                    .into(),
            ),
            open_subs: s(
                "SELECT sub_session_id, connect_time, connect_type, last_alive \
                 FROM rtc_talk_subsessions WHERE finish_time IS NULL AND create_time <= ?"
                    .into(),
            ),
            close_sub: s(
                "UPDATE rtc_talk_subsessions SET finish_time = ?, duration = ?, cost = ?, \
                 status = ? WHERE sub_session_id = ? AND finish_time IS NULL"
                    .into(),
            ),
        }
    }
}

/// Applies `items` in order inside `tx` (the caller commits); `prices` bill what the
/// recovery closes.
pub(crate) async fn apply_items<'a>(
    tx: &mut Tx,
    sql: &WriteSql,
    items: impl IntoIterator<Item = &'a Item>,
    prices: &Prices,
) -> Result<(), StoreError> {
    let mut qualities: Vec<&Quality> = Vec::new();
    for item in items {
        if let Item::Record(Record::Quality(q)) = item {
            qualities.push(q);
            continue;
        }
        quality(tx, sql, &qualities).await?;
        qualities.clear();
        match item {
            Item::Record(_) | Item::Checkpoint(_) => apply_record(tx, sql, item).await?,
            Item::CloseOpen(now) => {
                let r = close_open(tx, sql, *now, prices).await?;
                if r != Recovered::default() {
                    tracing::warn!(
                        sessions = r.sessions,
                        sub_sessions = r.sub_sessions,
                        "closed call records left open by the previous run"
                    );
                }
            }
        }
    }
    quality(tx, sql, &qualities).await
}

/// The statements that write `item`, in order, with their values: every record but a
/// quality row (see [`quality`]), and a checkpoint. Shared by the sqlx path and the record
/// writer's own SQLite connection (`native`), so both write the same rows.
pub(crate) fn statements<'s>(sql: &'s WriteSql, item: &Item) -> Vec<(&'s Stmt, Vec<Val>)> {
    match item {
        Item::Record(Record::SessionOpen(r)) => vec![(&sql.session_open, session_open(r))],
        Item::Record(Record::SessionClose(r)) => vec![(&sql.session_close, session_close(r))],
        Item::Record(Record::SubSessionOpen(r)) => {
            let (open, append) = sub_open(r);
            vec![(&sql.sub_open, open), (&sql.sub_append, append)]
        }
        Item::Record(Record::SubSessionBegin(r)) => vec![(
            &sql.sub_begin,
            vec![time_val(r.begin_time), id_val(r.sub_session_id)],
        )],
        Item::Record(Record::SubSessionConnect(r)) => vec![(&sql.sub_connect, sub_connect(r))],
        Item::Record(Record::SubSessionFinish(r)) => vec![(&sql.sub_finish, sub_finish(r))],
        Item::Record(Record::ClientInfo(r)) => vec![(&sql.client_info, client_info(r))],
        Item::Checkpoint(now) => {
            let at = || vec![time_val(*now), time_val(*now)];
            vec![(&sql.alive_sessions, at()), (&sql.alive_subs, at())]
        }
        Item::Record(Record::Quality(_)) | Item::CloseOpen(_) => Vec::new(),
    }
}

async fn apply_record(tx: &mut Tx, sql: &WriteSql, item: &Item) -> Result<(), StoreError> {
    if let Item::Record(Record::Quality(r)) = item {
        return quality(tx, sql, &[r]).await;
    }
    for (stmt, args) in statements(sql, item) {
        tx.execute(stmt, args).await?;
    }
    Ok(())
}

fn session_open(r: &SessionOpen) -> Vec<Val> {
    vec![
        id_val(r.session_id),
        str_val(&r.app_id, NAME),
        str_val(&r.room_id, NAME),
        str_val(&r.user_id, NAME),
        str_val(&r.user_name, NAME),
        tiny_val(r.user_type),
        tiny_val(r.talk_type),
        str_val(&r.user_ip, IP),
        // create_time: the row is created when the member joins (server time).
        time_val(r.join_time),
        time_val(r.join_time),
        str_val(&r.os_name, INFO),
        str_val(&r.browser, INFO),
        str_val(&r.sdk_info, INFO),
    ]
}

fn session_close(r: &SessionClose) -> Vec<Val> {
    vec![
        time_val(r.leave_time),
        secs_val(r.duration_secs),
        Val::I64(Some(i64::from(r.timed_out))),
        id_val(r.session_id),
    ]
}

/// The sub-session's row, and the append of its id to its session's list.
fn sub_open(r: &SubSessionOpen) -> (Vec<Val>, Vec<Val>) {
    let id = r.sub_session_id.to_string();
    let session = r.session_id.to_string();
    let open = vec![
        str_val(&id, ID),
        str_val(&session, ID),
        str_val(&r.app_id, NAME),
        str_val(&r.room_id, NAME),
        str_val(&r.user_id, NAME),
        str_val(&r.remote_user_id, NAME),
        str_val(&r.remote_user_name, NAME),
        str_val(&r.remote_user_ip, IP),
        str_val(&r.ice_ip, ICE),
        time_val(r.created),
    ];
    let append = vec![
        Val::Str(Some(id.clone())),
        Val::Str(Some(id.clone())),
        Val::Str(Some(session)),
        Val::Str(Some(format!("%,{id},%"))),
    ];
    (open, append)
}

fn sub_connect(r: &SubSessionConnect) -> Vec<Val> {
    vec![
        time_val(r.connect_time),
        str_val(r.connect_type.as_str(), CONNECT_TYPE),
        id_val(r.sub_session_id),
    ]
}

fn sub_finish(r: &SubSessionFinish) -> Vec<Val> {
    vec![
        time_val(r.finish_time),
        secs_val(r.duration_secs),
        Val::I64(Some(r.status as i64)),
        int_val(i64::try_from(r.cost_cents).unwrap_or(i64::MAX)),
        id_val(r.sub_session_id),
    ]
}

/// `rows` cut into as few statements as [`QUALITY_ROWS`] allow, in order: each part with
/// the index of its statement in [`WriteSql::quality`].
pub(crate) fn quality_parts<'a, 'q>(
    mut rows: &'a [&'q Quality],
) -> impl Iterator<Item = (usize, &'a [&'q Quality])> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let (i, &n) = QUALITY_ROWS
            .iter()
            .enumerate()
            .find(|&(_, &n)| n <= rows.len())
            .expect("QUALITY_ROWS ends with 1");
        let (these, rest) = rows.split_at(n);
        rows = rest;
        Some((i, these))
    })
}

/// Inserts the quality rows of `rows` in order, as few statements as [`QUALITY_ROWS`] allow.
async fn quality(tx: &mut Tx, sql: &WriteSql, rows: &[&Quality]) -> Result<(), StoreError> {
    for (i, these) in quality_parts(rows) {
        let mut args = Vec::with_capacity(22 * these.len());
        for r in these {
            quality_args(r, &mut args);
        }
        tx.execute(&sql.quality[i], args).await?;
    }
    Ok(())
}

/// The 22 values of one quality row, in [`QUALITY_COLUMNS`] order.
fn quality_args(r: &Quality, args: &mut Vec<Val>) {
    let q = &r.stats;
    args.extend([
        id_val(r.id),
        id_val(r.session_id),
        str_val(&r.user_id, NAME),
        str_val(&r.remote_user_id, NAME),
        id_val(r.sub_session_id),
        time_val(r.create_time),
        rate_val(q.aud_send_lost_rate),
        int_val(q.aud_send_bitrate),
        rate_val(q.aud_rcv_lost_rate),
        int_val(q.aud_rcv_bitrate),
        rate_val(q.vid_send_lost_rate),
        int_val(q.vid_send_bitrate),
        int_val(q.send_width),
        int_val(q.send_height),
        int_val(q.send_framerate_sent),
        str_val(&q.send_codec, CODEC),
        rate_val(q.vid_rcv_lost_rate),
        int_val(q.vid_rcv_bitrate),
        int_val(q.recv_width),
        int_val(q.recv_height),
        int_val(q.recv_framerate_recv),
        str_val(&q.recv_codec, CODEC),
    ]);
}

fn client_info(r: &ClientInfo) -> Vec<Val> {
    let data = |d: &Option<String>| Val::Str(d.as_deref().map(|s| convert::clip(s, DATA)));
    vec![
        id_val(r.id),
        id_val(r.session_id),
        str_val(&r.app_id, NAME),
        str_val(&r.room_id, NAME),
        str_val(&r.user_id, NAME),
        int_val(r.result),
        str_val(&r.desc, DESC),
        data(&r.data1),
        data(&r.data2),
        time_val(r.create_time),
    ]
}

/// Closes every session and sub-session that is still open and began at or before `now`.
///
/// Each row ends at its last checkpoint (`last_alive`, stamped every `checkpoint_secs` while
/// the previous run lived): a session gets `leave_time` = that time, `time_out = 1` and its
/// duration from join; a sub-session gets `finish_time` = that time, the timed-out status (1
/// if it had connected, 3 if not), and is billed from its connect to that time, as the engine
/// bills a pair that times out. A row no checkpoint reached (it began less than one interval
/// before the crash, or was written by a build without checkpoints) ends at `now`, the
/// session with its duration up to `now` and the sub-session with duration and cost 0:
/// nobody knows when its media stopped. Rows that began after `now` belong to the new run
/// and are left alone, which also keeps a re-applied recovery harmless.
pub(crate) async fn close_open(
    tx: &mut Tx,
    sql: &WriteSql,
    now: Millis,
    prices: &Prices,
) -> Result<Recovered, StoreError> {
    let at = db_time(now);
    let time = |v: Option<&Val>| match v {
        Some(Val::Time(t)) => Ok(t.map(convert::millis_of)),
        _ => Err(StoreError::Corrupt("open row".into())),
    };
    let open = tx
        .fetch_all(
            &sql.open_sessions,
            vec![Val::Time(Some(at))],
            &[Kind::Str, Kind::Time, Kind::Time],
        )
        .await?;
    let mut closed = Recovered::default();
    for row in open {
        let Some(Val::Str(Some(id))) = row.first() else {
            return Err(StoreError::Corrupt("open session row".into()));
        };
        let (join, alive) = (time(row.get(1))?, time(row.get(2))?);
        let end = alive.map_or(now, |a| a.min(now).max(join.unwrap_or(a)));
        let secs = join.map_or(0, |j| end.secs_since(j));
        let args = vec![time_val(end), secs_val(secs), Val::Str(Some(id.clone()))];
        closed.sessions += tx.execute(&sql.close_session, args).await?;
    }
    let open = tx
        .fetch_all(
            &sql.open_subs,
            vec![Val::Time(Some(at))],
            &[Kind::Str, Kind::Time, Kind::Str, Kind::Time],
        )
        .await?;
    for row in open {
        let (Some(Val::Str(Some(id))), Some(Val::Str(kind))) = (row.first(), row.get(2)) else {
            return Err(StoreError::Corrupt("open sub-session row".into()));
        };
        let (connect, alive) = (time(row.get(1))?, time(row.get(3))?);
        let status = if connect.is_some() {
            SubStatus::ConnectedTimedOut
        } else {
            SubStatus::NeverConnectedTimedOut
        };
        let (end, secs) = match (alive, connect) {
            (Some(a), Some(c)) => {
                let end = a.min(now).max(c);
                (end, end.secs_since(c))
            }
            (Some(a), None) => (a.min(now), 0),
            (None, _) => (now, 0),
        };
        let kind = ConnectType::parse(kind.as_deref().unwrap_or(""));
        let args = vec![
            time_val(end),
            secs_val(secs),
            int_val(i64::try_from(prices.cost_cents(kind, secs)).unwrap_or(i64::MAX)),
            Val::I64(Some(status as i64)),
            Val::Str(Some(id.clone())),
        ];
        closed.sub_sessions += tx.execute(&sql.close_sub, args).await?;
    }
    Ok(closed)
}

//! A day's rows, streamed page by page by `(create_time, id)`: sub-sessions with their
//! quality, client events, and sessions.

use super::cols::Cols;
use super::rows::{ClientInfoRow, DaySubSession, QualitySummary, SessionRow};
use super::sessions::quality_of;
use super::sql::{INFO_COLS, ReadSql, SESSION_COLS, SUB_COLS, kinds};
use super::{PAGE, RowStream};
use crate::db::{Kind, Pool, Stmt, Val};
use crate::error::StoreError;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use std::sync::Arc;
use tokio::sync::mpsc;

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

//! Lookups: a member's sessions, one session, a sub-session's quality reports, and the
//! table counts.

use super::cols::{Cols, session_kinds, split_ids};
use super::rows::{
    QualityRow, QualitySummary, SessionDetail, SubSessionDetail, SubSessionRow, TableCounts,
};
use super::sql::{QUALITY_COLS, ReadSql, SUB_COLS, kinds};
use super::{IN_SIZES, PAGE};
use crate::db::{Kind, Pool, Stmt, Val};
use crate::error::StoreError;
use std::collections::HashMap;

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

pub(super) async fn quality_of(
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

//! The record writer's own SQLite connection: writes records without sqlx.
//!
//! sqlx sends every statement to a worker thread of its own and back, and binds values
//! through a vector of boxed arguments; for a quality row (22 values, 2,000 rows a second
//! under load) that machinery cost about as much as SQLite's own work. This connection
//! belongs to the writer's database thread (`rtcroom-rec-db`), keeps its statements prepared
//! (rusqlite's statement cache, `BEGIN` and `COMMIT` included), writes a batch in one
//! `BEGIN IMMEDIATE` transaction, and binds a quality row's values straight from the record:
//! ids as ULID text and times as text made in stack buffers, strings borrowed unless they
//! must be cut.
//!
//! It writes the same rows as the sqlx path: the same statement texts ([`WriteSql`]) and the
//! same values ([`statements`] for every record but a quality row; a quality row's values
//! are those of `apply::quality_args`, as
//! `tests/writer.rs::the_writer_thread_writes_the_rows_sqlx_writes` checks). The restart
//! recovery (`Item::CloseOpen`, once per start) stays on sqlx. The sqlx pool on the same
//! file keeps working: in WAL mode readers do not wait for this writer, and this writer and
//! the pool's writes wait for each other up to the busy timeout.

use crate::apply::{Item, WriteSql, quality_parts, statements};
use crate::convert::{CODEC, NAME, clipped, db_time, int_of, rate_of};
use crate::db::{Val, sqlite_time, sqlite_time_in};
use crate::error::StoreError;
use crate::line::Entry;
use chrono::NaiveDateTime;
use rtcroom_core::{Millis, Quality, Record};
use rusqlite::{Connection, OpenFlags, Statement};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use ulid::Ulid;

/// How long a write waits for another connection's write lock before it fails (and the
/// writer retries the batch later); the sqlx pool uses the same.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection's page cache, in KiB (`PRAGMA cache_size` takes it negated). SQLite's
/// default, 2,000 KiB per connection, fills as the writer writes and is never given back:
/// ~2 MB of the server's resident memory, a third of a KiB per member with 6,000 idle
/// members (docs/benchmarks.md, "The record writer's page cache"). This
/// connection writes new rows and updates recent ones, whose pages stay at the right edge of
/// their trees; a page it needs again and no longer holds comes from the kernel's file cache.
pub(crate) const PAGE_CACHE_KIB: i64 = 256;

/// An open connection with its statements.
pub(crate) struct Native {
    conn: Connection,
    sql: Arc<WriteSql>,
}

impl std::fmt::Debug for Native {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Native").finish_non_exhaustive()
    }
}

impl Native {
    /// Opens the (migrated) database file for writing; creates nothing.
    pub(crate) fn open(path: &Path, sql: Arc<WriteSql>) -> Result<Native, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // As the pool's connections: WAL is kept in the file (its maker set it); FULL syncs
        // the WAL at every commit, because the journal lets go of a record once its
        // transaction has committed (NORMAL would leave the transactions since the last
        // checkpoint to the page cache: a crash of the machine could lose records the
        // journal no longer holds); foreign keys on (sqlx's default).
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(Native { conn, sql })
    }

    /// A trivial query: is the file there and readable?
    pub(crate) fn ping(&self) -> Result<(), StoreError> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    /// Writes `items` in order in one transaction. The caller keeps the restart recovery
    /// (`Item::CloseOpen`) out; it is skipped here.
    pub(crate) fn apply(&mut self, items: &[Entry]) -> Result<(), StoreError> {
        // IMMEDIATE: the write lock is taken (or waited for) at the start, never in the
        // middle of the batch. `BEGIN` and `COMMIT` are prepared once, like the rest.
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.raw_execute()?;
        let written = self.write(items).and_then(|()| {
            self.conn.prepare_cached("COMMIT")?.raw_execute()?;
            Ok(())
        });
        if written.is_err() && !self.conn.is_autocommit() {
            // Nothing of a failed batch stays: it is written again, whole, later.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        written
    }

    fn write(&self, items: &[Entry]) -> Result<(), StoreError> {
        let mut run: Vec<&Quality> = Vec::new();
        for e in items {
            if let Item::Record(Record::Quality(q)) = &e.item {
                run.push(q);
                continue;
            }
            quality(&self.conn, &self.sql, &run)?;
            run.clear();
            for (stmt, args) in statements(&self.sql, &e.item) {
                let mut st = self.conn.prepare_cached(stmt)?;
                for (i, v) in args.iter().enumerate() {
                    bind_val(&mut st, i + 1, v)?;
                }
                st.raw_execute()?;
            }
        }
        quality(&self.conn, &self.sql, &run)
    }
}

fn bind_val(st: &mut Statement<'_>, i: usize, v: &Val) -> rusqlite::Result<()> {
    match v {
        Val::Str(s) => st.raw_bind_parameter(i, s.as_deref()),
        Val::I64(n) => st.raw_bind_parameter(i, n),
        // sqlx binds an f32 as the double it widens to.
        Val::F32(x) => st.raw_bind_parameter(i, x.map(f64::from)),
        Val::F64(x) => st.raw_bind_parameter(i, x),
        Val::Time(None) => st.raw_bind_parameter(i, None::<&str>),
        Val::Time(Some(t)) => bind_naive_time(st, i, *t),
    }
}

/// Inserts the quality rows in order, as few statements as [`QUALITY_ROWS`] allow.
fn quality(tx: &Connection, sql: &WriteSql, rows: &[&Quality]) -> Result<(), StoreError> {
    for (i, these) in quality_parts(rows) {
        let mut st = tx.prepare_cached(&sql.quality[i])?;
        for (k, r) in these.iter().enumerate() {
            bind_quality(&mut st, k * 22, r)?;
        }
        st.raw_execute()?;
    }
    Ok(())
}

fn bind_id(st: &mut Statement<'_>, i: usize, id: Ulid) -> rusqlite::Result<()> {
    let mut b = [0; ulid::ULID_LEN];
    st.raw_bind_parameter(i, &*id.array_to_str(&mut b))
}

fn bind_time(st: &mut Statement<'_>, i: usize, m: Millis) -> rusqlite::Result<()> {
    bind_naive_time(st, i, db_time(m))
}

/// A time as the text sqlx would bind ([`sqlite_time`]), made in a stack buffer.
fn bind_naive_time(st: &mut Statement<'_>, i: usize, t: NaiveDateTime) -> rusqlite::Result<()> {
    let mut b = [0; 23];
    match sqlite_time_in(t, &mut b) {
        Some(text) => st.raw_bind_parameter(i, text),
        None => st.raw_bind_parameter(i, sqlite_time(t)),
    }
}

/// The 22 values of one quality row after `base`, in `QUALITY_COLUMNS` order, fitted as
/// `apply::quality_args` fits them.
fn bind_quality(st: &mut Statement<'_>, base: usize, r: &Quality) -> rusqlite::Result<()> {
    let q = &r.stats;
    let at = |k: usize| base + k;
    bind_id(st, at(1), r.id)?;
    bind_id(st, at(2), r.session_id)?;
    st.raw_bind_parameter(at(3), &*clipped(&r.user_id, NAME))?;
    st.raw_bind_parameter(at(4), &*clipped(&r.remote_user_id, NAME))?;
    bind_id(st, at(5), r.sub_session_id)?;
    bind_time(st, at(6), r.create_time)?;
    let rate = |x: f32| f64::from(rate_of(x));
    st.raw_bind_parameter(at(7), rate(q.aud_send_lost_rate))?;
    st.raw_bind_parameter(at(8), int_of(q.aud_send_bitrate))?;
    st.raw_bind_parameter(at(9), rate(q.aud_rcv_lost_rate))?;
    st.raw_bind_parameter(at(10), int_of(q.aud_rcv_bitrate))?;
    st.raw_bind_parameter(at(11), rate(q.vid_send_lost_rate))?;
    st.raw_bind_parameter(at(12), int_of(q.vid_send_bitrate))?;
    st.raw_bind_parameter(at(13), int_of(q.send_width))?;
    st.raw_bind_parameter(at(14), int_of(q.send_height))?;
    st.raw_bind_parameter(at(15), int_of(q.send_framerate_sent))?;
    st.raw_bind_parameter(at(16), &*clipped(&q.send_codec, CODEC))?;
    st.raw_bind_parameter(at(17), rate(q.vid_rcv_lost_rate))?;
    st.raw_bind_parameter(at(18), int_of(q.vid_rcv_bitrate))?;
    st.raw_bind_parameter(at(19), int_of(q.recv_width))?;
    st.raw_bind_parameter(at(20), int_of(q.recv_height))?;
    st.raw_bind_parameter(at(21), int_of(q.recv_framerate_recv))?;
    st.raw_bind_parameter(at(22), &*clipped(&q.recv_codec, CODEC))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Dialect;

    /// A pragma's value on the writer's connection to a new file.
    fn pragma(name: &str) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.db");
        drop(Connection::open(&path).unwrap());
        let native = Native::open(&path, Arc::new(WriteSql::new(Dialect::Sqlite))).unwrap();
        native
            .conn
            .pragma_query_value(None, name, |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn the_writer_connection_keeps_a_small_page_cache() {
        assert_eq!(pragma("cache_size"), -PAGE_CACHE_KIB);
    }

    #[test]
    fn the_writer_connection_syncs_every_commit() {
        assert_eq!(pragma("synchronous"), 2, "PRAGMA synchronous = FULL");
    }
}

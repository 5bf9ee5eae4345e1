//! The connection to one of the three backends, and a small neutral value layer over it.
//!
//! sqlx's `Any` driver cannot carry `DATETIME`/`TIMESTAMP` values, so this crate keeps one
//! typed pool per backend and moves values through [`Val`]: statements are bound from
//! `Val`s and rows come back as `Val`s, decoded by the [`Kind`] the caller expects. The
//! code above this module (writing records, recovery, reads) is then written once. This
//! module owns connecting, migrations and the per-backend dispatch; it knows no table.

use crate::dialect::Dialect;
use crate::error::StoreError;
use chrono::NaiveDateTime;
use sqlx::migrate::{MigrateDatabase, Migration, MigrationType, Migrator};
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, Postgres};
use sqlx::query::Query;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Row, SqlSafeStr, Type};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// A statement's text, generated once per dialect and shared.
pub(crate) type Stmt = Arc<str>;

/// A bound or fetched value. Every variant carries an `Option` so that a NULL keeps its
/// SQL type (PostgreSQL refuses a NULL typed as text for a timestamp column).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Str(Option<String>),
    I64(Option<i64>),
    F32(Option<f32>),
    F64(Option<f64>),
    Time(Option<NaiveDateTime>),
}

/// The Rust type a fetched column is decoded into. The SQL casts each column so that all
/// three drivers agree (see [`Dialect::int`] and [`Dialect::float`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    I64,
    F64,
    Time,
}

/// How to connect: pool size and how long to wait for a connection.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    /// How long a query waits for a free (or new) connection before it fails; this bounds
    /// how long the record writer takes to notice that the database is gone.
    pub acquire_timeout: Duration,
    /// Whether a missing SQLite file (and its folder) is created. Readers that must not
    /// create a database to read from it set `false`, and get an error instead.
    pub create_if_missing: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(5),
            create_if_missing: true,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    MySql(MySqlPool),
    Postgres(PgPool),
}

pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    MySql(sqlx::Transaction<'static, MySql>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// Runs `$body` with `$p` bound to the concrete pool or transaction of whichever backend
/// `$v` holds: the body is written once and compiled for each backend's types.
macro_rules! each_backend {
    ($ty:ident, $v:expr, $p:ident => $body:expr) => {
        match $v {
            $ty::Sqlite($p) => $body,
            $ty::MySql($p) => $body,
            $ty::Postgres($p) => $body,
        }
    };
}

/// The backend an URL names, and the URL as the driver wants it.
pub(crate) fn parse_url(url: &str) -> Result<(Dialect, String), StoreError> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => Ok((Dialect::Sqlite, url.to_owned())),
        "mysql" => Ok((Dialect::MySql, url.to_owned())),
        // The MySQL driver speaks MariaDB's protocol but only knows the mysql scheme.
        "mariadb" => Ok((Dialect::MySql, format!("mysql{}", &url["mariadb".len()..]))),
        "postgres" | "postgresql" => Ok((Dialect::Postgres, url.to_owned())),
        _ => Err(StoreError::UnsupportedUrl(scheme)),
    }
}

/// The file a `sqlite:` URL names, for the record writer's own connection; `None` for an
/// in-memory database (only its pool can see it) or a URL that does not parse.
pub(crate) fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if url.contains("mode=memory") {
        return None;
    }
    let o = SqliteConnectOptions::from_str(url).ok()?;
    let name = o.get_filename();
    let text = name.to_string_lossy();
    if text.starts_with("file:") || text == ":memory:" {
        return None;
    }
    Some(name.to_owned())
}

impl Pool {
    pub(crate) async fn connect(
        dialect: Dialect,
        url: &str,
        opts: &StoreOptions,
    ) -> Result<Pool, StoreError> {
        Ok(match dialect {
            Dialect::Sqlite => {
                let mut o = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(opts.create_if_missing)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(5));
                // WAL lets the daily report read while the writer writes; FULL syncs the WAL
                // at every commit, as the record writer's own connection does (a committed
                // record is one the journal lets go of). The mode is kept
                // in the file, so only its maker sets it: a reader that must not create a
                // database writes nothing to a file that is not one yet.
                if opts.create_if_missing {
                    o = o.journal_mode(SqliteJournalMode::Wal);
                }
                if let Some(dir) = o
                    .get_filename()
                    .parent()
                    .filter(|d| opts.create_if_missing && !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                        path: dir.to_owned(),
                        source,
                    })?;
                }
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(opts.max_connections.max(1))
                        .acquire_timeout(opts.acquire_timeout)
                        .connect_with(o)
                        .await?,
                )
            }
            Dialect::MySql => Pool::MySql(
                MySqlPoolOptions::new()
                    .max_connections(opts.max_connections.max(1))
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_lazy_with(MySqlConnectOptions::from_str(url)?),
            ),
            Dialect::Postgres => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(opts.max_connections.max(1))
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_lazy_with(PgConnectOptions::from_str(url)?),
            ),
        })
    }

    pub(crate) async fn migrate(&self, dialect: Dialect) -> Result<(), StoreError> {
        let (records, last_alive, quality_time) = match dialect {
            Dialect::Sqlite => (
                include_str!("../migrations/sqlite/0001_records.sql"),
                include_str!("../migrations/sqlite/0002_last_alive.sql"),
                include_str!("../migrations/sqlite/0003_quality_time_index.sql"),
            ),
            Dialect::MySql => (
                include_str!("../migrations/mysql/0001_records.sql"),
                include_str!("../migrations/mysql/0002_last_alive.sql"),
                include_str!("../migrations/mysql/0003_quality_time_index.sql"),
            ),
            Dialect::Postgres => (
                include_str!("../migrations/postgres/0001_records.sql"),
                include_str!("../migrations/postgres/0002_last_alive.sql"),
                include_str!("../migrations/postgres/0003_quality_time_index.sql"),
            ),
        };
        let migration = |version, name: &str, sql: &'static str| {
            Migration::new(
                version,
                name.to_owned().into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        };
        let migrator = Migrator::with_migrations(vec![
            migration(1, "records", records),
            // A new migration raises `LATEST_MIGRATION` in store.rs too.
            migration(2, "last alive", last_alive),
            migration(3, "quality time index", quality_time),
        ]);
        each_backend!(Pool, self, p => migrator.run(p).await)?;
        Ok(())
    }

    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Pool::MySql(p) => Tx::MySql(p.begin().await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    pub(crate) async fn fetch_all(
        &self,
        sql: &Stmt,
        args: Vec<Val>,
        kinds: &[Kind],
    ) -> Result<Vec<Vec<Val>>, StoreError> {
        each_backend!(Pool, self, p => {
            let rows = bind_all(query(sql), args).fetch_all(p).await?;
            rows.iter().map(|r| decode_row(r, kinds)).collect()
        })
    }

    pub(crate) async fn execute(&self, sql: &Stmt, args: Vec<Val>) -> Result<u64, StoreError> {
        let n = each_backend!(Pool, self, p => {
            bind_all(query(sql), args).execute(p).await?.rows_affected()
        });
        Ok(n)
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let sql: Stmt = Arc::from("SELECT 1");
        each_backend!(Pool, self, p => query(&sql).execute(p).await.map(drop))?;
        Ok(())
    }

    /// The highest migration applied, 0 when the migrations table is there but empty;
    /// `None` when there is no migrations table (not a call-record database yet).
    pub(crate) async fn applied_migration(
        &self,
        dialect: Dialect,
    ) -> Result<Option<i64>, StoreError> {
        let exists: Stmt = Arc::from(match dialect {
            Dialect::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
                    .to_owned()
            }
            Dialect::MySql => format!(
                "SELECT {} FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '_sqlx_migrations'",
                dialect.int("COUNT(*)")
            ),
            Dialect::Postgres => format!(
                "SELECT {} FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
                dialect.int("COUNT(*)")
            ),
        });
        let count = self.fetch_all(&exists, Vec::new(), &[Kind::I64]).await?;
        if !matches!(count.first().and_then(|r| r.first()), Some(Val::I64(Some(n))) if *n > 0) {
            return Ok(None);
        }
        let max: Stmt = Arc::from(format!(
            "SELECT {} FROM _sqlx_migrations WHERE success",
            dialect.int("COALESCE(MAX(version), 0)")
        ));
        let rows = self.fetch_all(&max, Vec::new(), &[Kind::I64]).await?;
        Ok(Some(match rows.first().and_then(|r| r.first()) {
            Some(Val::I64(Some(v))) => *v,
            _ => 0,
        }))
    }

    pub(crate) async fn close(&self) {
        each_backend!(Pool, self, p => p.close().await);
    }
}

impl Tx {
    /// Runs one statement; returns the number of rows it changed.
    pub(crate) async fn execute(&mut self, sql: &Stmt, args: Vec<Val>) -> Result<u64, StoreError> {
        let n = match self {
            Tx::Sqlite(t) => bind_sqlite(query(sql), args)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            Tx::MySql(t) => bind_all(query(sql), args)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            Tx::Postgres(t) => bind_all(query(sql), args)
                .execute(&mut **t)
                .await?
                .rows_affected(),
        };
        Ok(n)
    }

    pub(crate) async fn fetch_all(
        &mut self,
        sql: &Stmt,
        args: Vec<Val>,
        kinds: &[Kind],
    ) -> Result<Vec<Vec<Val>>, StoreError> {
        each_backend!(Tx, self, t => {
            let rows = bind_all(query(sql), args).fetch_all(&mut **t).await?;
            rows.iter().map(|r| decode_row(r, kinds)).collect()
        })
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        each_backend!(Tx, self, t => t.commit().await)?;
        Ok(())
    }
}

/// Creates the database an URL names if it does not exist (a SQLite file is created on
/// connect anyway). Tests and `rtcroom migrate` use it.
pub(crate) async fn create_database(dialect: Dialect, url: &str) -> Result<(), StoreError> {
    let exists = match dialect {
        Dialect::Sqlite => return Ok(()),
        Dialect::MySql => MySql::database_exists(url).await?,
        Dialect::Postgres => Postgres::database_exists(url).await?,
    };
    if !exists {
        match dialect {
            Dialect::Sqlite => {}
            Dialect::MySql => MySql::create_database(url).await?,
            Dialect::Postgres => Postgres::create_database(url).await?,
        }
    }
    Ok(())
}

/// Drops the database an URL names (removes the SQLite file). For tests and tools.
pub(crate) async fn drop_database(dialect: Dialect, url: &str) -> Result<(), StoreError> {
    match dialect {
        Dialect::Sqlite => Sqlite::drop_database(url).await?,
        Dialect::MySql => MySql::drop_database(url).await?,
        Dialect::Postgres => Postgres::drop_database(url).await?,
    }
    Ok(())
}

fn query<DB: Database>(sql: &Stmt) -> Query<'static, DB, DB::Arguments> {
    // The text comes from this crate's statement templates, never from input: values are
    // always bound as parameters.
    sqlx::query(AssertSqlSafe(Arc::clone(sql)))
}

fn bind_all<DB>(
    mut q: Query<'static, DB, DB::Arguments>,
    args: Vec<Val>,
) -> Query<'static, DB, DB::Arguments>
where
    DB: Database,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<f32>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<f64>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<NaiveDateTime>: Encode<'t, DB> + Type<DB>,
{
    for a in args {
        q = match a {
            Val::Str(v) => q.bind(v),
            Val::I64(v) => q.bind(v),
            Val::F32(v) => q.bind(v),
            Val::F64(v) => q.bind(v),
            Val::Time(v) => q.bind(v),
        };
    }
    q
}

/// [`bind_all`] for SQLite, where a time is bound as the text sqlx would make of it
/// ([`sqlite_time`]) without chrono's formatter, which cost more than the rest of a quality
/// row's binding.
fn bind_sqlite(
    mut q: Query<'static, Sqlite, <Sqlite as Database>::Arguments>,
    args: Vec<Val>,
) -> Query<'static, Sqlite, <Sqlite as Database>::Arguments> {
    for a in args {
        q = match a {
            Val::Str(v) => q.bind(v),
            Val::I64(v) => q.bind(v),
            Val::F32(v) => q.bind(v),
            Val::F64(v) => q.bind(v),
            Val::Time(v) => q.bind(v.map(sqlite_time)),
        };
    }
    q
}

/// A time as sqlx's SQLite driver writes a `NaiveDateTime` (`%F %T%.f`): "YYYY-MM-DD
/// HH:MM:SS", then ".mmm" unless the milliseconds are 0. Times with finer fractions or
/// years outside 0..=9999 (which the writer never makes) go through chrono.
pub(crate) fn sqlite_time(t: NaiveDateTime) -> String {
    let mut b = [0; 23];
    match sqlite_time_in(t, &mut b) {
        Some(text) => text.to_owned(),
        None => t.format("%F %T%.f").to_string(),
    }
}

/// [`sqlite_time`] written into `b`, for the common case (whole milliseconds, years
/// 0..=9999); `None` otherwise.
pub(crate) fn sqlite_time_in(t: NaiveDateTime, b: &mut [u8; 23]) -> Option<&str> {
    use chrono::{Datelike, Timelike};
    let nanos = t.nanosecond();
    if !(0..=9999).contains(&t.year()) || nanos >= 1_000_000_000 || nanos % 1_000_000 != 0 {
        return None;
    }
    *b = *b"0000-00-00 00:00:00.000";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for d in b[at..at + width].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, t.year() as u32);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    let ms = nanos / 1_000_000;
    put(20, 3, ms);
    let len = if ms == 0 { 19 } else { 23 };
    std::str::from_utf8(&b[..len]).ok()
}

fn decode_row<R>(row: &R, kinds: &[Kind]) -> Result<Vec<Val>, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<f64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<NaiveDateTime>: Decode<'r, R::Database> + Type<R::Database>,
{
    kinds
        .iter()
        .enumerate()
        .map(|(i, k)| {
            Ok(match k {
                Kind::Str => Val::Str(row.try_get(i)?),
                Kind::I64 => Val::I64(row.try_get(i)?),
                Kind::F64 => Val::F64(row.try_get(i)?),
                Kind::Time => Val::Time(row.try_get(i)?),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_times_are_what_sqlx_writes() {
        use chrono::DateTime;
        let ms = [
            0,
            1,
            999,
            1_000,
            1_700_000_123_456,
            1_700_000_123_000,
            1_700_000_123_050,
            951_782_400_007,
            253_402_300_799_999,
        ];
        for m in ms {
            let t = DateTime::from_timestamp_millis(m).unwrap().naive_utc();
            assert_eq!(sqlite_time(t), t.format("%F %T%.f").to_string(), "{m}");
        }
        let fine = DateTime::from_timestamp(1_700_000_000, 123_456_789)
            .unwrap()
            .naive_utc();
        assert_eq!(sqlite_time(fine), "2023-11-14 22:13:20.123456789");
    }

    #[test]
    fn url_schemes() {
        assert_eq!(parse_url("sqlite://data/r.db").unwrap().0, Dialect::Sqlite);
        assert_eq!(parse_url("sqlite:data/r.db").unwrap().0, Dialect::Sqlite);
        let (d, u) = parse_url("mariadb://root@127.0.0.1/x").unwrap();
        assert_eq!(
            (d, u.as_str()),
            (Dialect::MySql, "mysql://root@127.0.0.1/x")
        );
        assert_eq!(parse_url("MySQL://h/x").unwrap().0, Dialect::MySql);
        assert_eq!(parse_url("postgresql://h/x").unwrap().0, Dialect::Postgres);
        let e = parse_url("redis://user:secret@h").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}

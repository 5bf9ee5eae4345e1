//! [`Store`]: one handle on the call-record database, whichever backend the URL names.

use crate::apply::{self, Item, Recovered, WriteSql};
use crate::db::{self, Pool, StoreOptions};
use crate::dialect::Dialect;
use crate::error::StoreError;
use crate::line::Entry;
use crate::read::SessionRow;
use crate::read::{
    self, ClientInfoRow, DaySubSession, QualityRow, ReadSql, RowStream, SessionDetail, TableCounts,
    day_range,
};
use chrono::{DateTime, NaiveDate, Utc};
use rtcroom_core::{Millis, Prices, Record};
use std::sync::Arc;

/// The backend a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    MySql,
    Postgres,
}

/// The call-record database. Cloning is cheap (the pool and statements are shared).
#[derive(Debug, Clone)]
pub struct Store {
    dialect: Dialect,
    pool: Pool,
    write: Arc<WriteSql>,
    read: Arc<ReadSql>,
    /// The SQLite file, which the record writer opens its own connection to.
    sqlite_file: Option<Arc<std::path::Path>>,
}

/// The state of a database's call-record tables ([`Store::schema`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// No call-record tables: a database nothing has migrated.
    Missing,
    /// Migrated by an older version: `migrate` brings it to `latest`.
    Behind {
        applied: i64,
        latest: i64,
    },
    Current,
}

/// The number of the last migration of this version (`Pool::migrate`).
const LATEST_MIGRATION: i64 = 3;

impl Store {
    /// The embedded default: a SQLite file under `./data/`.
    pub const DEFAULT_URL: &'static str = "sqlite://data/rtcroom.db";

    /// Opens the database `url` names: `sqlite:PATH` (the file and its directory are
    /// created), `mysql://` or `mariadb://`, `postgres://`. MySQL and PostgreSQL pools
    /// connect lazily, so a server that is down at start does not stop the caller: the
    /// first query reports it.
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Store, StoreError> {
        let (dialect, url) = db::parse_url(url)?;
        let pool = Pool::connect(dialect, &url, opts).await?;
        let sqlite_file = match dialect {
            Dialect::Sqlite => db::sqlite_file(&url).map(Arc::from),
            _ => None,
        };
        Ok(Store {
            dialect,
            pool,
            sqlite_file,
            write: Arc::new(WriteSql::new(dialect)),
            read: Arc::new(ReadSql::new(dialect)),
        })
    }

    /// Creates the database `url` names when it does not exist yet (MySQL and PostgreSQL;
    /// a SQLite file is created by [`Store::connect`]). Needs the right to create databases.
    pub async fn create_database(url: &str) -> Result<(), StoreError> {
        let (dialect, url) = db::parse_url(url)?;
        db::create_database(dialect, &url).await
    }

    /// Drops the database `url` names (deletes a SQLite file). For tests and tools.
    pub async fn drop_database(url: &str) -> Result<(), StoreError> {
        let (dialect, url) = db::parse_url(url)?;
        db::drop_database(dialect, &url).await
    }

    pub fn backend(&self) -> Backend {
        match self.dialect {
            Dialect::Sqlite => Backend::Sqlite,
            Dialect::MySql => Backend::MySql,
            Dialect::Postgres => Backend::Postgres,
        }
    }

    /// Applies this backend's migrations that are not applied yet (tracked in
    /// `_sqlx_migrations`). Safe to run at every start.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.pool.migrate(self.dialect).await
    }

    /// Whether the call-record tables are there and up to date, without changing anything
    /// (what readers check instead of migrating). An error when the database cannot be
    /// reached.
    pub async fn schema(&self) -> Result<Schema, StoreError> {
        Ok(match self.pool.applied_migration(self.dialect).await? {
            None => Schema::Missing,
            Some(v) if v < LATEST_MIGRATION => Schema::Behind {
                applied: v,
                latest: LATEST_MIGRATION,
            },
            Some(_) => Schema::Current,
        })
    }

    /// The SQLite file the record writer writes with its own connection (see `native`).
    pub(crate) fn sqlite_file(&self) -> Option<&std::path::Path> {
        self.sqlite_file.as_deref()
    }

    pub(crate) fn write_sql(&self) -> &Arc<WriteSql> {
        &self.write
    }

    /// A trivial query: is the database there?
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.pool.ping().await
    }

    /// Writes `records` in order in one transaction. Idempotent: applying the same records
    /// again changes nothing. The server writes through [`crate::RecordWriter`] instead.
    pub async fn apply(&self, records: &[Record]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let items: Vec<Item> = records.iter().cloned().map(Item::Record).collect();
        apply::apply_items(&mut tx, &self.write, &items, &Prices::default()).await?;
        tx.commit().await
    }

    pub(crate) async fn apply_items(
        &self,
        items: &[Entry],
        prices: &Prices,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        apply::apply_items(&mut tx, &self.write, items.iter().map(Entry::item), prices).await?;
        tx.commit().await
    }

    /// Restart recovery: closes the sessions and sub-sessions a crash left open (those
    /// begun at or before `now`), each at its last checkpoint (`last_alive`), billing a
    /// connected sub-session up to there at the default prices (the writer uses the
    /// configured ones); a row no checkpoint reached ends at `now`, a sub-session then with
    /// duration and cost 0. Status 1 (had connected) or 3 (had not), `time_out = 1`.
    pub async fn close_open_sessions(&self, now: Millis) -> Result<Recovered, StoreError> {
        let mut tx = self.pool.begin().await?;
        let r = apply::close_open(&mut tx, &self.write, now, &Prices::default()).await?;
        tx.commit().await?;
        Ok(r)
    }

    /// A member's sessions, newest first (at most `limit`, which is capped at 1,000), each
    /// with its sub-sessions and their quality summary.
    pub async fn member_sessions(
        &self,
        app_id: &str,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<SessionDetail>, StoreError> {
        read::member_sessions(&self.pool, &self.read, app_id, user_id, limit.min(1000)).await
    }

    /// One session by id, with its sub-sessions and their quality summary.
    pub async fn session(&self, session_id: &str) -> Result<Option<SessionDetail>, StoreError> {
        read::session(&self.pool, &self.read, session_id).await
    }

    /// The sub-sessions created in `[from, to)`, oldest first, each with its session and
    /// its quality summary, streamed page by page. A sub-session belongs to the time it
    /// was created (the two members met), so a call across midnight counts for the day it
    /// started, and a pair that never exchanged an offer is counted too.
    pub fn sub_sessions_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> RowStream<DaySubSession> {
        read::stream_sub_sessions(self.pool.clone(), Arc::clone(&self.read), from, to)
    }

    /// [`Store::sub_sessions_between`] for one UTC day.
    pub fn day_sub_sessions(&self, day: NaiveDate) -> RowStream<DaySubSession> {
        let (from, to) = day_range(day);
        self.sub_sessions_between(from, to)
    }

    /// The sessions that joined in `[from, to)`, oldest first, streamed (the daily report
    /// counts calls and participants from them, alone-in-a-room ones included).
    pub fn sessions_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> RowStream<SessionRow> {
        read::stream_sessions(self.pool.clone(), Arc::clone(&self.read), from, to)
    }

    /// The client events (`reportInfo`) received in `[from, to)`, oldest first, streamed.
    pub fn client_infos_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> RowStream<ClientInfoRow> {
        read::stream_client_infos(self.pool.clone(), Arc::clone(&self.read), from, to)
    }

    /// [`Store::client_infos_between`] for one UTC day.
    pub fn day_client_infos(&self, day: NaiveDate) -> RowStream<ClientInfoRow> {
        let (from, to) = day_range(day);
        self.client_infos_between(from, to)
    }

    /// Every quality report of one sub-session, oldest first (a call's quality over time).
    pub async fn quality_reports(
        &self,
        sub_session_id: &str,
    ) -> Result<Vec<QualityRow>, StoreError> {
        read::quality_reports(&self.pool, &self.read, sub_session_id).await
    }

    /// How many rows each table holds (for the CLI and metrics).
    pub async fn table_counts(&self) -> Result<TableCounts, StoreError> {
        read::table_counts(&self.pool, &self.read).await
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

//! Call records of rtcroom: the database of the design document's section 4
//! (`rtc_talk_sessions`, `rtc_talk_subsessions`, `rtc_talk_quality_stats_infos`, plus
//! `rtc_talk_client_infos`), on SQLite, MariaDB/MySQL or PostgreSQL.
//!
//! - [`Store`]: connect by URL, [`Store::migrate`], [`Store::apply`] records,
//!   [`Store::close_open_sessions`] after a crash, and the read side (a member's history,
//!   one session, a day's sub-sessions and client events as a [`RowStream`]).
//! - [`RecordWriter`]: the task that takes the engine's records off the signaling path.
//!   The shell calls [`RecordSink::try_send`], which never blocks; the writer batches
//!   records into transactions, and while the database is away it keeps them in memory up
//!   to a bound, then in an append-only spool file, and writes them, in order and exactly
//!   once, when the database is back. Every record is also appended to a write-ahead
//!   journal first, which the next start replays if the process died.
//!
//! How the server uses it (the records come from the engine's `Effect::Record`):
//!
//! ```no_run
//! # async fn run(records: Vec<rtcroom_core::Record>) -> Result<(), rtcroom_store::StoreError> {
//! use rtcroom_store::{RecordWriter, Store, StoreOptions, WriterConfig};
//! use std::time::Duration;
//!
//! let store = Store::connect(Store::DEFAULT_URL, &StoreOptions::default()).await?;
//! store.migrate().await?;
//! // The shell's clock at start: the crash recovery runs behind last run's spooled records.
//! let started = rtcroom_core::Millis(1_700_000_000_000);
//! let cfg = WriterConfig { recover_at: Some(started), ..WriterConfig::default() };
//! let (writer, sink) = RecordWriter::start(store.clone(), cfg)?;
//! for r in records {
//!     // Never blocks and never drops while the writer runs.
//!     let _ = sink.try_send(r);
//! }
//! let ready = writer.stats().db_up; // and queue_depth, spooled, ... for metrics
//! # let _ = ready;
//! writer.shutdown(Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! **Invariant:** applying a batch of records twice leaves the same rows as applying it once
//! (see `apply`), which is what makes retries after a lost commit acknowledgement safe.
//! **Invariant:** records reach the database in the order the engine emitted them.

mod apply;
mod convert;
mod db;
mod dialect;
mod error;
mod journal;
mod line;
mod native;
mod read;
mod spool;
mod store;
mod writer;

pub use apply::Recovered;
pub use db::StoreOptions;
pub use error::StoreError;
pub use read::{
    ClientInfoRow, DaySubSession, QualityRow, QualitySummary, RowStream, SessionDetail, SessionRow,
    Stat, SubSessionDetail, SubSessionRow, TableCounts,
};
pub use store::{Backend, Schema, Store};
pub use writer::{
    DB_THREAD_NAME, RecordDropped, RecordSink, RecordWriter, WriterConfig, WriterStats,
};

//! Call records in the server: the database (`database`), the record writer and its watch
//! (`writer`), the read side for operators (`api`, and `rtcroom records`), and the daily
//! report (`daily`).
//!
//! The hub only ever calls `signaling::hub::RecordSink::push`, which never waits: the writer
//! of `rtcroom-store` batches records into the database, keeps them in memory and a spool
//! file while the database is away, and writes them when it returns.
//!
//! With `[database] url = "off"` there are no call records: no database is opened, no writer
//! runs, the hub's sink discards what the engine emits, and everything that reads records
//! answers [`RecordsOff`].

pub mod api;
pub mod daily;
pub mod database;
pub mod writer;

pub use database::{open, open_existing};

/// What every reader of records answers when they are off.
pub const OFF_MESSAGE: &str = "call records are off ([database] url = \"off\")";

/// A command or request that needs call records, while `[database] url = "off"`. The command
/// line exits with status 2 on it.
#[derive(Debug, thiserror::Error)]
#[error(
    "{OFF_MESSAGE}; to keep records, set [database] url (or RTCROOM_DATABASE_URL) to a database URL, or to \"\" for SQLite in data_dir"
)]
pub struct RecordsOff;

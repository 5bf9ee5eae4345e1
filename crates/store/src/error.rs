//! The store's error type, and which errors mean "the database is away, try later".

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong in the store or the record writer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL's scheme names no supported backend. Only the scheme is kept, so that a
    /// password in the URL never reaches a log.
    #[error(
        "unsupported database url scheme {0:?}: expected sqlite:, mysql://, mariadb:// or postgres://"
    )]
    UnsupportedUrl(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// From the record writer's own SQLite connection (`native`).
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    /// A stored value that this crate did not write (for example a negative duration).
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StoreError {
    /// True when the error says the database cannot be reached or is going away right now,
    /// so that the same write should simply be tried again later. False for errors that
    /// retrying cannot cure (a value the database refuses, a broken schema).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Timeout(_) => true,
            StoreError::Db(e) => sqlx_unavailable(e),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                sqlite_transient(e.extended_code as u32)
            }
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => sqlx_unavailable(e),
            _ => false,
        }
    }
}

fn sqlx_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                mysql_transient(my.number())
            } else if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres_transient(pg.code())
            } else {
                // SQLite reports its (extended) result code as a decimal string.
                db.code()
                    .and_then(|c| c.parse::<u32>().ok())
                    .is_some_and(sqlite_transient)
            }
        }
        _ => false,
    }
}

/// MySQL / MariaDB error numbers that describe the server's state rather than the
/// statement: too many connections, shutdown in progress, lock wait timeout, deadlock,
/// connection killed, read-only during failover, and the client-side "connection lost".
fn mysql_transient(number: u16) -> bool {
    matches!(
        number,
        1040 | 1053 | 1205 | 1213 | 1290 | 1836 | 1927 | 2002 | 2006 | 2013
    )
}

/// PostgreSQL SQLSTATEs of that kind: class 08 connection exception, 57P0x shutdown and
/// "cannot connect now", class 53 insufficient resources, serialization failure, deadlock.
fn postgres_transient(sqlstate: &str) -> bool {
    sqlstate.starts_with("08")
        || sqlstate.starts_with("57P")
        || sqlstate.starts_with("53")
        || sqlstate == "40001"
        || sqlstate == "40P01"
}

/// SQLite primary result codes of that kind (the low byte of an extended code): busy,
/// locked, I/O error, disk full, cannot open.
fn sqlite_transient(code: u32) -> bool {
    matches!(code & 0xff, 5 | 6 | 10 | 13 | 14)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_server_codes() {
        for n in [1053, 1927, 2013, 1213] {
            assert!(mysql_transient(n), "mysql {n}");
        }
        for n in [1062, 1406, 1146, 1064] {
            assert!(!mysql_transient(n), "mysql {n}");
        }
        for c in ["08006", "57P01", "53300", "40001", "40P01"] {
            assert!(postgres_transient(c), "postgres {c}");
        }
        for c in ["23505", "22001", "42P01", "22P05"] {
            assert!(!postgres_transient(c), "postgres {c}");
        }
        for c in [5, 517, 6, 10, 13, 14] {
            assert!(sqlite_transient(c), "sqlite {c}");
        }
        for c in [19, 2067, 1, 787] {
            assert!(!sqlite_transient(c), "sqlite {c}");
        }
    }
}

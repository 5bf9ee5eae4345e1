//! Call records in the server: the sink the hub pushes to, the database settings, and the
//! read side for operators (`rtcroom records ...` and `GET /api/records/...`).
//!
//! The hub only ever calls [`RecordSink::push`], which never waits: the writer of
//! `rtcroom-store` batches records into the database, keeps them in memory and a spool file
//! while the database is away, and writes them when it returns.
//!
//! With `[database] url = "off"` there are no call records: no database is opened, no writer
//! runs, the hub's sink discards what the engine emits, and everything that reads records
//! answers [`RecordsOff`].

use crate::http::AppState;
use anyhow::Context;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rtcroom_core::Record;
use rtcroom_store::{RecordWriter, Store, StoreOptions, WriterConfig};
use serde::Deserialize;
use std::path::Path as FsPath;
use std::time::Duration;

/// The `[database] url` that turns call records off.
pub const OFF: &str = "off";

/// What every reader of records answers when they are off.
pub const OFF_MESSAGE: &str = "call records are off ([database] url = \"off\")";

/// A command or request that needs call records, while `[database] url = "off"`. The command
/// line exits with status 2 on it.
#[derive(Debug, thiserror::Error)]
#[error(
    "{OFF_MESSAGE}; to keep records, set [database] url (or RTCROOM_DATABASE_URL) to a database URL, or to \"\" for SQLite in data_dir"
)]
pub struct RecordsOff;

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// `sqlite://PATH` (created), `mysql://user:pass@host/rtc_room_server`,
    /// `postgres://user@host/rtc_room_server`. Empty: SQLite in `data_dir/rtcroom.db`.
    /// `off`: no call records at all (signaling only).
    pub url: String,
    pub max_connections: u32,
    /// Records kept in memory while the database is away, before they go to the spool file.
    pub memory_records: usize,
    /// Records per transaction at most.
    pub batch_size: usize,
    /// Every this many seconds the open sessions and sub-sessions are stamped alive, and
    /// after a crash they are closed and billed up to their last stamp. 0: never.
    pub checkpoint_secs: u64,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 4,
            memory_records: 20_000,
            batch_size: 1_000,
            checkpoint_secs: 5,
        }
    }
}

impl DatabaseSection {
    /// Whether call records are off (`url = "off"`).
    pub fn is_off(&self) -> bool {
        self.url == OFF
    }

    /// Refuse spellings of "off" that would otherwise be taken for a database URL.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.is_off() && self.url.trim().eq_ignore_ascii_case(OFF) {
            anyhow::bail!(
                "[database] url {:?}: write \"off\" (lower case, no spaces) to turn call records off",
                self.url
            );
        }
        Ok(())
    }

    /// The URL to connect to.
    pub fn url(&self, data_dir: &FsPath) -> String {
        if self.url.is_empty() {
            format!("sqlite://{}", data_dir.join("rtcroom.db").display())
        } else {
            self.url.clone()
        }
    }
}

/// Connect and apply the migrations; [`RecordsOff`] when records are off.
pub async fn open(db: &DatabaseSection, data_dir: &FsPath) -> anyhow::Result<Store> {
    if db.is_off() {
        return Err(RecordsOff.into());
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create [server] data_dir {}", data_dir.display()))?;
    let url = db.url(data_dir);
    let opts = StoreOptions {
        max_connections: db.max_connections.max(1),
        ..StoreOptions::default()
    };
    let store = Store::connect(&url, &opts).await.with_context(|| {
        format!(
            "cannot open the call-record database ([database] url {})",
            redact(&url)
        )
    })?;
    store.migrate().await.with_context(|| {
        format!("cannot migrate the call-record database at {}: is it up, and may this user create tables?", redact(&url))
    })?;
    Ok(store)
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Start the writer; records spooled by an earlier run go first, then the rows that run left
/// open are closed as timed out.
pub fn start_writer(
    store: Store,
    db: &DatabaseSection,
    data_dir: &FsPath,
    prices: rtcroom_core::Prices,
) -> anyhow::Result<(RecordWriter, RecordSink)> {
    let cfg = WriterConfig {
        checkpoint: (db.checkpoint_secs > 0).then(|| Duration::from_secs(db.checkpoint_secs)),
        prices,
        memory_limit: db.memory_records.max(1),
        batch_size: db.batch_size.max(1),
        spool_dir: data_dir.join("spool"),
        recover_at: Some(crate::hub::now()),
        ..WriterConfig::default()
    };
    let (writer, sink) =
        RecordWriter::start(store, cfg).context("cannot start the record writer")?;
    Ok((writer, RecordSink { inner: Some(sink) }))
}

/// The hub's handle on the record writer. The default sink has no writer and discards every
/// record (call records off); it keeps nothing, so it grows no memory.
#[derive(Debug, Clone, Default)]
pub struct RecordSink {
    inner: Option<rtcroom_store::RecordSink>,
}

impl RecordSink {
    /// Hand one record over; never blocks, never drops while the writer runs. A record sent
    /// after the writer stopped is counted in its `dropped` and logged.
    pub fn push(&self, record: Record) {
        if let Some(sink) = &self.inner
            && sink.try_send(record).is_err()
        {
            tracing::error!(
                critical = true,
                "the record writer has stopped; a call record was dropped"
            );
        }
    }
}

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<u32>,
}

/// The answer of `/api/records/...` without a store, which only happens with records off:
/// 404, since this server has no records to find (a 5xx would look like an outage).
fn no_store() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"error": OFF_MESSAGE})),
    )
        .into_response()
}

fn failed(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"error": e.to_string()})),
    )
        .into_response()
}

/// `GET /api/records/member/{appId}/{uid}?limit=N`: a member's sessions with their
/// sub-sessions and quality summary, newest first.
pub async fn member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((app_id, uid)): Path<(String, String)>,
    Query(q): Query<Limit>,
) -> Response {
    if let Err(d) = crate::admin::authorize(&state, &headers) {
        return d.into_response();
    }
    let Some(store) = state.store.as_ref() else {
        return no_store();
    };
    match store
        .member_sessions(&app_id, &uid, q.limit.unwrap_or(50))
        .await
    {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => failed(e),
    }
}

/// `GET /api/records/session/{sessionId}`.
pub async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(d) = crate::admin::authorize(&state, &headers) {
        return d.into_response();
    }
    let Some(store) = state.store.as_ref() else {
        return no_store();
    };
    match store.session(&id).await {
        Ok(Some(s)) => Json(s).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "no such session"})),
        )
            .into_response(),
        Err(e) => failed(e),
    }
}

/// `GET /api/records/day/{YYYY-MM-DD}`: the day's sub-sessions (UTC) with their sessions and
/// quality summaries.
pub async fn day(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(date): Path<String>,
) -> Response {
    if let Err(d) = crate::admin::authorize(&state, &headers) {
        return d.into_response();
    }
    let Some(store) = state.store.as_ref() else {
        return no_store();
    };
    let Ok(day) = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d") else {
        return (StatusCode::BAD_REQUEST, "the date must be YYYY-MM-DD").into_response();
    };
    match store.day_sub_sessions(day).collect().await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => failed(e),
    }
}

/// Watch the writer: an alert when records start to pile up because the database is away,
/// and one when it is back.
pub fn watch(writer: std::sync::Arc<RecordWriter>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut down_since: Option<std::time::Instant> = None;
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let s = writer.stats();
            match (s.db_up, down_since) {
                (false, None) => {
                    down_since = Some(std::time::Instant::now());
                    tracing::error!(
                        critical = true,
                        queued = s.queue_depth,
                        "the call-record database is unreachable; records are kept and will be written when it returns"
                    );
                    crate::alerts::raise(
                        "[rtcroom] call-record database unreachable".into(),
                        format!(
                            "The room server cannot write call records. Calls go on; {} records are queued ({} in the spool file) and will be written when the database returns.\n",
                            s.queue_depth, s.spooled
                        ),
                    );
                }
                (true, Some(since)) => {
                    down_since = None;
                    tracing::info!(
                        after_secs = since.elapsed().as_secs(),
                        "the call-record database is back"
                    );
                    crate::alerts::raise(
                        "[rtcroom] call-record database is back".into(),
                        format!(
                            "Records are written again after {} s; {} still queued.\n",
                            since.elapsed().as_secs(),
                            s.queue_depth
                        ),
                    );
                }
                _ => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::DatabaseSection;

    #[test]
    fn off_is_spelled_one_way() {
        let db = |url: &str| DatabaseSection {
            url: url.into(),
            ..DatabaseSection::default()
        };
        assert!(db("off").is_off() && db("off").validate().is_ok());
        assert!(!db("").is_off() && db("").validate().is_ok());
        assert!(!db("sqlite://off.db").is_off());
        for near in ["OFF", "Off", " off"] {
            let e = db(near).validate().unwrap_err().to_string();
            assert!(e.contains("write \"off\""), "{near:?}: {e}");
        }
    }

    #[tokio::test]
    async fn nothing_opens_a_database_that_is_off() {
        let dir = std::env::temp_dir().join(format!("rtcroom-off-{}", std::process::id()));
        let db = DatabaseSection {
            url: "off".into(),
            ..DatabaseSection::default()
        };
        let e = super::open(&db, &dir).await.unwrap_err();
        assert!(e.is::<super::RecordsOff>(), "{e:#}");
        assert!(!dir.exists(), "not even the data directory is created");
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            super::redact("mysql://root:pw@127.0.0.1/db"),
            "mysql://root:***@127.0.0.1/db"
        );
        assert_eq!(super::redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}

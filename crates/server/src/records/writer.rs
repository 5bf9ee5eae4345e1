//! The record writer inside `rtcroom serve`: started over the store, watched for a database
//! that went away (alerts), and shut down within a bound.

use crate::config::DatabaseSection;
use crate::ops::alerts::{Alert, Alerts};
use crate::signaling::hub::RecordSink;
use anyhow::Context;
use rtcroom_store::{RecordWriter, Store, WriterConfig};
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

/// Start the writer; records spooled by an earlier run go first, then, when `recover`, the
/// rows that run left open are closed as timed out. A start that restored the rooms of a
/// graceful restart does not recover: the rows left open are exactly the calls it restored,
/// and the engine closes those of members who do not come back, at their last-heard time.
/// Unless `migrated`, the writer applies the migrations first, when the database answers.
pub fn start_writer(
    store: Store,
    db: &DatabaseSection,
    data_dir: &FsPath,
    prices: rtcroom_core::Prices,
    recover: bool,
    migrated: bool,
) -> anyhow::Result<(RecordWriter, RecordSink)> {
    let cfg = WriterConfig {
        checkpoint: (db.checkpoint_secs > 0).then(|| Duration::from_secs(db.checkpoint_secs)),
        prices,
        memory_limit: db.memory_records.max(1),
        batch_size: db.batch_size.max(1),
        spool_dir: data_dir.join("spool"),
        recover_at: recover.then(crate::clock::now),
        migrate: !migrated,
        ..WriterConfig::default()
    };
    let (writer, sink) =
        RecordWriter::start(store, cfg).context("cannot start the record writer")?;
    Ok((writer, RecordSink::new(sink)))
}

/// Watch the writer: an alert when records start to pile up because the database is away,
/// and one when it is back.
pub fn watch(writer: Arc<RecordWriter>, alerts: Alerts) -> tokio::task::JoinHandle<()> {
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
                    let since_start = if s.migrations_pending {
                        " It has not answered since the room server started: its migrations run when it answers, before the records are written."
                    } else {
                        ""
                    };
                    alerts.raise(Alert {
                        subject: "[rtcroom] call-record database unreachable".into(),
                        body: format!(
                            "The room server cannot write call records. Calls go on; {} records are queued ({} in the spool file) and will be written when the database returns.{since_start}\n",
                            s.queue_depth, s.spooled
                        ),
                    });
                }
                (true, Some(since)) => {
                    down_since = None;
                    tracing::info!(
                        after_secs = since.elapsed().as_secs(),
                        "the call-record database is back"
                    );
                    alerts.raise(Alert {
                        subject: "[rtcroom] call-record database is back".into(),
                        body: format!(
                            "Records are written again after {} s; {} still queued.\n",
                            since.elapsed().as_secs(),
                            s.queue_depth
                        ),
                    });
                }
                _ => {}
            }
        }
    })
}

/// The call-record side of `serve` while records are on.
pub struct Recording {
    pub store: Store,
    pub writer: Arc<RecordWriter>,
    /// The database watch (alerts).
    watcher: tokio::task::JoinHandle<()>,
    /// The hub's handle on `writer`.
    pub sink: RecordSink,
}

impl Recording {
    /// Open the database (an unreachable one is migrated later, see
    /// [`super::database::open_or_defer`]), start the writer and its watch; `recover`: see
    /// [`start_writer`].
    pub async fn start(
        db: &DatabaseSection,
        data_dir: &FsPath,
        alerts: Alerts,
        prices: rtcroom_core::Prices,
        recover: bool,
    ) -> anyhow::Result<Self> {
        let (store, migrated) = super::database::open_or_defer(db, data_dir).await?;
        let (writer, sink) = start_writer(store.clone(), db, data_dir, prices, recover, migrated)?;
        let writer = Arc::new(writer);
        let watcher = watch(writer.clone(), alerts);
        Ok(Self {
            store,
            writer,
            watcher,
            sink,
        })
    }

    /// The hub has stopped; write what is queued, within `bound`.
    pub async fn close(self, bound: Duration) {
        let Recording {
            store,
            writer,
            watcher,
            sink,
        } = self;
        drop(sink);
        watcher.abort();
        let _ = watcher.await;
        match Arc::try_unwrap(writer) {
            Ok(writer) => {
                let s = writer.shutdown(bound).await;
                if s.queue_depth > 0 {
                    tracing::warn!(
                        left = s.queue_depth,
                        spooled = s.spooled,
                        "records not yet written are in the spool and will be written at the next start"
                    );
                }
            }
            Err(_) => tracing::warn!(
                "the record writer is still shared at shutdown; queued records stay in the spool"
            ),
        }
        store.close().await;
    }
}

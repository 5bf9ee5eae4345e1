//! [`RecordWriter`]: takes records off the signaling path and into the database.
//!
//! Three parts, so that no step can hold up the one before it:
//! 1. [`RecordSink::try_send`] puts a record into an unbounded inbox (`inbox`) and returns
//!    at once. It never drops a record and never waits: the inbox's depth is counted, and
//!    its highest depth is reported ([`WriterStats::channel_high_water`]) so that an intake
//!    that falls behind is seen. Only a record sent after [`RecordWriter::shutdown`] is
//!    refused (and counted in `dropped`). Why unbounded rather than bounded and dropping
//!    or blocking: ARCHITECTURE.md, "Record intake". A record of a session, a sub-session
//!    or a client log wakes the intake thread at once; quality records wait up to
//!    [`WriterConfig::intake_tick`] and are taken together.
//! 2. The intake thread moves records from the inbox into the write-ahead journal (see
//!    `journal`: one `write` per burst, synced to disk within
//!    [`WriterConfig::journal_sync`]) and the in-memory queue and, when that holds more than
//!    [`WriterConfig::memory_limit`], spills the whole queue to the spool file. Every
//!    [`WriterConfig::checkpoint`] it queues a checkpoint, which stamps the open rows alive.
//!    It never touches the database.
//! 3. The database task takes the oldest records (the spool before memory) as one batch,
//!    writes the batch in one transaction, and only then lets go of it. A batch smaller
//!    than [`WriterConfig::batch_size`] is taken only after records had
//!    [`WriterConfig::batch_wait`] to gather, or [`WriterConfig::quality_wait`] while they
//!    are all quality records. While the database
//!    is away it keeps retrying the same batch with backoff, asks the intake side to spill
//!    what is in memory, and reports `db_up = false`.
//!
//! Order: the queue is one FIFO made of [the batch being written] [the spool] [memory], and
//! each part only ever holds records newer than the part before, so records reach the
//! database in the order they were sent. Exactly once: a batch is let go only after its
//! commit, and a commit whose acknowledgement was lost is applied again, which the
//! idempotent writes turn into a no-op. What a crash of this process loses: the records still
//! in the inbox (microseconds' worth, and for quality records up to `intake_tick`'s worth);
//! what a crash of the machine loses: what the journal
//! had not synced yet (at most about twice `journal_sync`). Everything else is in the
//! journal, the spool or the database, and the next start replays the journal.

mod db_task;
mod inbox;
mod intake;

use crate::apply::Item;
use crate::error::StoreError;
use crate::journal::Journal;
use crate::line::Entry;
use crate::spool::Spool;
use crate::store::Store;
use rtcroom_core::{Millis, Prices, Record};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Limits and timings of the writer; the defaults suit one server.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Records kept in memory before they are spilled to the spool file.
    pub memory_limit: usize,
    /// Records per transaction at most.
    pub batch_size: usize,
    /// How long the database task lets records gather in memory before it writes fewer
    /// than `batch_size` of them: a transaction costs the database about the same for one
    /// record as for hundreds (its commit writes every page it touched), so under a steady
    /// trickle one transaction per `batch_wait` is far cheaper than one per record. The
    /// records are in the journal meanwhile; this only delays when they are in the
    /// database. Zero: write whatever is there at once.
    pub batch_wait: Duration,
    /// How long the database task lets records gather, looking again every `batch_wait`,
    /// while every record waiting is a quality record; any other record (a checkpoint too)
    /// ends the wait at the next look. Under load each live sub-session's quality rows
    /// dirty one leaf page of the `sub_session_id` index of their own, written to the WAL
    /// once per transaction and again at the checkpoint: a transaction spanning several
    /// reports of each sub-session writes that page once for all of them
    /// (docs/benchmarks.md, "Cost per quality row: quality rows gathered for 3 s"). The
    /// records are in the journal meanwhile, so a crash loses none of them; only their
    /// arrival in the database is later. At most `batch_size` records still make one batch.
    pub quality_wait: Duration,
    /// How long a quality record may wait in the inbox before the intake thread takes it
    /// into the journal, with every other record that came meanwhile; a record of any other
    /// kind is taken at once. A crash of the process loses the quality records of the last
    /// tick at most.
    pub intake_tick: Duration,
    /// Where the spool lives (created if missing), e.g. `data/spool`.
    pub spool_dir: PathBuf,
    /// First and longest pause between retries while the database is away.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// A batch that takes longer than this counts as failed (the database hangs).
    pub write_timeout: Duration,
    /// How often an idle writer checks that the database is there, for `db_up`.
    pub health_interval: Duration,
    /// Queue [`Store::close_open_sessions`] at this time behind the records spooled by the
    /// previous run (so those are written first). Set it to the start time of the process.
    pub recover_at: Option<Millis>,
    /// How often the rows still open are stamped alive (`last_alive`), which restart
    /// recovery bills up to after a crash; `None`: never.
    pub checkpoint: Option<Duration>,
    /// How long an accepted record may be in the journal before it is synced to disk.
    pub journal_sync: Duration,
    /// A journal segment's size before the next begins.
    pub journal_segment_bytes: u64,
    /// What the recovery bills a sub-session it closes (the engine's prices).
    pub prices: Prices,
    /// Apply [`Store::migrate`] before the first write: the caller could not, because the
    /// database was unreachable when it started. The database task retries it with backoff
    /// while the database is away; records wait in the spool meanwhile, as in any outage.
    pub migrate: bool,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            memory_limit: 20_000,
            batch_size: 6_000,
            batch_wait: Duration::from_millis(100),
            quality_wait: Duration::from_secs(3),
            intake_tick: Duration::from_millis(10),
            spool_dir: PathBuf::from("data/spool"),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            health_interval: Duration::from_secs(10),
            recover_at: None,
            checkpoint: Some(Duration::from_secs(5)),
            journal_sync: Duration::from_millis(250),
            journal_segment_bytes: 16 << 20,
            prices: Prices::default(),
            migrate: false,
        }
    }
}

/// Counters for metrics and readiness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriterStats {
    /// Records accepted and not yet in the database (channel, memory, spool, in flight).
    pub queue_depth: u64,
    /// Records in the spool file now.
    pub spooled: u64,
    /// Records ever spilled to the spool file.
    pub spilled_total: u64,
    /// Records written to the database.
    pub written: u64,
    /// Failed write attempts (each retry counts).
    pub write_errors: u64,
    /// Records refused by `try_send` because the writer had stopped (never while it runs).
    pub dropped: u64,
    /// The most records the channel has held at once since start: the intake thread's lag.
    pub channel_high_water: u64,
    /// Records the database refused for their content, moved to `rejected.jsonl`.
    pub rejected: u64,
    /// Whether the last write or health check reached the database.
    pub db_up: bool,
    /// The migrations have not been applied yet ([`WriterConfig::migrate`]): the database has
    /// not answered since the writer started.
    pub migrations_pending: bool,
}

/// `try_send` could not take the record: the writer has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the record writer has stopped; the record was dropped")]
pub struct RecordDropped;

#[allow(
    clippy::large_enum_variant,
    reason = "nearly every message is a record; boxing would allocate once per record"
)]
enum Msg {
    Record(Record),
    Stop,
}

#[derive(Debug, Default)]
struct Counters {
    spilled_total: AtomicU64,
    written: AtomicU64,
    write_errors: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    /// Records taken by the database task and not yet committed.
    in_flight: AtomicU64,
    /// Records the intake thread has taken out of the inbox and not yet queued.
    intake_buffered: AtomicU64,
    /// Records sent into the inbox, and taken out of it by the intake thread.
    sent: AtomicU64,
    taken: AtomicU64,
    channel_high_water: AtomicU64,
    db_up: AtomicBool,
    migrations_pending: AtomicBool,
}

#[derive(Debug)]
struct Queue {
    mem: VecDeque<Entry>,
    spool: Spool,
    journal: Journal,
    /// The sequence number the next entry gets.
    next_seq: u64,
    /// The first sequence number of the batch the database task took from memory, until it
    /// is committed or spooled.
    in_flight_seq: Option<u64>,
    /// The intake thread has stopped: nothing more will arrive.
    intake_done: bool,
    /// What the database task waits for, which says when the intake thread wakes it.
    db_waits: DbWaits,
}

/// What the database task is waiting for in memory (it also wakes for the spool and for
/// the intake's end). Waking it for less would only put it to sleep again: at 2,000 records
/// a second a wake-up per intake burst cost about as much as writing the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DbWaits {
    /// It is busy; it looks at the queue when it is done.
    Nothing,
    /// Any record: it was idle with nothing to write.
    Any,
    /// A full batch: it lets records gather for `batch_wait`.
    Batch,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the database task: records it waits for arrived ([`DbWaits`]), or the intake
    /// stopped.
    work: Notify,
    counters: Counters,
    memory_limit: usize,
    batch_size: usize,
}

impl Queue {
    /// The lowest sequence number that is only in memory (and the journal); every entry
    /// below it is in the database or the spool, so the journal may let go of it.
    fn low_water(&self) -> u64 {
        let mem = self.mem.front().map_or(self.next_seq, |e| e.seq);
        self.in_flight_seq.map_or(mem, |s| s.min(mem))
    }

    fn release_journal(&mut self) {
        let low = self.low_water();
        self.journal.release(low);
    }

    /// Whether what the queue holds now is what the database task waits for; if so it is
    /// told once (it says again what it waits for when it next waits).
    fn db_wants_waking(&mut self, batch_size: usize) -> bool {
        let wake = self.intake_done
            || !self.spool.all_taken()
            || match self.db_waits {
                DbWaits::Nothing => false,
                DbWaits::Any => !self.mem.is_empty(),
                DbWaits::Batch => self.mem.len() >= batch_size,
            };
        if wake {
            self.db_waits = DbWaits::Nothing;
        }
        wake
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves a consistent queue (every change is one
        // call), so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves everything in memory to the spool. On failure the records stay in memory and
    /// false is returned.
    fn spill(&self, q: &mut Queue) -> bool {
        if q.mem.is_empty() {
            return true;
        }
        let items: Vec<Entry> = q.mem.iter().cloned().collect();
        match q.spool.append(&items) {
            Ok(()) => {
                q.mem.clear();
                q.release_journal();
                self.counters
                    .spilled_total
                    .fetch_add(items.len() as u64, Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot spill records to the spool");
                false
            }
        }
    }

    fn reject(&self, item: &Entry, reason: &str) {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            reason,
            "the database refused a record; kept in rejected.jsonl"
        );
        if let Err(e) = self.lock().spool.reject(item, reason) {
            tracing::error!(error = %e, "cannot keep a refused record");
        }
    }
}

/// The sending side, for the engine shell. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RecordSink {
    tx: Arc<Tx>,
    shared: Arc<Shared>,
}

/// The inbox's sending end, shared by the sinks and the writer: when the last one goes, the
/// intake thread takes what was sent and stops, as a channel's receiver would.
#[derive(Debug)]
struct Tx(Arc<inbox::Inbox>);

impl Drop for Tx {
    fn drop(&mut self) {
        let _ = self.0.send(Msg::Stop);
    }
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Record(r) => r.fmt(f),
            Msg::Stop => f.write_str("Stop"),
        }
    }
}

impl RecordSink {
    /// Queues a record; never blocks, never waits for the database, never drops while the
    /// writer runs (the channel is unbounded; its depth is watched instead).
    pub fn try_send(&self, record: Record) -> Result<(), RecordDropped> {
        let c = &self.shared.counters;
        let depth = (c.sent.fetch_add(1, Ordering::Relaxed) + 1)
            .saturating_sub(c.taken.load(Ordering::Relaxed));
        c.channel_high_water.fetch_max(depth, Ordering::Relaxed);
        self.tx.0.send(Msg::Record(record)).map_err(|_| {
            c.sent.fetch_sub(1, Ordering::Relaxed);
            c.dropped.fetch_add(1, Ordering::Relaxed);
            RecordDropped
        })
    }
}

/// The running writer: its counters, and [`RecordWriter::shutdown`].
#[derive(Debug)]
pub struct RecordWriter {
    shared: Arc<Shared>,
    tx: Arc<Tx>,
    intake: Option<std::thread::JoinHandle<()>>,
    db_task: Option<DbTask>,
    /// Tells the database task to finish by this instant.
    stop: Arc<StopSignal>,
}

/// Where the database task runs: for a SQLite file, a thread of its own (`rtcroom-rec-db`)
/// that owns the writer's connection, so that all of the writer's work is on two named
/// threads; for MySQL and PostgreSQL, a task on the caller's runtime (their connections
/// belong to it).
#[derive(Debug)]
enum DbTask {
    Thread(std::thread::JoinHandle<()>),
    Task(tokio::task::JoinHandle<()>),
}

/// The name of the database thread of a SQLite writer (at most 15 bytes, Linux's limit).
pub const DB_THREAD_NAME: &str = "rtcroom-rec-db";

#[derive(Debug, Default)]
struct StopSignal {
    deadline: Mutex<Option<Instant>>,
    notify: Notify,
}

impl StopSignal {
    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A batch the database task holds until it is committed.
#[derive(Debug)]
struct Batch {
    items: Vec<Entry>,
    /// Where it came from: the spool (commit up to `end`, `lines` lines) or memory.
    spool: Option<(u64, u64)>,
}

impl RecordWriter {
    /// Opens the spool (records a previous run left there are written first), then starts
    /// the intake thread and the database task on the current tokio runtime.
    pub fn start(
        store: Store,
        cfg: WriterConfig,
    ) -> Result<(RecordWriter, RecordSink), StoreError> {
        let mut spool = Spool::open(&cfg.spool_dir)?;
        let (journal, last_seq) =
            Journal::open(&cfg.spool_dir, &mut spool, cfg.journal_segment_bytes)?;
        if spool.pending() > 0 {
            tracing::info!(
                records = spool.pending(),
                "records from a previous run are in the spool and will be written first"
            );
        }
        let mut next_seq = last_seq + 1;
        let mut mem = VecDeque::new();
        if let Some(now) = cfg.recover_at {
            // Not journaled: a crash before it is written makes the next start queue its own.
            mem.push_back(Entry {
                seq: next_seq,
                item: Item::CloseOpen(now),
            });
            next_seq += 1;
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                mem,
                spool,
                journal,
                next_seq,
                in_flight_seq: None,
                intake_done: false,
                db_waits: DbWaits::Nothing,
            }),
            work: Notify::new(),
            // The caller has just connected to (and migrated) the store: count it up until the
            // first check says otherwise, so that readiness is right from the start. A store
            // the caller could not migrate was unreachable.
            counters: Counters {
                db_up: AtomicBool::new(!cfg.migrate),
                migrations_pending: AtomicBool::new(cfg.migrate),
                ..Counters::default()
            },
            memory_limit: cfg.memory_limit.max(1),
            batch_size: cfg.batch_size.max(1),
        });
        let inbox = Arc::new(inbox::Inbox::new());
        let tx = Arc::new(Tx(Arc::clone(&inbox)));
        let intake = {
            let shared = Arc::clone(&shared);
            let timing = intake::Timing {
                journal_sync: cfg.journal_sync.max(Duration::from_millis(1)),
                checkpoint: cfg.checkpoint.filter(|d| !d.is_zero()),
                tick: cfg.intake_tick,
            };
            std::thread::Builder::new()
                .name("rtcroom-records".into())
                .spawn(move || intake::intake(&inbox, &shared, timing))
                .map_err(|source| StoreError::Io {
                    path: cfg.spool_dir.clone(),
                    source,
                })?
        };
        let stop = Arc::new(StopSignal::default());
        let spool_dir = cfg.spool_dir.clone();
        let own_thread = store.sqlite_file().is_some();
        let task = db_task::db_loop(
            store,
            Arc::clone(&shared),
            cfg,
            Arc::clone(&stop),
            own_thread,
        );
        let db_task = if own_thread {
            // Its own single-threaded runtime: the loop's waits and timers, and the few
            // calls that stay on sqlx (migrations, the restart recovery).
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .thread_name(DB_THREAD_NAME)
                .build()
                .map_err(|source| StoreError::Io {
                    path: spool_dir.clone(),
                    source,
                })?;
            let thread = std::thread::Builder::new()
                .name(DB_THREAD_NAME.into())
                .spawn(move || rt.block_on(task))
                .map_err(|source| StoreError::Io {
                    path: spool_dir,
                    source,
                })?;
            DbTask::Thread(thread)
        } else {
            DbTask::Task(tokio::spawn(task))
        };
        let sink = RecordSink {
            tx: Arc::clone(&tx),
            shared: Arc::clone(&shared),
        };
        Ok((
            RecordWriter {
                shared,
                tx,
                intake: Some(intake),
                db_task: Some(db_task),
                stop,
            },
            sink,
        ))
    }

    pub fn stats(&self) -> WriterStats {
        stats(&self.shared)
    }

    /// Stops taking records, writes what is queued for up to `grace`, and leaves whatever
    /// could not be written (the database is away) in the spool for the next start.
    /// Records sent after this call are dropped.
    pub async fn shutdown(mut self, grace: Duration) -> WriterStats {
        // The inbox is FIFO: every record sent before this marker is taken in.
        let _ = self.tx.0.send(Msg::Stop);
        if let Some(h) = self.intake.take() {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        *self.stop.deadline.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Instant::now() + grace);
        self.stop.notify.notify_one();
        self.shared.work.notify_one();
        match self.db_task.take() {
            Some(DbTask::Task(t)) => {
                if let Err(e) = t.await {
                    tracing::error!(error = %e, "the record writer task failed");
                }
            }
            Some(DbTask::Thread(t)) => {
                if let Ok(Err(_)) = tokio::task::spawn_blocking(move || t.join()).await {
                    tracing::error!("the record writer's database thread panicked");
                }
            }
            None => {}
        }
        {
            // Everything is in the database or the spool: the journal has nothing to add.
            let mut q = self.shared.lock();
            if q.mem.is_empty() && q.in_flight_seq.is_none() {
                q.journal.remove_all();
            }
        }
        stats(&self.shared)
    }
}

impl Drop for RecordWriter {
    /// A writer dropped without [`RecordWriter::shutdown`]: its database thread stops at
    /// once, leaving what it has not written in the spool (a task on the caller's runtime
    /// ends with that runtime).
    fn drop(&mut self) {
        if let Some(DbTask::Thread(_)) = self.db_task {
            *self.stop.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            self.stop.notify.notify_one();
            self.shared.work.notify_one();
        }
    }
}

fn stats(shared: &Shared) -> WriterStats {
    let c = &shared.counters;
    let (mem, spooled) = {
        let q = shared.lock();
        (q.mem.len() as u64, q.spool.pending())
    };
    let channel = c
        .sent
        .load(Ordering::Relaxed)
        .saturating_sub(c.taken.load(Ordering::Relaxed));
    let in_flight = c.in_flight.load(Ordering::Relaxed);
    let buffered = c.intake_buffered.load(Ordering::Relaxed);
    WriterStats {
        // Records in flight from the spool are still counted in `spooled`.
        queue_depth: channel + buffered + mem + spooled + in_flight,
        spooled,
        spilled_total: c.spilled_total.load(Ordering::Relaxed),
        written: c.written.load(Ordering::Relaxed),
        write_errors: c.write_errors.load(Ordering::Relaxed),
        dropped: c.dropped.load(Ordering::Relaxed),
        channel_high_water: c.channel_high_water.load(Ordering::Relaxed),
        rejected: c.rejected.load(Ordering::Relaxed),
        db_up: c.db_up.load(Ordering::Relaxed),
        migrations_pending: c.migrations_pending.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(dir: &std::path::Path, records: u64) -> Queue {
        let mut spool = Spool::open(dir).unwrap();
        let (journal, _) = Journal::open(dir, &mut spool, 1 << 20).unwrap();
        let mem = (0..records)
            .map(|seq| Entry {
                seq,
                item: Item::Checkpoint(Millis(seq)),
            })
            .collect();
        Queue {
            mem,
            spool,
            journal,
            next_seq: records,
            in_flight_seq: None,
            intake_done: false,
            db_waits: DbWaits::Nothing,
        }
    }

    /// The database task is woken for what it waits for, once: a busy task never, an idle
    /// one by the first record, a gathering one by a full batch only.
    #[test]
    fn the_database_task_is_woken_only_for_what_it_waits_for() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = queue(dir.path(), 3);
        assert!(!q.db_wants_waking(4), "woken while busy");
        q.db_waits = DbWaits::Batch;
        assert!(!q.db_wants_waking(4), "woken for less than a batch");
        q.mem.push_back(Entry {
            seq: 3,
            item: Item::Checkpoint(Millis(3)),
        });
        assert!(q.db_wants_waking(4), "not woken for a full batch");
        assert!(!q.db_wants_waking(4), "woken twice for one wait");
        q.db_waits = DbWaits::Any;
        assert!(q.db_wants_waking(4), "an idle task not woken for records");
        q.intake_done = true;
        assert!(q.db_wants_waking(4), "not told that the intake stopped");
    }
}

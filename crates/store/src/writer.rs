//! [`RecordWriter`]: takes records off the signaling path and into the database.
//!
//! Three parts, so that no step can hold up the one before it:
//! 1. [`RecordSink::try_send`] puts a record into an unbounded channel and returns at once.
//!    It never drops a record and never waits: the channel's depth is counted, and its
//!    highest depth is reported ([`WriterStats::channel_high_water`]) so that an intake
//!    that falls behind is seen. Only a record sent after [`RecordWriter::shutdown`] is
//!    refused (and counted in `dropped`). Why unbounded rather than bounded and dropping
//!    or blocking: ARCHITECTURE.md, "Record intake".
//! 2. The intake thread moves records from the channel into the write-ahead journal (see
//!    `journal`: one `write` per burst, synced to disk within
//!    [`WriterConfig::journal_sync`]) and the in-memory queue and, when that holds more than
//!    [`WriterConfig::memory_limit`], spills the whole queue to the spool file. Every
//!    [`WriterConfig::checkpoint`] it queues a checkpoint, which stamps the open rows alive.
//!    It never touches the database.
//! 3. The database task takes the oldest records (the spool before memory) as one batch,
//!    writes the batch in one transaction, and only then lets go of it. While the database
//!    is away it keeps retrying the same batch with backoff, asks the intake side to spill
//!    what is in memory, and reports `db_up = false`.
//!
//! Order: the queue is one FIFO made of [the batch being written] [the spool] [memory], and
//! each part only ever holds records newer than the part before, so records reach the
//! database in the order they were sent. Exactly once: a batch is let go only after its
//! commit, and a commit whose acknowledgement was lost is applied again, which the
//! idempotent writes turn into a no-op. What a crash of this process loses: the records still
//! in the channel (microseconds' worth); what a crash of the machine loses: what the journal
//! had not synced yet (at most about twice `journal_sync`). Everything else is in the
//! journal, the spool or the database, and the next start replays the journal.

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
use std::sync::mpsc;
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
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            memory_limit: 20_000,
            batch_size: 1_000,
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
    /// Records the intake thread has taken off the channel and not yet queued.
    intake_buffered: AtomicU64,
    /// Records sent into the channel, and taken out of it by the intake thread.
    sent: AtomicU64,
    taken: AtomicU64,
    channel_high_water: AtomicU64,
    db_up: AtomicBool,
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
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the database task: records arrived, or the intake stopped.
    work: Notify,
    counters: Counters,
    memory_limit: usize,
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
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
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
        self.tx.send(Msg::Record(record)).map_err(|_| {
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
    tx: mpsc::Sender<Msg>,
    intake: Option<std::thread::JoinHandle<()>>,
    db_task: tokio::task::JoinHandle<()>,
    /// Tells the database task to finish by this instant.
    stop: Arc<StopSignal>,
}

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
            }),
            work: Notify::new(),
            // The caller has just connected to (and migrated) the store: count it up until the
            // first check says otherwise, so that readiness is right from the start.
            counters: Counters {
                db_up: AtomicBool::new(true),
                ..Counters::default()
            },
            memory_limit: cfg.memory_limit.max(1),
        });
        let (tx, rx) = mpsc::channel();
        let intake = {
            let shared = Arc::clone(&shared);
            let timing = Timing {
                journal_sync: cfg.journal_sync.max(Duration::from_millis(1)),
                checkpoint: cfg.checkpoint.filter(|d| !d.is_zero()),
            };
            std::thread::Builder::new()
                .name("rtcroom-records".into())
                .spawn(move || intake(rx, &shared, timing))
                .map_err(|source| StoreError::Io {
                    path: cfg.spool_dir.clone(),
                    source,
                })?
        };
        let stop = Arc::new(StopSignal::default());
        let db_task = tokio::spawn(db_loop(store, Arc::clone(&shared), cfg, Arc::clone(&stop)));
        let sink = RecordSink {
            tx: tx.clone(),
            shared: Arc::clone(&shared),
        };
        Ok((
            RecordWriter {
                shared,
                tx,
                intake: Some(intake),
                db_task,
                stop,
            },
            sink,
        ))
    }

    pub fn stats(&self) -> WriterStats {
        stats(&self.shared, &self.tx)
    }

    /// Stops taking records, writes what is queued for up to `grace`, and leaves whatever
    /// could not be written (the database is away) in the spool for the next start.
    /// Records sent after this call are dropped.
    pub async fn shutdown(mut self, grace: Duration) -> WriterStats {
        // The channel is FIFO: every record sent before this marker is taken in.
        let _ = self.tx.send(Msg::Stop);
        if let Some(h) = self.intake.take() {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        *self.stop.deadline.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Instant::now() + grace);
        self.stop.notify.notify_one();
        self.shared.work.notify_one();
        if let Err(e) = (&mut self.db_task).await {
            tracing::error!(error = %e, "the record writer task failed");
        }
        {
            // Everything is in the database or the spool: the journal has nothing to add.
            let mut q = self.shared.lock();
            if q.mem.is_empty() && q.in_flight_seq.is_none() {
                q.journal.remove_all();
            }
        }
        stats(&self.shared, &self.tx)
    }
}

fn stats(shared: &Shared, _tx: &mpsc::Sender<Msg>) -> WriterStats {
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
    }
}

/// The intake thread's clocks.
#[derive(Debug, Clone, Copy)]
struct Timing {
    journal_sync: Duration,
    checkpoint: Option<Duration>,
}

/// The server's clock, for checkpoints (this crate is a shell: it may read the clock).
fn wall_clock() -> Millis {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// The intake thread: channel → journal and memory, spilling to the spool above the memory
/// limit; a checkpoint every `checkpoint`; the journal synced every `journal_sync`.
fn intake(rx: mpsc::Receiver<Msg>, shared: &Shared, timing: Timing) {
    use std::time::Instant;
    let mut buf = Vec::new();
    let mut stop = false;
    // After a failed spill, the next try waits until memory has grown by another quarter
    // of the limit, rather than rewriting the whole queue for every record.
    let mut spill_at = shared.memory_limit;
    let mut last_sync = Instant::now();
    let mut next_checkpoint = timing.checkpoint.map(|d| Instant::now() + d);
    while !stop {
        let wait = next_checkpoint.map_or(timing.journal_sync, |at| {
            at.saturating_duration_since(Instant::now())
                .min(timing.journal_sync)
        });
        match rx.recv_timeout(wait) {
            Ok(Msg::Record(r)) => buf.push(Item::Record(r)),
            Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => stop = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        // Take whatever else is waiting, to lock once per burst rather than per record.
        while !stop && buf.len() < 4096 {
            match rx.try_recv() {
                Ok(Msg::Record(r)) => buf.push(Item::Record(r)),
                Ok(Msg::Stop) => stop = true,
                Err(_) => break,
            }
        }
        let c = &shared.counters;
        c.taken.fetch_add(buf.len() as u64, Ordering::Relaxed);
        c.intake_buffered.store(buf.len() as u64, Ordering::Relaxed);
        let checkpoint = match (next_checkpoint, timing.checkpoint) {
            (Some(at), Some(every)) if Instant::now() >= at && !stop => {
                next_checkpoint = Some(Instant::now() + every);
                true
            }
            _ => false,
        };
        let mut q = shared.lock();
        // One checkpoint waiting is enough: a newer one adds nothing until it is written.
        if checkpoint
            && !matches!(
                q.mem.back(),
                Some(Entry {
                    item: Item::Checkpoint(_),
                    ..
                })
            )
        {
            buf.push(Item::Checkpoint(wall_clock()));
        }
        let mut entries = Vec::with_capacity(buf.len());
        for item in buf.drain(..) {
            entries.push(Entry {
                seq: q.next_seq,
                item,
            });
            q.next_seq += 1;
        }
        if let Err(e) = q.journal.append(&entries) {
            // The records are still queued; only a crash before they are written loses them.
            tracing::error!(error = %e, "cannot write the record journal");
        }
        for entry in entries {
            if q.mem.len() >= spill_at {
                spill_at = if shared.spill(&mut q) {
                    shared.memory_limit
                } else {
                    // Memory grows past its limit rather than drop a record; the queue
                    // depth shows it.
                    q.mem.len() + shared.memory_limit.div_ceil(4)
                };
            }
            q.mem.push_back(entry);
        }
        q.intake_done = stop;
        let to_sync = if stop || last_sync.elapsed() >= timing.journal_sync {
            q.journal.take_unsynced()
        } else {
            None
        };
        drop(q);
        c.intake_buffered.store(0, Ordering::Relaxed);
        shared.work.notify_one();
        if let Some(f) = to_sync {
            if let Err(e) = f.sync_data() {
                tracing::error!(error = %e, "cannot sync the record journal");
            }
            last_sync = Instant::now();
        }
    }
}

/// Takes the oldest records: from the spool while it has any, else from memory.
fn take_batch(shared: &Shared, max: usize) -> Result<Option<Batch>, StoreError> {
    let mut q = shared.lock();
    if !q.spool.all_taken() {
        let b = q.spool.take(max)?;
        return Ok(Some(Batch {
            items: b.items,
            spool: Some((b.end, b.lines)),
        }));
    }
    if q.mem.is_empty() {
        return Ok(None);
    }
    let n = q.mem.len().min(max);
    let items: Vec<Entry> = q.mem.drain(..n).collect();
    q.in_flight_seq = items.first().map(|e| e.seq);
    shared
        .counters
        .in_flight
        .store(items.len() as u64, Ordering::Relaxed);
    Ok(Some(Batch { items, spool: None }))
}

enum Outcome {
    Written,
    /// The database is away; the batch (possibly shortened) must be retried.
    Retry(Batch),
}

async fn write_batch(store: &Store, shared: &Shared, cfg: &WriterConfig, batch: Batch) -> Outcome {
    let res = match tokio::time::timeout(
        cfg.write_timeout,
        store.apply_items(&batch.items, &cfg.prices),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(StoreError::Timeout(cfg.write_timeout)),
    };
    let err = match res {
        Ok(()) => {
            shared
                .counters
                .written
                .fetch_add(count_records(&batch.items), Ordering::Relaxed);
            return Outcome::Written;
        }
        Err(e) => e,
    };
    shared.counters.write_errors.fetch_add(1, Ordering::Relaxed);
    if err.is_unavailable() || !reachable(store, cfg).await {
        tracing::warn!(error = %err, records = batch.items.len(), "record batch not written; will retry");
        return Outcome::Retry(batch);
    }
    // The database is there and refused the batch for its content: find the records it
    // refuses by writing them one at a time, keep those aside, write the rest.
    tracing::warn!(error = %err, "the database refused a record batch; writing it record by record");
    let Batch { items, spool } = batch;
    for (i, item) in items.iter().enumerate() {
        let one = std::slice::from_ref(item);
        let res = match tokio::time::timeout(cfg.write_timeout, store.apply_items(one, &cfg.prices))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(StoreError::Timeout(cfg.write_timeout)),
        };
        match res {
            Ok(()) => {
                shared
                    .counters
                    .written
                    .fetch_add(count_records(one), Ordering::Relaxed);
            }
            Err(e) if e.is_unavailable() || !reachable(store, cfg).await => {
                shared.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                return Outcome::Retry(Batch {
                    items: items[i..].to_vec(),
                    spool,
                });
            }
            Err(e) => shared.reject(item, &e.to_string()),
        }
    }
    Outcome::Written
}

/// Records among `items` (the recovery item is not a record).
fn count_records(items: &[Entry]) -> u64 {
    items
        .iter()
        .filter(|e| matches!(e.item, Item::Record(_)))
        .count() as u64
}

async fn reachable(store: &Store, cfg: &WriterConfig) -> bool {
    matches!(
        tokio::time::timeout(cfg.write_timeout, store.ping()).await,
        Ok(Ok(()))
    )
}

/// Lets go of a written batch: commits the spool offset for a spool batch.
fn release(shared: &Shared, batch_spool: Option<(u64, u64)>) {
    match batch_spool {
        Some((end, lines)) => {
            if let Err(e) = shared.lock().spool.commit(end, lines) {
                // The records are in the database; an old offset only means they are
                // applied again after a restart, which changes nothing.
                tracing::error!(error = %e, "cannot record the spool's progress");
            }
        }
        None => {
            shared.counters.in_flight.store(0, Ordering::Relaxed);
            let mut q = shared.lock();
            q.in_flight_seq = None;
            q.release_journal();
        }
    }
}

async fn db_loop(store: Store, shared: Arc<Shared>, cfg: WriterConfig, stop: Arc<StopSignal>) {
    let up = reachable(&store, &cfg).await;
    shared.counters.db_up.store(up, Ordering::Relaxed);
    let mut held: Option<Batch> = None;
    let mut backoff = cfg.retry_min;
    loop {
        let batch = match held.take() {
            Some(b) => b,
            None => {
                if stop.deadline().is_some_and(|dl| Instant::now() >= dl) {
                    // Out of time with records left: memory goes to the spool, the rest
                    // of the spool stays where it is, for the next start.
                    let mut q = shared.lock();
                    let _ = shared.spill(&mut q);
                    return;
                }
                let sh = Arc::clone(&shared);
                let max = cfg.batch_size.max(1);
                let taken = tokio::task::spawn_blocking(move || take_batch(&sh, max))
                    .await
                    .unwrap_or_else(|e| {
                        Err(StoreError::Corrupt(format!("spool reader panicked: {e}")))
                    });
                match taken {
                    Ok(Some(b)) => b,
                    Ok(None) => {
                        if shared.lock().intake_done && stop.deadline().is_some() {
                            return;
                        }
                        idle(&store, &shared, &cfg).await;
                        continue;
                    }
                    Err(e) => {
                        // The spool cannot be read (disk trouble): wait and try again,
                        // never skip past records.
                        tracing::error!(error = %e, "cannot read the record spool");
                        if pause(&stop, backoff).await {
                            return;
                        }
                        backoff = (backoff * 2).min(cfg.retry_max);
                        continue;
                    }
                }
            }
        };
        let spool_pos = batch.spool;
        match write_batch(&store, &shared, &cfg, batch).await {
            Outcome::Written => {
                shared.counters.db_up.store(true, Ordering::Relaxed);
                release(&shared, spool_pos);
                backoff = cfg.retry_min;
            }
            Outcome::Retry(b) => {
                shared.counters.db_up.store(false, Ordering::Relaxed);
                // While the database is away, what is in memory goes to disk, where it
                // survives a restart of this process: the held batch first (it is the
                // oldest), then the rest of memory behind whatever is spooled already.
                let sh = Arc::clone(&shared);
                let b = tokio::task::spawn_blocking(move || to_spool(&sh, b))
                    .await
                    .unwrap_or(None);
                if pause(&stop, backoff).await {
                    if let Some(b) = b {
                        persist_held(&shared, b);
                    } else {
                        let mut q = shared.lock();
                        let _ = shared.spill(&mut q);
                    }
                    return;
                }
                held = b;
                backoff = (backoff * 2).min(cfg.retry_max);
            }
        }
    }
}

/// Waits for new records or, after the health interval, checks the database.
async fn idle(store: &Store, shared: &Shared, cfg: &WriterConfig) {
    if tokio::time::timeout(cfg.health_interval, shared.work.notified())
        .await
        .is_err()
    {
        let up = reachable(store, cfg).await;
        shared.counters.db_up.store(up, Ordering::Relaxed);
    }
}

/// Sleeps `d`, or until the shutdown deadline; true if the deadline has passed.
async fn pause(stop: &StopSignal, d: Duration) -> bool {
    let wake = Instant::now() + d;
    loop {
        let deadline = stop.deadline();
        if deadline.is_some_and(|dl| Instant::now() >= dl) {
            return true;
        }
        let until = deadline.map_or(wake, |dl| dl.min(wake));
        tokio::select! {
            () = tokio::time::sleep_until(until) => {
                if Instant::now() >= wake {
                    return stop.deadline().is_some_and(|dl| Instant::now() >= dl);
                }
            }
            () = stop.notify.notified() => {}
        }
    }
}

/// Spills memory and, for a batch taken from memory, puts the batch in front of the spool
/// so the next take reads it back first. Returns the batch if it must still be held: a
/// spool batch (its lines stay in the file until committed), or a memory batch the spool
/// could not take.
fn to_spool(shared: &Shared, batch: Batch) -> Option<Batch> {
    let mut q = shared.lock();
    let _ = shared.spill(&mut q);
    if batch.spool.is_some() {
        return Some(batch);
    }
    match q.spool.prepend(&batch.items) {
        Ok(()) => {
            shared.counters.in_flight.store(0, Ordering::Relaxed);
            q.in_flight_seq = None;
            q.release_journal();
            shared
                .counters
                .spilled_total
                .fetch_add(batch.items.len() as u64, Ordering::Relaxed);
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot spool a held record batch; keeping it in memory");
            Some(batch)
        }
    }
}

/// At shutdown with the database away: the held batch and memory go to the spool, in
/// order, for the next start.
fn persist_held(shared: &Shared, batch: Batch) {
    let mut q = shared.lock();
    let _ = shared.spill(&mut q);
    if batch.spool.is_none() {
        // A batch from memory is older than everything spilled since it was taken.
        match q.spool.prepend(&batch.items) {
            Ok(()) => {
                shared.counters.in_flight.store(0, Ordering::Relaxed);
                q.in_flight_seq = None;
            }
            Err(e) => tracing::error!(
                error = %e,
                records = batch.items.len(),
                "cannot keep unwritten records in the spool; they are lost"
            ),
        }
    }
    // A batch from the spool is still in the file: its offset was never committed.
}

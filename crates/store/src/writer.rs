//! [`RecordWriter`]: takes records off the signaling path and into the database.
//!
//! Three parts, so that no step can hold up the one before it:
//! 1. [`RecordSink::try_send`] puts a record into a bounded channel and returns at once; a
//!    full channel drops the record and counts it (the only way a record is lost while
//!    the process lives, and only when the intake thread cannot keep up at all).
//! 2. The intake thread moves records from the channel into the in-memory queue and, when
//!    that holds more than [`WriterConfig::memory_limit`], spills the whole queue to the
//!    spool file. It never touches the database.
//! 3. The database task takes the oldest records (the spool before memory) as one batch,
//!    writes the batch in one transaction, and only then lets go of it. While the database
//!    is away it keeps retrying the same batch with backoff, asks the intake side to spill
//!    what is in memory, and reports `db_up = false`.
//!
//! Order: the queue is one FIFO made of [the batch being written] [the spool] [memory], and
//! each part only ever holds records newer than the part before, so records reach the
//! database in the order they were sent. Exactly once: a batch is let go only after its
//! commit, and a commit whose acknowledgement was lost is applied again, which the
//! idempotent writes turn into a no-op. What a crash of this process loses: the records in
//! memory and in the channel (bounded by the limits), never what was spooled.

use crate::apply::Item;
use crate::error::StoreError;
use crate::spool::Spool;
use crate::store::Store;
use rtcroom_core::{Millis, Record};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

/// Limits and timings of the writer; the defaults suit one server.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Records the channel holds before `try_send` drops.
    pub channel_capacity: usize,
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
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            channel_capacity: 65_536,
            memory_limit: 20_000,
            batch_size: 1_000,
            spool_dir: PathBuf::from("data/spool"),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            health_interval: Duration::from_secs(10),
            recover_at: None,
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
    /// Records refused by `try_send` because the channel was full or closed.
    pub dropped: u64,
    /// Records the database refused for their content, moved to `rejected.jsonl`.
    pub rejected: u64,
    /// Whether the last write or health check reached the database.
    pub db_up: bool,
}

/// `try_send` could not take the record (the channel is full or the writer stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the record queue is full; the record was dropped")]
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
    db_up: AtomicBool,
}

#[derive(Debug)]
struct Queue {
    mem: VecDeque<Item>,
    spool: Spool,
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
    /// Beyond this many records in memory (when the spool cannot be written either), new
    /// records are dropped rather than exhausting memory.
    memory_hard_limit: usize,
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
        let items: Vec<Item> = q.mem.iter().cloned().collect();
        match q.spool.append(&items) {
            Ok(()) => {
                q.mem.clear();
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

    fn reject(&self, item: &Item, reason: &str) {
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
    /// Queues a record; never blocks, never waits for the database.
    pub fn try_send(&self, record: Record) -> Result<(), RecordDropped> {
        self.tx.try_send(Msg::Record(record)).map_err(|_| {
            self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
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
    items: Vec<Item>,
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
        let spool = Spool::open(&cfg.spool_dir)?;
        if spool.pending() > 0 {
            tracing::info!(
                records = spool.pending(),
                "records from a previous run are in the spool and will be written first"
            );
        }
        let mut mem = VecDeque::new();
        if let Some(now) = cfg.recover_at {
            mem.push_back(Item::CloseOpen(now));
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                mem,
                spool,
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
            memory_hard_limit: cfg.memory_limit.max(1).saturating_mul(4),
        });
        let (tx, rx) = mpsc::channel(cfg.channel_capacity.max(1));
        let intake = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("rtcroom-records".into())
                .spawn(move || intake(rx, &shared))
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
        let _ = self.tx.send(Msg::Stop).await;
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
        stats(&self.shared, &self.tx)
    }
}

fn stats(shared: &Shared, tx: &mpsc::Sender<Msg>) -> WriterStats {
    let c = &shared.counters;
    let (mem, spooled) = {
        let q = shared.lock();
        (q.mem.len() as u64, q.spool.pending())
    };
    let channel = (tx.max_capacity() - tx.capacity()) as u64;
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
        rejected: c.rejected.load(Ordering::Relaxed),
        db_up: c.db_up.load(Ordering::Relaxed),
    }
}

/// The intake thread: channel → memory, spilling to the spool above the memory limit.
fn intake(mut rx: mpsc::Receiver<Msg>, shared: &Shared) {
    let mut buf = Vec::new();
    let mut stop = false;
    // After a failed spill, the next try waits until memory has grown by another quarter
    // of the limit, rather than rewriting the whole queue for every record.
    let mut spill_at = shared.memory_limit;
    while !stop {
        match rx.blocking_recv() {
            Some(Msg::Record(r)) => buf.push(Item::Record(r)),
            Some(Msg::Stop) | None => stop = true,
        }
        // Take whatever else is waiting, to lock once per burst rather than per record.
        while !stop && buf.len() < 4096 {
            match rx.try_recv() {
                Ok(Msg::Record(r)) => buf.push(Item::Record(r)),
                Ok(Msg::Stop) => stop = true,
                Err(_) => break,
            }
        }
        shared
            .counters
            .intake_buffered
            .store(buf.len() as u64, Ordering::Relaxed);
        let mut q = shared.lock();
        for item in buf.drain(..) {
            if q.mem.len() >= spill_at {
                spill_at = if shared.spill(&mut q) {
                    shared.memory_limit
                } else {
                    q.mem.len() + shared.memory_limit.div_ceil(4)
                };
            }
            if q.mem.len() >= shared.memory_hard_limit {
                // Memory is full and the spool cannot be written: the only drop.
                shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
            } else {
                q.mem.push_back(item);
            }
        }
        q.intake_done = stop;
        drop(q);
        shared.counters.intake_buffered.store(0, Ordering::Relaxed);
        shared.work.notify_one();
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
    let items: Vec<Item> = q.mem.drain(..n).collect();
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
    let res = match tokio::time::timeout(cfg.write_timeout, store.apply_items(&batch.items)).await {
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
        let res = match tokio::time::timeout(cfg.write_timeout, store.apply_items(one)).await {
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
fn count_records(items: &[Item]) -> u64 {
    items
        .iter()
        .filter(|i| matches!(i, Item::Record(_)))
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
        None => shared.counters.in_flight.store(0, Ordering::Relaxed),
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
            Ok(()) => shared.counters.in_flight.store(0, Ordering::Relaxed),
            Err(e) => tracing::error!(
                error = %e,
                records = batch.items.len(),
                "cannot keep unwritten records in the spool; they are lost"
            ),
        }
    }
    // A batch from the spool is still in the file: its offset was never committed.
}

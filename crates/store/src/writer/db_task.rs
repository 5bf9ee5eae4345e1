//! The database task: takes the oldest records (the spool before memory) as one batch,
//! writes it in one transaction, and lets go of it only after the commit; while the
//! database is away it retries with backoff and spills memory to the spool.

use super::{Batch, DbWaits, Shared, StopSignal, WriterConfig};
use crate::apply::Item;
use crate::error::StoreError;
use crate::line::Entry;
use crate::native::Native;
use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

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
    super::intake::shrink(&mut q.mem);
    q.in_flight_seq = items.first().map(|e| e.seq);
    shared
        .counters
        .in_flight
        .store(items.len() as u64, Ordering::Relaxed);
    Ok(Some(Batch { items, spool: None }))
}

/// Where the database task writes: the store's pool, or for a SQLite file its own
/// connection ([`Native`], opened on first use and again after an error).
pub(super) struct Db {
    store: Store,
    native: Option<(std::path::PathBuf, Option<Native>)>,
}

impl Db {
    pub(super) fn new(store: Store) -> Db {
        let native = store.sqlite_file().map(|p| (p.to_owned(), None));
        Db { store, native }
    }

    /// Writes `items` in one transaction; the restart recovery, on the native path, in a
    /// transaction of its own through the pool, between the records before and after it
    /// (each part idempotent, so a retry of the whole batch after a failure in a later part
    /// changes nothing in the parts already committed).
    async fn apply(
        &mut self,
        items: &[Entry],
        prices: &rtcroom_core::Prices,
    ) -> Result<(), StoreError> {
        let Some((path, conn)) = &mut self.native else {
            // Boxed: the write is bounded by `tokio::time::timeout`, which moves its future;
            // sqlx's is large, and this one stays small.
            return Box::pin(self.store.apply_items(items, prices)).await;
        };
        let mut rest = items;
        while !rest.is_empty() {
            let n = rest
                .iter()
                .position(|e| matches!(e.item, Item::CloseOpen(_)))
                .unwrap_or(rest.len());
            if n == 0 {
                Box::pin(self.store.apply_items(&rest[..1], prices)).await?;
                rest = &rest[1..];
                continue;
            }
            let c = open_native(&self.store, path, conn)?;
            if let Err(e) = c.apply(&rest[..n]) {
                // Opened again for the next try: a file replaced or a broken handle heals.
                *conn = None;
                return Err(e);
            }
            rest = &rest[n..];
        }
        Ok(())
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        let Some((path, conn)) = &mut self.native else {
            return Box::pin(self.store.ping()).await;
        };
        let c = open_native(&self.store, path, conn)?;
        let r = c.ping();
        if r.is_err() {
            *conn = None;
        }
        r
    }
}

/// The writer's own connection to the SQLite file at `path`, opened if it is not open.
fn open_native<'c>(
    store: &Store,
    path: &std::path::Path,
    conn: &'c mut Option<Native>,
) -> Result<&'c mut Native, StoreError> {
    match conn {
        Some(c) => Ok(c),
        None => Ok(conn.insert(Native::open(path, Arc::clone(store.write_sql()))?)),
    }
}

enum Outcome {
    Written,
    /// The database is away; the batch (possibly shortened) must be retried.
    Retry(Batch),
}

async fn write_batch(db: &mut Db, shared: &Shared, cfg: &WriterConfig, batch: Batch) -> Outcome {
    let err = match bounded(cfg, db.apply(&batch.items, &cfg.prices)).await {
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
    if err.is_unavailable() || !reachable(db, cfg).await {
        tracing::warn!(error = %err, records = batch.items.len(), "record batch not written; will retry");
        return Outcome::Retry(batch);
    }
    // The database is there and refused the batch for its content: find the records it
    // refuses by writing them one at a time, keep those aside, write the rest.
    tracing::warn!(error = %err, "the database refused a record batch; writing it record by record");
    let Batch { items, spool } = batch;
    for (i, item) in items.iter().enumerate() {
        let one = std::slice::from_ref(item);
        match bounded(cfg, db.apply(one, &cfg.prices)).await {
            Ok(()) => {
                shared
                    .counters
                    .written
                    .fetch_add(count_records(one), Ordering::Relaxed);
            }
            Err(e) if e.is_unavailable() || !reachable(db, cfg).await => {
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

async fn reachable(db: &mut Db, cfg: &WriterConfig) -> bool {
    bounded(cfg, db.ping()).await.is_ok()
}

/// A database call given at most `write_timeout`: a database that stops answering is an
/// error like any other, never a writer stuck for good.
async fn bounded<T>(
    cfg: &WriterConfig,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(cfg.write_timeout, call)
        .await
        .unwrap_or(Err(StoreError::Timeout(cfg.write_timeout)))
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

pub(super) async fn db_loop(
    store: Store,
    shared: Arc<Shared>,
    cfg: WriterConfig,
    stop: Arc<StopSignal>,
    own_thread: bool,
) {
    if cfg.migrate && !migrate_first(&store, &shared, &cfg, &stop, own_thread).await {
        return;
    }
    let mut db = Db::new(store);
    let up = reachable(&mut db, &cfg).await;
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
                let taken = off_runtime(own_thread, move || take_batch(&sh, max))
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
                        if idle(&mut db, &shared, &cfg).await {
                            gather(&shared, &cfg, &stop).await;
                        }
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
        let short = spool_pos.is_none() && batch.items.len() < cfg.batch_size;
        match write_batch(&mut db, &shared, &cfg, batch).await {
            Outcome::Written => {
                shared.counters.db_up.store(true, Ordering::Relaxed);
                release(&shared, spool_pos);
                backoff = cfg.retry_min;
                if short {
                    gather(&shared, &cfg, &stop).await;
                }
            }
            Outcome::Retry(b) => {
                shared.counters.db_up.store(false, Ordering::Relaxed);
                // While the database is away, what is in memory goes to disk, where it
                // survives a restart of this process: the held batch first (it is the
                // oldest), then the rest of memory behind whatever is spooled already.
                let sh = Arc::clone(&shared);
                let b = off_runtime(own_thread, move || to_spool(&sh, b))
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

/// Applies the migrations the caller could not (the database was unreachable at its start),
/// retrying with backoff until the database answers; meanwhile what arrives goes from memory
/// to the spool, as in any outage. False when the shutdown deadline came first (memory is
/// spooled then, for the next start).
async fn migrate_first(
    store: &Store,
    shared: &Arc<Shared>,
    cfg: &WriterConfig,
    stop: &StopSignal,
    own_thread: bool,
) -> bool {
    let mut backoff = cfg.retry_min;
    let mut last_error = String::new();
    loop {
        match bounded(cfg, store.migrate()).await {
            Ok(()) => {
                shared
                    .counters
                    .migrations_pending
                    .store(false, Ordering::Relaxed);
                shared.counters.db_up.store(true, Ordering::Relaxed);
                tracing::info!(
                    "the call-record database answers: migrations applied, the kept records follow"
                );
                return true;
            }
            Err(e) => {
                shared.counters.db_up.store(false, Ordering::Relaxed);
                let text = e.to_string();
                if e.is_unavailable() {
                    tracing::debug!(error = %e, "the call-record database is still unreachable");
                } else if text != last_error {
                    // Reachable but refusing (rights, a broken schema): an operator must act;
                    // the records wait in the spool until then.
                    tracing::error!(
                        critical = true,
                        error = %e,
                        "cannot migrate the call-record database; retrying, records are kept in the spool"
                    );
                }
                last_error = text;
            }
        }
        let sh = Arc::clone(shared);
        let _ = off_runtime(own_thread, move || {
            let mut q = sh.lock();
            sh.spill(&mut q)
        })
        .await;
        if pause(stop, backoff).await {
            let mut q = shared.lock();
            let _ = shared.spill(&mut q);
            return false;
        }
        backoff = (backoff * 2).min(cfg.retry_max);
    }
}

/// Runs `f`, which may block on file IO: right here on the writer's own thread (nothing else
/// runs on its runtime), else on the runtime's blocking pool.
async fn off_runtime<T: Send + 'static>(
    own_thread: bool,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    if own_thread {
        return Ok(f());
    }
    tokio::task::spawn_blocking(f).await
}

/// Waits for new records or, after the health interval, checks the database. True when
/// records arrived.
async fn idle(db: &mut Db, shared: &Shared, cfg: &WriterConfig) -> bool {
    {
        let mut q = shared.lock();
        // Records that came since the batch was taken found it busy and woke nobody.
        if !q.mem.is_empty() || !q.spool.all_taken() {
            return true;
        }
        q.db_waits = DbWaits::Any;
    }
    if tokio::time::timeout(cfg.health_interval, shared.work.notified())
        .await
        .is_err()
    {
        let up = reachable(db, cfg).await;
        shared.counters.db_up.store(up, Ordering::Relaxed);
        return false;
    }
    true
}

/// Lets records gather in memory for up to [`WriterConfig::batch_wait`], so that the next
/// transaction takes many, and for up to [`WriterConfig::quality_wait`] while everything
/// waiting is a quality record: returns early once a full batch waits, the
/// spool has records, or the writer is stopping. Past `batch_wait` it looks again every
/// `batch_wait`, so any other record is in the database within about `batch_wait` of
/// arriving, as without the longer wait.
async fn gather(shared: &Shared, cfg: &WriterConfig, stop: &StopSignal) {
    let start = Instant::now();
    let step = cfg.batch_wait;
    let last = start + cfg.quality_wait.max(step);
    let mut until = start + step;
    loop {
        {
            let mut q = shared.lock();
            if q.mem.len() >= cfg.batch_size || !q.spool.all_taken() || q.intake_done {
                return;
            }
            let now = Instant::now();
            if now >= until {
                // Nothing waiting: idle until a record comes, rather than look every step.
                if now >= last || step.is_zero() || q.mem.is_empty() || !q.mem.iter().all(can_wait)
                {
                    return;
                }
                until = (until + step).min(last);
            }
            // Woken by the intake thread only for a full batch (not for every burst).
            q.db_waits = DbWaits::Batch;
        }
        if stop.deadline().is_some() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(until) => {}
            () = shared.work.notified() => {}
            () = stop.notify.notified() => return,
        }
    }
}

/// Whether an entry may wait past `batch_wait` for more rows to share its transaction: a
/// quality record (the bulk of the records, and no part of a bill). A checkpoint may not:
/// the intake queues no newer one while it waits last in the queue, so a waiting checkpoint
/// would leave the open rows' `last_alive` seconds behind, and a crash's bill with it
/// (`crash_records::a_killed_server_bills_open_calls_up_to_the_last_checkpoint`).
fn can_wait(e: &Entry) -> bool {
    matches!(e.item, Item::Record(rtcroom_core::Record::Quality(_)))
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

//! The intake thread: moves records from the inbox into the write-ahead journal and the
//! in-memory queue, spilling to the spool above the memory limit. It never touches the
//! database.

use super::Shared;
use super::inbox::Inbox;
use crate::apply::Item;
use crate::line::Entry;
use rtcroom_core::Millis;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The intake thread's clocks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    pub(super) journal_sync: Duration,
    pub(super) checkpoint: Option<Duration>,
    /// How long quality records may wait in the inbox ([`Inbox::take`]).
    pub(super) tick: Duration,
}

/// The server's clock, for checkpoints (this crate is a shell: it may read the clock).
fn wall_clock() -> Millis {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// The intake thread: inbox → journal and memory, spilling to the spool above the memory
/// limit; a checkpoint every `checkpoint`; the journal synced every `journal_sync`.
pub(super) fn intake(inbox: &Inbox, shared: &Shared, timing: Timing) {
    use std::time::Instant;
    let mut records = Vec::new();
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
        stop = inbox.take(&mut records, wait, timing.tick);
        buf.extend(records.drain(..).map(Item::Record));
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
        // A burst (a join storm) grew the queue to thousands of records: once the database
        // task has taken most of them, give back what the burst needed.
        shrink(&mut q.mem);
        let to_sync = if stop || last_sync.elapsed() >= timing.journal_sync {
            q.journal.take_unsynced()
        } else {
            None
        };
        let wake_db = q.db_wants_waking(shared.batch_size);
        drop(q);
        if buf.capacity() > KEEP {
            buf = Vec::new();
        }
        if records.capacity() > KEEP {
            records = Vec::new();
        }
        c.intake_buffered.store(0, Ordering::Relaxed);
        if wake_db {
            shared.work.notify_one();
        }
        if let Some(f) = to_sync {
            if let Err(e) = f.sync_data() {
                tracing::error!(error = %e, "cannot sync the record journal");
            }
            last_sync = Instant::now();
        }
    }
}

/// Records a buffer between bursts keeps room for (a burst takes what the inbox holds).
const KEEP: usize = 64;

/// Gives back most of what a queue holding few records grew to; keeps room for `KEEP`
/// records and for twice what it holds.
pub(super) fn shrink<T>(q: &mut std::collections::VecDeque<T>) {
    if q.capacity() > KEEP && q.len() < q.capacity() / 4 {
        q.shrink_to((q.len() * 2).max(KEEP));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A join storm queues thousands of records; once the database task has taken them, an
    /// idle writer keeps room for a few, not for the storm.
    #[test]
    fn a_drained_queue_gives_back_what_the_burst_grew() {
        let mut q: VecDeque<u64> = (0..5_000).collect();
        q.drain(..4_990);
        shrink(&mut q);
        assert!(q.capacity() < 100, "kept room for {}", q.capacity());
        assert_eq!(
            q.iter().copied().collect::<Vec<_>>(),
            (4_990..5_000).collect::<Vec<_>>()
        );
        // A queue still busy keeps its room.
        let mut busy: VecDeque<u64> = (0..5_000).collect();
        busy.drain(..1_000);
        let before = busy.capacity();
        shrink(&mut busy);
        assert_eq!(busy.capacity(), before);
    }
}

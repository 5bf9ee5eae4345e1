//! Where the engine's call records go.
//!
//! The hub pushes each `Record` here without waiting. Until a database store is configured
//! the records are counted and dropped (and this is said once in the log at start).

use rtcroom_core::Record;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The hub's handle on the record writer.
#[derive(Debug, Clone)]
pub struct RecordSink {
    dropped: Arc<AtomicU64>,
}

impl RecordSink {
    /// A sink that keeps nothing.
    pub fn discard() -> Self {
        Self {
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Hand one record over; never blocks.
    pub fn push(&self, record: Record) {
        tracing::trace!(?record, "record");
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that were not kept.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

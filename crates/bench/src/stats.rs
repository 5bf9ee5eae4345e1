//! Counters shared by every member task, the latency histogram, and the run's clock.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The instant every timestamp of this run counts from.
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since [`epoch`] (all members live in this process, so a monotonic clock
/// serves as the send timestamp).
pub fn now_us() -> u64 {
    micros_at(Instant::now())
}

pub fn micros_at(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_micros()).unwrap_or(u64::MAX)
}

/// Where a run is. Members send load only in `Load` and `Measure`; latencies are kept only
/// in `Measure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    Setup = 0,
    Load = 1,
    Measure = 2,
    Drain = 3,
    Stop = 4,
}

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// Event counts over the whole run; a report takes differences between snapshots.
        #[derive(Debug, Default)]
        pub struct Counters { $(pub $name: AtomicU64,)* }

        /// A copy of [`Counters`] at one instant.
        #[derive(Debug, Default, Clone, Copy)]
        pub struct Snapshot { $(pub $name: u64,)* }

        impl Counters {
            pub fn snapshot(&self) -> Snapshot {
                Snapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }

        impl std::ops::Sub for Snapshot {
            type Output = Snapshot;
            fn sub(self, o: Snapshot) -> Snapshot {
                Snapshot { $($name: self.$name.saturating_sub(o.$name),)* }
            }
        }
    };
}

counters!(
    connects,
    connect_errors,
    joins,
    join_refused,
    ready,
    failed,
    relayed_offers,
    relayed_answers,
    relayed_candidates,
    resp_offers,
    resp_keeplive,
    resp_peer_connected,
    resp_leave,
    relayed_leave,
    keepalives_sent,
    reports_sent,
    frames_sent,
    frames_received,
    bytes_sent,
    errors,
    dropped,
);

impl Snapshot {
    /// Relayed descriptions (offers and answers), the unit of the CPU and rate figures.
    pub fn relayed(&self) -> u64 {
        self.relayed_offers + self.relayed_answers
    }
}

/// Everything the member tasks report into.
#[derive(Debug)]
pub struct Shared {
    pub counters: Counters,
    phase: AtomicU8,
    latency: Mutex<Histogram<u64>>,
    /// The first few error descriptions, for the report.
    pub first_errors: Mutex<Vec<String>>,
}

impl Shared {
    pub fn new() -> Self {
        Self {
            counters: Counters::default(),
            phase: AtomicU8::new(Phase::Setup as u8),
            latency: Mutex::new(new_histogram()),
            first_errors: Mutex::new(Vec::new()),
        }
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Setup,
            1 => Phase::Load,
            2 => Phase::Measure,
            3 => Phase::Drain,
            _ => Phase::Stop,
        }
    }

    pub fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Release);
    }

    pub fn count(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Count an error and keep its description if it is among the first few.
    pub fn error(&self, what: impl FnOnce() -> String) {
        self.count(&self.counters.errors);
        let mut first = self.first_errors.lock().unwrap_or_else(|e| e.into_inner());
        if first.len() < 8 {
            first.push(what());
        }
    }

    fn merge(&self, samples: &[u64]) {
        let mut h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        for &s in samples {
            h.saturating_record(s.max(1));
        }
    }

    pub fn histogram(&self) -> Histogram<u64> {
        self.latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn reset_histogram(&self) {
        self.latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reset();
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 10 min at three significant figures; one histogram for the whole run, fed in
    // batches, so its size (about 100 KB) does not multiply by the number of members.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// A member task's latency samples, merged into the shared histogram in batches.
#[derive(Debug, Default)]
pub struct LatencyBuf {
    samples: Vec<u64>,
}

impl LatencyBuf {
    pub fn record(&mut self, shared: &Shared, micros: u64) {
        if self.samples.capacity() == 0 {
            self.samples.reserve_exact(128);
        }
        self.samples.push(micros);
        if self.samples.len() >= 128 {
            self.flush(shared);
        }
    }

    pub fn flush(&mut self, shared: &Shared) {
        if !self.samples.is_empty() {
            shared.merge(&self.samples);
            self.samples.clear();
        }
    }
}

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

/// The width of a [`Timeline`] bucket.
pub const BUCKET_US: u64 = 100_000;
/// An hour of buckets at most (a longer window keeps its first hour).
const MAX_BUCKETS: usize = 36_000;

/// The window's latencies by when each description was sent: per [`BUCKET_US`], how many
/// and the largest, which tells one stall from a tail spread over the whole window.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// [`now_us`] when the window opened.
    pub start_us: u64,
    /// (count, largest latency in µs) per bucket, the first from `start_us`.
    pub buckets: Vec<(u64, u64)>,
}

impl Timeline {
    fn add(&mut self, sent_us: u64, micros: u64) {
        let Ok(i) = usize::try_from(sent_us.saturating_sub(self.start_us) / BUCKET_US) else {
            return;
        };
        if i >= MAX_BUCKETS {
            return;
        }
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, (0, 0));
        }
        let b = &mut self.buckets[i];
        b.0 += 1;
        b.1 = b.1.max(micros);
    }

    /// The `n` buckets with the largest latencies, largest first: (index, count, largest).
    pub fn worst(&self, n: usize) -> Vec<(usize, u64, u64)> {
        let mut all: Vec<(usize, u64, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.0 > 0)
            .map(|(i, b)| (i, b.0, b.1))
            .collect();
        all.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

/// Everything the member tasks report into.
#[derive(Debug)]
pub struct Shared {
    pub counters: Counters,
    phase: AtomicU8,
    latency: Mutex<Histogram<u64>>,
    timeline: Mutex<Timeline>,
    /// The first few error descriptions, for the report.
    pub first_errors: Mutex<Vec<String>>,
}

impl Shared {
    pub fn new() -> Self {
        Self {
            counters: Counters::default(),
            phase: AtomicU8::new(Phase::Setup as u8),
            latency: Mutex::new(new_histogram()),
            timeline: Mutex::new(Timeline::default()),
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

    fn merge(&self, samples: &[(u64, u64)]) {
        let mut h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        for &(_, s) in samples {
            h.saturating_record(s.max(1));
        }
        drop(h);
        let mut t = self.timeline.lock().unwrap_or_else(|e| e.into_inner());
        for &(sent, s) in samples {
            t.add(sent, s);
        }
    }

    pub fn timeline(&self) -> Timeline {
        self.timeline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn histogram(&self) -> Histogram<u64> {
        self.latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forget every latency so far: the window opens now.
    pub fn reset_histogram(&self) {
        self.latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reset();
        *self.timeline.lock().unwrap_or_else(|e| e.into_inner()) = Timeline {
            start_us: now_us(),
            buckets: Vec::new(),
        };
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
    /// (sent at, latency), both in µs.
    samples: Vec<(u64, u64)>,
}

impl LatencyBuf {
    /// A latency of `micros` for what was sent at `sent_us` ([`now_us`]).
    pub fn record(&mut self, shared: &Shared, sent_us: u64, micros: u64) {
        if self.samples.capacity() == 0 {
            self.samples.reserve_exact(128);
        }
        self.samples.push((sent_us, micros));
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

#[cfg(test)]
mod timeline_tests {
    use super::*;

    #[test]
    fn latencies_go_to_the_bucket_of_their_send_time_and_the_worst_come_first() {
        let mut t = Timeline {
            start_us: 1_000_000,
            buckets: Vec::new(),
        };
        t.add(900_000, 50); // sent before the window opened: the first bucket
        t.add(1_050_000, 70);
        t.add(1_250_000, 9_000); // the third bucket
        t.add(1_299_999, 400);
        t.add(1_000_000 + BUCKET_US * MAX_BUCKETS as u64, 1); // past the last bucket
        assert_eq!(t.buckets, vec![(2, 70), (0, 0), (2, 9_000)]);
        assert_eq!(t.worst(5), vec![(2, 2, 9_000), (0, 2, 70)]);
        assert_eq!(t.worst(1), vec![(2, 2, 9_000)]);
    }

    #[test]
    fn opening_the_window_forgets_the_timeline() {
        let shared = Shared::new();
        let mut buf = LatencyBuf::default();
        buf.record(&shared, now_us(), 10);
        buf.flush(&shared);
        assert_eq!(
            shared.timeline().buckets.iter().map(|b| b.0).sum::<u64>(),
            1
        );
        let before = now_us();
        shared.reset_histogram();
        let t = shared.timeline();
        assert!(t.buckets.is_empty() && t.start_us >= before);
    }
}

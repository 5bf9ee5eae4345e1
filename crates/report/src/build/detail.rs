//! The detail table and the worst-call lists: the row of one sub-session, and the
//! fixed-capacity heaps that keep only the rows a report shows.

use super::CountryLookup;
use crate::model::DetailRow;
use crate::rows::{SessionRow, SubSessionRow, SubStatus};
use chrono::{DateTime, Utc};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::net::{IpAddr, SocketAddr};

/// The detail row of one sub-session; `at` is the instant that placed it on the day and
/// `seconds` its connected seconds as of the report.
pub(crate) fn detail_row(
    owner: &SessionRow,
    sub: &SubSessionRow,
    at: DateTime<Utc>,
    seconds: u64,
) -> DetailRow {
    DetailRow {
        sub_session_id: sub.sub_session_id.clone(),
        session_id: sub.session_id.clone(),
        app_id: owner.app_id.clone(),
        user_id: owner.user_id.clone(),
        user_name: owner.user_name.clone(),
        remote_user_id: sub.remote_user_id.clone(),
        remote_user_name: sub.remote_user_name.clone(),
        talk_type: owner.talk_type,
        status: sub.status,
        connect_type: sub.connect_type,
        user_ip: owner.user_ip.clone(),
        user_country: None,
        remote_user_ip: sub.remote_user_ip.clone(),
        ice_ip: sub.ice_ip.clone(),
        ice_country: None,
        begin_time: at,
        connect_time: sub.connect_time,
        finish_time: sub.finish_time,
        duration_secs: seconds,
        cost_cents: sub.cost_cents,
        os_name: owner.os_name.clone(),
        browser: owner.browser.clone(),
        quality: sub.quality,
    }
}

pub(crate) fn add_countries(r: &mut DetailRow, geo: CountryLookup<'_>) {
    r.user_country = parse_ip(&r.user_ip).and_then(geo);
    r.ice_country = parse_ip(&r.ice_ip).and_then(geo);
}

/// Reads an address column liberally: a bare address, `ip:port`, or `[v6]:port`.
pub(super) fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// The order in which the e-mail keeps detail rows when there are more than it shows:
/// pairs that never connected and timed out first, then those that never connected, then
/// connected ones that timed out, then by the worse of the audio and video loss, then the
/// earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Badness {
    class: u8,
    loss: F,
    earlier: Reverse<DateTime<Utc>>,
    seq: Reverse<u64>,
}

impl Badness {
    pub(super) fn of(sub: &SubSessionRow, connected: bool, at: DateTime<Utc>, seq: u64) -> Self {
        let class = match (sub.status, connected) {
            (SubStatus::NeverConnectedTimedOut, _) => 3,
            (SubStatus::NeverConnectedLeft, _) => 2,
            (SubStatus::ConnectedTimedOut, _) => 1,
            _ => 0,
        };
        let loss = sub
            .quality
            .map_or(0.0, |q| q.audio_loss.avg.max(q.video_loss.avg));
        Self {
            class,
            loss: F::new(loss),
            earlier: Reverse(at),
            seq: Reverse(seq),
        }
    }
}

/// A finite float with a total order (non-finite values read as 0).
#[derive(Debug, Clone, Copy)]
pub(super) struct F(pub(super) f64);

impl F {
    pub(super) fn new(v: f64) -> Self {
        Self(if v.is_finite() { v } else { 0.0 })
    }
}
impl PartialEq for F {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for F {}
impl PartialOrd for F {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for F {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// The `cap` entries with the greatest keys seen so far.
#[derive(Debug)]
pub(super) struct TopK<K: Ord, V> {
    cap: usize,
    heap: BinaryHeap<Reverse<Entry<K, V>>>,
}

#[derive(Debug)]
struct Entry<K, V>(K, V);
impl<K: Ord, V> PartialEq for Entry<K, V> {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl<K: Ord, V> Eq for Entry<K, V> {}
impl<K: Ord, V> PartialOrd for Entry<K, V> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<K: Ord, V> Ord for Entry<K, V> {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.cmp(&o.0)
    }
}

impl<K: Ord, V> TopK<K, V> {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            cap,
            heap: BinaryHeap::with_capacity(cap.min(4096) + 1),
        }
    }

    /// Keeps the entry if its key is among the greatest; `make` runs only then.
    pub(super) fn offer(&mut self, key: K, make: impl FnOnce() -> V) {
        let admit = self.heap.len() < self.cap
            || self.heap.peek().is_some_and(|Reverse(least)| key > least.0);
        if admit {
            self.heap.push(Reverse(Entry(key, make())));
            if self.heap.len() > self.cap {
                self.heap.pop();
            }
        }
    }

    pub(super) fn into_best_first(self) -> Vec<V> {
        // Ascending order of Reverse(entry) is descending order of keys.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(Entry(_, v))| v)
            .collect()
    }
}

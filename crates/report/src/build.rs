//! The streaming computation of one day's report: [`DayReport`] is fed rows one at a time and
//! keeps only aggregates, so a day of a million sub-sessions fits in a few megabytes.
//!
//! What it keeps, and why that is bounded:
//! - counters, 24 hourly buckets and fixed-edge histograms: constant size;
//! - one 64-bit fingerprint per distinct participant, for an exact count (about 30 bytes per
//!   distinct user in the set; a day with a million distinct users costs about 30 MB);
//! - browser, OS and error labels up to a configured number of distinct labels, the rest
//!   counted as "other" (clients choose these strings, so they must not grow the report);
//! - the worst pairs for the e-mail's detail table and the worst-call lists, each in a
//!   fixed-capacity heap; a row is copied only when it enters a heap.
//!
//! Placing rows on the day (the report's local day in its time zone, `[00:00, 24:00)`):
//! - a session by its join time;
//! - a sub-session by its begin time, else its creation time, else its owner's join time.
//!   A call that crosses midnight therefore belongs wholly to the day it began on, with all
//!   its minutes and its cost; hourly load counts it in the hour it began.
//! - a client-info row by its creation time.
//!
//! Rows outside the day are counted in `rows_outside_day` and otherwise ignored, so a store
//! may read a slightly wider span than [`DayReport::window`] without changing the figures.

use crate::model::{
    Bucket, ClientEvents, CodeCount, ConnectShare, DescCount, DetailRow, DetailTable, Histogram,
    HourLoad, LabelCount, LabelCounts, QualitySummary, Report, Totals, ratio,
};
use crate::rows::{ClientInfoRow, QualityAgg, SessionRow, SubSessionRow, SubStatus};
use crate::schedule::day_window;
use chrono::{DateTime, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

/// A GeoIP lookup the caller may supply: an address to a country name or code.
pub type CountryLookup<'a> = &'a dyn Fn(IpAddr) -> Option<String>;

/// What the report covers and how much it keeps.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// The local date reported on.
    pub date: NaiveDate,
    /// The zone that defines the day and the hours (default UTC).
    pub tz: Tz,
    /// When the rows were read; a pair still open is counted up to this instant.
    pub generated_at: DateTime<Utc>,
    /// How many rows the e-mail's detail table keeps (the worst ones when there are more).
    /// A row is 400–600 bytes of HTML and the rest of the report about 25 KB; Gmail clips a
    /// message whose HTML passes 102 KB, so the default of 150 keeps the e-mail whole there.
    /// The exports carry every row.
    pub max_detail_rows: usize,
    /// Length of each worst-call list.
    pub worst_calls: usize,
    /// Distinct browser, OS and error labels kept; further labels count as "other".
    pub max_labels: usize,
    /// The currency the cents are in, as a label.
    pub currency: String,
}

impl ReportConfig {
    pub fn new(date: NaiveDate, tz: Tz, generated_at: DateTime<Utc>) -> Self {
        Self {
            date,
            tz,
            generated_at,
            max_detail_rows: 150,
            worst_calls: 10,
            max_labels: 100,
            currency: "元".to_owned(),
        }
    }
}

/// The builder: `new`, then `add_*` for every row of the day in any order, then `finish`.
#[derive(Debug)]
pub struct DayReport {
    cfg: ReportConfig,
    window: (DateTime<Utc>, DateTime<Utc>),
    totals: Totals,
    share: ConnectShare,
    hourly: [HourLoad; 24],
    users: HashSet<u64>,
    quality: QualityAcc,
    worst_loss: TopK<(F, Reverse<u64>), DetailRow>,
    low_bitrate: TopK<(F, Reverse<u64>), DetailRow>,
    detail: TopK<Badness, DetailRow>,
    browsers: Labels<String>,
    os: Labels<String>,
    event_rows: u64,
    errors: u64,
    error_codes: Labels<i64>,
    error_descs: Labels<(i64, String)>,
    seq: u64,
}

impl DayReport {
    pub fn new(cfg: ReportConfig) -> Self {
        let window = day_window(cfg.date, cfg.tz);
        let hourly = std::array::from_fn(|h| HourLoad {
            hour: h as u8,
            ..HourLoad::default()
        });
        Self {
            window,
            totals: Totals::default(),
            share: ConnectShare::default(),
            hourly,
            users: HashSet::new(),
            quality: QualityAcc::new(),
            worst_loss: TopK::new(cfg.worst_calls),
            low_bitrate: TopK::new(cfg.worst_calls),
            detail: TopK::new(cfg.max_detail_rows),
            browsers: Labels::new(cfg.max_labels),
            os: Labels::new(cfg.max_labels),
            event_rows: 0,
            errors: 0,
            error_codes: Labels::new(cfg.max_labels),
            error_descs: Labels::new(cfg.max_labels),
            seq: 0,
            cfg,
        }
    }

    /// The UTC span `[start, end)` of the reported local day: what a store should read.
    pub fn window(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        self.window
    }

    fn on_day(&self, t: DateTime<Utc>) -> bool {
        self.window.0 <= t && t < self.window.1
    }

    fn hour(&self, t: DateTime<Utc>) -> usize {
        t.with_timezone(&self.cfg.tz).hour() as usize % 24
    }

    fn add_user(&mut self, app_id: &str, user_id: &str) {
        // A fixed-key fingerprint keeps the count exact in practice (a collision needs about
        // 2^32 distinct users) at 8 bytes per user; the set itself keeps std's random keys.
        let mut h = DefaultHasher::new();
        app_id.hash(&mut h);
        user_id.hash(&mut h);
        self.users.insert(h.finish());
    }

    /// One `rtc_talk_sessions` row.
    pub fn add_session(&mut self, s: &SessionRow) {
        if !self.on_day(s.join_time) {
            self.totals.rows_outside_day += 1;
            return;
        }
        self.totals.sessions += 1;
        if s.time_out {
            self.totals.sessions_timed_out += 1;
        }
        if s.leave_time.is_some() {
            self.totals.session_seconds += s.duration_secs;
        }
        let h = self.hour(s.join_time);
        self.hourly[h].sessions += 1;
        self.add_user(&s.app_id, &s.user_id);
        self.browsers.add_str(browser_family(&s.browser));
        self.os.add_str(label(&s.os_name));
    }

    /// One `rtc_talk_subsessions` row with its quality aggregates, and the session it
    /// belongs to (a store reads both with one join).
    pub fn add_sub_session(&mut self, owner: &SessionRow, sub: &SubSessionRow) {
        let at = sub.day_time(owner);
        if !self.on_day(at) {
            self.totals.rows_outside_day += 1;
            return;
        }
        self.seq += 1;
        let seq = self.seq;
        let connected = sub.connected();
        let seconds = sub.seconds_at(self.cfg.generated_at);
        let t = &mut self.totals;
        t.sub_sessions += 1;
        if sub.status.timed_out() {
            t.sub_sessions_timed_out += 1;
        }
        match (sub.status, connected) {
            (SubStatus::InProgress, _) => t.in_progress += 1,
            (_, false) => t.never_connected += 1,
            (_, true) => {}
        }
        t.cost_cents += sub.cost_cents;
        let h = self.hour(at);
        self.hourly[h].sub_sessions += 1;
        if connected {
            self.totals.connected += 1;
            self.totals.connected_seconds += seconds;
            self.hourly[h].connected += 1;
            let row = self.share.row_mut(sub.connect_type);
            row.pairs += 1;
            row.seconds += seconds;
            row.cost_cents += sub.cost_cents;
        }
        self.add_user(&owner.app_id, &owner.user_id);

        let video = is_video(owner, sub.quality.as_ref());
        if connected {
            self.quality.add(sub.quality.as_ref(), video);
        }
        let make = || detail_row(owner, sub, at, seconds);
        if let (true, true, Some(q)) = (connected, video, sub.quality) {
            let loss = F::new(q.video_loss.avg);
            if loss.0 > 0.0 {
                self.worst_loss.offer((loss, Reverse(seq)), make);
            }
            self.low_bitrate
                .offer((F::new(-q.video_bitrate.avg), Reverse(seq)), make);
        }
        let badness = Badness::of(sub, connected, at, seq);
        self.detail.offer(badness, make);
    }

    /// One `reportInfo` row.
    pub fn add_client_info(&mut self, c: &ClientInfoRow) {
        if !self.on_day(c.create_time) {
            self.totals.rows_outside_day += 1;
            return;
        }
        self.event_rows += 1;
        if c.result != 0 {
            self.errors += 1;
            self.error_codes.add(c.result);
            let desc = truncate(c.desc.trim(), 160);
            self.error_descs.add((c.result, desc.to_owned()));
        }
    }

    /// The report. `geo` fills in countries on the rows the report keeps.
    pub fn finish(mut self, geo: Option<CountryLookup<'_>>) -> Report {
        self.totals.participants = self.users.len() as u64;
        let fill = |mut rows: Vec<DetailRow>| {
            if let Some(geo) = geo {
                rows.iter_mut().for_each(|r| add_countries(r, geo));
            }
            rows
        };
        let mut detail = fill(self.detail.into_best_first());
        detail.sort_by(|a, b| {
            (a.begin_time, &a.sub_session_id).cmp(&(b.begin_time, &b.sub_session_id))
        });
        let sub_sessions = self.totals.sub_sessions;
        let (by_code, other_codes) = self.error_codes.into_sorted();
        let (by_desc, other_descs) = self.error_descs.into_sorted();
        Report {
            date: self.cfg.date,
            timezone: self.cfg.tz.name().to_owned(),
            tz: self.cfg.tz,
            window_start: self.window.0,
            window_end: self.window.1,
            generated_at: self.cfg.generated_at,
            currency: self.cfg.currency,
            totals: self.totals,
            connect_types: self.share,
            hourly: self.hourly.to_vec(),
            quality: self.quality.finish(),
            worst_video_loss: fill(self.worst_loss.into_best_first()),
            lowest_video_bitrate: fill(self.low_bitrate.into_best_first()),
            browsers: self.browsers.into_counts(),
            operating_systems: self.os.into_counts(),
            client_events: ClientEvents {
                rows: self.event_rows,
                errors: self.errors,
                by_code: by_code
                    .into_iter()
                    .map(|(code, count)| CodeCount {
                        code,
                        meaning: result_meaning(code).to_owned(),
                        count,
                    })
                    .collect(),
                other_codes,
                by_desc: by_desc
                    .into_iter()
                    .map(|((code, desc), count)| DescCount { code, desc, count })
                    .collect(),
                other_descs,
            },
            detail: DetailTable {
                rows: detail,
                total: sub_sessions,
            },
        }
    }
}

/// Whether a pair counts as video: the owner joined with video, or video arrived anyway.
fn is_video(owner: &SessionRow, q: Option<&QualityAgg>) -> bool {
    owner.talk_type == 1 || q.is_some_and(|q| q.video_bitrate.max > 0.0)
}

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
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// What the protocol's result codes mean (`docs/protocol.md`).
pub fn result_meaning(code: i64) -> &'static str {
    match code {
        0 => "ok",
        1 => "room is full",
        2 => "uid not found in the room",
        3 => "message could not be parsed",
        4 => "websocket broken",
        5 => "room not found",
        6 => "remote uid not found",
        7 => "cannot connect to room server",
        8 => "no ICE server has bandwidth left",
        9 => "ICE server invalid",
        10 => "no microphone",
        11 => "client exception",
        12 => "token missing, invalid or expired",
        13 => "not allowed",
        14 => "rate limited",
        _ => "",
    }
}

/// The family of a browser string: what comes before the version (`chrome58.0` → `chrome`,
/// `Firefox/120.0` → `Firefox`), so that versions do not split the counts.
fn browser_family(b: &str) -> &str {
    let b = b.trim();
    let cut = b.find(|c: char| c.is_ascii_digit()).unwrap_or(b.len());
    label(b[..cut].trim_end_matches(|c: char| c.is_whitespace() || "/-_.".contains(c)))
}

fn label(s: &str) -> &str {
    let s = s.trim();
    if s.is_empty() {
        "(unknown)"
    } else {
        truncate(s, 64)
    }
}

fn truncate(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The order in which the e-mail keeps detail rows when there are more than it shows:
/// pairs that never connected and timed out first, then those that never connected, then
/// connected ones that timed out, then by the worse of the audio and video loss, then the
/// earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Badness {
    class: u8,
    loss: F,
    earlier: Reverse<DateTime<Utc>>,
    seq: Reverse<u64>,
}

impl Badness {
    fn of(sub: &SubSessionRow, connected: bool, at: DateTime<Utc>, seq: u64) -> Self {
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
struct F(f64);

impl F {
    fn new(v: f64) -> Self {
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
struct TopK<K: Ord, V> {
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
    fn new(cap: usize) -> Self {
        Self {
            cap,
            heap: BinaryHeap::with_capacity(cap.min(4096) + 1),
        }
    }

    /// Keeps the entry if its key is among the greatest; `make` runs only then.
    fn offer(&mut self, key: K, make: impl FnOnce() -> V) {
        let admit = self.heap.len() < self.cap
            || self.heap.peek().is_some_and(|Reverse(least)| key > least.0);
        if admit {
            self.heap.push(Reverse(Entry(key, make())));
            if self.heap.len() > self.cap {
                self.heap.pop();
            }
        }
    }

    fn into_best_first(self) -> Vec<V> {
        // Ascending order of Reverse(entry) is descending order of keys.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(Entry(_, v))| v)
            .collect()
    }
}

/// Counts by label, keeping at most `cap` distinct labels.
#[derive(Debug)]
struct Labels<L> {
    cap: usize,
    map: HashMap<L, u64>,
    other: u64,
}

impl<L: Eq + std::hash::Hash + Ord + Clone> Labels<L> {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            map: HashMap::new(),
            other: 0,
        }
    }

    fn add(&mut self, l: L) {
        if let Some(c) = self.map.get_mut(&l) {
            *c += 1;
        } else if self.map.len() < self.cap {
            self.map.insert(l, 1);
        } else {
            self.other += 1;
        }
    }

    /// Most frequent first, ties by label.
    fn into_sorted(self) -> (Vec<(L, u64)>, u64) {
        let mut v: Vec<_> = self.map.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        (v, self.other)
    }
}

impl Labels<String> {
    fn add_str(&mut self, l: &str) {
        // Look up by &str first, so a label already counted costs no allocation.
        if let Some(c) = self.map.get_mut(l) {
            *c += 1;
        } else {
            self.add(l.to_owned());
        }
    }

    fn into_counts(self) -> LabelCounts {
        let (items, other) = self.into_sorted();
        LabelCounts {
            items: items
                .into_iter()
                .map(|(label, count)| LabelCount { label, count })
                .collect(),
            other,
        }
    }
}

/// Quality aggregates over connected pairs.
#[derive(Debug)]
struct QualityAcc {
    with: u64,
    without: u64,
    reports: u64,
    audio_bitrate_w: f64,
    audio_loss_w: f64,
    audio_reports: u64,
    video_bitrate_w: f64,
    video_loss_w: f64,
    video_reports: u64,
    audio_bitrate: Hist,
    audio_loss: Hist,
    video_bitrate: Hist,
    video_loss: Hist,
}

const AUDIO_BITRATE_EDGES: [f64; 7] = [0.0, 8.0, 16.0, 24.0, 32.0, 48.0, 64.0];
const VIDEO_BITRATE_EDGES: [f64; 7] = [0.0, 100.0, 300.0, 500.0, 800.0, 1200.0, 2000.0];
const LOSS_EDGES: [f64; 6] = [0.0, 0.5, 1.0, 2.0, 5.0, 10.0];

impl QualityAcc {
    fn new() -> Self {
        Self {
            with: 0,
            without: 0,
            reports: 0,
            audio_bitrate_w: 0.0,
            audio_loss_w: 0.0,
            audio_reports: 0,
            video_bitrate_w: 0.0,
            video_loss_w: 0.0,
            video_reports: 0,
            audio_bitrate: Hist::new("Audio receive bitrate", "kbit/s", &AUDIO_BITRATE_EDGES),
            audio_loss: Hist::new("Audio receive loss", "%", &LOSS_EDGES),
            video_bitrate: Hist::new("Video receive bitrate", "kbit/s", &VIDEO_BITRATE_EDGES),
            video_loss: Hist::new("Video receive loss", "%", &LOSS_EDGES),
        }
    }

    fn add(&mut self, q: Option<&QualityAgg>, video: bool) {
        let Some(q) = q.filter(|q| q.reports > 0) else {
            self.without += 1;
            return;
        };
        self.with += 1;
        self.reports += q.reports;
        let n = q.reports as f64;
        self.audio_bitrate_w += F::new(q.audio_bitrate.avg).0 * n;
        self.audio_loss_w += F::new(q.audio_loss.avg).0 * n;
        self.audio_reports += q.reports;
        self.audio_bitrate.add(q.audio_bitrate.avg);
        self.audio_loss.add(q.audio_loss.avg);
        if video {
            self.video_bitrate_w += F::new(q.video_bitrate.avg).0 * n;
            self.video_loss_w += F::new(q.video_loss.avg).0 * n;
            self.video_reports += q.reports;
            self.video_bitrate.add(q.video_bitrate.avg);
            self.video_loss.add(q.video_loss.avg);
        }
    }

    fn finish(self) -> QualitySummary {
        QualitySummary {
            pairs_with_reports: self.with,
            pairs_without_reports: self.without,
            reports: self.reports,
            audio_bitrate_avg: ratio(self.audio_bitrate_w, self.audio_reports as f64),
            audio_loss_avg: ratio(self.audio_loss_w, self.audio_reports as f64),
            video_bitrate_avg: ratio(self.video_bitrate_w, self.video_reports as f64),
            video_loss_avg: ratio(self.video_loss_w, self.video_reports as f64),
            audio_bitrate: self.audio_bitrate.finish(),
            audio_loss: self.audio_loss.finish(),
            video_bitrate: self.video_bitrate.finish(),
            video_loss: self.video_loss.finish(),
        }
    }
}

/// A fixed-edge histogram while counting.
#[derive(Debug)]
struct Hist {
    title: &'static str,
    unit: &'static str,
    edges: &'static [f64],
    counts: Vec<u64>,
}

impl Hist {
    fn new(title: &'static str, unit: &'static str, edges: &'static [f64]) -> Self {
        Self {
            title,
            unit,
            edges,
            counts: vec![0; edges.len()],
        }
    }

    fn add(&mut self, v: f64) {
        let v = F::new(v).0;
        // The bucket is the last edge not above the value; values below the first edge
        // (negative, which clients should not send) fall into the first bucket.
        let i = self.edges.partition_point(|&e| e <= v).saturating_sub(1);
        self.counts[i] += 1;
    }

    fn finish(self) -> Histogram {
        let n = self.edges.len();
        let buckets = (0..n)
            .map(|i| {
                let from = self.edges[i];
                let to = self.edges.get(i + 1).copied();
                let label = match to {
                    _ if i == 0 => format!("<{}", num(to.unwrap_or(from))),
                    Some(to) => format!("{}\u{2013}{}", num(from), num(to)),
                    None => format!("\u{2265}{}", num(from)),
                };
                Bucket {
                    label,
                    from,
                    to,
                    count: self.counts[i],
                }
            })
            .collect();
        Histogram {
            title: self.title.to_owned(),
            unit: self.unit.to_owned(),
            buckets,
        }
    }
}

/// A bucket edge as a short label: `0.5`, `8`, `1200`.
fn num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

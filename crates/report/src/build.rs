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

mod countries;
mod detail;
mod labels;
mod quality;

pub(crate) use detail::{add_countries, detail_row};
pub(crate) use labels::UNKNOWN_LABEL;
pub use labels::result_meaning;

use crate::currency::Currency;
use crate::lang::Language;
use crate::model::{
    ClientEvents, CodeCount, ConnectShare, DescCount, DetailRow, DetailTable, HourLoad, Report,
    Totals,
};
use crate::rows::{ClientInfoRow, ConnectType, QualityAgg, SessionRow, SubSessionRow, SubStatus};
use crate::schedule::day_window;
use chrono::{DateTime, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use countries::CountryAcc;
use detail::{Badness, F, TopK};
use labels::{Labels, browser_family, label, truncate};
use quality::QualityAcc;
use std::cmp::Reverse;
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;

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
    /// The language of everything the report shows.
    pub language: Language,
    /// The currency the cents are in.
    pub currency: Currency,
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
            language: Language::default(),
            currency: Currency::default(),
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
    countries: CountryAcc,
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
            countries: CountryAcc::default(),
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
        self.countries.session(&s.user_ip);
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
            self.countries.connected_pair(
                &owner.user_ip,
                sub.connect_type == ConnectType::Turn,
                &sub.ice_ip,
                sub.quality.as_ref(),
            );
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

    /// The report. `geo` fills in countries on the rows the report keeps and makes the
    /// report's [`Countries`](crate::model::Countries); without it there are none.
    pub fn finish(mut self, geo: Option<CountryLookup<'_>>) -> Report {
        let countries = geo.map(|geo| std::mem::take(&mut self.countries).finish(geo));
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
            language: self.cfg.language,
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
            countries,
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

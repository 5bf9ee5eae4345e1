//! The finished report as data: what every renderer reads and what the JSON export writes.
//!
//! Nothing here computes; [`crate::DayReport`] fills these types and the renderers format
//! them. Derived figures (averages, shares) are methods, so the JSON carries only the counts
//! they come from plus the few a reader of the JSON would otherwise recompute.

use crate::currency::Currency;
use crate::lang::Language;
use crate::rows::{ConnectType, QualityAgg, SubStatus};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// One day's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: NaiveDate,
    /// IANA name of the report's time zone.
    pub timezone: String,
    #[serde(skip)]
    pub tz: Tz,
    /// The UTC span of the local day.
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    /// The language the report is rendered in.
    pub language: Language,
    /// The currency the cents are in: `{"code": "CNY", "symbol": "¥"}` in the JSON.
    pub currency: Currency,
    pub totals: Totals,
    pub connect_types: ConnectShare,
    /// 24 entries, local hours 0–23.
    pub hourly: Vec<HourLoad>,
    pub quality: QualitySummary,
    /// Connected video calls with the highest average video receive loss, worst first.
    pub worst_video_loss: Vec<DetailRow>,
    /// Connected video calls with the lowest average video receive bitrate, lowest first.
    pub lowest_video_bitrate: Vec<DetailRow>,
    pub browsers: LabelCounts,
    pub operating_systems: LabelCounts,
    pub client_events: ClientEvents,
    /// Calls and relays by country: present when the caller supplied a GeoIP lookup.
    pub countries: Option<Countries>,
    /// The e-mail's detail rows; not in the JSON, whose export carries every row instead.
    #[serde(skip)]
    pub detail: DetailTable,
}

/// Counts over the day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Sessions (joins) that began on the day: the "calls" of the report.
    pub sessions: u64,
    /// Distinct `(app_id, user_id)` among those sessions and the owners of the day's
    /// sub-sessions.
    pub participants: u64,
    pub sessions_timed_out: u64,
    /// Seconds from join to leave, summed over finished sessions.
    pub session_seconds: u64,
    /// Sub-sessions (directed pairs) placed on the day.
    pub sub_sessions: u64,
    /// Of those, pairs where media flowed.
    pub connected: u64,
    /// Pairs that finished without media ever flowing.
    pub never_connected: u64,
    /// Pairs still open when the rows were read (their minutes are counted up to
    /// `generated_at`; their cost is not known yet).
    pub in_progress: u64,
    /// Pairs ended by a heartbeat timeout (status 1 or 3).
    pub sub_sessions_timed_out: u64,
    /// Connected seconds over all pairs (both directions of a call count, as billed).
    pub connected_seconds: u64,
    /// Cents.
    pub cost_cents: u64,
    /// Rows handed in that belong to another day and were left out.
    pub rows_outside_day: u64,
}

impl Totals {
    /// Whether the day had no call at all.
    pub fn no_calls(&self) -> bool {
        self.sessions == 0 && self.sub_sessions == 0
    }

    /// Average connected seconds per connected pair.
    pub fn avg_connected_seconds(&self) -> f64 {
        ratio(self.connected_seconds as f64, self.connected as f64)
    }
}

/// Connected pairs by how media flowed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConnectShare {
    /// `STUN`: peer to peer or LAN.
    pub p2p: ShareRow,
    /// `TURN`: relayed.
    pub relay: ShareRow,
    /// `Unknown` or empty although connected.
    pub unknown: ShareRow,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ShareRow {
    pub pairs: u64,
    pub seconds: u64,
    pub cost_cents: u64,
}

impl ConnectShare {
    pub fn total(&self) -> ShareRow {
        ShareRow {
            pairs: self.p2p.pairs + self.relay.pairs + self.unknown.pairs,
            seconds: self.p2p.seconds + self.relay.seconds + self.unknown.seconds,
            cost_cents: self.p2p.cost_cents + self.relay.cost_cents + self.unknown.cost_cents,
        }
    }

    /// Percent of connected pairs that were relayed.
    pub fn relay_pair_percent(&self) -> f64 {
        100.0 * ratio(self.relay.pairs as f64, self.total().pairs as f64)
    }

    /// Percent of connected minutes that were relayed.
    pub fn relay_minute_percent(&self) -> f64 {
        100.0 * ratio(self.relay.seconds as f64, self.total().seconds as f64)
    }

    pub(crate) fn row_mut(&mut self, t: ConnectType) -> &mut ShareRow {
        match t {
            ConnectType::Stun => &mut self.p2p,
            ConnectType::Turn => &mut self.relay,
            ConnectType::Unknown | ConnectType::None => &mut self.unknown,
        }
    }
}

/// One local hour of the day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HourLoad {
    pub hour: u8,
    /// Sessions that joined in this hour.
    pub sessions: u64,
    /// Sub-sessions placed in this hour (by begin time).
    pub sub_sessions: u64,
    /// Of those, the connected ones.
    pub connected: u64,
}

/// Receive-side quality over the day's connected pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualitySummary {
    /// Connected pairs with at least one report.
    pub pairs_with_reports: u64,
    /// Connected pairs without any report.
    pub pairs_without_reports: u64,
    /// Quality reports summed over the pairs.
    pub reports: u64,
    /// Averages weighted by report count.
    pub audio_bitrate_avg: f64,
    pub audio_loss_avg: f64,
    /// Over video pairs only (see [`crate::DayReport`] for which pairs count as video).
    pub video_bitrate_avg: f64,
    pub video_loss_avg: f64,
    /// Distributions of the per-pair averages.
    pub audio_bitrate: Histogram,
    pub audio_loss: Histogram,
    pub video_bitrate: Histogram,
    pub video_loss: Histogram,
}

/// Counts of values in fixed buckets `[edges[i], edges[i+1])`, the last one open.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    pub title: String,
    pub unit: String,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub label: String,
    pub from: f64,
    /// `None` for the last, open bucket.
    pub to: Option<f64>,
    pub count: u64,
}

impl Histogram {
    pub fn total(&self) -> u64 {
        self.buckets.iter().map(|b| b.count).sum()
    }
}

/// Counts by label, most frequent first; labels past the configured number of distinct
/// labels are counted in `other`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LabelCounts {
    pub items: Vec<LabelCount>,
    pub other: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelCount {
    pub label: String,
    pub count: u64,
}

/// What clients reported with `reportInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClientEvents {
    /// All `reportInfo` rows of the day.
    pub rows: u64,
    /// Rows with a non-zero result.
    pub errors: u64,
    /// Errors by result code, most frequent first.
    pub by_code: Vec<CodeCount>,
    /// Errors whose code was not kept (past the distinct-label limit).
    pub other_codes: u64,
    /// Errors by result code and description, most frequent first.
    pub by_desc: Vec<DescCount>,
    /// Errors whose description was not kept (past the distinct-label limit).
    pub other_descs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeCount {
    pub code: i64,
    /// What the protocol says the code means, empty for codes it does not define.
    pub meaning: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DescCount {
    pub code: i64,
    pub desc: String,
    pub count: u64,
}

/// The rows of the per-call table that the e-mail shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DetailTable {
    /// In begin-time order.
    pub rows: Vec<DetailRow>,
    /// Sub-sessions of the day; `total - rows.len()` were left out of the e-mail.
    pub total: u64,
}

impl DetailTable {
    pub fn omitted(&self) -> u64 {
        self.total.saturating_sub(self.rows.len() as u64)
    }
}

/// One sub-session as the detail table shows it, with its owner's session fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetailRow {
    pub sub_session_id: String,
    pub session_id: String,
    pub app_id: String,
    pub user_id: String,
    pub user_name: String,
    pub remote_user_id: String,
    pub remote_user_name: String,
    pub talk_type: i64,
    pub status: SubStatus,
    pub connect_type: ConnectType,
    pub user_ip: String,
    pub user_country: Option<String>,
    pub remote_user_ip: String,
    pub ice_ip: String,
    pub ice_country: Option<String>,
    /// The instant that placed the row on the day: begin time, else creation.
    pub begin_time: DateTime<Utc>,
    pub connect_time: Option<DateTime<Utc>>,
    pub finish_time: Option<DateTime<Utc>>,
    /// Connected seconds (up to `generated_at` for a pair still open).
    pub duration_secs: u64,
    pub cost_cents: u64,
    pub os_name: String,
    pub browser: String,
    /// `None`: no quality report.
    pub quality: Option<QualityAgg>,
}

pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Calls and relays by country (from the caller's GeoIP lookup).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Countries {
    /// By the country of the members' addresses (`user_ip`), most calls first. A pair counts
    /// in the country of its owner, the receiving side whose quality it measures.
    pub members: Vec<CountryRow>,
    /// The TURN servers that relayed connected pairs (`ice_ip`), by their country.
    pub relays: Vec<RelayCountry>,
}

/// One country of members. `country` is the database's code (ISO 3166-1 alpha-2); `None`:
/// addresses the database does not place (private, unknown or not addresses).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CountryRow {
    pub country: Option<String>,
    /// Sessions (joins) that began on the day from the country.
    pub sessions: u64,
    /// Connected pairs owned by members there.
    pub connected: u64,
    /// Of those, relayed through TURN.
    pub relayed: u64,
    /// Connected pairs with a quality report.
    pub with_quality: u64,
    /// Average over those pairs of their average receive loss, percent.
    pub avg_audio_loss: f64,
    pub avg_video_loss: f64,
}

impl CountryRow {
    /// Percent of connected pairs that were relayed.
    pub fn relay_percent(&self) -> f64 {
        100.0 * ratio(self.relayed as f64, self.connected as f64)
    }
}

/// The TURN servers of one country.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RelayCountry {
    pub country: Option<String>,
    /// Distinct servers that relayed a connected pair on the day.
    pub servers: u64,
    /// Connected pairs they relayed.
    pub relayed: u64,
}

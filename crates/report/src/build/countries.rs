//! Calls, relay share and quality by the members' countries, and TURN servers by country.
//!
//! The builder sees addresses, not countries: the GeoIP lookup is the caller's and is applied
//! once per distinct address in [`DayReport::finish`](super::DayReport::finish). Distinct
//! addresses are kept up to [`MAX_ADDRESSES`]; rows from further addresses count under the
//! unknown country, so hostile or huge days cannot grow the report without bound.

use super::CountryLookup;
use crate::model::{Countries, CountryRow, RelayCountry};
use crate::rows::QualityAgg;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

/// Distinct member and relay addresses kept per day.
pub(crate) const MAX_ADDRESSES: usize = 200_000;

#[derive(Debug, Default, Clone, Copy)]
struct Agg {
    sessions: u64,
    connected: u64,
    relayed: u64,
    with_quality: u64,
    audio_loss_sum: f64,
    video_loss_sum: f64,
}

impl Agg {
    fn merge(&mut self, o: &Agg) {
        self.sessions += o.sessions;
        self.connected += o.connected;
        self.relayed += o.relayed;
        self.with_quality += o.with_quality;
        self.audio_loss_sum += o.audio_loss_sum;
        self.video_loss_sum += o.video_loss_sum;
    }
}

#[derive(Debug, Default)]
pub(crate) struct CountryAcc {
    members: HashMap<String, Agg>,
    /// Relayed pairs by TURN server address.
    relays: HashMap<String, u64>,
    /// Rows whose address did not fit in the maps.
    overflow: Agg,
    overflow_relayed: u64,
}

impl CountryAcc {
    fn member(&mut self, ip: &str) -> &mut Agg {
        if !self.members.contains_key(ip) && self.members.len() >= MAX_ADDRESSES {
            return &mut self.overflow;
        }
        self.members.entry(ip.to_owned()).or_default()
    }

    /// A session that joined from `ip`.
    pub(crate) fn session(&mut self, ip: &str) {
        self.member(ip).sessions += 1;
    }

    /// A connected pair whose owner (the receiving side) is at `ip`, relayed through
    /// `ice_ip` when `relayed`.
    pub(crate) fn connected_pair(
        &mut self,
        ip: &str,
        relayed: bool,
        ice_ip: &str,
        q: Option<&QualityAgg>,
    ) {
        let a = self.member(ip);
        a.connected += 1;
        if relayed {
            a.relayed += 1;
        }
        if let Some(q) = q {
            a.with_quality += 1;
            a.audio_loss_sum += q.audio_loss.avg;
            a.video_loss_sum += q.video_loss.avg;
        }
        if relayed && !ice_ip.is_empty() {
            if self.relays.contains_key(ice_ip) || self.relays.len() < MAX_ADDRESSES {
                *self.relays.entry(ice_ip.to_owned()).or_default() += 1;
            } else {
                self.overflow_relayed += 1;
            }
        }
    }

    /// Fold the addresses into countries with `geo`; an address it does not know (or one
    /// that is not an IP address) counts under `None`, the unknown country.
    pub(crate) fn finish(self, geo: CountryLookup<'_>) -> Countries {
        let country = |ip: &str| super::detail::parse_ip(ip).and_then(geo);
        let mut members: BTreeMap<Option<String>, Agg> = BTreeMap::new();
        for (ip, a) in &self.members {
            members.entry(country(ip)).or_default().merge(a);
        }
        if self.overflow.sessions + self.overflow.connected > 0 {
            members.entry(None).or_default().merge(&self.overflow);
        }
        let mut relays: BTreeMap<Option<String>, (u64, u64)> = BTreeMap::new();
        for (ip, pairs) in &self.relays {
            let e = relays.entry(country(ip)).or_default();
            e.0 += 1;
            e.1 += pairs;
        }
        if self.overflow_relayed > 0 {
            relays.entry(None).or_default().1 += self.overflow_relayed;
        }
        let mut members: Vec<CountryRow> = members
            .into_iter()
            .map(|(country, a)| CountryRow {
                country,
                sessions: a.sessions,
                connected: a.connected,
                relayed: a.relayed,
                with_quality: a.with_quality,
                avg_audio_loss: avg(a.audio_loss_sum, a.with_quality),
                avg_video_loss: avg(a.video_loss_sum, a.with_quality),
            })
            .collect();
        // Most calls first; the unknown country last among equals (BTreeMap put it first).
        members.sort_by_key(|r| (Reverse((r.sessions, r.connected)), r.country.is_none()));
        let mut relays: Vec<RelayCountry> = relays
            .into_iter()
            .map(|(country, (servers, relayed))| RelayCountry {
                country,
                servers,
                relayed,
            })
            .collect();
        relays.sort_by_key(|r| Reverse((r.relayed, r.servers)));
        Countries { members, relays }
    }
}

fn avg(sum: f64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { sum / n as f64 }
}

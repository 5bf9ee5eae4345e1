//! The quality section: bitrate and loss aggregates and fixed-edge histograms over
//! connected pairs.

use super::F;
use crate::model::{Bucket, Histogram, QualitySummary, ratio};
use crate::rows::QualityAgg;

/// Quality aggregates over connected pairs.
#[derive(Debug)]
pub(super) struct QualityAcc {
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
    pub(super) fn new() -> Self {
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

    pub(super) fn add(&mut self, q: Option<&QualityAgg>, video: bool) {
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

    pub(super) fn finish(self) -> QualitySummary {
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

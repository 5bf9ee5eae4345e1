//! The report's charts as PNG images: calls per hour, P2P against relay, and the quality
//! distributions.
//!
//! Why PNG and plotters: mail clients show neither SVG nor scripts reliably, but every one
//! shows a PNG referenced by `cid:`. plotters draws axes, ticks, labels and legends, which
//! would be a few hundred lines of layout code on top of a raw rasterizer such as tiny-skia
//! (which also has no text). It is built with `default-features = false` and only
//! `bitmap_backend` (drawing into an RGB buffer) and `ab_glyph` (text from an embedded TTF, no
//! system font lookup, so the output is the same on every machine); bars are plain
//! `Rectangle` elements, so no series feature is needed. The buffer is encoded by the `png`
//! crate directly rather than through plotters' `image` encoder, which would pull in the much
//! larger `image` crate. Labels are ASCII (plus a few Latin-1 signs), so the embedded font is
//! a 22 KB subset of DejaVu Sans (see `assets/DejaVuSans-LICENSE.txt`).

use crate::error::ReportError;
use crate::model::{Histogram, Report};
use base64::Engine;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::sync::OnceLock;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

const BLUE_BAR: RGBColor = RGBColor(47, 111, 222);
const GREEN_BAR: RGBColor = RGBColor(46, 157, 91);
const ORANGE_BAR: RGBColor = RGBColor(232, 135, 30);
const GREY_BAR: RGBColor = RGBColor(154, 160, 166);
const GRID: RGBColor = RGBColor(232, 234, 237);
const INK: RGBColor = RGBColor(60, 64, 67);

/// Width of every chart, in pixels: the width of the e-mail's content column.
pub const CHART_WIDTH: u32 = 900;

/// One rendered chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Short ASCII name, also the local part of the Content-ID.
    pub id: &'static str,
    /// Alternative text for mail clients that block images.
    pub alt: String,
    pub width: u32,
    pub height: u32,
    pub png: Vec<u8>,
}

impl Chart {
    /// The Content-ID of the image part, without angle brackets.
    pub fn content_id(&self) -> String {
        format!("{}@rtcroom.report", self.id)
    }

    /// The image as a `data:` URI, for the standalone HTML file.
    pub fn data_uri(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.png);
        format!("data:image/png;base64,{b64}")
    }
}

/// The charts that have data: the hourly chart when any session joined, the share chart when
/// any pair connected, the quality chart when any pair sent a quality report. A day without
/// calls has none.
pub fn render_charts(report: &Report) -> Result<Vec<Chart>, ReportError> {
    font()?;
    let mut out = Vec::new();
    if report.totals.sessions > 0 {
        out.push(hourly(report)?);
    }
    if report.connect_types.total().pairs > 0 {
        out.push(share(report)?);
    }
    if report.quality.pairs_with_reports > 0 {
        out.push(quality(report)?);
    }
    Ok(out)
}

fn font() -> Result<(), ReportError> {
    // plotters keeps fonts in a process-wide registry; registering once is enough.
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(ReportError::Font) }
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draws into a white RGB canvas and encodes it.
fn render(
    id: &'static str,
    alt: String,
    height: u32,
    draw: impl FnOnce(&Area<'_>) -> Result<(), String>,
) -> Result<Chart, ReportError> {
    let width = CHART_WIDTH;
    let mut buf = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        let fail = |message: String| ReportError::Chart { chart: id, message };
        draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let png =
        encode_png(&buf, width, height).map_err(|source| ReportError::Png { chart: id, source })?;
    Ok(Chart {
        id,
        alt,
        width,
        height,
        png,
    })
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, width, height);
    e.set_color(png::ColorType::Rgb);
    e.set_depth(png::BitDepth::Eight);
    e.set_compression(png::Compression::High);
    let mut w = e.write_header()?;
    w.write_image_data(rgb)?;
    w.finish()?;
    Ok(out)
}

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn hourly(report: &Report) -> Result<Chart, ReportError> {
    let counts: Vec<u64> = report.hourly.iter().map(|h| h.sessions).collect();
    let peak = counts
        .iter()
        .enumerate()
        .max_by_key(|&(h, c)| (*c, std::cmp::Reverse(h)))
        .map_or(0, |(h, _)| h);
    let alt = format!(
        "Calls started per hour ({}); busiest hour {:02}:00 with {} calls",
        report.timezone, peak, counts[peak]
    );
    let title = format!("Calls started per hour ({})", report.timezone);
    render("hourly", alt, 300, |root| {
        root.fill(&WHITE).map_err(s)?;
        let ymax = nice_max(counts.iter().copied().max().unwrap_or(0));
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FAMILY, 18).into_font().color(&INK))
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(56)
            .build_cartesian_2d((0u32..23u32).into_segmented(), 0u64..ymax)
            .map_err(s)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(INK)
            .x_labels(24)
            .y_labels(6)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(h) => format!("{h}"),
                _ => String::new(),
            })
            .x_desc("local hour")
            .y_desc("calls")
            .label_style((FAMILY, 12).into_font().color(&INK))
            .axis_desc_style((FAMILY, 13).into_font().color(&INK))
            .draw()
            .map_err(s)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(h, &c)| {
                let h = h as u32;
                let mut r = Rectangle::new(
                    [(SegmentValue::Exact(h), 0), (segment_end(h, 24), c)],
                    BLUE_BAR.filled(),
                );
                r.set_margin(0, 0, 4, 4);
                r
            }))
            .map_err(s)?;
        let label = (FAMILY, 11)
            .into_font()
            .color(&INK)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        chart
            .draw_series(
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(h, &c)| {
                        Text::new(
                            c.to_string(),
                            (SegmentValue::CenterOf(h as u32), c),
                            label.clone(),
                        )
                    }),
            )
            .map_err(s)?;
        Ok(())
    })
}

fn share(report: &Report) -> Result<Chart, ReportError> {
    let c = &report.connect_types;
    // The y axis counts upwards, so the first bar is drawn at the bottom.
    let bars = [
        (
            "minutes",
            [c.p2p.seconds, c.relay.seconds, c.unknown.seconds],
        ),
        ("pairs", [c.p2p.pairs, c.relay.pairs, c.unknown.pairs]),
    ];
    let names = ["P2P (STUN)", "Relay (TURN)", "Unknown"];
    let colors = [GREEN_BAR, ORANGE_BAR, GREY_BAR];
    let alt = format!(
        "Relayed: {:.1}% of connected pairs, {:.1}% of minutes",
        c.relay_pair_percent(),
        c.relay_minute_percent()
    );
    render("share", alt, 210, |root| {
        root.fill(&WHITE).map_err(s)?;
        let (plot, legend) = root.split_vertically(180);
        let mut chart = ChartBuilder::on(&plot)
            .caption(
                "P2P and relayed calls",
                (FAMILY, 18).into_font().color(&INK),
            )
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..100f64, (0u32..1u32).into_segmented())
            .map_err(s)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(INK)
            .x_labels(11)
            .x_label_formatter(&|v| format!("{v:.0}%"))
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => bars
                    .get(*i as usize)
                    .map_or(String::new(), |b| b.0.to_owned()),
                _ => String::new(),
            })
            .label_style((FAMILY, 12).into_font().color(&INK))
            .draw()
            .map_err(s)?;
        let inside = (FAMILY, 12)
            .into_font()
            .color(&WHITE)
            .pos(Pos::new(HPos::Center, VPos::Center));
        for (k, (name, color)) in names.iter().zip(colors).enumerate() {
            let (rects, texts) = share_segments(&bars, k, color, &inside);
            chart.draw_series(rects).map_err(s)?;
            chart.draw_series(texts).map_err(s)?;
            share_legend_entry(&legend, k, name, color)?;
        }
        Ok(())
    })
}

/// A point on the share chart: percent across, bar (segment) up.
type SharePoint = (f64, SegmentValue<u32>);

/// The `k`-th part (P2P, relay, unknown) of every bar: its rectangles, and a percent label
/// on each part wide enough to hold one.
fn share_segments(
    bars: &[(&str, [u64; 3])],
    k: usize,
    color: RGBColor,
    inside: &TextStyle<'static>,
) -> (
    Vec<Rectangle<SharePoint>>,
    Vec<Text<'static, SharePoint, String>>,
) {
    let mut rects = Vec::new();
    let mut texts = Vec::new();
    for (i, (_, values)) in bars.iter().enumerate() {
        let total: u64 = values.iter().sum();
        if total == 0 {
            continue;
        }
        let pct = |v: u64| 100.0 * v as f64 / total as f64;
        let x0: f64 = values[..k].iter().map(|&v| pct(v)).sum();
        let w = pct(values[k]);
        let i = i as u32;
        let mut r = Rectangle::new(
            [(x0, SegmentValue::Exact(i)), (x0 + w, segment_end(i, 2))],
            color.filled(),
        );
        r.set_margin(8, 8, 0, 0);
        rects.push(r);
        // A label only fits a segment of about a tenth of the width.
        if w >= 9.0 {
            texts.push(Text::new(
                format!("{w:.1}%"),
                (x0 + w / 2.0, SegmentValue::CenterOf(i)),
                inside.clone(),
            ));
        }
    }
    (rects, texts)
}

/// The `k`-th legend entry of the share chart. The legend goes in its own strip under the
/// axis, where it cannot cover a bar.
fn share_legend_entry(
    legend: &Area<'_>,
    k: usize,
    name: &str,
    color: RGBColor,
) -> Result<(), String> {
    let x = 250 + 170 * k as i32;
    legend
        .draw(&Rectangle::new([(x, 6), (x + 12, 18)], color.filled()))
        .map_err(s)?;
    legend
        .draw(&Text::new(
            name,
            (x + 18, 5),
            (FAMILY, 13).into_font().color(&INK),
        ))
        .map_err(s)?;
    Ok(())
}

fn quality(report: &Report) -> Result<Chart, ReportError> {
    let q = &report.quality;
    let panels = [
        (&q.audio_bitrate, BLUE_BAR),
        (&q.video_bitrate, BLUE_BAR),
        (&q.audio_loss, ORANGE_BAR),
        (&q.video_loss, ORANGE_BAR),
    ];
    let alt = format!(
        "Quality of {} connected pairs with reports: average audio {:.0} kbit/s, {:.2}% loss; average video {:.0} kbit/s, {:.2}% loss",
        q.pairs_with_reports,
        q.audio_bitrate_avg,
        q.audio_loss_avg,
        q.video_bitrate_avg,
        q.video_loss_avg
    );
    render("quality", alt, 520, |root| {
        root.fill(&WHITE).map_err(s)?;
        let areas = root.split_evenly((2, 2));
        for (area, (h, color)) in areas.iter().zip(panels) {
            histogram(area, h, color)?;
        }
        Ok(())
    })
}

fn histogram(area: &Area<'_>, h: &Histogram, color: RGBColor) -> Result<(), String> {
    let n = h.buckets.len() as u32;
    let ymax = nice_max(h.buckets.iter().map(|b| b.count).max().unwrap_or(0));
    let labels: Vec<String> = h.buckets.iter().map(|b| b.label.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{} ({}), pairs", h.title, h.unit),
            (FAMILY, 15).into_font().color(&INK),
        )
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(50)
        .build_cartesian_2d((0u32..n - 1).into_segmented(), 0u64..ymax)
        .map_err(s)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(INK)
        .x_labels(n as usize)
        .y_labels(5)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .label_style((FAMILY, 11).into_font().color(&INK))
        .draw()
        .map_err(s)?;
    chart
        .draw_series(h.buckets.iter().enumerate().map(|(i, b)| {
            let i = i as u32;
            let mut r = Rectangle::new(
                [(SegmentValue::Exact(i), 0), (segment_end(i, n), b.count)],
                color.filled(),
            );
            r.set_margin(0, 0, 5, 5);
            r
        }))
        .map_err(s)?;
    let label = (FAMILY, 11)
        .into_font()
        .color(&INK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    chart
        .draw_series(
            h.buckets
                .iter()
                .enumerate()
                .filter(|(_, b)| b.count > 0)
                .map(|(i, b)| {
                    Text::new(
                        b.count.to_string(),
                        (SegmentValue::CenterOf(i as u32), b.count),
                        label.clone(),
                    )
                }),
        )
        .map_err(s)?;
    Ok(())
}

/// The right (or upper) edge of segment `i` of `n` on a segmented axis over `0..=n-1`: the
/// start of the next segment, or the axis' end for the last one.
fn segment_end(i: u32, n: u32) -> SegmentValue<u32> {
    if i + 1 < n {
        SegmentValue::Exact(i + 1)
    } else {
        SegmentValue::Last
    }
}

/// The top of a count axis: room above the highest bar for its label, at least 1.
fn nice_max(max: u64) -> u64 {
    (max + max / 8 + 1).max(1)
}

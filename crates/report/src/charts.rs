//! The report's charts as PNG images: calls per hour, P2P against relay, and the quality
//! distributions.
//!
//! Why PNG and plotters: mail clients show neither SVG nor scripts reliably, but every one
//! shows a PNG referenced by `cid:`. plotters draws axes, ticks, labels and legends, which
//! would be a few hundred lines of layout code on top of a raw rasterizer such as tiny-skia
//! (which also has no text). It is built with `default-features = false` and only
//! `bitmap_backend` (drawing into an RGB buffer) and `ab_glyph` (text from a font embedded in
//! the binary, no system font lookup, so the output is the same on every machine, with or
//! without fonts installed); bars are plain `Rectangle` elements, so no series feature is
//! needed. The buffer is encoded by the `png` crate directly rather than through plotters'
//! `image` encoder, which would pull in the much larger `image` crate.
//!
//! Fonts, one per language, both subsets (the full fonts are 0.7 and 19 MB):
//! - English: DejaVu Sans cut to Latin-1 and a few signs, 22 KB
//!   (`assets/DejaVuSans-LICENSE.txt`);
//! - Chinese: Noto Sans CJK SC cut to ASCII and the characters of the Chinese strings table,
//!   43 KB (`assets/NotoSansCJKsc-LICENSE.txt`, made by `scripts/report-fonts.sh`).
//!
//! Every string a chart draws is checked against its font first: a character the font lacks
//! is an error naming it, never an empty box in the image.

use crate::error::ReportError;
use crate::lang::{Language, Texts, fill};
use crate::model::{Histogram, Report};
use ab_glyph::{Font, FontRef};
use base64::Engine;
use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::{RangedCoordu32, RangedCoordu64};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::sync::OnceLock;

static LATIN_FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
static CJK_FONT: &[u8] = include_bytes!("../assets/NotoSansCJKsc-report.otf");

/// The plotters family name and the font data of a language's charts.
pub(crate) fn chart_font(language: Language) -> (&'static str, &'static [u8]) {
    match language {
        Language::En => ("rtcroom-latin", LATIN_FONT),
        Language::ZhCn => ("rtcroom-cjk", CJK_FONT),
    }
}

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
    let pen = Pen::new(report.language)?;
    let mut out = Vec::new();
    if report.totals.sessions > 0 {
        out.push(hourly(report, &pen)?);
    }
    if report.connect_types.total().pairs > 0 {
        out.push(share(report, &pen)?);
    }
    if report.quality.pairs_with_reports > 0 {
        out.push(quality(report, &pen)?);
    }
    Ok(out)
}

/// The font of a report's charts: its plotters family, and its glyph table to check text
/// against before it is drawn.
struct Pen {
    family: &'static str,
    font: FontRef<'static>,
    tx: &'static Texts,
}

impl Pen {
    fn new(language: Language) -> Result<Self, ReportError> {
        // plotters keeps fonts in a process-wide registry; registering once is enough.
        static REGISTERED: OnceLock<bool> = OnceLock::new();
        let ok = *REGISTERED.get_or_init(|| {
            Language::ALL.iter().all(|&l| {
                let (family, data) = chart_font(l);
                plotters::style::register_font(family, FontStyle::Normal, data).is_ok()
            })
        });
        let (family, data) = chart_font(language);
        let font = FontRef::try_from_slice(data).map_err(|_| ReportError::Font { family })?;
        if !ok {
            return Err(ReportError::Font { family });
        }
        Ok(Self {
            family,
            font,
            tx: language.texts(),
        })
    }

    /// `s`, if the font has a glyph for each of its characters.
    fn text(&self, chart: &'static str, s: String) -> Result<String, ReportError> {
        match s
            .chars()
            .find(|&c| !c.is_whitespace() && self.font.glyph_id(c).0 == 0)
        {
            None => Ok(s),
            Some(missing) => Err(ReportError::Glyph {
                chart,
                missing,
                text: s,
                family: self.family,
            }),
        }
    }

    fn style(&self, size: u32, color: &RGBColor) -> TextStyle<'static> {
        (self.family, size).into_font().color(color)
    }
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

fn hourly(report: &Report, pen: &Pen) -> Result<Chart, ReportError> {
    let counts: Vec<u64> = report.hourly.iter().map(|h| h.sessions).collect();
    let peak = counts
        .iter()
        .enumerate()
        .max_by_key(|&(h, c)| (*c, std::cmp::Reverse(h)))
        .map_or(0, |(h, _)| h);
    let tx = pen.tx;
    let alt = fill(
        tx.chart_hourly_alt,
        &[
            ("tz", &report.timezone),
            ("hour", &format!("{peak:02}")),
            ("n", &counts[peak].to_string()),
        ],
    );
    let id = "hourly";
    let title = pen.text(id, fill(tx.chart_hourly_title, &[("tz", &report.timezone)]))?;
    let x_desc = pen.text(id, tx.chart_hour_axis.to_owned())?;
    let y_desc = pen.text(id, tx.chart_calls_axis.to_owned())?;
    render(id, alt, 300, |root| {
        root.fill(&WHITE).map_err(s)?;
        let ymax = nice_max(counts.iter().copied().max().unwrap_or(0));
        let mut chart = ChartBuilder::on(root)
            .caption(title, pen.style(18, &INK))
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
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style(pen.style(12, &INK))
            .axis_desc_style(pen.style(13, &INK))
            .draw()
            .map_err(s)?;
        counted_bars(&mut chart, &counts, BLUE_BAR, 4, pen)
    })
}

fn share(report: &Report, pen: &Pen) -> Result<Chart, ReportError> {
    let c = &report.connect_types;
    let (tx, id) = (pen.tx, "share");
    // The y axis counts upwards, so the first bar is drawn at the bottom.
    let bars = [
        (
            pen.text(id, tx.chart_bar_minutes.to_owned())?,
            [c.p2p.seconds, c.relay.seconds, c.unknown.seconds],
        ),
        (
            pen.text(id, tx.chart_bar_pairs.to_owned())?,
            [c.p2p.pairs, c.relay.pairs, c.unknown.pairs],
        ),
    ];
    let names = [
        pen.text(id, tx.p2p.to_owned())?,
        pen.text(id, tx.relay.to_owned())?,
        pen.text(id, tx.unknown.to_owned())?,
    ];
    let colors = [GREEN_BAR, ORANGE_BAR, GREY_BAR];
    let alt = fill(
        tx.chart_share_alt,
        &[
            ("pairs", &format!("{:.1}%", c.relay_pair_percent())),
            ("minutes", &format!("{:.1}%", c.relay_minute_percent())),
        ],
    );
    let title = pen.text(id, tx.chart_share_title.to_owned())?;
    render(id, alt, 210, |root| {
        root.fill(&WHITE).map_err(s)?;
        let (plot, legend) = root.split_vertically(180);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, pen.style(18, &INK))
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
                SegmentValue::CenterOf(i) => {
                    bars.get(*i as usize).map_or(String::new(), |b| b.0.clone())
                }
                _ => String::new(),
            })
            .label_style(pen.style(12, &INK))
            .draw()
            .map_err(s)?;
        let inside = pen
            .style(12, &WHITE)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let values: Vec<[u64; 3]> = bars.iter().map(|b| b.1).collect();
        for (k, (name, color)) in names.iter().zip(colors).enumerate() {
            let (rects, texts) = share_segments(&values, k, color, &inside);
            chart.draw_series(rects).map_err(s)?;
            chart.draw_series(texts).map_err(s)?;
            share_legend_entry(&legend, pen, k, name, color)?;
        }
        Ok(())
    })
}

/// A point on the share chart: percent across, bar (segment) up.
type SharePoint = (f64, SegmentValue<u32>);

/// The `k`-th part (P2P, relay, unknown) of every bar: its rectangles, and a percent label
/// on each part wide enough to hold one.
fn share_segments(
    bars: &[[u64; 3]],
    k: usize,
    color: RGBColor,
    inside: &TextStyle<'static>,
) -> (
    Vec<Rectangle<SharePoint>>,
    Vec<Text<'static, SharePoint, String>>,
) {
    let mut rects = Vec::new();
    let mut texts = Vec::new();
    for (i, values) in bars.iter().enumerate() {
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
    pen: &Pen,
    k: usize,
    name: &str,
    color: RGBColor,
) -> Result<(), String> {
    let x = 250 + 170 * k as i32;
    legend
        .draw(&Rectangle::new([(x, 6), (x + 12, 18)], color.filled()))
        .map_err(s)?;
    legend
        .draw(&Text::new(name, (x + 18, 5), pen.style(13, &INK)))
        .map_err(s)?;
    Ok(())
}

fn quality(report: &Report, pen: &Pen) -> Result<Chart, ReportError> {
    let q = &report.quality;
    let (tx, id) = (pen.tx, "quality");
    let colors = [BLUE_BAR, BLUE_BAR, ORANGE_BAR, ORANGE_BAR];
    let mut panels = Vec::with_capacity(4);
    for ((title, h), color) in crate::text::histograms(report).into_iter().zip(colors) {
        let caption = fill(
            tx.chart_histogram_title,
            &[("title", title), ("unit", &h.unit)],
        );
        let caption = pen.text(id, caption)?;
        for b in &h.buckets {
            pen.text(id, b.label.clone())?;
        }
        panels.push((caption, h, color));
    }
    let alt = fill(
        tx.chart_quality_alt,
        &[
            ("pairs", &q.pairs_with_reports.to_string()),
            ("audio_kbps", &format!("{:.0}", q.audio_bitrate_avg)),
            ("audio_loss", &format!("{:.2}", q.audio_loss_avg)),
            ("video_kbps", &format!("{:.0}", q.video_bitrate_avg)),
            ("video_loss", &format!("{:.2}", q.video_loss_avg)),
        ],
    );
    render(id, alt, 520, |root| {
        root.fill(&WHITE).map_err(s)?;
        let areas = root.split_evenly((2, 2));
        for (area, (caption, h, color)) in areas.iter().zip(panels) {
            histogram(area, pen, caption, h, color)?;
        }
        Ok(())
    })
}

fn histogram(
    area: &Area<'_>,
    pen: &Pen,
    caption: String,
    h: &Histogram,
    color: RGBColor,
) -> Result<(), String> {
    let n = h.buckets.len() as u32;
    let ymax = nice_max(h.buckets.iter().map(|b| b.count).max().unwrap_or(0));
    let labels: Vec<String> = h.buckets.iter().map(|b| b.label.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, pen.style(15, &INK))
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
        .label_style(pen.style(11, &INK))
        .draw()
        .map_err(s)?;
    let counts: Vec<u64> = h.buckets.iter().map(|b| b.count).collect();
    counted_bars(&mut chart, &counts, color, 5, pen)
}

/// A bar per count on a segmented axis, `margin` pixels in from each side of its segment,
/// with every non-zero count written above its bar.
fn counted_bars(
    chart: &mut ChartContext<
        '_,
        BitMapBackend<'_>,
        Cartesian2d<SegmentedCoord<RangedCoordu32>, RangedCoordu64>,
    >,
    counts: &[u64],
    color: RGBColor,
    margin: u32,
    pen: &Pen,
) -> Result<(), String> {
    let n = counts.len() as u32;
    chart
        .draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let i = i as u32;
            let mut r = Rectangle::new(
                [(SegmentValue::Exact(i), 0), (segment_end(i, n), c)],
                color.filled(),
            );
            r.set_margin(0, 0, margin, margin);
            r
        }))
        .map_err(s)?;
    let label = pen
        .style(11, &INK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    chart
        .draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, &c)| {
                    Text::new(
                        c.to_string(),
                        (SegmentValue::CenterOf(i as u32), c),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string of a language (the charts draw some of them, with numbers, time zone
    /// names and bucket labels in ASCII) has glyphs in the language's embedded font.
    #[test]
    fn each_language_font_has_every_character_of_its_strings() {
        for language in Language::ALL {
            let pen = Pen::new(language).expect("the embedded font loads");
            let mut strings: Vec<String> = language
                .texts()
                .entries()
                .into_iter()
                .map(|(_, s)| s.to_owned())
                .collect();
            strings.push((' '..='~').collect());
            strings.push("\u{2013}\u{2265}".to_owned());
            for s in strings {
                if let Err(e) = pen.text("test", s) {
                    panic!("{language}: {e}");
                }
            }
        }
    }

    /// The check above is real: the Latin font has no Chinese, and a chart that would draw
    /// boxes is an error naming the character.
    #[test]
    fn a_character_the_font_lacks_is_an_error_not_a_box() {
        let pen = Pen::new(Language::En).expect("the embedded font loads");
        let title = Language::ZhCn.texts().chart_share_title.to_owned();
        let e = pen
            .text("share", title)
            .expect_err("no CJK in DejaVu Sans' subset");
        assert!(matches!(e, ReportError::Glyph { missing: '直', .. }), "{e}");
        assert!(e.to_string().contains("scripts/report-fonts.sh"), "{e}");
    }
}

//! The report as a standalone file, HTML or JSON, with every detail row of the day.
//!
//! A day can have a million sub-sessions, more than any memory budget should hold, so the
//! detail rows are not kept: the caller reads them a second time and pushes them through an
//! exporter, which formats each row and writes it to the caller's writer at once. The
//! exporters are push-style (`begin`, `row` per row, `finish`) rather than taking an
//! iterator, so that an async store can drive them from a stream.
//!
//! Both apply the same placement rule as [`crate::DayReport`]: rows of another day are
//! skipped, so the file's table matches the figures above it.

use crate::build::{CountryLookup, add_countries, detail_row};
use crate::charts::Chart;
use crate::error::ReportError;
use crate::fmt::{esc, int};
use crate::html::{self, Images};
use crate::lang::{Texts, fill};
use crate::model::{DetailRow, Report};
use crate::rows::{SessionRow, SubSessionRow};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::io::Write;

/// Turns input rows into detail rows the way the builder does.
struct Rows<'g> {
    window: (DateTime<Utc>, DateTime<Utc>),
    generated_at: DateTime<Utc>,
    geo: Option<CountryLookup<'g>>,
    written: u64,
    skipped: u64,
}

impl<'g> Rows<'g> {
    fn new(report: &Report, geo: Option<CountryLookup<'g>>) -> Self {
        Self {
            window: (report.window_start, report.window_end),
            generated_at: report.generated_at,
            geo,
            written: 0,
            skipped: 0,
        }
    }

    fn convert(&mut self, owner: &SessionRow, sub: &SubSessionRow) -> Option<DetailRow> {
        let at = sub.day_time(owner);
        if at < self.window.0 || at >= self.window.1 {
            self.skipped += 1;
            return None;
        }
        self.written += 1;
        let mut row = detail_row(owner, sub, at, sub.seconds_at(self.generated_at));
        if let Some(geo) = self.geo {
            add_countries(&mut row, geo);
        }
        Some(row)
    }
}

/// Writes the report as one HTML file: the e-mail's content with the charts inlined as
/// `data:` URIs, and a detail table of every row pushed through [`HtmlExport::row`]. Each row
/// is one `write_all`; pass a `BufWriter` around a file.
pub struct HtmlExport<'g, W: Write> {
    w: W,
    rows: Rows<'g>,
    tz: Tz,
    texts: &'static Texts,
    buf: String,
    /// The end of the page, made at `begin` while the report is at hand.
    tail: String,
}

impl<W: Write> std::fmt::Debug for HtmlExport<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HtmlExport")
            .field("written", &self.rows.written)
            .field("skipped", &self.rows.skipped)
            .finish_non_exhaustive()
    }
}

impl<'g, W: Write> HtmlExport<'g, W> {
    /// Writes everything above the detail table.
    pub fn begin(
        mut w: W,
        report: &Report,
        charts: &[Chart],
        title: &str,
        geo: Option<CountryLookup<'g>>,
    ) -> Result<Self, ReportError> {
        let mut head = String::with_capacity(256 * 1024);
        html::start(&mut head, report, title);
        html::summary(&mut head, report, charts, Images::Inline);
        let tx = report.language.texts();
        let note = fill(tx.detail_export, &[("n", &int(report.detail.total))]);
        html::detail_open(&mut head, report, &esc(&note));
        w.write_all(head.as_bytes())?;
        let mut tail = String::new();
        html::detail_close(&mut tail);
        html::end(&mut tail, report);
        Ok(Self {
            w,
            rows: Rows::new(report, geo),
            tz: report.tz,
            texts: tx,
            buf: String::with_capacity(1024),
            tail,
        })
    }

    /// Appends one sub-session (with its owning session) to the table.
    pub fn row(&mut self, owner: &SessionRow, sub: &SubSessionRow) -> Result<(), ReportError> {
        if let Some(row) = self.rows.convert(owner, sub) {
            self.buf.clear();
            html::detail_row(&mut self.buf, self.rows.written, &row, self.tz, self.texts);
            self.w.write_all(self.buf.as_bytes())?;
        }
        Ok(())
    }

    /// Closes the table and the page; returns the writer and the number of rows written.
    pub fn finish(mut self) -> Result<(W, u64), ReportError> {
        self.w.write_all(self.tail.as_bytes())?;
        self.w.flush()?;
        Ok((self.w, self.rows.written))
    }
}

/// Writes the report as one JSON document,
/// `{"report": {…}, "rows": [{…}, …], "rows_written": N}`: the [`Report`] (without its
/// e-mail detail rows) and every row pushed through [`JsonExport::row`].
pub struct JsonExport<'g, W: Write> {
    w: W,
    rows: Rows<'g>,
    /// One row's JSON, so the writer gets one write per row rather than one per token.
    buf: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for JsonExport<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonExport")
            .field("written", &self.rows.written)
            .field("skipped", &self.rows.skipped)
            .finish_non_exhaustive()
    }
}

impl<'g, W: Write> JsonExport<'g, W> {
    pub fn begin(
        mut w: W,
        report: &Report,
        geo: Option<CountryLookup<'g>>,
    ) -> Result<Self, ReportError> {
        w.write_all(b"{\"report\":")?;
        serde_json::to_writer(&mut w, report)?;
        w.write_all(b",\"rows\":[")?;
        Ok(Self {
            w,
            rows: Rows::new(report, geo),
            buf: Vec::with_capacity(1024),
        })
    }

    /// Appends one sub-session (with its owning session) to `rows`.
    pub fn row(&mut self, owner: &SessionRow, sub: &SubSessionRow) -> Result<(), ReportError> {
        if let Some(row) = self.rows.convert(owner, sub) {
            self.buf.clear();
            self.buf
                .extend_from_slice(if self.rows.written > 1 { b",\n" } else { b"\n" });
            serde_json::to_writer(&mut self.buf, &row)?;
            self.w.write_all(&self.buf)?;
        }
        Ok(())
    }

    /// Closes the document; returns the writer and the number of rows written.
    pub fn finish(mut self) -> Result<(W, u64), ReportError> {
        write!(self.w, "\n],\"rows_written\":{}}}\n", self.rows.written)?;
        self.w.flush()?;
        Ok((self.w, self.rows.written))
    }
}

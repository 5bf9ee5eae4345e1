//! The daily call report of rtcroom (issue 7).
//!
//! The document's stats server (section 2.1) reads the day's call records every early
//! morning and e-mails a report: calls, minutes, quality, relay use. This crate is that
//! report without the reading and the sending.
//!
//! **Architecture invariant:** this crate never does IO of its own and never reads a clock.
//! Rows come in through [`DayReport`], the time of the report comes in as a parameter, and
//! what goes out is data: a [`Report`], PNG bytes, strings, a [`lettre::Message`], or bytes
//! written to a writer the caller passes.
//!
//! Use, for a shell:
//! 1. When: [`schedule::next_run`] gives the next run instant, [`schedule::report_day_for`]
//!    the day it reports on, [`DayReport::window`] the UTC span to read.
//! 2. Compute: [`DayReport::new`], then `add_session` / `add_sub_session` /
//!    `add_client_info` for every row of the day, then [`DayReport::finish`].
//! 3. Render: [`render_charts`], then [`build_message`] for the e-mail; or, reading the
//!    sub-sessions a second time, [`HtmlExport`] / [`JsonExport`] for a file with every row.

mod build;
mod charts;
mod currency;
mod error;
mod export;
mod fmt;
mod html;
mod lang;
mod mail;
mod model;
mod rows;
pub mod schedule;
mod text;

pub use build::{CountryLookup, DayReport, ReportConfig, result_meaning};
pub use charts::{CHART_WIDTH, Chart, render_charts};
pub use currency::{Currency, CurrencyError};
pub use error::ReportError;
pub use export::{HtmlExport, JsonExport};
pub use html::email_html;
pub use lang::{Language, UnknownLanguage};
pub use mail::{MailOptions, build_message, default_subject, subject_for};
pub use model::*;
pub use rows::{
    ClientInfoRow, ConnectType, QualityAgg, SessionRow, Stat, SubSessionRow, SubStatus,
};
pub use text::email_text;

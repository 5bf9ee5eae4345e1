//! The report as an e-mail message, ready for an SMTP transport the caller owns.
//!
//! Structure (RFC 2046/2387), so that every client shows something sensible:
//! ```text
//! multipart/alternative
//! ├── text/plain                 the text part
//! └── multipart/related
//!     ├── text/html              refers to the images by cid:
//!     └── image/png …            one inline part per chart, Content-ID <name@rtcroom.report>
//! ```
//! The message is fully determined by its inputs: the Date header is the report's
//! `generated_at`, the Message-ID is derived from the date and the sender's domain, and the
//! MIME boundaries are fixed strings that cannot occur in base64 or quoted-printable bodies.

use crate::charts::Chart;
use crate::error::ReportError;
use crate::html::email_html;
use crate::lang::{Language, fill};
use crate::model::Report;
use crate::text::email_text;
use chrono::NaiveDate;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use std::time::SystemTime;

/// Who gets the report and under what subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailOptions {
    /// `"Name <addr@example.com>"` or a bare address.
    pub from: String,
    /// At least one recipient, in the same forms.
    pub to: Vec<String>,
    /// `None` or blank: [`default_subject`]. Otherwise `{date}` in it becomes the report's
    /// date, and without `{date}` the date is appended, so every day's mail is told apart.
    pub subject: Option<String>,
}

/// The subject of a report without a configured one, in its language:
/// `Daily call report YYYY-MM-DD` in English, `音视频通话统计日报 YYYY-MM-DD` in Chinese.
pub fn default_subject(date: NaiveDate, language: Language) -> String {
    fill(language.texts().subject, &[("date", &date.to_string())])
}

/// The subject these options give for `report`.
pub fn subject_for(report: &Report, opts: &MailOptions) -> String {
    match opts.subject.as_deref().map(str::trim) {
        None | Some("") => default_subject(report.date, report.language),
        Some(s) if s.contains("{date}") => s.replace("{date}", &report.date.to_string()),
        Some(s) => format!("{s} {}", report.date),
    }
}

fn mailbox(s: &str) -> Result<Mailbox, ReportError> {
    s.trim().parse().map_err(|source| ReportError::Address {
        address: s.to_owned(),
        source,
    })
}

/// Builds the message: text and HTML alternatives, the charts inline.
pub fn build_message(
    report: &Report,
    charts: &[Chart],
    opts: &MailOptions,
) -> Result<Message, ReportError> {
    let from = mailbox(&opts.from)?;
    if opts.to.is_empty() {
        return Err(ReportError::NoRecipients);
    }
    let subject = subject_for(report, opts);
    let text = email_text(report, &subject);
    let html = email_html(report, charts, &subject);

    let png = ContentType::parse("image/png")?;
    let mut related = MultiPart::related()
        .boundary("=_rtcroom_report_related")
        .singlepart(SinglePart::html(html));
    for c in charts {
        related = related.singlepart(
            Attachment::new_inline_with_name(c.content_id(), format!("{}.png", c.id))
                .body(c.png.clone(), png.clone()),
        );
    }
    let body = MultiPart::alternative()
        .boundary("=_rtcroom_report_alternative")
        .singlepart(SinglePart::plain(text))
        .multipart(related);

    let domain = from.email.domain().to_owned();
    let mut builder = Message::builder()
        .from(from)
        .subject(subject)
        .date(SystemTime::from(report.generated_at))
        .message_id(Some(format!(
            "<daily-report-{}-{}@{}>",
            report.date,
            report.generated_at.timestamp(),
            domain
        )));
    for to in &opts.to {
        builder = builder.to(mailbox(to)?);
    }
    Ok(builder.multipart(body)?)
}

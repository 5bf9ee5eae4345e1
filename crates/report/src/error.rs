//! The one error type of the crate.

/// What can go wrong while rendering a report or building its message. Computing a report
/// cannot fail.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the embedded chart font {family} could not be loaded")]
    Font { family: &'static str },
    #[error(
        "the {chart} chart's text {text:?} has {missing:?}, which the embedded font {family} lacks: run scripts/report-fonts.sh after editing the language's strings"
    )]
    Glyph {
        chart: &'static str,
        missing: char,
        text: String,
        family: &'static str,
    },
    #[error("drawing the {chart} chart: {message}")]
    Chart {
        chart: &'static str,
        message: String,
    },
    #[error("encoding the {chart} chart as PNG")]
    Png {
        chart: &'static str,
        #[source]
        source: png::EncodingError,
    },
    #[error("invalid e-mail address {address:?}")]
    Address {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("the report has no recipients")]
    NoRecipients,
    #[error("a content type of the e-mail")]
    ContentType(#[from] lettre::message::header::ContentTypeErr),
    #[error("building the e-mail")]
    Message(#[from] lettre::error::Error),
    #[error("writing the export")]
    Io(#[from] std::io::Error),
    #[error("writing the JSON export")]
    Json(#[from] serde_json::Error),
}

//! The call-record sections: `[database]` (where records go, or `off`) and `[report]` (the
//! daily report).

use anyhow::Context;
use chrono::NaiveTime;
use chrono_tz::Tz;
use rtcroom_report::{Currency, Language};
use serde::{Deserialize, Serialize};
use std::path::Path as FsPath;

/// The `[database] url` that turns call records off.
pub const OFF: &str = "off";

/// `[database]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// `sqlite://PATH` (created), `mysql://user:pass@host/rtc_room_server`,
    /// `postgres://user@host/rtc_room_server`. Empty: SQLite in `data_dir/rtcroom.db`.
    /// `off`: no call records at all (signaling only).
    pub url: String,
    pub max_connections: u32,
    /// Records kept in memory while the database is away, before they go to the spool file.
    pub memory_records: usize,
    /// Records per transaction at most (quality reports gather for up to 3 s into one: see
    /// `rtcroom_store::WriterConfig::quality_wait`).
    pub batch_size: usize,
    /// Every this many seconds the open sessions and sub-sessions are stamped alive, and
    /// after a crash they are closed and billed up to their last stamp. 0: never.
    pub checkpoint_secs: u64,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 4,
            memory_records: 20_000,
            batch_size: 6_000,
            checkpoint_secs: 5,
        }
    }
}

impl DatabaseSection {
    /// Whether call records are off (`url = "off"`).
    pub fn is_off(&self) -> bool {
        self.url == OFF
    }

    /// Refuse spellings of "off" that would otherwise be taken for a database URL.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.is_off() && self.url.trim().eq_ignore_ascii_case(OFF) {
            anyhow::bail!(
                "[database] url {:?}: write \"off\" (lower case, no spaces) to turn call records off",
                self.url
            );
        }
        Ok(())
    }

    /// A relative SQLite path in `url` made relative to `base` (see `Config::resolve_paths`).
    pub fn resolve_sqlite_path(&mut self, base: &FsPath) {
        let Some(path) = sqlite_path(&self.url) else {
            return;
        };
        if path.is_empty() || path.starts_with('/') || path.starts_with(":memory:") {
            return;
        }
        self.url = format!("sqlite://{}", base.join(path).display());
    }

    /// The SQLite file the records are in, when they are in SQLite.
    pub fn sqlite_file(&self, data_dir: &FsPath) -> Option<std::path::PathBuf> {
        let url = self.url(data_dir);
        let path = sqlite_path(&url)?;
        let file = path.split('?').next().unwrap_or(path);
        (!file.is_empty() && !file.starts_with(":memory:")).then(|| file.into())
    }

    /// The URL to connect to.
    pub fn url(&self, data_dir: &FsPath) -> String {
        if self.url.is_empty() {
            format!("sqlite://{}", data_dir.join("rtcroom.db").display())
        } else {
            self.url.clone()
        }
    }
}

/// What follows `sqlite://` or `sqlite:` in a URL.
fn sqlite_path(url: &str) -> Option<&str> {
    ["sqlite://", "sqlite:"]
        .iter()
        .find(|p| url.len() >= p.len() && url[..p.len()].eq_ignore_ascii_case(p))
        .map(|p| &url[p.len()..])
}

/// `[report]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSection {
    /// Whether `rtcroom serve` sends the report every day.
    pub enabled: bool,
    /// Local time of the daily run, `HH:MM`.
    pub time: String,
    /// The zone that defines the day, e.g. `Asia/Shanghai`.
    pub timezone: String,
    /// Who gets the report.
    pub recipients: Vec<String>,
    /// The subject; `{date}` becomes the day. Empty: `Daily call report YYYY-MM-DD`, in the
    /// report's language.
    pub subject: String,
    /// Rows in the e-mail's detail table (the worst when there are more).
    pub max_detail_rows: usize,
    /// The language of the report: `en` or `zh-CN`.
    pub language: String,
    /// The ISO 4217 code of the currency the `[billing]` prices are hundredths of.
    pub currency: String,
    /// The symbol shown before amounts; empty: the usual one of the code (`¥`, `$`, `€`, `£`,
    /// `₹`), or the code itself.
    pub currency_symbol: String,
}

impl Default for ReportSection {
    fn default() -> Self {
        Self {
            enabled: true,
            time: "00:05".into(),
            timezone: "UTC".into(),
            recipients: Vec::new(),
            subject: String::new(),
            max_detail_rows: 150,
            language: "en".into(),
            currency: "CNY".into(),
            currency_symbol: String::new(),
        }
    }
}

impl ReportSection {
    pub fn tz(&self) -> anyhow::Result<Tz> {
        self.timezone.parse().map_err(|_| {
            anyhow::anyhow!(
                "[report] timezone {:?} is not a time zone name (e.g. UTC, Asia/Shanghai)",
                self.timezone
            )
        })
    }

    /// The language of the report, or an error that lists the allowed codes.
    pub fn language(&self) -> anyhow::Result<Language> {
        self.language
            .parse()
            .map_err(|e| anyhow::anyhow!("[report] language: {e}"))
    }

    pub fn currency(&self) -> anyhow::Result<Currency> {
        Currency::new(&self.currency, &self.currency_symbol)
            .map_err(|e| anyhow::anyhow!("[report] {e}"))
    }

    /// How the report is presented: its language and currency. Part of the configuration's
    /// validation, so `serve` and `check-config` refuse the same mistakes.
    pub fn validate_presentation(&self) -> anyhow::Result<()> {
        self.language()?;
        self.currency()?;
        Ok(())
    }

    pub fn at(&self) -> anyhow::Result<NaiveTime> {
        NaiveTime::parse_from_str(&self.time, "%H:%M")
            .with_context(|| format!("[report] time {:?} must be HH:MM", self.time))
    }
}

#[cfg(test)]
mod tests {
    use super::{DatabaseSection, ReportSection};

    #[test]
    fn the_report_language_and_currency_are_checked_with_the_allowed_values() {
        let r = |language: &str, currency: &str, symbol: &str| ReportSection {
            language: language.into(),
            currency: currency.into(),
            currency_symbol: symbol.into(),
            ..ReportSection::default()
        };
        assert!(ReportSection::default().validate_presentation().is_ok());
        assert!(r("zh-CN", "USD", "US$").validate_presentation().is_ok());
        let e = r("fr", "CNY", "").validate_presentation().unwrap_err();
        assert_eq!(
            e.to_string(),
            "[report] language: unknown report language \"fr\": use one of \"en\", \"zh-CN\""
        );
        let e = r("en", "rmb", "").validate_presentation().unwrap_err();
        assert!(
            e.to_string().starts_with("[report] currency \"rmb\""),
            "{e}"
        );
        assert!(e.to_string().contains("\"CNY\", \"USD\""), "{e}");
    }

    #[test]
    fn off_is_spelled_one_way() {
        let db = |url: &str| DatabaseSection {
            url: url.into(),
            ..DatabaseSection::default()
        };
        assert!(db("off").is_off() && db("off").validate().is_ok());
        assert!(!db("").is_off() && db("").validate().is_ok());
        assert!(!db("sqlite://off.db").is_off());
        for near in ["OFF", "Off", " off"] {
            let e = db(near).validate().unwrap_err().to_string();
            assert!(e.contains("write \"off\""), "{near:?}: {e}");
        }
    }
}

//! `rtcroom report`: the daily report of a day, printed, written as HTML or JSON, or mailed.

use crate::config::Config;
use crate::ops::mail::Mailer;
use crate::records::daily;
use anyhow::Context;
use std::io::Write as _;
use std::path::PathBuf;

/// What to do with the report.
#[derive(Debug)]
pub struct Options {
    pub date: Option<chrono::NaiveDate>,
    pub out: Option<PathBuf>,
    pub json: bool,
    pub send: bool,
}

pub fn run(opts: Options, config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = Config::load(config.as_deref())?;
    let runtime = super::small_runtime()?;
    runtime.block_on(report(cfg, opts))
}

async fn report(cfg: Config, opts: Options) -> anyhow::Result<()> {
    let tz = cfg.report.tz()?;
    let date = opts.date.unwrap_or_else(|| {
        (chrono::Utc::now().with_timezone(&tz) - chrono::Duration::days(1)).date_naive()
    });
    let store = crate::records::open_existing(&cfg.database, &cfg.server.data_dir).await?;
    let result = with_store(&cfg, &opts, date, &store).await;
    store.close().await;
    result
}

/// The report of `date` from `store`, written or sent as `opts` says.
async fn with_store(
    cfg: &Config,
    opts: &Options,
    date: chrono::NaiveDate,
    store: &rtcroom_store::Store,
) -> anyhow::Result<()> {
    // Progress goes to standard error, which may be closed too: never a reason to stop.
    let progress = |n: u64| {
        let _ = write!(std::io::stderr(), "\rreading {date}: {n} rows");
    };
    let geo = crate::geoip::GeoIp::from_config(&cfg.geoip.database).map_err(anyhow::Error::msg)?;
    let (report, charts) = daily::compute(
        store,
        &cfg.report,
        geo.as_deref(),
        date,
        chrono::Utc::now(),
        progress,
    )
    .await?;
    let _ = writeln!(std::io::stderr());
    let day = Day {
        store,
        geo: geo.as_deref(),
        report: &report,
        charts: &charts,
    };
    match (&opts.out, opts.json) {
        (Some(path), json) => day.write_file(path, json).await?,
        (None, true) => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            day.export(true, &mut out).await?;
            out.flush()?;
        }
        (None, false) if !opts.send => {
            let subject = if cfg.report.subject.is_empty() {
                rtcroom_report::default_subject(date, report.language)
            } else {
                cfg.report.subject.replace("{date}", &date.to_string())
            };
            super::print(&rtcroom_report::email_text(&report, &subject))?;
        }
        (None, false) => {}
    }
    if opts.send {
        let mailer = Mailer::from_config(&cfg.smtp)?
            .context("--send needs [smtp] url (e.g. smtp://127.0.0.1:25)")?;
        daily::send(&mailer, &cfg.report, &report, &charts).await?;
        let _ = writeln!(
            std::io::stderr(),
            "sent the report of {date} to {}",
            cfg.report.recipients.join(", ")
        );
    }
    Ok(())
}

/// A computed day and the store its detail rows are read from.
struct Day<'a> {
    store: &'a rtcroom_store::Store,
    geo: Option<&'a crate::geoip::GeoIp>,
    report: &'a rtcroom_report::Report,
    charts: &'a [rtcroom_report::Chart],
}

impl Day<'_> {
    async fn export(&self, json: bool, out: impl std::io::Write) -> anyhow::Result<u64> {
        daily::export(self.store, self.report, self.charts, self.geo, json, out).await
    }

    /// The full report (every call) into `path`: standalone HTML, or JSON.
    async fn write_file(&self, path: &std::path::Path, json: bool) -> anyhow::Result<()> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let n = self.export(json, std::io::BufWriter::new(file)).await?;
        let _ = writeln!(std::io::stderr(), "wrote {} ({n} calls)", path.display());
        Ok(())
    }
}

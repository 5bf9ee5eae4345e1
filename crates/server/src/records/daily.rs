//! The daily call report in the server: read a day from the records, hand the rows to the
//! pure `rtcroom-report`, render, send; by hand (`rtcroom report`), on a schedule inside
//! `rtcroom serve`, and as a web view for operators (`/admin/reports/{date}`).
//!
//! A day's report is sent once even across restarts: a marker file per sent day is kept in
//! `data_dir/reports/`, and a server that starts after a run time it missed sends that
//! report at once.

use crate::config::ReportSection;
use crate::geoip::GeoIp;
use crate::ops::mail::Mailer;
use crate::state::AppState;
use anyhow::Context;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration as Days, NaiveDate, Utc};
use rtcroom_report as report;
use rtcroom_store::Store;
use serde::Deserialize;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

fn session_row(s: &rtcroom_store::SessionRow) -> report::SessionRow {
    report::SessionRow {
        session_id: s.session_id.clone(),
        app_id: s.app_id.clone(),
        user_id: s.user_id.clone(),
        user_name: s.user_name.clone(),
        talk_type: s.talk_type,
        user_ip: s.user_ip.clone(),
        os_name: s.os_name.clone(),
        browser: s.browser.clone(),
        sdk_info: s.sdk_info.clone(),
        join_time: s.join_time.or(s.create_time).unwrap_or_default(),
        leave_time: s.leave_time,
        duration_secs: u64::try_from(s.duration).unwrap_or(0),
        time_out: s.time_out,
    }
}

fn stat(s: rtcroom_store::Stat) -> report::Stat {
    report::Stat {
        avg: s.avg.unwrap_or(0.0),
        min: s.min.unwrap_or(0.0),
        max: s.max.unwrap_or(0.0),
    }
}

fn sub_row(d: &rtcroom_store::DaySubSession) -> report::SubSessionRow {
    let s = &d.sub_session;
    let q = d.quality;
    report::SubSessionRow {
        sub_session_id: s.sub_session_id.clone(),
        session_id: s.session_id.clone(),
        status: report::SubStatus::from_column(s.status),
        remote_user_id: s.remote_user_id.clone(),
        remote_user_name: s.remote_user_name.clone(),
        remote_user_ip: s.remote_user_ip.clone(),
        ice_ip: s.ice_ip.clone(),
        connect_type: report::ConnectType::from_column(&s.connect_type),
        created: s.create_time,
        begin_time: s.begin_time,
        connect_time: s.connect_time,
        finish_time: s.finish_time,
        duration_secs: u64::try_from(s.duration).unwrap_or(0),
        cost_cents: u64::try_from(s.cost).unwrap_or(0),
        quality: (q.reports > 0).then(|| report::QualityAgg {
            reports: u64::try_from(q.reports).unwrap_or(0),
            audio_bitrate: stat(q.aud_rcv_bitrate),
            audio_loss: stat(q.aud_rcv_lost_rate),
            video_bitrate: stat(q.vid_rcv_bitrate),
            video_loss: stat(q.vid_rcv_lost_rate),
        }),
    }
}

/// The sub-sessions that may belong to the day: a pair belongs to the day it began, and it
/// was created at most a day before that (a pair never lasts longer than a session can).
fn sub_window(from: DateTime<Utc>, to: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (from - Days::days(1), to)
}

/// The report's country lookup from the GeoIP database.
fn countries(geo: &GeoIp) -> impl Fn(IpAddr) -> Option<String> + '_ {
    |ip| geo.lookup(ip).country
}

/// Read a day and compute its report. `progress` is told how many rows were read so far.
/// With `geo` the report has its countries (and its rows the countries of their addresses).
pub async fn compute(
    store: &Store,
    cfg: &ReportSection,
    geo: Option<&GeoIp>,
    date: NaiveDate,
    now: DateTime<Utc>,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<(report::Report, Vec<report::Chart>)> {
    let mut rc = report::ReportConfig::new(date, cfg.tz()?, now);
    rc.max_detail_rows = cfg.max_detail_rows.max(1);
    rc.language = cfg.language()?;
    rc.currency = cfg.currency()?;
    let mut day = report::DayReport::new(rc);
    let (from, to) = day.window();
    let mut rows = 0u64;
    let mut sessions = store.sessions_between(from, to);
    while let Some(s) = sessions.next().await {
        day.add_session(&session_row(&s.context("reading sessions")?));
        rows += 1;
        if rows % 10_000 == 0 {
            progress(rows);
        }
    }
    let (sub_from, sub_to) = sub_window(from, to);
    let mut subs = store.sub_sessions_between(sub_from, sub_to);
    while let Some(d) = subs.next().await {
        let d = d.context("reading sub-sessions")?;
        if let Some(owner) = &d.session {
            day.add_sub_session(&session_row(owner), &sub_row(&d));
        }
        rows += 1;
        if rows % 10_000 == 0 {
            progress(rows);
        }
    }
    let mut infos = store.client_infos_between(from, to);
    while let Some(i) = infos.next().await {
        let i = i.context("reading client reports")?;
        day.add_client_info(&report::ClientInfoRow {
            session_id: i.session_id.clone(),
            app_id: i.app_id.clone(),
            user_id: i.user_id.clone(),
            result: i.result,
            desc: i.desc.clone(),
            create_time: i.create_time.unwrap_or_default(),
        });
        rows += 1;
    }
    progress(rows);
    let lookup = geo.map(countries);
    let r = day.finish(lookup.as_ref().map(|f| f as report::CountryLookup<'_>));
    let charts = report::render_charts(&r).context("rendering the charts")?;
    Ok((r, charts))
}

/// Stream every row of the day into an export (standalone HTML or JSON).
pub async fn export(
    store: &Store,
    r: &report::Report,
    charts: &[report::Chart],
    geo: Option<&GeoIp>,
    json: bool,
    out: impl Write,
) -> anyhow::Result<u64> {
    let lookup = geo.map(countries);
    let lookup = lookup.as_ref().map(|f| f as report::CountryLookup<'_>);
    let (from, to) = sub_window(r.window_start, r.window_end);
    let mut subs = store.sub_sessions_between(from, to);
    if json {
        let mut e = report::JsonExport::begin(out, r, lookup)?;
        while let Some(d) = subs.next().await {
            let d = d?;
            if let Some(owner) = &d.session {
                e.row(&session_row(owner), &sub_row(&d))?;
            }
        }
        Ok(e.finish()?.1)
    } else {
        let title = report::default_subject(r.date, r.language);
        let mut e = report::HtmlExport::begin(out, r, charts, &title, lookup)?;
        while let Some(d) = subs.next().await {
            let d = d?;
            if let Some(owner) = &d.session {
                e.row(&session_row(owner), &sub_row(&d))?;
            }
        }
        Ok(e.finish()?.1)
    }
}

/// Build and send the report mail.
pub async fn send(
    mailer: &Mailer,
    cfg: &ReportSection,
    r: &report::Report,
    charts: &[report::Chart],
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !cfg.recipients.is_empty(),
        "[report] recipients is empty: nobody to send the report to"
    );
    let opts = report::MailOptions {
        from: mailer.from.to_string(),
        to: cfg.recipients.clone(),
        subject: (!cfg.subject.is_empty()).then(|| cfg.subject.clone()),
    };
    let msg = report::build_message(r, charts, &opts).context("building the report mail")?;
    mailer.send(&msg).await
}

fn marker(data_dir: &FsPath, date: NaiveDate) -> PathBuf {
    data_dir.join("reports").join(format!("sent-{date}"))
}

/// Send the report of `date` unless it was sent already; remember that it was.
async fn run_once(
    store: &Store,
    mailer: &Mailer,
    cfg: &ReportSection,
    data_dir: &FsPath,
    geo: Option<&GeoIp>,
    date: NaiveDate,
) -> anyhow::Result<()> {
    let mark = marker(data_dir, date);
    if mark.exists() {
        return Ok(());
    }
    let (r, charts) = compute(store, cfg, geo, date, Utc::now(), |_| {}).await?;
    send(mailer, cfg, &r, &charts).await?;
    std::fs::create_dir_all(mark.parent().expect("has a parent"))?;
    std::fs::write(&mark, Utc::now().to_rfc3339())
        .with_context(|| format!("cannot write {}", mark.display()))?;
    tracing::info!(%date, calls = r.totals.sessions, recipients = cfg.recipients.len(), "daily report sent");
    Ok(())
}

/// The daily schedule inside `rtcroom serve`.
pub fn schedule(
    store: Store,
    mailer: Mailer,
    cfg: ReportSection,
    data_dir: PathBuf,
    geo: Option<Arc<GeoIp>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let tz = cfg.tz()?;
    let at = cfg.at()?;
    Ok(tokio::spawn(async move {
        // A run missed while the server was down is made up at once.
        let last_due = report::schedule::next_run(Utc::now() - Days::days(1), tz, at);
        let mut due = if last_due <= Utc::now() {
            last_due
        } else {
            report::schedule::next_run(Utc::now(), tz, at)
        };
        loop {
            let wait = (due - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            let date = report::schedule::report_day_for(due, tz);
            // Failures are retried every ten minutes until the next day's run is due.
            loop {
                match run_once(&store, &mailer, &cfg, &data_dir, geo.as_deref(), date).await {
                    Ok(()) => {
                        crate::ops::metrics::report_run(true);
                        break;
                    }
                    Err(e) => {
                        crate::ops::metrics::report_run(false);
                        tracing::error!(%date, error = %format!("{e:#}"), "the daily report failed; retrying in 10 minutes");
                        let next = report::schedule::next_run(Utc::now(), tz, at);
                        if Utc::now() + Days::minutes(10) >= next {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
                    }
                }
            }
            due = report::schedule::next_run(Utc::now(), tz, at);
        }
    }))
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// `GET /admin/reports/{date}`: the day's report as a standalone page, for operators (the
/// admin token as a bearer header, or `?token=` for a browser).
pub async fn web_view(
    State(state): State<AppState>,
    mut headers: HeaderMap,
    Path(date): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Some(t) = q.token
        && let Ok(v) = format!("Bearer {t}").parse()
    {
        headers.insert(header::AUTHORIZATION, v);
    }
    if let Err(d) = state.authorize(&headers) {
        return d.into_response();
    }
    // Without a store records are off: there is no report to build (404, not an outage).
    let Some(store) = state.store.clone() else {
        let msg = format!("{}: there are no reports\n", super::OFF_MESSAGE);
        return (StatusCode::NOT_FOUND, msg).into_response();
    };
    let Ok(date) = NaiveDate::parse_from_str(&date, "%Y-%m-%d") else {
        return (StatusCode::BAD_REQUEST, "the date must be YYYY-MM-DD").into_response();
    };
    // The report's builder and charts are not `Send`; the page is built on a blocking thread
    // that drives the reads itself.
    let cfg = state.report.clone();
    let geo = state.geoip.clone();
    let handle = tokio::runtime::Handle::current();
    let page = tokio::task::spawn_blocking(move || {
        handle.block_on(async {
            let (r, charts) =
                compute(&store, &cfg, geo.as_deref(), date, Utc::now(), |_| {}).await?;
            let mut out = Vec::new();
            export(&store, &r, &charts, geo.as_deref(), false, &mut out).await?;
            anyhow::Ok(out)
        })
    });
    match page
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the report task failed: {e}")))
    {
        Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot build the report: {e:#}\n"),
        )
            .into_response(),
    }
}

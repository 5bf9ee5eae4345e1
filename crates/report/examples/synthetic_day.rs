//! A synthetic day of calls through the whole report: the builder, the charts, the e-mail and
//! both exports, with the time of each phase and the peak memory.
//!
//! ```text
//! cargo run --release -p rtcroom-report --example synthetic_day -- \
//!     [--subs 1000000] [--tz Europe/Berlin] [--lang zh-CN]
//!     [--html out.html] [--json out.json] [--eml out.eml] [--preview email.html]
//! ```
//! Without `--html`/`--json` the exports are written to a byte counter, so the figures are the
//! report's own cost. `--preview` writes the e-mail's HTML with its images resolved, as a
//! mail client shows it. The rows are generated, fed and forgotten one at a time, and generated
//! again for the exports, as a store would read them twice.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use rtcroom_report::{
    ClientInfoRow, ConnectType, DayReport, HtmlExport, JsonExport, Language, MailOptions,
    QualityAgg, ReportConfig, SessionRow, Stat, SubSessionRow, SubStatus, build_message,
    default_subject, render_charts,
};
use std::io::Write;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let subs: u64 = arg("--subs").map_or(Ok(1_000_000), |s| s.parse())?;
    let tz: Tz = arg("--tz").map_or(Ok(Tz::UTC), |s| s.parse())?;
    let date = NaiveDate::from_ymd_opt(2026, 11, 22).ok_or("date")?;
    let generated_at = Utc
        .with_ymd_and_hms(2026, 11, 23, 0, 5, 0)
        .single()
        .ok_or("time")?;
    println!("baseline: VmHWM {} kB", vm_hwm_kb());

    let mut cfg = ReportConfig::new(date, tz, generated_at);
    cfg.language = arg("--lang").map_or(Ok(Language::En), |s| s.parse())?;
    // Generating the rows costs time of its own (string formatting, mostly); measure it alone
    // so that the phases below can be read net of it.
    let start = Instant::now();
    let mut generated = 0u64;
    generate(DayReport::new(cfg.clone()).window().0, subs, |_| {
        generated += 1
    });
    println!(
        "generation alone: {generated} rows in {:.2?}",
        start.elapsed()
    );

    let start = Instant::now();
    let mut day = DayReport::new(cfg);
    let (window_start, _) = day.window();
    let mut fed = Counts::default();
    generate(window_start, subs, |ev| match ev {
        Event::Session(s) => {
            fed.sessions += 1;
            day.add_session(s);
        }
        Event::Sub(owner, s) => {
            fed.subs += 1;
            day.add_sub_session(owner, s);
        }
        Event::Info(i) => {
            fed.infos += 1;
            day.add_client_info(i);
        }
    });
    let fed_time = start.elapsed();
    let report = day.finish(None);
    println!(
        "compute: {} sessions, {} sub-sessions, {} client infos fed in {:.2?} ({:.0} ns per row), finish {:.2?}; VmHWM {} kB",
        fed.sessions,
        fed.subs,
        fed.infos,
        fed_time,
        fed_time.as_nanos() as f64 / (fed.sessions + fed.subs + fed.infos) as f64,
        start.elapsed() - fed_time,
        vm_hwm_kb()
    );
    let t = &report.totals;
    println!(
        "figures: {} calls, {} participants, {} connected / {} pairs, {} min, relay {:.1}% of pairs, cost {} cents",
        t.sessions,
        t.participants,
        t.connected,
        t.sub_sessions,
        t.connected_seconds / 60,
        report.connect_types.relay_pair_percent(),
        t.cost_cents
    );

    let start = Instant::now();
    let charts = render_charts(&report)?;
    let sizes: Vec<String> = charts
        .iter()
        .map(|c| format!("{} {} B", c.id, c.png.len()))
        .collect();
    println!("charts: {} in {:.2?}", sizes.join(", "), start.elapsed());

    export_mail(&report, &charts, date, &arg)?;
    export_html(&report, &charts, date, window_start, subs, arg("--html"))?;
    export_json(&report, window_start, subs, arg("--json"))?;
    Ok(())
}

/// The e-mail: built, measured, and written out when `--eml` / `--preview` ask for it.
fn export_mail(
    report: &rtcroom_report::Report,
    charts: &[rtcroom_report::Chart],
    date: NaiveDate,
    arg: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let opts = MailOptions {
        from: "rtcroom <report@rtc.example.com>".to_owned(),
        to: vec!["ops@example.com".to_owned()],
        subject: None,
    };
    let msg = build_message(report, charts, &opts)?;
    let eml = msg.formatted();
    let html_len =
        rtcroom_report::email_html(report, charts, &default_subject(date, report.language)).len();
    println!(
        "e-mail: {} bytes ({} bytes of HTML, {} of {} detail rows) in {:.2?}",
        eml.len(),
        html_len,
        report.detail.rows.len(),
        report.detail.total,
        start.elapsed()
    );
    if let Some(path) = arg("--eml") {
        std::fs::write(path, &eml)?;
    }
    if let Some(path) = arg("--preview") {
        // The e-mail's HTML as a mail client shows it: the cid: images resolved.
        let mut html =
            rtcroom_report::email_html(report, charts, &default_subject(date, report.language));
        for c in charts {
            html = html.replace(&format!("cid:{}", c.content_id()), &c.data_uri());
        }
        std::fs::write(path, html)?;
    }

    Ok(())
}

/// The streamed HTML export of every sub-session, measured.
fn export_html(
    report: &rtcroom_report::Report,
    charts: &[rtcroom_report::Chart],
    date: NaiveDate,
    window_start: DateTime<Utc>,
    subs: u64,
    path: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut html = HtmlExport::begin(
        sink(path)?,
        report,
        charts,
        &default_subject(date, report.language),
        None,
    )?;
    let mut err = None;
    generate(window_start, subs, |ev| {
        if let (Event::Sub(owner, s), None) = (ev, &err) {
            err = html.row(owner, s).err();
        }
    });
    if let Some(e) = err {
        return Err(e.into());
    }
    let (w, rows) = html.finish()?;
    println!(
        "html export: {rows} rows, {} bytes in {:.2?}; VmHWM {} kB",
        w.bytes,
        start.elapsed(),
        vm_hwm_kb()
    );

    Ok(())
}

/// The streamed JSON export of every sub-session, measured.
fn export_json(
    report: &rtcroom_report::Report,
    window_start: DateTime<Utc>,
    subs: u64,
    path: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut json = JsonExport::begin(sink(path)?, report, None)?;
    let mut err = None;
    generate(window_start, subs, |ev| {
        if let (Event::Sub(owner, s), None) = (ev, &err) {
            err = json.row(owner, s).err();
        }
    });
    if let Some(e) = err {
        return Err(e.into());
    }
    let (w, rows) = json.finish()?;
    println!(
        "json export: {rows} rows, {} bytes in {:.2?}; VmHWM {} kB",
        w.bytes,
        start.elapsed(),
        vm_hwm_kb()
    );
    Ok(())
}

#[derive(Default)]
struct Counts {
    sessions: u64,
    subs: u64,
    infos: u64,
}

enum Event<'a> {
    Session(&'a SessionRow),
    Sub(&'a SessionRow, &'a SubSessionRow),
    Info(&'a ClientInfoRow),
}

/// Counts bytes and writes them to a file when one was named.
struct Sink {
    file: Option<std::io::BufWriter<std::fs::File>>,
    bytes: u64,
}

fn sink(path: Option<String>) -> std::io::Result<Sink> {
    Ok(Sink {
        file: match path {
            Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
            None => None,
        },
        bytes: 0,
    })
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len() as u64;
        match &mut self.file {
            Some(f) => f.write_all(buf).map(|()| buf.len()),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// SplitMix64: a small deterministic generator, so both passes see the same day.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Relative call volume by hour of day: quiet at night, busy in office hours and the evening.
const HOUR_WEIGHT: [f64; 24] = [
    2.0, 1.0, 0.6, 0.4, 0.4, 0.6, 1.5, 3.5, 6.5, 9.0, 10.0, 9.5, 7.5, 8.5, 9.5, 9.5, 9.0, 8.0, 7.0,
    7.5, 8.0, 7.0, 5.0, 3.0,
];
const BROWSERS: [&str; 6] = [
    "chrome120.0",
    "chrome119.0",
    "Firefox/121.0",
    "Safari 17",
    "Edg/120.0",
    "chrome58.0",
];
const SYSTEMS: [&str; 5] = ["Win32", "MacIntel", "Linux x86_64", "iPhone", "Android 14"];
const APPS: [&str; 3] = ["10000", "10001", "20000"];

/// Generates rooms of two or three members until `subs` sub-sessions exist; calls `f` for
/// every row, in the order a store would read them.
fn generate(day_start: DateTime<Utc>, subs: u64, mut f: impl FnMut(Event<'_>)) {
    let mut rng = Rng(0x5EED);
    let total_weight: f64 = HOUR_WEIGHT.iter().sum();
    let mut made = 0u64;
    let mut n = 0u64;
    let mut members: Vec<SessionRow> = Vec::with_capacity(3);
    while made < subs {
        n += 1;
        // The hour by weight, then a second within it.
        let mut x = rng.unit() * total_weight;
        let mut hour = 0;
        while hour < 23 && x >= HOUR_WEIGHT[hour] {
            x -= HOUR_WEIGHT[hour];
            hour += 1;
        }
        let start = day_start + Duration::seconds(hour as i64 * 3600 + rng.below(3600) as i64);
        let size = if rng.unit() < 0.8 { 2 } else { 3 };
        let app = *rng.pick(&APPS);
        let talk_type = if rng.unit() < 0.75 { 1 } else { 0 };
        members.clear();
        for m in 0..size {
            let join = start + Duration::seconds(m as i64 * (1 + rng.below(20) as i64));
            let stay = 60 + (rng.unit().powi(2) * 3600.0) as i64;
            let timed_out = rng.unit() < 0.03;
            members.push(SessionRow {
                session_id: format!("S{n:09}{m}"),
                app_id: app.to_owned(),
                user_id: format!("{}", rng.below(300_000)),
                user_name: format!("client_{}", rng.below(1000)),
                talk_type,
                user_ip: format!("203.0.{}.{}", rng.below(256), rng.below(256)),
                os_name: rng.pick(&SYSTEMS).to_string(),
                browser: rng.pick(&BROWSERS).to_string(),
                sdk_info: "1.0.0".to_owned(),
                join_time: join,
                leave_time: Some(join + Duration::seconds(stay)),
                duration_secs: stay as u64,
                time_out: timed_out,
            });
        }
        for m in &members {
            f(Event::Session(m));
            if rng.unit() < 0.01 {
                let (result, desc) = *rng.pick(&[
                    (
                        9,
                        "ice server invalid, please report to the Ovoice technology",
                    ),
                    (10, "no microphone"),
                    (11, "getUserMedia NotAllowedError"),
                    (4, "websocket broken"),
                ]);
                f(Event::Info(&ClientInfoRow {
                    session_id: m.session_id.clone(),
                    app_id: m.app_id.clone(),
                    user_id: m.user_id.clone(),
                    result,
                    desc: desc.to_owned(),
                    create_time: m.join_time + Duration::seconds(5),
                }));
            }
        }
        for (i, a) in members.iter().enumerate() {
            for (j, b) in members.iter().enumerate() {
                if i == j || made >= subs {
                    continue;
                }
                made += 1;
                let sub = sub_session(&mut rng, a, b, made, talk_type);
                f(Event::Sub(a, &sub));
            }
        }
    }
}

fn sub_session(
    rng: &mut Rng,
    a: &SessionRow,
    b: &SessionRow,
    id: u64,
    talk_type: i64,
) -> SubSessionRow {
    let begin = a.join_time.max(b.join_time) + Duration::seconds(1);
    let p = rng.unit();
    let status = match p {
        p if p < 0.90 => SubStatus::ConnectedLeft,
        p if p < 0.93 => SubStatus::ConnectedTimedOut,
        p if p < 0.98 => SubStatus::NeverConnectedLeft,
        _ => SubStatus::NeverConnectedTimedOut,
    };
    let connected = matches!(
        status,
        SubStatus::ConnectedLeft | SubStatus::ConnectedTimedOut
    );
    let ct = match rng.unit() {
        _ if !connected => ConnectType::None,
        p if p < 0.80 => ConnectType::Stun,
        p if p < 0.98 => ConnectType::Turn,
        _ => ConnectType::Unknown,
    };
    let duration = if connected {
        20 + (rng.unit().powi(3) * 3000.0) as u64
    } else {
        0
    };
    let cost = if ct == ConnectType::Turn {
        duration.div_ceil(60)
    } else {
        0
    };
    let connect = connected.then(|| begin + Duration::seconds(1 + rng.below(4) as i64));
    let quality = (connected && rng.unit() < 0.95).then(|| {
        let bad = rng.unit() < 0.05;
        let loss = if bad {
            3.0 + rng.unit() * 20.0
        } else {
            rng.unit().powi(4) * 2.0
        };
        let abr = 24.0 + rng.unit() * 24.0;
        let vbr = if talk_type == 1 {
            150.0 + rng.unit() * 1500.0
        } else {
            0.0
        };
        let stat = |avg: f64, spread: f64| Stat {
            avg,
            min: avg * (1.0 - spread),
            max: avg * (1.0 + spread),
        };
        QualityAgg {
            reports: 1 + duration / 15,
            audio_bitrate: stat(abr, 0.2),
            audio_loss: stat(loss / 2.0, 0.9),
            video_bitrate: stat(vbr, 0.5),
            video_loss: stat(if talk_type == 1 { loss } else { 0.0 }, 0.9),
        }
    });
    SubSessionRow {
        sub_session_id: format!("X{id:011}"),
        session_id: a.session_id.clone(),
        status,
        remote_user_id: b.user_id.clone(),
        remote_user_name: b.user_name.clone(),
        remote_user_ip: b.user_ip.clone(),
        ice_ip: "192.0.2.10".to_owned(),
        connect_type: ct,
        created: Some(begin - Duration::seconds(1)),
        begin_time: Some(begin),
        connect_time: connect,
        finish_time: Some(begin + Duration::seconds(duration as i64 + 5)),
        duration_secs: duration,
        cost_cents: cost,
        quality,
    }
}

//! The report as plain text: the e-mail's `text/plain` part, for clients and filters that do
//! not show HTML. The same figures as the HTML, charts drawn with `#`.

use crate::fmt::{
    connect_type, hms, int, local_date_time, local_time, minutes, money, pct, user, utc_date_time,
};
use crate::model::{LabelCounts, Report, ShareRow, ratio};
use std::fmt::Write;

/// The whole report as text, with the detail rows the report kept.
pub fn email_text(r: &Report, subject: &str) -> String {
    let mut o = String::with_capacity(8 * 1024 + r.detail.rows.len() * 120);
    let t = &r.totals;
    let _ = writeln!(o, "{subject}\n");
    let _ = writeln!(
        o,
        "Daily call report for {} ({}): {} - {} local, {} - {}.\nGenerated {}.\n",
        r.date,
        r.timezone,
        local_date_time(r.window_start, r.tz),
        local_date_time(r.window_end, r.tz),
        utc_date_time(r.window_start),
        utc_date_time(r.window_end),
        utc_date_time(r.generated_at),
    );
    if t.no_calls() {
        let _ = writeln!(o, "当日无通话 - No calls on this day.\n");
    } else {
        summary(&mut o, r);
        hourly(&mut o, r);
        share(&mut o, r);
        quality(&mut o, r);
        worst(&mut o, r, "HIGHEST VIDEO LOSS", &r.worst_video_loss);
        worst(&mut o, r, "LOWEST VIDEO BITRATE", &r.lowest_video_bitrate);
        labels(&mut o, "BROWSERS", &r.browsers);
        labels(&mut o, "OPERATING SYSTEMS", &r.operating_systems);
    }
    errors(&mut o, r);
    if !r.detail.rows.is_empty() {
        detail(&mut o, r);
    }
    o
}

fn summary(o: &mut String, r: &Report) {
    let t = &r.totals;
    let c = &r.connect_types;
    let lines = [
        ("Calls (sessions)", int(t.sessions)),
        ("Participants", int(t.participants)),
        (
            "Connected pairs",
            format!("{} of {}", int(t.connected), int(t.sub_sessions)),
        ),
        (
            "Never connected",
            format!(
                "{} ({} still open)",
                int(t.never_connected),
                int(t.in_progress)
            ),
        ),
        (
            "Call minutes",
            format!(
                "{} (average {} per connected pair)",
                minutes(t.connected_seconds),
                hms(t.avg_connected_seconds().round() as u64)
            ),
        ),
        (
            "Relayed",
            format!(
                "{} of pairs, {} of minutes ({} min)",
                pct(c.relay_pair_percent()),
                pct(c.relay_minute_percent()),
                minutes(c.relay.seconds)
            ),
        ),
        ("Cost", format!("{} {}", money(t.cost_cents), r.currency)),
        (
            "Timed out",
            format!(
                "{} sessions, {} pairs",
                int(t.sessions_timed_out),
                int(t.sub_sessions_timed_out)
            ),
        ),
        (
            "Client errors",
            format!(
                "{} of {} reportInfo",
                int(r.client_events.errors),
                int(r.client_events.rows)
            ),
        ),
    ];
    let _ = writeln!(o, "SUMMARY");
    for (k, v) in lines {
        let _ = writeln!(o, "  {k:<18} {v}");
    }
    o.push('\n');
}

fn hourly(o: &mut String, r: &Report) {
    const WIDTH: u64 = 40;
    let max = r
        .hourly
        .iter()
        .map(|h| h.sessions)
        .max()
        .unwrap_or(0)
        .max(1);
    let _ = writeln!(o, "CALLS PER HOUR ({})", r.timezone);
    for h in &r.hourly {
        let bar = "#".repeat((h.sessions * WIDTH).div_ceil(max) as usize);
        let _ = writeln!(o, "  {:02}  {bar:<40} {}", h.hour, int(h.sessions));
    }
    o.push('\n');
}

fn share(o: &mut String, r: &Report) {
    let c = &r.connect_types;
    let total = c.total();
    let _ = writeln!(
        o,
        "P2P AND RELAY\n  {:<14} {:>9} {:>7} {:>9} {:>7} {:>12}",
        "", "pairs", "share", "minutes", "share", "cost"
    );
    let line = |o: &mut String, name: &str, s: &ShareRow| {
        let _ = writeln!(
            o,
            "  {:<14} {:>9} {:>7} {:>9} {:>7} {:>12}",
            name,
            int(s.pairs),
            pct(100.0 * ratio(s.pairs as f64, total.pairs as f64)),
            minutes(s.seconds),
            pct(100.0 * ratio(s.seconds as f64, total.seconds as f64)),
            money(s.cost_cents),
        );
    };
    line(o, "P2P (STUN)", &c.p2p);
    line(o, "Relay (TURN)", &c.relay);
    line(o, "Unknown", &c.unknown);
    line(o, "Connected", &total);
    o.push('\n');
}

fn quality(o: &mut String, r: &Report) {
    let q = &r.quality;
    let _ = writeln!(
        o,
        "QUALITY (receive side, {} reports from {} pairs; {} connected pairs sent none)\n  audio {:.0} kbit/s, {:.2}% loss; video {:.0} kbit/s, {:.2}% loss",
        int(q.reports),
        int(q.pairs_with_reports),
        int(q.pairs_without_reports),
        q.audio_bitrate_avg,
        q.audio_loss_avg,
        q.video_bitrate_avg,
        q.video_loss_avg
    );
    for h in [
        &q.audio_bitrate,
        &q.video_bitrate,
        &q.audio_loss,
        &q.video_loss,
    ] {
        let parts: Vec<String> = h
            .buckets
            .iter()
            .map(|b| format!("{} {}", b.label, int(b.count)))
            .collect();
        let _ = writeln!(o, "  {} ({}): {}", h.title, h.unit, parts.join(", "));
    }
    o.push('\n');
}

fn worst(o: &mut String, r: &Report, title: &str, rows: &[crate::model::DetailRow]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(o, "{title}");
    for row in rows {
        let q = row.quality.unwrap_or_default();
        let _ = writeln!(
            o,
            "  {} {} {} -> {} {} {}  video {:.0} kbit/s, {:.2}% loss",
            local_time(row.begin_time, r.tz),
            row.app_id,
            user(&row.user_id, &row.user_name),
            user(&row.remote_user_id, &row.remote_user_name),
            connect_type(row.connect_type),
            hms(row.duration_secs),
            q.video_bitrate.avg,
            q.video_loss.avg,
        );
    }
    o.push('\n');
}

fn labels(o: &mut String, title: &str, l: &LabelCounts) {
    let _ = writeln!(o, "{title}");
    for item in l.items.iter().take(10) {
        let _ = writeln!(o, "  {:<24} {:>9}", item.label, int(item.count));
    }
    let rest: u64 = l.items.iter().skip(10).map(|i| i.count).sum::<u64>() + l.other;
    if rest > 0 {
        let _ = writeln!(o, "  {:<24} {:>9}", "others", int(rest));
    }
    o.push('\n');
}

fn errors(o: &mut String, r: &Report) {
    let e = &r.client_events;
    let _ = writeln!(o, "CLIENT ERRORS (reportInfo)");
    if e.errors == 0 {
        let _ = writeln!(o, "  none ({} reportInfo messages)\n", int(e.rows));
        return;
    }
    for c in &e.by_code {
        let _ = writeln!(o, "  {:>4} {:<36} {:>9}", c.code, c.meaning, int(c.count));
    }
    let _ = writeln!(o, "  by description:");
    for d in e.by_desc.iter().take(20) {
        let _ = writeln!(o, "  {:>4} {:>9}  {}", d.code, int(d.count), d.desc);
    }
    o.push('\n');
}

fn detail(o: &mut String, r: &Report) {
    let d = &r.detail;
    let _ = writeln!(
        o,
        "CALLS IN DETAIL ({} of {} pairs{})",
        int(d.rows.len() as u64),
        int(d.total),
        if d.omitted() > 0 {
            ", the worst ones"
        } else {
            ""
        }
    );
    for (i, row) in d.rows.iter().enumerate() {
        let q = match &row.quality {
            Some(q) => format!(
                "audio {:.0} kbit/s {:.2}%, video {:.0} kbit/s {:.2}%",
                q.audio_bitrate.avg, q.audio_loss.avg, q.video_bitrate.avg, q.video_loss.avg
            ),
            None => "no quality report".to_owned(),
        };
        let _ = writeln!(
            o,
            "  {:>4} {} {} {} -> {} [{}] {} {} {}  {}",
            i + 1,
            local_time(row.begin_time, r.tz),
            row.app_id,
            user(&row.user_id, &row.user_name),
            user(&row.remote_user_id, &row.remote_user_name),
            row.status.label(),
            connect_type(row.connect_type),
            hms(row.duration_secs),
            crate::fmt::os_browser(row),
            q
        );
    }
    if d.omitted() > 0 {
        let _ = writeln!(
            o,
            "  ... {} more; the complete table: rtcroom report --date {} --out report.html",
            int(d.omitted()),
            r.date
        );
    }
}

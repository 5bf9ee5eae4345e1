//! The report as plain text: the e-mail's `text/plain` part, for clients and filters that do
//! not show HTML. The same figures as the HTML, charts drawn with `#`.

use crate::fmt::{
    client_label, columns, connect_type, hms, int, local_time, minutes, pad, pad_left, pct,
    result_meaning, status, user,
};
use crate::lang::{Texts, fill};
use crate::model::{LabelCounts, Report, ShareRow, ratio};
use std::fmt::Write;

/// The whole report as text, with the detail rows the report kept.
pub fn email_text(r: &Report, subject: &str) -> String {
    let mut o = String::with_capacity(8 * 1024 + r.detail.rows.len() * 120);
    let t = &r.totals;
    let tx = r.language.texts();
    let _ = writeln!(o, "{subject}\n");
    let intro = crate::fmt::intro(r);
    let _ = writeln!(o, "{intro}\n");
    if t.no_calls() {
        let _ = writeln!(o, "{}\n", tx.no_calls);
    } else {
        summary(&mut o, r);
        hourly(&mut o, r);
        share(&mut o, r);
        quality(&mut o, r);
        worst(&mut o, r, tx.h_worst_loss, &r.worst_video_loss);
        worst(&mut o, r, tx.h_low_bitrate, &r.lowest_video_bitrate);
        labels(&mut o, tx, tx.col_browser, &r.browsers);
        labels(&mut o, tx, tx.col_os, &r.operating_systems);
        if let Some(c) = &r.countries {
            countries(&mut o, tx, c);
        }
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
    let tx = r.language.texts();
    let lines = [
        (tx.text_calls, int(t.sessions)),
        (tx.text_participants, int(t.participants)),
        (
            tx.text_connected,
            fill(
                tx.text_connected_value,
                &[
                    ("connected", &int(t.connected)),
                    ("total", &int(t.sub_sessions)),
                ],
            ),
        ),
        (
            tx.text_never,
            fill(
                tx.text_never_value,
                &[
                    ("n", &int(t.never_connected)),
                    ("open", &int(t.in_progress)),
                ],
            ),
        ),
        (
            tx.text_minutes,
            fill(
                tx.text_minutes_value,
                &[
                    ("minutes", &minutes(t.connected_seconds)),
                    ("average", &hms(t.avg_connected_seconds().round() as u64)),
                ],
            ),
        ),
        (
            tx.text_relayed,
            fill(
                tx.text_relayed_value,
                &[
                    ("pairs", &pct(c.relay_pair_percent())),
                    ("minutes", &pct(c.relay_minute_percent())),
                    ("relay", &minutes(c.relay.seconds)),
                ],
            ),
        ),
        (
            tx.text_cost,
            format!(
                "{} ({})",
                r.currency.amount(t.cost_cents),
                r.currency.code()
            ),
        ),
        (
            tx.text_timed_out,
            fill(
                tx.text_timed_out_value,
                &[
                    ("sessions", &int(t.sessions_timed_out)),
                    ("pairs", &int(t.sub_sessions_timed_out)),
                ],
            ),
        ),
        (
            tx.text_errors,
            fill(
                tx.text_errors_value,
                &[
                    ("errors", &int(r.client_events.errors)),
                    ("rows", &int(r.client_events.rows)),
                ],
            ),
        ),
    ];
    heading(o, tx.text_summary);
    for (k, v) in lines {
        let _ = writeln!(o, "  {} {v}", pad(k, 18));
    }
    o.push('\n');
}

/// A section's title, underlined.
fn heading(o: &mut String, title: &str) {
    let _ = writeln!(o, "{title}\n{}", "-".repeat(columns(title)));
}

fn hourly(o: &mut String, r: &Report) {
    const WIDTH: u64 = 40;
    let tx = r.language.texts();
    let max = r
        .hourly
        .iter()
        .map(|h| h.sessions)
        .max()
        .unwrap_or(0)
        .max(1);
    heading(o, &fill(tx.chart_hourly_title, &[("tz", &r.timezone)]));
    for h in &r.hourly {
        let bar = "#".repeat((h.sessions * WIDTH).div_ceil(max) as usize);
        let _ = writeln!(o, "  {:02}  {bar:<40} {}", h.hour, int(h.sessions));
    }
    o.push('\n');
}

fn share(o: &mut String, r: &Report) {
    let c = &r.connect_types;
    let tx = r.language.texts();
    let total = c.total();
    heading(o, tx.h_share);
    let cells = |name: &str, cols: [&str; 5]| {
        format!(
            "  {} {} {} {} {} {}\n",
            pad(name, 14),
            pad_left(cols[0], 9),
            pad_left(cols[1], 7),
            pad_left(cols[2], 9),
            pad_left(cols[3], 7),
            pad_left(cols[4], 14),
        )
    };
    o.push_str(&cells(
        "",
        [
            tx.col_pairs,
            tx.col_share,
            tx.col_minutes,
            tx.col_share,
            tx.col_cost,
        ],
    ));
    let line = |o: &mut String, name: &str, s: &ShareRow| {
        o.push_str(&cells(
            name,
            [
                &int(s.pairs),
                &pct(100.0 * ratio(s.pairs as f64, total.pairs as f64)),
                &minutes(s.seconds),
                &pct(100.0 * ratio(s.seconds as f64, total.seconds as f64)),
                &r.currency.amount(s.cost_cents),
            ],
        ));
    };
    line(o, tx.p2p, &c.p2p);
    line(o, tx.relay, &c.relay);
    line(o, tx.unknown, &c.unknown);
    line(o, tx.connected_total, &total);
    o.push('\n');
}

fn quality(o: &mut String, r: &Report) {
    let q = &r.quality;
    let tx = r.language.texts();
    let heading = fill(
        tx.text_quality_heading,
        &[
            ("reports", &int(q.reports)),
            ("pairs", &int(q.pairs_with_reports)),
            ("without", &int(q.pairs_without_reports)),
        ],
    );
    let line = fill(
        tx.text_quality_line,
        &[
            ("audio_kbps", &format!("{:.0}", q.audio_bitrate_avg)),
            ("audio_loss", &format!("{:.2}", q.audio_loss_avg)),
            ("video_kbps", &format!("{:.0}", q.video_bitrate_avg)),
            ("video_loss", &format!("{:.2}", q.video_loss_avg)),
        ],
    );
    let _ = writeln!(o, "{heading}\n{}\n  {line}", "-".repeat(columns(&heading)));
    for (title, h) in histograms(r) {
        let parts: Vec<String> = h
            .buckets
            .iter()
            .map(|b| format!("{} {}", b.label, int(b.count)))
            .collect();
        let _ = writeln!(o, "  {title} ({}): {}", h.unit, parts.join(", "));
    }
    o.push('\n');
}

/// The four quality histograms with their titles in the report's language.
pub(crate) fn histograms(r: &Report) -> [(&'static str, &crate::model::Histogram); 4] {
    let (q, tx) = (&r.quality, r.language.texts());
    [
        (tx.audio_bitrate, &q.audio_bitrate),
        (tx.video_bitrate, &q.video_bitrate),
        (tx.audio_loss, &q.audio_loss),
        (tx.video_loss, &q.video_loss),
    ]
}

fn worst(o: &mut String, r: &Report, title: &str, rows: &[crate::model::DetailRow]) {
    if rows.is_empty() {
        return;
    }
    let tx = r.language.texts();
    heading(o, title);
    for row in rows {
        let q = row.quality.unwrap_or_default();
        let _ = writeln!(
            o,
            "  {} {} {} -> {} {} {}  {}",
            local_time(row.begin_time, r.tz),
            row.app_id,
            user(&row.user_id, &row.user_name),
            user(&row.remote_user_id, &row.remote_user_name),
            connect_type(row.connect_type, tx),
            hms(row.duration_secs),
            fill(
                tx.text_worst_value,
                &[
                    ("kbps", &format!("{:.0}", q.video_bitrate.avg)),
                    ("loss", &format!("{:.2}", q.video_loss.avg)),
                ],
            ),
        );
    }
    o.push('\n');
}

fn labels(o: &mut String, tx: &Texts, title: &str, l: &LabelCounts) {
    heading(o, title);
    for item in l.items.iter().take(10) {
        let label = pad(client_label(&item.label, tx), 24);
        let _ = writeln!(o, "  {label} {:>9}", int(item.count));
    }
    let rest: u64 = l.items.iter().skip(10).map(|i| i.count).sum::<u64>() + l.other;
    if rest > 0 {
        let _ = writeln!(o, "  {} {:>9}", pad(tx.others, 24), int(rest));
    }
    o.push('\n');
}

fn countries(o: &mut String, tx: &Texts, c: &crate::model::Countries) {
    let name = |c: &Option<String>| c.as_deref().unwrap_or(tx.unknown_country).to_owned();
    heading(o, tx.h_countries);
    let _ = writeln!(
        o,
        "  {} {:>9} {:>9} {:>9} {:>9} {:>9}",
        pad(tx.col_country, 12),
        tx.col_sessions,
        tx.col_pairs,
        tx.col_relayed,
        tx.audio,
        tx.video
    );
    for row in c.members.iter().take(20) {
        let _ = writeln!(
            o,
            "  {} {:>9} {:>9} {:>9} {:>8.2}% {:>8.2}%",
            pad(&name(&row.country), 12),
            int(row.sessions),
            int(row.connected),
            pct(row.relay_percent()),
            row.avg_audio_loss,
            row.avg_video_loss
        );
    }
    o.push('\n');
    if c.relays.is_empty() {
        return;
    }
    heading(o, tx.h_relay_countries);
    for row in c.relays.iter().take(20) {
        let _ = writeln!(
            o,
            "  {} {:>9} {} {:>9} {}",
            pad(&name(&row.country), 12),
            int(row.servers),
            tx.col_servers,
            int(row.relayed),
            tx.col_relayed
        );
    }
    o.push('\n');
}

fn errors(o: &mut String, r: &Report) {
    let e = &r.client_events;
    let tx = r.language.texts();
    heading(o, tx.h_errors);
    if e.errors == 0 {
        let _ = writeln!(o, "  {}\n", fill(tx.text_no_errors, &[("n", &int(e.rows))]));
        return;
    }
    for c in &e.by_code {
        let meaning = pad(result_meaning(c.code, tx), 36);
        let _ = writeln!(o, "  {:>4} {meaning} {:>9}", c.code, int(c.count));
    }
    let _ = writeln!(o, "  {}", tx.text_by_description);
    for d in e.by_desc.iter().take(20) {
        let _ = writeln!(o, "  {:>4} {:>9}  {}", d.code, int(d.count), d.desc);
    }
    o.push('\n');
}

fn detail(o: &mut String, r: &Report) {
    let d = &r.detail;
    let tx = r.language.texts();
    let heading = if d.omitted() > 0 {
        tx.text_detail_heading_worst
    } else {
        tx.text_detail_heading
    };
    let title = fill(
        heading,
        &[
            ("shown", &int(d.rows.len() as u64)),
            ("total", &int(d.total)),
        ],
    );
    let _ = writeln!(o, "{title}\n{}", "-".repeat(columns(&title)));
    for (i, row) in d.rows.iter().enumerate() {
        let q = match &row.quality {
            Some(q) => fill(
                tx.text_detail_quality,
                &[
                    ("audio_kbps", &format!("{:.0}", q.audio_bitrate.avg)),
                    ("audio_loss", &format!("{:.2}", q.audio_loss.avg)),
                    ("video_kbps", &format!("{:.0}", q.video_bitrate.avg)),
                    ("video_loss", &format!("{:.2}", q.video_loss.avg)),
                ],
            ),
            None => tx.no_quality.to_owned(),
        };
        let _ = writeln!(
            o,
            "  {:>4} {} {} {} -> {} [{}] {} {} {}  {}",
            i + 1,
            local_time(row.begin_time, r.tz),
            row.app_id,
            user(&row.user_id, &row.user_name),
            user(&row.remote_user_id, &row.remote_user_name),
            status(row.status, tx),
            connect_type(row.connect_type, tx),
            hms(row.duration_secs),
            crate::fmt::os_browser(row),
            q
        );
    }
    if d.omitted() > 0 {
        let command = format!("rtcroom report --date {} --out report.html", r.date);
        let _ = writeln!(
            o,
            "  {}",
            fill(
                tx.text_detail_more,
                &[("n", &int(d.omitted())), ("command", &command)],
            )
        );
    }
}

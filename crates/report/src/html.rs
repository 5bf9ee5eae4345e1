//! The report as HTML, for the e-mail and for the standalone file.
//!
//! Written for mail clients: layout in tables, CSS only in `style` attributes (several
//! clients drop `<style>` blocks), no scripts, no SVG, images as PNG. Text is UTF-8 in the
//! report's language, with a font list that ends in common CJK fonts, so a Chinese report
//! renders in every mail client that has one.
//! Table rows carry as little markup as possible (attributes rather than per-cell styles),
//! because a long detail table is most of the message's size.

use crate::charts::Chart;
use crate::fmt::{
    client_label, connect_type, esc, esc_into, hms, int, local_time, loss_stat, minutes,
    os_browser, pct, rate_stat, result_meaning, status, talk_type, user, utc_date_time,
};
use crate::lang::{Texts, fill};
use crate::model::{Countries, DetailRow, LabelCounts, Report, ShareRow, ratio};
use crate::rows::SubStatus;
use chrono_tz::Tz;
use std::fmt::Write;

const FONTS: &str = "-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,'PingFang SC','Hiragino Sans GB','Microsoft YaHei','Noto Sans CJK SC','WenQuanYi Micro Hei',sans-serif";
const MUTED: &str = "#6b7280";
const H2: &str = "margin:26px 0 8px 0;font-size:17px;color:#111827;border-bottom:2px solid #2f6fde;padding-bottom:4px;";
const TABLE: &str = "<table cellpadding=\"5\" cellspacing=\"0\" border=\"0\" style=\"border-collapse:collapse;font-size:13px;\">";
const HEAD_ROW: &str = "<tr bgcolor=\"#eef2f7\" style=\"background:#eef2f7;text-align:left;\">";
/// Every other row of a table is shaded; `bgcolor` works in clients that ignore CSS.
const ZEBRA: &str = " bgcolor=\"#f7f8fa\"";

/// How the HTML refers to the chart images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Images {
    /// `cid:` references to inline parts of the message.
    ContentId,
    /// `data:` URIs, so the file stands alone.
    Inline,
}

/// The e-mail's HTML part: the whole report with the detail rows the report kept, charts by
/// `cid:` (see [`Chart::content_id`]).
pub fn email_html(report: &Report, charts: &[Chart], subject: &str) -> String {
    let mut out = String::with_capacity(64 * 1024 + report.detail.rows.len() * 400);
    start(&mut out, report, subject);
    summary(&mut out, report, charts, Images::ContentId);
    if !report.detail.rows.is_empty() {
        detail_open(&mut out, report, &email_detail_note(report));
        for (i, row) in report.detail.rows.iter().enumerate() {
            detail_row(
                &mut out,
                i as u64 + 1,
                row,
                report.tz,
                report.language.texts(),
            );
        }
        detail_close(&mut out);
    }
    end(&mut out, report);
    out
}

fn email_detail_note(report: &Report) -> String {
    let d = &report.detail;
    let tx = report.language.texts();
    if d.omitted() == 0 {
        esc(&fill(tx.detail_all, &[("n", &int(d.total))]))
    } else {
        // The command is markup; the rest of the sentence is escaped around it.
        let command = "\u{0}";
        let note = esc(&fill(
            tx.detail_worst,
            &[
                ("shown", &int(d.rows.len() as u64)),
                ("total", &int(d.total)),
                ("left", &int(d.omitted())),
                ("command", command),
            ],
        ));
        note.replace(
            command,
            &format!(
                "<code>rtcroom report --date {} --out report.html</code>",
                report.date
            ),
        )
    }
}

/// From the doctype to the header of the report.
pub(crate) fn start(out: &mut String, r: &Report, subject: &str) {
    let subject = esc(subject);
    let intro = esc(&crate::fmt::intro(r));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{subject}</title></head>\n\
         <body style=\"margin:0;padding:0;background:#f3f4f6;\">\n\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" bgcolor=\"#f3f4f6\" style=\"background:#f3f4f6;\"><tr><td align=\"center\" style=\"padding:16px 6px;\">\n\
         <table role=\"presentation\" width=\"960\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" bgcolor=\"#ffffff\" style=\"width:960px;max-width:100%;background:#ffffff;border:1px solid #e5e7eb;font-family:{FONTS};color:#1f2937;font-size:14px;line-height:1.45;\">\n\
         <tr><td style=\"padding:20px 24px 28px 24px;\">\n\
         <h1 style=\"margin:0 0 4px 0;font-size:23px;color:#111827;\">{subject}</h1>\n\
         <div style=\"color:{MUTED};font-size:13px;\">{intro}</div>\n",
        lang = r.language.code(),
    );
}

/// Everything but the detail table.
pub(crate) fn summary(out: &mut String, r: &Report, charts: &[Chart], images: Images) {
    let t = &r.totals;
    let tx = r.language.texts();
    if t.no_calls() {
        let _ = writeln!(
            out,
            "<div style=\"margin:20px 0;padding:18px;background:#f9fafb;border:1px solid #e5e7eb;font-size:16px;\">{}</div>",
            esc(tx.no_calls)
        );
    } else {
        cards(out, r);
        let chart = |out: &mut String, id: &str| {
            if let Some(c) = charts.iter().find(|c| c.id == id) {
                image(out, c, images);
            }
        };
        h2(out, tx.h_hourly);
        chart(out, "hourly");
        h2(out, tx.h_share);
        chart(out, "share");
        share_table(out, r);
        h2(out, tx.h_quality);
        chart(out, "quality");
        quality_table(out, r);
        worst(out, r, tx.h_worst_loss, &r.worst_video_loss);
        worst(out, r, tx.h_low_bitrate, &r.lowest_video_bitrate);
        h2(out, tx.h_clients);
        let _ = write!(
            out,
            "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\"><tr><td valign=\"top\" style=\"padding-right:28px;\">"
        );
        labels(out, tx, tx.col_browser, &r.browsers);
        out.push_str("</td><td valign=\"top\">");
        labels(out, tx, tx.col_os, &r.operating_systems);
        out.push_str("</td></tr></table>\n");
        if let Some(c) = &r.countries {
            countries(out, tx, c);
        }
    }
    client_events(out, r);
}

fn h2(out: &mut String, title: &str) {
    let _ = writeln!(out, "<h2 style=\"{H2}\">{}</h2>", esc(title));
}

fn image(out: &mut String, c: &Chart, images: Images) {
    let src = match images {
        Images::ContentId => format!("cid:{}", c.content_id()),
        Images::Inline => c.data_uri(),
    };
    let _ = writeln!(
        out,
        "<img src=\"{src}\" width=\"{w}\" height=\"{h}\" alt=\"{alt}\" style=\"display:block;width:100%;max-width:{w}px;height:auto;border:0;margin:4px 0 8px 0;\">",
        w = c.width,
        h = c.height,
        alt = esc(&c.alt),
    );
}

fn cards(out: &mut String, r: &Report) {
    let t = &r.totals;
    let c = &r.connect_types;
    let tx = r.language.texts();
    let n = |template: &str, v: u64| fill(template, &[("n", &int(v))]);
    let cards: [(&str, String, String); 12] = [
        (tx.card_calls, int(t.sessions), tx.card_calls_note.into()),
        (
            tx.card_participants,
            int(t.participants),
            tx.card_participants_note.into(),
        ),
        (
            tx.card_connected,
            int(t.connected),
            n(tx.card_connected_note, t.sub_sessions),
        ),
        (
            tx.card_never,
            int(t.never_connected),
            n(tx.card_never_note, t.in_progress),
        ),
        (
            tx.card_minutes,
            minutes(t.connected_seconds),
            tx.card_minutes_note.into(),
        ),
        (
            tx.card_average,
            hms(t.avg_connected_seconds().round() as u64),
            tx.card_average_note.into(),
        ),
        (
            tx.card_relayed,
            pct(c.relay_pair_percent()),
            fill(
                tx.card_relayed_note,
                &[("pct", &pct(c.relay_minute_percent()))],
            ),
        ),
        (
            tx.card_relay_minutes,
            minutes(c.relay.seconds),
            tx.card_relay_minutes_note.into(),
        ),
        (
            tx.card_cost,
            r.currency.amount(t.cost_cents),
            r.currency.code().to_owned(),
        ),
        (
            tx.card_timed_out,
            int(t.sessions_timed_out),
            n(tx.card_timed_out_note, t.sub_sessions_timed_out),
        ),
        (
            tx.card_errors,
            int(r.client_events.errors),
            n(tx.card_errors_note, r.client_events.rows),
        ),
        (
            tx.card_quality,
            int(r.quality.reports),
            n(tx.card_quality_note, r.quality.pairs_without_reports),
        ),
    ];
    out.push_str(
        "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"6\" border=\"0\" style=\"margin:14px 0 0 0;\">\n",
    );
    for row in cards.chunks(4) {
        out.push_str("<tr>");
        for (label, value, note) in row {
            let (label, value, note) = (esc(label), esc(value), esc(note));
            let _ = write!(
                out,
                "<td width=\"25%\" valign=\"top\" bgcolor=\"#f5f8ff\" style=\"background:#f5f8ff;border:1px solid #dbe5fb;padding:10px 12px;\">\
                 <div style=\"font-size:12px;color:{MUTED};\">{label}</div>\
                 <div style=\"font-size:22px;font-weight:bold;color:#1e3a8a;\">{value}</div>\
                 <div style=\"font-size:12px;color:{MUTED};\">{note}</div></td>",
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn share_table(out: &mut String, r: &Report) {
    let c = &r.connect_types;
    let tx = r.language.texts();
    let total = c.total();
    out.push_str(TABLE);
    let _ = writeln!(
        out,
        "{HEAD_ROW}<th>{}</th><th align=\"right\">{}</th><th align=\"right\">{}</th><th align=\"right\">{}</th><th align=\"right\">{}</th><th align=\"right\">{}</th></tr>",
        esc(tx.col_connect_type),
        esc(tx.col_pairs),
        esc(tx.col_share),
        esc(tx.col_minutes),
        esc(tx.col_share),
        esc(tx.col_cost),
    );
    let row = |out: &mut String, name: &str, s: &ShareRow, bold: bool| {
        let (b0, b1) = if bold { ("<b>", "</b>") } else { ("", "") };
        let _ = writeln!(
            out,
            "<tr><td>{b0}{name}{b1}</td><td align=\"right\">{b0}{}{b1}</td><td align=\"right\">{}</td><td align=\"right\">{b0}{}{b1}</td><td align=\"right\">{}</td><td align=\"right\">{b0}{}{b1}</td></tr>",
            int(s.pairs),
            pct(100.0 * ratio(s.pairs as f64, total.pairs as f64)),
            minutes(s.seconds),
            pct(100.0 * ratio(s.seconds as f64, total.seconds as f64)),
            esc(&r.currency.amount(s.cost_cents)),
        );
    };
    row(out, &esc(tx.p2p), &c.p2p, false);
    row(out, &esc(tx.relay), &c.relay, false);
    row(out, &esc(tx.unknown), &c.unknown, false);
    row(out, &esc(tx.connected_total), &total, true);
    out.push_str("</table>\n");
}

fn quality_table(out: &mut String, r: &Report) {
    let q = &r.quality;
    let tx = r.language.texts();
    let note = fill(
        tx.quality_note,
        &[
            ("reports", &int(q.reports)),
            ("pairs", &int(q.pairs_with_reports)),
            ("without", &int(q.pairs_without_reports)),
        ],
    );
    out.push_str(TABLE);
    let _ = write!(
        out,
        "{HEAD_ROW}<th></th><th align=\"right\">{}</th><th align=\"right\">{}</th></tr>\n\
         <tr><td>{}</td><td align=\"right\">{:.0}</td><td align=\"right\">{:.2}</td></tr>\n\
         <tr><td>{}</td><td align=\"right\">{:.0}</td><td align=\"right\">{:.2}</td></tr>\n</table>\n\
         <div style=\"font-size:12px;color:{MUTED};margin-top:4px;\">{}</div>\n",
        esc(tx.col_bitrate),
        esc(tx.col_loss),
        esc(tx.audio),
        q.audio_bitrate_avg,
        q.audio_loss_avg,
        esc(tx.video),
        q.video_bitrate_avg,
        q.video_loss_avg,
        esc(&note),
    );
}

fn worst(out: &mut String, r: &Report, title: &str, rows: &[DetailRow]) {
    if rows.is_empty() {
        return;
    }
    let tx = r.language.texts();
    h2(out, title);
    out.push_str(TABLE);
    let _ = writeln!(
        out,
        "{HEAD_ROW}<th>{}</th><th>{}</th><th>{}</th><th>{}</th><th align=\"right\">{}</th><th align=\"right\">{}</th><th align=\"right\">{}</th></tr>",
        esc(tx.col_begin),
        esc(tx.col_app),
        esc(tx.col_user_remote),
        esc(tx.col_connect),
        esc(tx.col_duration),
        esc(tx.col_video_kbps),
        esc(tx.col_video_loss),
    );
    for (i, row) in rows.iter().enumerate() {
        let q = row.quality.unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td>{}</td><td>{} \u{2192} {}</td><td>{}</td><td align=\"right\">{}</td><td align=\"right\">{}</td><td align=\"right\">{}</td></tr>",
            zebra(i),
            local_time(row.begin_time, r.tz),
            esc(&row.app_id),
            esc(&user(&row.user_id, &row.user_name)),
            esc(&user(&row.remote_user_id, &row.remote_user_name)),
            esc(connect_type(row.connect_type, tx)),
            hms(row.duration_secs),
            rate_stat(&q.video_bitrate),
            loss_stat(&q.video_loss),
        );
    }
    out.push_str("</table>\n");
}

/// Shows the ten most frequent labels and sums the rest.
fn labels(out: &mut String, tx: &Texts, what: &str, l: &LabelCounts) {
    const SHOWN: usize = 10;
    out.push_str(TABLE);
    let _ = writeln!(
        out,
        "{HEAD_ROW}<th>{}</th><th align=\"right\">{}</th></tr>",
        esc(what),
        esc(tx.col_sessions)
    );
    for (i, item) in l.items.iter().take(SHOWN).enumerate() {
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td align=\"right\">{}</td></tr>",
            zebra(i),
            esc(client_label(&item.label, tx)),
            int(item.count)
        );
    }
    let rest: u64 = l.items.iter().skip(SHOWN).map(|i| i.count).sum::<u64>() + l.other;
    if rest > 0 {
        let _ = writeln!(
            out,
            "<tr><td style=\"color:{MUTED};\">{}</td><td align=\"right\">{}</td></tr>",
            esc(tx.others),
            int(rest)
        );
    }
    out.push_str("</table>\n");
}

/// Countries shown in each table; the rest are in the JSON export.
const COUNTRIES_SHOWN: usize = 20;

fn countries(out: &mut String, tx: &Texts, c: &Countries) {
    let name = |c: &Option<String>| esc(c.as_deref().unwrap_or(tx.unknown_country));
    h2(out, tx.h_countries);
    out.push_str(TABLE);
    let _ = writeln!(
        out,
        "{HEAD_ROW}<th>{}</th><th align=\"right\">{}</th><th align=\"right\">{}</th><th align=\"right\">{}</th><th align=\"right\">{}</th><th align=\"right\">{}</th></tr>",
        esc(tx.col_country),
        esc(tx.col_sessions),
        esc(tx.col_pairs),
        esc(tx.col_relayed),
        esc(tx.col_audio_loss),
        esc(tx.col_video_loss),
    );
    for (i, row) in c.members.iter().take(COUNTRIES_SHOWN).enumerate() {
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td align=\"right\">{}</td><td align=\"right\">{}</td><td align=\"right\">{}</td><td align=\"right\">{:.2}</td><td align=\"right\">{:.2}</td></tr>",
            zebra(i),
            name(&row.country),
            int(row.sessions),
            int(row.connected),
            pct(row.relay_percent()),
            row.avg_audio_loss,
            row.avg_video_loss,
        );
    }
    out.push_str("</table>\n");
    if c.relays.is_empty() {
        return;
    }
    h2(out, tx.h_relay_countries);
    out.push_str(TABLE);
    let _ = writeln!(
        out,
        "{HEAD_ROW}<th>{}</th><th align=\"right\">{}</th><th align=\"right\">{}</th></tr>",
        esc(tx.col_country),
        esc(tx.col_servers),
        esc(tx.col_relayed),
    );
    for (i, row) in c.relays.iter().take(COUNTRIES_SHOWN).enumerate() {
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td align=\"right\">{}</td><td align=\"right\">{}</td></tr>",
            zebra(i),
            name(&row.country),
            int(row.servers),
            int(row.relayed),
        );
    }
    out.push_str("</table>\n");
}

fn client_events(out: &mut String, r: &Report) {
    let e = &r.client_events;
    let tx = r.language.texts();
    h2(out, tx.h_errors);
    if e.errors == 0 {
        let _ = writeln!(
            out,
            "<div>{}</div>",
            esc(&fill(tx.no_errors, &[("n", &int(e.rows))]))
        );
        return;
    }
    out.push_str(TABLE);
    let _ = writeln!(
        out,
        "{HEAD_ROW}<th align=\"right\">{}</th><th>{}</th><th align=\"right\">{}</th></tr>",
        esc(tx.col_code),
        esc(tx.col_meaning),
        esc(tx.col_count)
    );
    for (i, c) in e.by_code.iter().enumerate() {
        let _ = writeln!(
            out,
            "<tr{}><td align=\"right\">{}</td><td>{}</td><td align=\"right\">{}</td></tr>",
            zebra(i),
            c.code,
            esc(result_meaning(c.code, tx)),
            int(c.count)
        );
    }
    out.push_str("</table>\n<div style=\"height:10px;\"></div>\n");
    const SHOWN: usize = 20;
    out.push_str(TABLE);
    let _ = writeln!(
        out,
        "{HEAD_ROW}<th align=\"right\">{}</th><th>{}</th><th align=\"right\">{}</th></tr>",
        esc(tx.col_code),
        esc(tx.col_description),
        esc(tx.col_count)
    );
    for (i, d) in e.by_desc.iter().take(SHOWN).enumerate() {
        let _ = writeln!(
            out,
            "<tr{}><td align=\"right\">{}</td><td>{}</td><td align=\"right\">{}</td></tr>",
            zebra(i),
            d.code,
            esc(&d.desc),
            int(d.count)
        );
    }
    let rest: u64 = e.by_desc.iter().skip(SHOWN).map(|d| d.count).sum::<u64>() + e.other_descs;
    if rest > 0 {
        let _ = writeln!(
            out,
            "<tr><td></td><td style=\"color:{MUTED};\">{}</td><td align=\"right\">{}</td></tr>",
            esc(tx.other_descriptions),
            int(rest)
        );
    }
    out.push_str("</table>\n");
}

fn zebra(i: usize) -> &'static str {
    if i % 2 == 1 { ZEBRA } else { "" }
}

/// The heading, note (HTML) and column headers of the detail table.
pub(crate) fn detail_open(out: &mut String, r: &Report, note: &str) {
    let tx = r.language.texts();
    h2(out, tx.h_detail);
    let _ = writeln!(
        out,
        "<div style=\"font-size:12px;color:{MUTED};margin-bottom:6px;\">{note} {}</div>",
        esc(tx.detail_columns_note)
    );
    out.push_str(
        "<table cellpadding=\"4\" cellspacing=\"0\" border=\"0\" width=\"100%\" style=\"border-collapse:collapse;font-size:11px;\">\n",
    );
    out.push_str(HEAD_ROW);
    out.push_str("<th align=\"right\">#</th>");
    for (name, right) in [
        (tx.col_begin, false),
        (tx.col_app, false),
        (tx.col_user, false),
        (tx.col_remote, false),
        (tx.col_type, false),
        (tx.col_status, false),
        (tx.col_connect, false),
        (tx.col_user_ip, false),
        (tx.col_ice_ip, false),
        (tx.col_duration, true),
        (tx.col_os_browser, false),
        (tx.col_audio_kbps, true),
        (tx.col_audio_loss, true),
        (tx.col_video_kbps, true),
        (tx.col_video_loss, true),
    ] {
        let align = if right { " align=\"right\"" } else { "" };
        let _ = write!(out, "<th{align}>{}</th>", esc(name));
    }
    out.push_str("</tr>\n");
}

/// One row of the detail table; `n` is its number. Cells with two facts (an id and a name,
/// an average and its range) put the second on a grey second line, which keeps the rows of a
/// sixteen-column table at an even height in a 960-pixel mail.
pub(crate) fn detail_row(out: &mut String, n: u64, r: &DetailRow, tz: Tz, tx: &Texts) {
    let bg = if n % 2 == 0 { ZEBRA } else { "" };
    let _ = write!(
        out,
        "<tr{bg}><td align=right>{n}</td><td>{}</td><td>",
        local_time(r.begin_time, tz)
    );
    esc_into(out, &r.app_id);
    out.push_str("</td><td>");
    two_lines(
        out,
        &r.user_id,
        Some(&r.user_name).filter(|n| **n != r.user_id),
    );
    out.push_str("</td><td>");
    two_lines(
        out,
        &r.remote_user_id,
        Some(&r.remote_user_name).filter(|n| **n != r.remote_user_id),
    );
    let _ = write!(
        out,
        "</td><td>{}</td><td><font color=\"{}\">{}</font></td><td>{}</td><td>",
        esc(&talk_type(r.talk_type, tx)),
        status_color(r.status),
        esc(status(r.status, tx)),
        esc(connect_type(r.connect_type, tx))
    );
    two_lines(out, &r.user_ip, r.user_country.as_ref());
    out.push_str("</td><td>");
    two_lines(out, &r.ice_ip, r.ice_country.as_ref());
    let _ = write!(
        out,
        "</td><td align=right>{}</td><td>",
        hms(r.duration_secs)
    );
    esc_into(out, &os_browser(r));
    out.push_str("</td>");
    match &r.quality {
        Some(q) => {
            let _ = write!(
                out,
                "<td align=right nowrap>{:.0}<br><font color=#888>{:.0}\u{2013}{:.0}</font></td>\
                 <td align=right nowrap>{:.2}<br><font color=#888>{:.2}\u{2013}{:.2}</font></td>\
                 <td align=right nowrap>{:.0}<br><font color=#888>{:.0}\u{2013}{:.0}</font></td>\
                 <td align=right nowrap>{:.2}<br><font color=#888>{:.2}\u{2013}{:.2}</font></td>",
                q.audio_bitrate.avg,
                q.audio_bitrate.min,
                q.audio_bitrate.max,
                q.audio_loss.avg,
                q.audio_loss.min,
                q.audio_loss.max,
                q.video_bitrate.avg,
                q.video_bitrate.min,
                q.video_bitrate.max,
                q.video_loss.avg,
                q.video_loss.min,
                q.video_loss.max,
            );
        }
        None => {
            let _ = write!(
                out,
                "<td align=right colspan=4><font color=#888>{}</font></td>",
                esc(tx.no_quality)
            );
        }
    }
    out.push_str("</tr>\n");
}

/// `first`, and `second` on a grey line below it when there is one.
fn two_lines(out: &mut String, first: &str, second: Option<&String>) {
    esc_into(out, first);
    if let Some(s) = second.filter(|s| !s.is_empty()) {
        out.push_str("<br><font color=#888>");
        esc_into(out, s);
        out.push_str("</font>");
    }
}

fn status_color(s: SubStatus) -> &'static str {
    match s {
        SubStatus::ConnectedLeft => "#15803d",
        SubStatus::ConnectedTimedOut => "#b45309",
        SubStatus::NeverConnectedLeft | SubStatus::NeverConnectedTimedOut => "#b91c1c",
        SubStatus::InProgress => "#1d4ed8",
    }
}

pub(crate) fn detail_close(out: &mut String) {
    out.push_str("</table>\n");
}

/// The footer and the closing tags.
pub(crate) fn end(out: &mut String, r: &Report) {
    let tx = r.language.texts();
    let mut note = fill(
        tx.footer,
        &[("gen", &utc_date_time(r.generated_at)), ("tz", &r.timezone)],
    );
    if r.totals.rows_outside_day > 0 {
        note.push(' ');
        note.push_str(&fill(
            tx.footer_outside,
            &[("n", &int(r.totals.rows_outside_day))],
        ));
    }
    let _ = write!(
        out,
        "<div style=\"margin-top:26px;font-size:12px;color:{MUTED};\">{}</div>\n\
         </td></tr></table>\n</td></tr></table>\n</body></html>\n",
        esc(&note)
    );
}

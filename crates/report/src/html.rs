//! The report as HTML, for the e-mail and for the standalone file.
//!
//! Written for mail clients: layout in tables, CSS only in `style` attributes (several
//! clients drop `<style>` blocks), no scripts, no SVG, images as PNG. Text is UTF-8 with a
//! font list that ends in common CJK fonts, so the Chinese headings render everywhere.
//! Table rows carry as little markup as possible (attributes rather than per-cell styles),
//! because a long detail table is most of the message's size.

use crate::charts::Chart;
use crate::fmt::{
    connect_type, esc, esc_into, hms, int, local_date_time, local_time, loss_stat, minutes, money,
    os_browser, pct, rate_stat, talk_type, user, utc_date_time,
};
use crate::model::{DetailRow, LabelCounts, Report, ShareRow, ratio};
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
        detail_open(&mut out, &email_detail_note(report));
        for (i, row) in report.detail.rows.iter().enumerate() {
            detail_row(&mut out, i as u64 + 1, row, report.tz);
        }
        detail_close(&mut out);
    }
    end(&mut out, report);
    out
}

fn email_detail_note(report: &Report) -> String {
    let d = &report.detail;
    if d.omitted() == 0 {
        format!(
            "全部 {} 条子会话 · All {} pairs, in order of begin time.",
            int(d.total),
            int(d.total)
        )
    } else {
        format!(
            "显示最差的 {shown} 条，共 {total} 条 · The {shown} worst of {total} pairs \
             (never connected and timed out first, then by packet loss), in order of begin \
             time; {left} are left out of this e-mail. The complete table: \
             <code>rtcroom report --date {date} --out report.html</code>.",
            shown = int(d.rows.len() as u64),
            total = int(d.total),
            left = int(d.omitted()),
            date = report.date,
        )
    }
}

/// From the doctype to the header of the report.
pub(crate) fn start(out: &mut String, r: &Report, subject: &str) {
    let subject = esc(subject);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{subject}</title></head>\n\
         <body style=\"margin:0;padding:0;background:#f3f4f6;\">\n\
         <table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" bgcolor=\"#f3f4f6\" style=\"background:#f3f4f6;\"><tr><td align=\"center\" style=\"padding:16px 6px;\">\n\
         <table role=\"presentation\" width=\"960\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" bgcolor=\"#ffffff\" style=\"width:960px;max-width:100%;background:#ffffff;border:1px solid #e5e7eb;font-family:{FONTS};color:#1f2937;font-size:14px;line-height:1.45;\">\n\
         <tr><td style=\"padding:20px 24px 28px 24px;\">\n\
         <h1 style=\"margin:0 0 4px 0;font-size:23px;color:#111827;\">{subject}</h1>\n\
         <div style=\"color:{MUTED};font-size:13px;\">Daily call report for {date} ({tz}): {ls} \u{2013} {le} local, {us} \u{2013} {ue}. Generated {gen}.</div>\n",
        date = r.date,
        tz = esc(&r.timezone),
        ls = local_date_time(r.window_start, r.tz),
        le = local_date_time(r.window_end, r.tz),
        us = utc_date_time(r.window_start),
        ue = utc_date_time(r.window_end),
        gen = utc_date_time(r.generated_at),
    );
}

/// Everything but the detail table.
pub(crate) fn summary(out: &mut String, r: &Report, charts: &[Chart], images: Images) {
    let t = &r.totals;
    if t.no_calls() {
        out.push_str(
            "<div style=\"margin:20px 0;padding:18px;background:#f9fafb;border:1px solid #e5e7eb;font-size:16px;\">\
             当日无通话 · No calls on this day.</div>\n",
        );
    } else {
        cards(out, r);
        let chart = |out: &mut String, id: &str| {
            if let Some(c) = charts.iter().find(|c| c.id == id) {
                image(out, c, images);
            }
        };
        h2(out, "每小时通话 · Calls per hour");
        chart(out, "hourly");
        h2(out, "直连与中继 · P2P and relay");
        chart(out, "share");
        share_table(out, r);
        h2(out, "通话质量 · Quality (receive side)");
        chart(out, "quality");
        quality_table(out, r);
        worst(
            out,
            r,
            "丢包最多的视频通话 · Highest video loss",
            &r.worst_video_loss,
        );
        worst(
            out,
            r,
            "码率最低的视频通话 · Lowest video bitrate",
            &r.lowest_video_bitrate,
        );
        h2(out, "浏览器与操作系统 · Browsers and operating systems");
        let _ = write!(
            out,
            "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\"><tr><td valign=\"top\" style=\"padding-right:28px;\">"
        );
        labels(out, "Browser", &r.browsers);
        out.push_str("</td><td valign=\"top\">");
        labels(out, "Operating system", &r.operating_systems);
        out.push_str("</td></tr></table>\n");
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
    let cards: [(&str, String, String); 12] = [
        ("通话 · Calls", int(t.sessions), "sessions (joins)".into()),
        (
            "用户 · Participants",
            int(t.participants),
            "distinct users".into(),
        ),
        (
            "接通 · Connected",
            int(t.connected),
            format!("of {} pairs", int(t.sub_sessions)),
        ),
        (
            "未接通 · Never connected",
            int(t.never_connected),
            format!("{} still open", int(t.in_progress)),
        ),
        (
            "通话分钟 · Call minutes",
            minutes(t.connected_seconds),
            "connected, both directions".into(),
        ),
        (
            "平均时长 · Average",
            hms(t.avg_connected_seconds().round() as u64),
            "per connected pair".into(),
        ),
        (
            "中继 · Relayed",
            pct(c.relay_pair_percent()),
            format!("of pairs; {} of minutes", pct(c.relay_minute_percent())),
        ),
        (
            "中继分钟 · Relay minutes",
            minutes(c.relay.seconds),
            "through TURN".into(),
        ),
        ("费用 · Cost", money(t.cost_cents), esc(&r.currency)),
        (
            "超时 · Timed out",
            int(t.sessions_timed_out),
            format!("sessions; {} pairs", int(t.sub_sessions_timed_out)),
        ),
        (
            "客户端错误 · Client errors",
            int(r.client_events.errors),
            format!("of {} reportInfo", int(r.client_events.rows)),
        ),
        (
            "质量报告 · Quality reports",
            int(r.quality.reports),
            format!("{} pairs without", int(r.quality.pairs_without_reports)),
        ),
    ];
    out.push_str(
        "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"6\" border=\"0\" style=\"margin:14px 0 0 0;\">\n",
    );
    for row in cards.chunks(4) {
        out.push_str("<tr>");
        for (label, value, note) in row {
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
    let total = c.total();
    out.push_str(TABLE);
    let _ = writeln!(
        out,
        "{HEAD_ROW}<th>Connect type</th><th align=\"right\">Pairs</th><th align=\"right\">Share</th><th align=\"right\">Minutes</th><th align=\"right\">Share</th><th align=\"right\">Cost ({})</th></tr>",
        esc(&r.currency)
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
            money(s.cost_cents),
        );
    };
    row(out, "P2P (STUN)", &c.p2p, false);
    row(out, "Relay (TURN)", &c.relay, false);
    row(out, "Unknown", &c.unknown, false);
    row(out, "Connected", &total, true);
    out.push_str("</table>\n");
}

fn quality_table(out: &mut String, r: &Report) {
    let q = &r.quality;
    out.push_str(TABLE);
    let _ = write!(
        out,
        "{HEAD_ROW}<th></th><th align=\"right\">Bitrate (kbit/s)</th><th align=\"right\">Loss (%)</th></tr>\n\
         <tr><td>Audio</td><td align=\"right\">{:.0}</td><td align=\"right\">{:.2}</td></tr>\n\
         <tr><td>Video</td><td align=\"right\">{:.0}</td><td align=\"right\">{:.2}</td></tr>\n</table>\n\
         <div style=\"font-size:12px;color:{MUTED};margin-top:4px;\">Averages over {} reports from {} connected pairs, weighted by reports; {} connected pairs sent no report.</div>\n",
        q.audio_bitrate_avg,
        q.audio_loss_avg,
        q.video_bitrate_avg,
        q.video_loss_avg,
        int(q.reports),
        int(q.pairs_with_reports),
        int(q.pairs_without_reports),
    );
}

fn worst(out: &mut String, r: &Report, title: &str, rows: &[DetailRow]) {
    if rows.is_empty() {
        return;
    }
    h2(out, title);
    out.push_str(TABLE);
    let _ = writeln!(
        out,
        "{HEAD_ROW}<th>Begin</th><th>App</th><th>User \u{2192} remote</th><th>Connect</th><th align=\"right\">Duration</th><th align=\"right\">Video kbit/s</th><th align=\"right\">Video loss %</th></tr>"
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
            connect_type(row.connect_type),
            hms(row.duration_secs),
            rate_stat(&q.video_bitrate),
            loss_stat(&q.video_loss),
        );
    }
    out.push_str("</table>\n");
}

/// Shows the ten most frequent labels and sums the rest.
fn labels(out: &mut String, what: &str, l: &LabelCounts) {
    const SHOWN: usize = 10;
    out.push_str(TABLE);
    let _ = writeln!(
        out,
        "{HEAD_ROW}<th>{what}</th><th align=\"right\">Sessions</th></tr>"
    );
    for (i, item) in l.items.iter().take(SHOWN).enumerate() {
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td align=\"right\">{}</td></tr>",
            zebra(i),
            esc(&item.label),
            int(item.count)
        );
    }
    let rest: u64 = l.items.iter().skip(SHOWN).map(|i| i.count).sum::<u64>() + l.other;
    if rest > 0 {
        let _ = writeln!(
            out,
            "<tr><td style=\"color:{MUTED};\">others</td><td align=\"right\">{}</td></tr>",
            int(rest)
        );
    }
    out.push_str("</table>\n");
}

fn client_events(out: &mut String, r: &Report) {
    let e = &r.client_events;
    h2(out, "客户端错误 · Client errors (reportInfo)");
    if e.errors == 0 {
        let _ = writeln!(
            out,
            "<div>No client reported an error ({} reportInfo messages).</div>",
            int(e.rows)
        );
        return;
    }
    out.push_str(TABLE);
    let _ = writeln!(
        out,
        "{HEAD_ROW}<th align=\"right\">Code</th><th>Meaning</th><th align=\"right\">Count</th></tr>"
    );
    for (i, c) in e.by_code.iter().enumerate() {
        let _ = writeln!(
            out,
            "<tr{}><td align=\"right\">{}</td><td>{}</td><td align=\"right\">{}</td></tr>",
            zebra(i),
            c.code,
            esc(&c.meaning),
            int(c.count)
        );
    }
    out.push_str("</table>\n<div style=\"height:10px;\"></div>\n");
    const SHOWN: usize = 20;
    out.push_str(TABLE);
    let _ = writeln!(
        out,
        "{HEAD_ROW}<th align=\"right\">Code</th><th>Description</th><th align=\"right\">Count</th></tr>"
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
            "<tr><td></td><td style=\"color:{MUTED};\">other descriptions</td><td align=\"right\">{}</td></tr>",
            int(rest)
        );
    }
    out.push_str("</table>\n");
}

fn zebra(i: usize) -> &'static str {
    if i % 2 == 1 { ZEBRA } else { "" }
}

/// The heading, note and column headers of the detail table.
pub(crate) fn detail_open(out: &mut String, note: &str) {
    h2(out, "通话明细 · Calls in detail");
    let _ = writeln!(
        out,
        "<div style=\"font-size:12px;color:{MUTED};margin-bottom:6px;\">{note} Quality columns: the average over the pair's reports (receive side), its minimum\u{2013}maximum below.</div>"
    );
    out.push_str(
        "<table cellpadding=\"4\" cellspacing=\"0\" border=\"0\" width=\"100%\" style=\"border-collapse:collapse;font-size:11px;\">\n",
    );
    let _ = writeln!(
        out,
        "{HEAD_ROW}<th align=\"right\">#</th><th>Begin</th><th>App</th><th>User</th><th>Remote</th><th>Type</th><th>Status</th><th>Connect</th><th>User IP</th><th>ICE IP</th><th align=\"right\">Duration</th><th>OS:Browser</th><th align=\"right\">Audio kbit/s</th><th align=\"right\">Audio loss %</th><th align=\"right\">Video kbit/s</th><th align=\"right\">Video loss %</th></tr>"
    );
}

/// One row of the detail table; `n` is its number. Cells with two facts (an id and a name,
/// an average and its range) put the second on a grey second line, which keeps the rows of a
/// sixteen-column table at an even height in a 960-pixel mail.
pub(crate) fn detail_row(out: &mut String, n: u64, r: &DetailRow, tz: Tz) {
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
    let (color, status) = status_cell(r.status);
    let _ = write!(
        out,
        "</td><td>{}</td><td><font color=\"{color}\">{status}</font></td><td>{}</td><td>",
        talk_type(r.talk_type),
        connect_type(r.connect_type)
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
            out.push_str("<td align=right colspan=4><font color=#888>no quality report</font></td>")
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

fn status_cell(s: SubStatus) -> (&'static str, &'static str) {
    let color = match s {
        SubStatus::ConnectedLeft => "#15803d",
        SubStatus::ConnectedTimedOut => "#b45309",
        SubStatus::NeverConnectedLeft | SubStatus::NeverConnectedTimedOut => "#b91c1c",
        SubStatus::InProgress => "#1d4ed8",
    };
    (color, s.label())
}

pub(crate) fn detail_close(out: &mut String) {
    out.push_str("</table>\n");
}

/// The footer and the closing tags.
pub(crate) fn end(out: &mut String, r: &Report) {
    let _ = write!(
        out,
        "<div style=\"margin-top:26px;font-size:12px;color:{MUTED};\">\
         A pair (sub-session) is one direction of a call between two members; a call between \
         two people has two. It belongs to the day it began on (or was created on, if it never \
         began), with all its minutes, even when it ended after midnight. Minutes and cost are \
         counted from connect to finish, as billed; pairs still open at {gen} are counted up \
         to then. Hours are local to {tz}.{outside}</div>\n\
         </td></tr></table>\n</td></tr></table>\n</body></html>\n",
        gen = utc_date_time(r.generated_at),
        tz = esc(&r.timezone),
        outside = if r.totals.rows_outside_day > 0 {
            format!(
                " {} rows read for this report belonged to another day and were left out.",
                int(r.totals.rows_outside_day)
            )
        } else {
            String::new()
        },
    );
}

//! Number, time and text formatting shared by the HTML and text renderers.

use crate::lang::Texts;
use crate::model::DetailRow;
use crate::rows::{ConnectType, Stat, SubStatus};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::fmt::Write;

/// Appends `s` with the five HTML-significant characters escaped.
pub(crate) fn esc_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    esc_into(&mut out, s);
    out
}

/// `1234567` → `1,234,567`.
pub(crate) fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds as `hh:mm:ss`; hours go past 24 rather than wrapping.
pub(crate) fn hms(secs: u64) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Cents as `12.34`.
pub(crate) fn money(cents: u64) -> String {
    format!("{}.{:02}", int(cents / 100), cents % 100)
}

pub(crate) fn pct(p: f64) -> String {
    format!("{p:.1}%")
}

/// Whole minutes, rounded.
pub(crate) fn minutes(secs: u64) -> String {
    int((secs + 30) / 60)
}

/// A local clock time of an instant in the report's zone.
pub(crate) fn local_time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%H:%M:%S").to_string()
}

pub(crate) fn local_date_time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

pub(crate) fn utc_date_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A bitrate aggregate as `avg (min–max)`, whole kbit/s.
pub(crate) fn rate_stat(s: &Stat) -> String {
    format!("{:.0} ({:.0}\u{2013}{:.0})", s.avg, s.min, s.max)
}

/// A loss aggregate as `avg (min–max)`, percent with two decimals.
pub(crate) fn loss_stat(s: &Stat) -> String {
    format!("{:.2} ({:.2}\u{2013}{:.2})", s.avg, s.min, s.max)
}

pub(crate) fn talk_type(t: i64, tx: &Texts) -> String {
    match t {
        0 => tx.talk_audio.to_owned(),
        1 => tx.talk_video.to_owned(),
        n => n.to_string(),
    }
}

pub(crate) fn connect_type(t: ConnectType, tx: &Texts) -> &'static str {
    match t {
        ConnectType::Turn => "TURN",
        ConnectType::Stun => "STUN",
        ConnectType::Unknown => tx.unknown,
        ConnectType::None => "\u{2013}",
    }
}

pub(crate) fn status(s: SubStatus, tx: &Texts) -> &'static str {
    match s {
        SubStatus::InProgress => tx.status_in_progress,
        SubStatus::ConnectedLeft => tx.status_ok,
        SubStatus::ConnectedTimedOut => tx.status_ok_timed_out,
        SubStatus::NeverConnectedLeft => tx.status_not_connected,
        SubStatus::NeverConnectedTimedOut => tx.status_not_connected_timed_out,
    }
}

/// What result code `code` means, in the report's language; empty for unknown codes.
pub(crate) fn result_meaning(code: i64, tx: &Texts) -> &'static str {
    usize::try_from(code)
        .ok()
        .and_then(|i| tx.results.get(i))
        .copied()
        .unwrap_or("")
}

/// A browser or OS label as shown: the builder's "(unknown)" in the report's language.
pub(crate) fn client_label<'a>(label: &'a str, tx: &Texts) -> &'a str {
    if label == crate::build::UNKNOWN_LABEL {
        tx.unknown_label
    } else {
        label
    }
}

/// The columns a string takes in a terminal: two for East Asian wide characters.
pub(crate) fn columns(s: &str) -> usize {
    s.chars()
        .map(|c| match c {
            '\u{1100}'..='\u{115F}'
            | '\u{2E80}'..='\u{A4CF}'
            | '\u{AC00}'..='\u{D7A3}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{FE30}'..='\u{FE4F}'
            | '\u{FF00}'..='\u{FF60}'
            | '\u{FFE0}'..='\u{FFE6}' => 2,
            _ => 1,
        })
        .sum()
}

/// `s` padded with spaces to `width` terminal columns (left-aligned).
pub(crate) fn pad(s: &str, width: usize) -> String {
    let mut out = s.to_owned();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(columns(s))));
    out
}

/// `s` right-aligned in `width` terminal columns.
pub(crate) fn pad_left(s: &str, width: usize) -> String {
    let mut out: String = std::iter::repeat_n(' ', width.saturating_sub(columns(s))).collect();
    out.push_str(s);
    out
}

/// `uid (name)`, or just the uid when the name adds nothing.
pub(crate) fn user(id: &str, name: &str) -> String {
    if name.is_empty() || name == id {
        id.to_owned()
    } else {
        format!("{id} ({name})")
    }
}

/// `os:browser`, as the original's table showed it.
pub(crate) fn os_browser(r: &DetailRow) -> String {
    let mut s = String::with_capacity(r.os_name.len() + r.browser.len() + 1);
    let _ = write!(s, "{}:{}", r.os_name, r.browser);
    s
}

/// The report's opening sentence: its day, the window in local time and UTC, when it was made.
pub(crate) fn intro(r: &crate::model::Report) -> String {
    crate::lang::fill(
        r.language.texts().intro,
        &[
            ("date", &r.date.to_string()),
            ("tz", &r.timezone),
            ("local_start", &local_date_time(r.window_start, r.tz)),
            ("local_end", &local_date_time(r.window_end, r.tz)),
            ("utc_start", &utc_date_time(r.window_start)),
            ("utc_end", &utc_date_time(r.window_end)),
            ("generated", &utc_date_time(r.generated_at)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(1234567), "1,234,567");
        assert_eq!(hms(0), "00:00:00");
        assert_eq!(hms(3 * 3600 + 25 * 60 + 7), "03:25:07");
        assert_eq!(hms(26 * 3600), "26:00:00");
        assert_eq!(money(123456), "1,234.56");
        assert_eq!(money(5), "0.05");
        assert_eq!(minutes(89), "1");
        assert_eq!(minutes(90), "2");
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(user("7", "bob"), "7 (bob)");
        assert_eq!(user("7", ""), "7");
        assert_eq!(pad("通话", 6), "通话  ");
        assert_eq!(pad_left("ab", 4), "  ab");
        assert_eq!(columns("通话 ok"), 7);
    }
}

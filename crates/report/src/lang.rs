//! The report's languages: every user-visible string of the report (HTML, text, subject,
//! charts) comes from one table per language, [`Texts`]. Figures, dates and identifiers are
//! not translated; neither is the JSON export, which is data.
//!
//! A table entry with parameters names them in braces (`{n}`), filled by [`fill`]; the tests
//! check that every language's entry has the same parameters as the English one.

mod en;
mod zh_cn;

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A language of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum Language {
    /// English, the default.
    #[default]
    #[serde(rename = "en")]
    En,
    /// Simplified Chinese.
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl Language {
    /// Every language, in the order the codes are listed to users.
    pub const ALL: [Language; 2] = [Language::En, Language::ZhCn];

    /// The code used in the configuration and in the HTML `lang` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::ZhCn => "zh-CN",
        }
    }

    /// The allowed codes as a list for messages: `"en", "zh-CN"`.
    pub fn codes() -> String {
        Self::ALL
            .iter()
            .map(|l| format!("{:?}", l.code()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn texts(self) -> &'static Texts {
        match self {
            Self::En => &en::TEXTS,
            Self::ZhCn => &zh_cn::TEXTS,
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The code is not one of [`Language::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report language {given:?}: use one of {}", Language::codes())]
pub struct UnknownLanguage {
    pub given: String,
}

impl FromStr for Language {
    type Err = UnknownLanguage;

    /// Exactly one of the codes of [`Language::ALL`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|l| l.code() == s)
            .ok_or_else(|| UnknownLanguage {
                given: s.to_owned(),
            })
    }
}

/// Replaces each `{name}` of `template` by its value.
pub(crate) fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if args.iter().any(|(k, _)| *k == &after[..close]) => {
                let key = &after[..close];
                let value = args.iter().find(|(k, _)| *k == key).map_or("", |(_, v)| v);
                out.push_str(value);
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

macro_rules! texts {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// One language's strings. The field documentation gives each entry's parameters.
        #[derive(Debug)]
        pub(crate) struct Texts {
            $($(#[doc = $doc])* pub(crate) $name: &'static str,)*
            /// What the protocol's result codes 0–14 mean.
            pub(crate) results: [&'static str; 15],
        }

        impl Texts {
            /// Every entry with its name, for the tests.
            #[cfg(test)]
            pub(crate) fn entries(&self) -> Vec<(String, &'static str)> {
                let mut v = vec![$((stringify!($name).to_owned(), self.$name)),*];
                v.extend(self.results.iter().enumerate().map(|(i, r)| (format!("results[{i}]"), *r)));
                v
            }
        }
    };
}

texts! {
    /// `{date}`: the default e-mail subject and page title.
    subject,
    /// `{date} {tz} {local_start} {local_end} {utc_start} {utc_end} {generated}`.
    intro,
    no_calls,

    card_calls,
    card_calls_note,
    card_participants,
    card_participants_note,
    card_connected,
    /// `{n}`: pairs.
    card_connected_note,
    card_never,
    /// `{n}`: pairs still open.
    card_never_note,
    card_minutes,
    card_minutes_note,
    card_average,
    card_average_note,
    card_relayed,
    /// `{pct}`: share of minutes.
    card_relayed_note,
    card_relay_minutes,
    card_relay_minutes_note,
    card_cost,
    card_timed_out,
    /// `{n}`: pairs timed out.
    card_timed_out_note,
    card_errors,
    /// `{n}`: reportInfo rows.
    card_errors_note,
    card_quality,
    /// `{n}`: pairs without a report.
    card_quality_note,

    h_hourly,
    h_share,
    h_quality,
    h_worst_loss,
    h_low_bitrate,
    h_clients,
    h_errors,
    h_detail,
    h_countries,
    h_relay_countries,
    col_country,
    col_relayed,
    col_servers,
    /// An address the GeoIP database does not place.
    unknown_country,

    col_connect_type,
    col_pairs,
    col_share,
    col_minutes,
    col_cost,
    p2p,
    relay,
    unknown,
    connected_total,

    col_bitrate,
    col_loss,
    audio,
    video,
    /// `{reports} {pairs} {without}`.
    quality_note,

    col_begin,
    col_app,
    col_user_remote,
    col_connect,
    col_duration,
    col_video_kbps,
    col_video_loss,
    col_user,
    col_remote,
    col_type,
    col_status,
    col_user_ip,
    col_ice_ip,
    col_os_browser,
    col_audio_kbps,
    col_audio_loss,

    col_browser,
    col_os,
    col_sessions,
    others,
    /// A browser or OS the client did not name.
    unknown_label,

    /// `{n}`: reportInfo rows.
    no_errors,
    col_code,
    col_meaning,
    col_count,
    col_description,
    other_descriptions,

    /// `{n}`: pairs.
    detail_all,
    /// `{shown} {total} {left} {command}`.
    detail_worst,
    /// `{n}`: pairs.
    detail_export,
    detail_columns_note,
    no_quality,

    status_in_progress,
    status_ok,
    status_ok_timed_out,
    status_not_connected,
    status_not_connected_timed_out,
    talk_audio,
    talk_video,

    /// `{gen} {tz}`.
    footer,
    /// `{n}`: rows of another day.
    footer_outside,

    text_summary,
    text_calls,
    text_participants,
    text_connected,
    /// `{connected} {total}`.
    text_connected_value,
    text_never,
    /// `{n} {open}`.
    text_never_value,
    text_minutes,
    /// `{minutes} {average}`.
    text_minutes_value,
    text_relayed,
    /// `{pairs} {minutes} {relay}`.
    text_relayed_value,
    text_cost,
    text_timed_out,
    /// `{sessions} {pairs}`.
    text_timed_out_value,
    text_errors,
    /// `{errors} {rows}`.
    text_errors_value,
    /// `{reports} {pairs} {without}`.
    text_quality_heading,
    /// `{audio_kbps} {audio_loss} {video_kbps} {video_loss}`.
    text_quality_line,
    /// `{kbps} {loss}`.
    text_worst_value,
    /// `{n}`: reportInfo rows.
    text_no_errors,
    text_by_description,
    /// `{shown} {total}`.
    text_detail_heading,
    /// `{shown} {total}`.
    text_detail_heading_worst,
    /// `{audio_kbps} {audio_loss} {video_kbps} {video_loss}`.
    text_detail_quality,
    /// `{n} {command}`.
    text_detail_more,

    /// `{tz}`.
    chart_hourly_title,
    /// `{tz} {hour} {n}`.
    chart_hourly_alt,
    chart_hour_axis,
    chart_calls_axis,
    chart_share_title,
    chart_bar_minutes,
    chart_bar_pairs,
    /// `{pairs} {minutes}`: percentages.
    chart_share_alt,
    /// `{title} {unit}`.
    chart_histogram_title,
    /// `{pairs} {audio_kbps} {audio_loss} {video_kbps} {video_loss}`.
    chart_quality_alt,
    audio_bitrate,
    video_bitrate,
    audio_loss,
    video_loss,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn params(s: &str) -> BTreeSet<&str> {
        s.split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(k, _)| k))
            .collect()
    }

    #[test]
    fn every_language_has_the_parameters_of_english() {
        let en = Language::En.texts().entries();
        for lang in Language::ALL {
            for ((name, a), (_, b)) in en.iter().zip(lang.texts().entries()) {
                assert_eq!(params(a), params(b), "{lang} {name}");
                assert!(!b.trim().is_empty(), "{lang} {name} is empty");
            }
        }
    }

    #[test]
    fn english_has_no_chinese_and_chinese_is_chinese() {
        for (name, s) in Language::En.texts().entries() {
            assert!(s.is_ascii() || !s.chars().any(is_cjk), "en {name}: {s}");
        }
        // Every heading of the Chinese table is in Chinese, not a bilingual pair.
        let zh = Language::ZhCn.texts();
        for s in [
            zh.h_hourly,
            zh.h_share,
            zh.h_quality,
            zh.h_detail,
            zh.card_calls,
        ] {
            assert!(s.chars().any(is_cjk) && !s.contains(" · "), "{s}");
        }
    }

    pub(crate) fn is_cjk(c: char) -> bool {
        matches!(c, '\u{2E80}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7AF}' | '\u{F900}'..='\u{FAFF}' | '\u{FF00}'..='\u{FFEF}')
    }

    #[test]
    fn codes_parse_exactly() {
        assert_eq!("en".parse(), Ok(Language::En));
        assert_eq!("zh-CN".parse(), Ok(Language::ZhCn));
        let e = "fr".parse::<Language>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown report language \"fr\": use one of \"en\", \"zh-CN\""
        );
        assert!("EN".parse::<Language>().is_err());
    }

    #[test]
    fn fill_replaces_named_parameters_only() {
        assert_eq!(fill("{a} of {b}", &[("a", "1"), ("b", "2")]), "1 of 2");
        assert_eq!(fill("{x} {a}", &[("a", "1")]), "{x} 1");
        assert_eq!(fill("{a", &[("a", "1")]), "{a");
    }
}

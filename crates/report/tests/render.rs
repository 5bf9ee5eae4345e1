//! The rendered report: the e-mail parsed back, the charts decoded, the exports read back.

mod common;

use common::*;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use rtcroom_report::{
    Chart, ConnectType, Currency, DayReport, HtmlExport, JsonExport, Language, MailOptions, Report,
    ReportConfig, SessionRow, SubSessionRow, SubStatus, build_message, email_html, email_text,
    render_charts,
};

/// A small day: alice and bob talk P2P, carol reaches dave only through TURN, erin's pair
/// never connects, and two clients report errors.
fn rows() -> Vec<(SessionRow, SubSessionRow)> {
    let alice = session("s1", "alice", "2026-11-22T08:00:00Z");
    let bob = session("s2", "bob", "2026-11-22T08:00:05Z");
    let carol = SessionRow {
        user_ip: "198.51.100.20".to_owned(),
        browser: "Firefox/120.0".to_owned(),
        os_name: "Linux x86_64".to_owned(),
        ..session("s3", "carol", "2026-11-22T14:30:00Z")
    };
    let erin = SessionRow {
        time_out: true,
        user_name: "<script>alert(1)</script>".to_owned(),
        ..session("s5", "erin", "2026-11-22T21:00:00Z")
    };
    vec![
        (
            alice.clone(),
            sub("x1", &alice, "bob", "2026-11-22T08:00:06Z"),
        ),
        (
            bob.clone(),
            sub("x2", &bob, "alice", "2026-11-22T08:00:07Z"),
        ),
        (
            carol.clone(),
            SubSessionRow {
                connect_type: ConnectType::Turn,
                duration_secs: 1234,
                cost_cents: 42,
                quality: Some(quality(31.0, 2.5, 350.0, 6.25)),
                ..sub("x3", &carol, "dave", "2026-11-22T14:30:10Z")
            },
        ),
        (
            erin.clone(),
            SubSessionRow {
                status: SubStatus::NeverConnectedTimedOut,
                ..never_connected("x5", &erin, "frank", "2026-11-22T21:00:03Z")
            },
        ),
    ]
}

fn report() -> Report {
    report_with(config())
}

fn report_with(cfg: ReportConfig) -> Report {
    report_geo(cfg, None)
}

/// The day with a country lookup: 198.51.100.x is in France, every other address unknown.
fn report_geo(cfg: ReportConfig, geo: Option<rtcroom_report::CountryLookup<'_>>) -> Report {
    let mut d = DayReport::new(cfg);
    let rows = rows();
    let mut seen = std::collections::HashSet::new();
    for (owner, s) in &rows {
        if seen.insert(owner.session_id.clone()) {
            d.add_session(owner);
        }
        d.add_sub_session(owner, s);
    }
    d.add_client_info(&info(
        9,
        "ice server invalid, please report",
        "2026-11-22T14:29:00Z",
    ));
    d.add_client_info(&info(10, "no microphone", "2026-11-22T21:00:01Z"));
    d.finish(geo)
}

fn options() -> MailOptions {
    MailOptions {
        from: "rtcroom <report@rtc.example.com>".to_owned(),
        to: vec![
            "ops@example.com".to_owned(),
            "Boss <boss@example.org>".to_owned(),
        ],
        subject: None,
    }
}

fn decode_png(bytes: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("a buffer size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    (info.width, info.height)
}

#[test]
fn the_mail_parses_back_with_its_subject_recipients_table_and_png_charts() {
    let r = report();
    let charts = render_charts(&r).expect("charts");
    let ids: Vec<&str> = charts.iter().map(|c| c.id).collect();
    assert_eq!(ids, ["hourly", "share", "quality"]);
    let raw = build_message(&r, &charts, &options())
        .expect("message")
        .formatted();
    let m = MessageParser::default()
        .parse(&raw)
        .expect("a parseable message");

    assert_eq!(m.subject(), Some("Daily call report 2026-11-22"));
    let to: Vec<&str> = m
        .to()
        .expect("To")
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(to, ["ops@example.com", "boss@example.org"]);
    assert_eq!(
        m.from().and_then(|f| f.first()).and_then(|a| a.address()),
        Some("report@rtc.example.com")
    );
    assert_eq!(
        m.message_id(),
        Some("daily-report-2026-11-22-1795392300@rtc.example.com")
    );

    // multipart/alternative: text/plain, then multipart/related with the HTML and the images.
    let ct = |p: &mail_parser::MessagePart<'_>| {
        p.content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
            .unwrap_or_default()
    };
    let root = &m.parts[0];
    assert_eq!(ct(root), "multipart/alternative");
    let top: Vec<String> = root
        .sub_parts()
        .expect("parts")
        .iter()
        .map(|&i| ct(&m.parts[i as usize]))
        .collect();
    assert_eq!(top, ["text/plain", "multipart/related"]);
    let related = &m.parts[root.sub_parts().expect("parts")[1] as usize];
    let inner: Vec<&mail_parser::MessagePart<'_>> = related
        .sub_parts()
        .expect("parts")
        .iter()
        .map(|&i| &m.parts[i as usize])
        .collect();
    assert_eq!(ct(inner[0]), "text/html");

    let html = m.body_html(0).expect("an HTML body");
    // The TURN call's row, escaped and formatted.
    assert!(
        html.contains(
            "<td>14:30:10</td><td>app1</td><td>carol<br><font color=#888>name-carol</font></td>\
             <td>dave<br><font color=#888>name-dave</font></td><td>video</td>\
             <td><font color=\"#15803d\">ok</font></td><td>TURN</td><td>198.51.100.20</td><td>192.0.2.1</td>\
             <td align=right>00:20:34</td><td>Linux x86_64:Firefox/120.0</td>\
             <td align=right nowrap>31<br><font color=#888>25\u{2013}37</font></td>\
             <td align=right nowrap>2.50<br><font color=#888>0.00\u{2013}7.50</font></td>\
             <td align=right nowrap>350<br><font color=#888>175\u{2013}525</font></td>\
             <td align=right nowrap>6.25<br><font color=#888>0.00\u{2013}18.75</font></td></tr>"
        ),
        "{html}"
    );
    assert!(html.contains("erin<br><font color=#888>&lt;script&gt;alert(1)&lt;/script&gt;</font>"));
    assert!(!html.contains("<script>"));
    assert!(html.contains("no quality report"));

    let images: Vec<_> = inner[1..].iter().collect();
    assert_eq!(images.len(), 3);
    for (part, chart) in images.iter().zip(&charts) {
        assert_eq!(ct(part), "image/png");
        let cid = part.content_id().expect("a Content-ID");
        assert_eq!(cid, chart.content_id());
        assert!(
            html.contains(&format!("src=\"cid:{cid}\"")),
            "{cid} is referenced"
        );
        let (PartType::InlineBinary(bytes) | PartType::Binary(bytes)) = &part.body else {
            panic!("{cid}: not binary");
        };
        assert_eq!(bytes.as_ref(), chart.png.as_slice());
        assert_eq!(decode_png(bytes), (900, chart.height));
    }

    let text = m.body_text(0).expect("a text body");
    assert!(text.contains("Calls (sessions)   4"), "{text}");
    assert!(text.contains("Relay (TURN)"));
}

#[test]
fn a_subject_and_sender_can_be_given_and_bad_addresses_are_errors() {
    let r = report();
    let mut o = options();
    o.subject = Some("Daily calls".to_owned());
    let raw = build_message(&r, &[], &o).expect("message").formatted();
    let m = MessageParser::default().parse(&raw).expect("parse");
    assert_eq!(m.subject(), Some("Daily calls 2026-11-22"));
    o.subject = Some("Calls of {date} (prod)".to_owned());
    assert_eq!(
        rtcroom_report::subject_for(&r, &o),
        "Calls of 2026-11-22 (prod)"
    );
    o.subject = Some("  ".to_owned());
    assert_eq!(
        rtcroom_report::subject_for(&r, &o),
        "Daily call report 2026-11-22"
    );

    o.to = vec![];
    assert!(matches!(
        build_message(&r, &[], &o),
        Err(rtcroom_report::ReportError::NoRecipients)
    ));
    o.to = vec!["not an address".to_owned()];
    assert!(matches!(
        build_message(&r, &[], &o),
        Err(rtcroom_report::ReportError::Address { .. })
    ));
}

#[test]
fn a_day_without_calls_renders_and_says_so() {
    let r = day().finish(None);
    let charts = render_charts(&r).expect("charts");
    assert!(charts.is_empty());
    let raw = build_message(&r, &charts, &options())
        .expect("message")
        .formatted();
    let m = MessageParser::default().parse(&raw).expect("parse");
    let html = m.body_html(0).expect("html");
    assert!(html.contains("No calls on this day"));
    assert!(!html.contains("cid:"));
    assert!(
        m.body_text(0)
            .expect("text")
            .contains("No calls on this day")
    );
    assert_eq!(m.attachment_count(), 0);
}

#[test]
fn the_email_says_how_many_rows_it_left_out() {
    let mut d = rtcroom_report::DayReport::new(rtcroom_report::ReportConfig {
        max_detail_rows: 2,
        ..config()
    });
    for (owner, s) in rows() {
        d.add_sub_session(&owner, &s);
    }
    let r = d.finish(None);
    let html = email_html(&r, &[], "s");
    assert!(html.contains("The 2 worst of 4 pairs"), "{html}");
    assert!(html.contains("2 are left out of this e-mail"));
    assert!(html.contains("rtcroom report --date 2026-11-22 --out report.html"));
    let text = email_text(&r, "s");
    assert!(text.contains("Calls in detail (2 of 4 pairs, the worst ones)"));
}

#[test]
fn the_html_export_streams_every_row_with_the_charts_inlined() {
    let r = report();
    let charts = render_charts(&r).expect("charts");
    let mut e = HtmlExport::begin(
        Vec::new(),
        &r,
        &charts,
        "Daily call report 2026-11-22",
        None,
    )
    .expect("begin");
    let mut all = rows();
    let stray = session("s9", "zed", "2026-11-21T10:00:00Z");
    all.push((
        stray.clone(),
        sub("old", &stray, "x", "2026-11-21T10:00:00Z"),
    ));
    for (owner, s) in &all {
        e.row(owner, s).expect("row");
    }
    let (out, written) = e.finish().expect("finish");
    assert_eq!(written, 4);
    let html = String::from_utf8(out).expect("utf-8");
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 3);
    assert!(!html.contains("cid:"));
    for id in [
        "<td align=right>1</td><td>08:00:06</td>",
        "<td align=right>4</td><td>21:00:03</td>",
    ] {
        assert!(html.contains(id), "{id}");
    }
    assert!(!html.contains("<td align=right>5</td>"));
    assert!(html.contains("<title>Daily call report 2026-11-22</title>"));
    assert!(html.trim_end().ends_with("</html>"));
}

#[test]
fn the_json_export_has_the_report_and_every_row() {
    let r = report();
    let mut e = JsonExport::begin(Vec::new(), &r, None).expect("begin");
    for (owner, s) in &rows() {
        e.row(owner, s).expect("row");
    }
    let (out, written) = e.finish().expect("finish");
    assert_eq!(written, 4);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    assert_eq!(v["report"]["date"], "2026-11-22");
    assert_eq!(v["report"]["timezone"], "UTC");
    assert_eq!(v["report"]["totals"]["sessions"], 4);
    assert_eq!(v["report"]["connect_types"]["relay"]["cost_cents"], 42);
    assert_eq!(v["report"]["hourly"][8]["sessions"], 2);
    assert_eq!(v["rows_written"], 4);
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[2]["connect_type"], "TURN");
    assert_eq!(rows[2]["quality"]["video_loss"]["avg"], 6.25);
    assert_eq!(rows[3]["status"], "never_connected_timed_out");
    assert_eq!(rows[3]["connect_type"], "");
    assert_eq!(rows[3]["quality"], serde_json::Value::Null);
    assert!(v["report"].get("detail").is_none());
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{2E80}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7AF}' | '\u{F900}'..='\u{FAFF}' | '\u{FF00}'..='\u{FFEF}')
}

/// The subject, text and HTML of the report's e-mail.
fn mail_of(r: &Report) -> (String, String, String) {
    let charts = render_charts(r).expect("charts");
    let raw = build_message(r, &charts, &options())
        .expect("message")
        .formatted();
    let m = MessageParser::default().parse(&raw).expect("parse");
    (
        m.subject().expect("a subject").to_owned(),
        m.body_text(0).expect("text").into_owned(),
        m.body_html(0).expect("html").into_owned(),
    )
}

#[test]
fn the_report_is_english_by_default_with_no_chinese_anywhere() {
    let r = report();
    assert_eq!(r.language, Language::En);
    let (subject, text, html) = mail_of(&r);
    for (part, s) in [("subject", &subject), ("text", &text), ("html", &html)] {
        let cjk: String = s.chars().filter(|&c| is_cjk(c)).collect();
        assert!(cjk.is_empty(), "{part} has {cjk:?}");
    }
    assert!(html.contains("<html lang=\"en\">"));
    for heading in [
        "Calls per hour",
        "P2P and relay",
        "Client errors (reportInfo)",
    ] {
        assert!(html.contains(heading), "{heading}");
    }
    assert!(
        html.contains("ICE server invalid"),
        "result meanings in English"
    );
}

#[test]
fn the_chinese_report_has_chinese_labels_only() {
    let r = report_with(ReportConfig {
        language: Language::ZhCn,
        ..config()
    });
    let (subject, text, html) = mail_of(&r);
    assert_eq!(subject, "音视频通话统计日报 2026-11-22");
    assert!(html.contains("<html lang=\"zh-CN\">"));
    for heading in [
        "每小时通话",
        "直连与中继",
        "通话质量（接收端）",
        "浏览器与操作系统",
        "客户端错误（reportInfo）",
        "通话明细",
        "ICE 服务器无效",
        "没有麦克风",
    ] {
        assert!(html.contains(heading), "html: {heading}");
    }
    for line in [
        "概要",
        "通话（会话）",
        "中继（TURN）",
        "通话明细（4 个通话对中的 4 个）",
    ] {
        assert!(text.contains(line), "text: {line}\n{text}");
    }
    // No English labels and no bilingual "中文 · English" pairs left.
    for english in [
        "Calls per hour",
        "P2P and relay",
        "Calls in detail",
        "No calls",
        " · ",
        "Participants",
        "no quality report",
    ] {
        assert!(!html.contains(english), "html has {english:?}");
        assert!(!text.contains(english), "text has {english:?}");
    }
}

#[test]
fn amounts_show_the_currency_symbol_and_two_decimals() {
    // carol's relayed pair cost 42 hundredths.
    let (_, text, html) = mail_of(&report());
    assert!(
        html.contains("¥0.42") && html.contains("CNY"),
        "the default is CNY"
    );
    assert!(text.contains("Cost               ¥0.42 (CNY)"), "{text}");
    for (code, symbol, shown) in [
        ("USD", "", "$0.42"),
        ("EUR", "", "€0.42"),
        ("CHF", "", "CHF 0.42"),
        ("USD", "US$", "US$0.42"),
    ] {
        let r = report_with(ReportConfig {
            currency: Currency::new(code, symbol).expect("a currency"),
            ..config()
        });
        let (_, text, html) = mail_of(&r);
        assert!(
            html.contains(shown),
            "{code} {symbol:?}: html lacks {shown}"
        );
        assert!(
            text.contains(shown),
            "{code} {symbol:?}: text lacks {shown}"
        );
        assert!(!html.contains('¥') && !text.contains('¥'));
    }
    let v = serde_json::to_value(report()).expect("json");
    assert_eq!(
        v["currency"],
        serde_json::json!({"code": "CNY", "symbol": "¥"})
    );
    assert_eq!(v["language"], "en");
}

/// The ink of a chart's title: the columns of the first text line from the top that hold a
/// dark pixel, as (first, last).
fn title_ink(c: &Chart) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(&c.png));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("a buffer size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let dark = |x: u32, y: u32| {
        let i = ((y * info.width + x) * 3) as usize;
        buf[i..i + 3].iter().all(|&v| v < 160)
    };
    let row_has_ink = |y: u32| (0..info.width).any(|x| dark(x, y));
    let top = (0..info.height).find(|&y| row_has_ink(y)).expect("ink");
    let bottom = (top..info.height)
        .find(|&y| !row_has_ink(y))
        .expect("a gap under the title");
    let cols: Vec<u32> = (0..info.width)
        .filter(|&x| (top..bottom).any(|y| dark(x, y)))
        .collect();
    (cols[0], cols[cols.len() - 1])
}

/// Where a title drawn in `font` at `size` pixels puts ink, from the pen's start, laid out
/// the way plotters' ab_glyph backend lays out text (advances, kerning, no hinting).
fn expected_ink(font: &[u8], size: f32, text: &str) -> (i32, i32) {
    use ab_glyph::{Font, FontRef, ScaleFont};
    let font = FontRef::try_from_slice(font).expect("a font");
    let font = font.as_scaled(size);
    let (mut x, mut prev, mut lo, mut hi) = (0f32, None, i32::MAX, i32::MIN);
    for c in text.chars() {
        let id = font.glyph_id(c);
        assert_ne!(id.0, 0, "{c:?} is in the font");
        if let Some(p) = prev {
            x += font.kern(p, id);
        }
        prev = Some(id);
        if let Some(o) = font.outline_glyph(font.scaled_glyph(c)) {
            let b = o.px_bounds();
            lo = lo.min(x as i32 + b.min.x as i32);
            hi = hi.max(x as i32 + b.max.x as i32);
        }
        x += font.h_advance(id);
    }
    (lo, hi)
}

/// The charts draw their text with the fonts embedded in the crate, on a machine with or
/// without fonts of its own: the title's ink is as wide as the title set in the embedded
/// font, in English and in Chinese. (Boxes for missing glyphs, or a fallback font, would
/// give another width; no text at all, no ink.)
#[test]
fn chart_titles_are_drawn_with_the_embedded_fonts() {
    let cases: [(Language, &[u8], &str, &str); 4] = [
        (
            Language::En,
            include_bytes!("../assets/DejaVuSans-subset.ttf"),
            "hourly",
            "Calls started per hour (UTC)",
        ),
        (
            Language::En,
            include_bytes!("../assets/DejaVuSans-subset.ttf"),
            "share",
            "P2P and relayed calls",
        ),
        (
            Language::ZhCn,
            include_bytes!("../assets/NotoSansCJKsc-report.otf"),
            "hourly",
            "每小时开始的通话（UTC）",
        ),
        (
            Language::ZhCn,
            include_bytes!("../assets/NotoSansCJKsc-report.otf"),
            "share",
            "直连与中继通话",
        ),
    ];
    for (language, font, id, title) in cases {
        let r = report_with(ReportConfig {
            language,
            ..config()
        });
        let charts = render_charts(&r).expect("charts");
        let chart = charts.iter().find(|c| c.id == id).expect("the chart");
        let (first, last) = title_ink(chart);
        let (lo, hi) = expected_ink(font, 18.0, title);
        let (seen, expected) = ((last - first + 1) as i32, hi - lo);
        assert!(
            (seen - expected).abs() <= 3,
            "{language} {id}: the title's ink is {seen} px wide, {title:?} in the embedded font {expected} px"
        );
        // Centred on the chart, as plotters centres captions.
        let middle = (first + last) as i32 / 2;
        assert!(
            (middle - 450).abs() <= 12,
            "{language} {id}: centred at {middle}"
        );
    }
}

#[test]
fn countries_are_rendered_only_with_a_lookup_in_the_reports_language() {
    let geo = |ip: std::net::IpAddr| {
        ip.to_string()
            .starts_with("198.51.100.")
            .then(|| "FR".to_owned())
    };
    let (_, text, html) = mail_of(&report_geo(config(), Some(&geo)));
    assert!(html.contains("Calls by country") && html.contains("TURN servers by country"));
    // carol (France) relayed her one connected pair: 100 %; alice and bob are unknown.
    let fr = html
        .split("<tr")
        .find(|r| r.contains("<td>FR</td>"))
        .unwrap_or_else(|| panic!("a row for FR in {html}"));
    assert!(fr.contains("100.0%") && fr.contains("6.25"), "{fr}");
    assert!(html.contains("(unknown)"));
    assert!(
        text.contains("Calls by country") && text.contains("FR "),
        "{text}"
    );
    assert!(!text.chars().any(is_cjk) && !html.chars().any(is_cjk));

    let zh = ReportConfig {
        language: Language::ZhCn,
        ..config()
    };
    let (_, text, html) = mail_of(&report_geo(zh, Some(&geo)));
    assert!(html.contains("按国家的通话") && text.contains("按国家的 TURN 服务器"));
    assert!(!html.contains("Calls by country") && !text.contains("(unknown)"));

    let (_, text, html) = mail_of(&report());
    assert!(!html.contains("Calls by country") && !text.contains("Calls by country"));
}

//! The daily report end to end: a real call through the real binary, then `rtcroom report
//! --send` into a real SMTP sink; the web view; and the schedule inside `rtcroom serve`
//! sending a missed day once, not again after a restart.

mod common;

use common::{Server, SmtpSink, connect_and_report, http, join, wait_until};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde_json::json;
use std::time::{Duration, Instant};

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    (info.width, info.height)
}

#[tokio::test]
async fn a_real_call_is_in_the_mailed_report() {
    let sink = SmtpSink::start();
    let env = [
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_ADMIN_TOKEN", "adm"),
        ("RTCROOM_REPORT_ENABLED", "false"),
    ];
    let server = Server::start(&env);
    let (mut a, mut b) = (server.client().await, server.client().await);
    a.send(join("daily", "alice", "Alice")).await;
    a.expect("respJoin").await;
    b.send(join("daily", "bob", "Bob")).await;
    b.expect("respJoin").await;
    a.expect("notifyNewPeer").await;
    connect_and_report(
        &mut a,
        &mut b,
        ("alice", "bob"),
        "TURN",
        (json!("0.5"), json!("1.0")),
    )
    .await;
    b.send(json!({"cmd":"leave"})).await;
    b.expect("respLeave").await;
    a.close().await;
    let base = format!("http://{}", server.addr);
    wait_until("the records", || async {
        let (_, body) = http(
            "GET",
            &format!("{base}/api/records/member/10000/bob"),
            Some("adm"),
            None,
        )
        .await;
        body.contains("\"finish_time\":\"")
    })
    .await;

    // By hand, as an operator would: the same data directory and database; in Chinese, with
    // amounts in euros.
    let today = chrono::Utc::now().date_naive();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rtcroom"))
        .args(["report", "--send", "--date", &today.to_string()])
        .env("RTCROOM_SERVER_DATA_DIR", &server.data_dir)
        .env("RTCROOM_REPORT_LANGUAGE", "zh-CN")
        .env("RTCROOM_REPORT_CURRENCY", "EUR")
        .env("RTCROOM_SMTP_URL", sink.url())
        .env("RTCROOM_SMTP_FROM", "rtcroom <report@example.com>")
        .env(
            "RTCROOM_REPORT_RECIPIENTS",
            r#"["ops@example.com", "Boss <boss@example.org>"]"#,
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mails = sink.messages();
    assert_eq!(mails.len(), 1);
    let m = MessageParser::default()
        .parse(mails[0].as_bytes())
        .expect("a parseable mail");
    assert_eq!(
        m.subject(),
        Some(format!("音视频通话统计日报 {today}").as_str())
    );
    let to: Vec<&str> = m.to().unwrap().iter().filter_map(|a| a.address()).collect();
    assert_eq!(to, ["ops@example.com", "boss@example.org"]);
    let html = m.body_html(0).expect("an HTML part");
    assert!(html.contains("<html lang=\"zh-CN\">") && html.contains("通话明细"));
    // Two relayed pairs of a minute or less: a few cents, shown in euros.
    assert!(html.contains("€0.0") && html.contains("EUR"), "{html}");
    let row = html
        .split("<tr")
        .find(|r| r.contains("<td>alice") && r.contains("<td>bob"))
        .unwrap_or_else(|| panic!("no row of the call in {html}"));
    assert!(row.contains("<td>TURN</td>"), "{row}");
    assert!(row.contains("<td>10000</td>"), "{row}");
    let mut images = 0;
    for part in &m.parts {
        if part.content_type().is_some_and(|c| c.ctype() == "image") {
            let (PartType::InlineBinary(bytes) | PartType::Binary(bytes)) = &part.body else {
                panic!("an image part that is not binary");
            };
            let (w, h) = png_size(bytes);
            assert!(w > 100 && h > 50, "{w}x{h}");
            let cid = part.content_id().expect("a Content-ID");
            assert!(
                html.contains(&format!("cid:{cid}")),
                "{cid} is shown in the HTML"
            );
            images += 1;
        }
    }
    assert!(images >= 2, "charts are attached inline ({images})");

    // The operators' web view of the same day.
    let (status, page) = http(
        "GET",
        &format!("{base}/admin/reports/{today}?token=adm"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("alice") && page.contains("data:image/png;base64,"),
        "a standalone page"
    );
    let (status, _) = http(
        "GET",
        &format!("{base}/admin/reports/{today}?token=wrong"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_schedule_sends_a_missed_day_once_across_restarts() {
    let sink = SmtpSink::start();
    let recipients = r#"["ops@example.com"]"#;
    let url = sink.url();
    let env = [
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_SMTP_URL", url.as_str()),
        ("RTCROOM_REPORT_RECIPIENTS", recipients),
        // 00:00 UTC has always passed today: yesterday's report is due at start.
        ("RTCROOM_REPORT_TIME", "00:00"),
    ];
    let first = Server::start(&env);
    wait_until("the report mail", || async { sink.messages().len() == 1 }).await;
    let yesterday = chrono::Utc::now().date_naive() - chrono::Duration::days(1);
    let m = sink.messages();
    let mail = MessageParser::default().parse(m[0].as_bytes()).unwrap();
    // English unless configured otherwise.
    assert_eq!(
        mail.subject(),
        Some(format!("Daily call report {yesterday}").as_str())
    );
    let html = mail.body_html(0).expect("an HTML part");
    assert!(
        html.contains("<html lang=\"en\">") && html.contains("No calls on this day."),
        "{html}"
    );
    let (_, metrics) = http("GET", &format!("http://{}/metrics", first.addr), None, None).await;
    assert!(metrics.contains("rtcroom_report_runs_total 1"), "{metrics}");
    // The same data directory after a restart: the day was sent, it is not sent again.
    let data_dir = first.data_dir.clone();
    let mut first = first;
    assert!(first.terminate().success());
    std::mem::forget(first);
    let dir = data_dir.to_str().unwrap();
    let mut env2 = env.to_vec();
    env2.push(("RTCROOM_SERVER_DATA_DIR", dir));
    let second = Server::start(&env2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.messages().len(), 1, "a day's report is sent once");
    drop(second);
    let _ = std::fs::remove_dir_all(data_dir);
}

/// An unknown report language or a currency that is not an ISO code is refused by the
/// configuration's validation, so by `check-config` and by `serve` alike, with what to write.
#[test]
fn an_unknown_language_or_currency_is_refused_with_the_allowed_values() {
    let run = |command: &str, key: &str, value: &str| {
        let dir = std::env::temp_dir().join(format!(
            "rtcroom-report-lang-{}-{command}-{value}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rtcroom"))
            .arg(command)
            .current_dir(&dir)
            .env("RTCROOM_SERVER_LISTEN", "127.0.0.1:0")
            .env("RTCROOM_TURN_ENABLED", "false")
            .env("RTCROOM_ICE_MODE", "static")
            .env("RTCROOM_DATABASE_URL", "off")
            .env(key, value)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().expect("a status").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{command} accepted {key}={value} and kept running");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().expect("its output");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!out.status.success(), "{command} accepted {key}={value}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for command in ["check-config", "serve"] {
        let err = run(command, "RTCROOM_REPORT_LANGUAGE", "fr");
        assert!(
            err.contains("[report] language") && err.contains("\"en\", \"zh-CN\""),
            "{command}: {err}"
        );
        let err = run(command, "RTCROOM_REPORT_CURRENCY", "rmb");
        assert!(
            err.contains("[report] currency \"rmb\"") && err.contains("ISO 4217"),
            "{command}: {err}"
        );
    }
}

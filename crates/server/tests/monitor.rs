//! `rtcroom monitor` against a real process it watches and a real SMTP sink.

mod common;

use common::SmtpSink;
use std::process::Command;

#[test]
fn a_dead_process_is_restarted_and_alerted_once_then_its_recovery() {
    let sink = SmtpSink::start();
    let dir = std::env::temp_dir().join(format!("rtcroom-monitor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("worker.pid");
    let restarts = dir.join("restarts.log");
    let mut worker = Command::new("sleep").arg("600").spawn().unwrap();
    std::fs::write(&pidfile, worker.id().to_string()).unwrap();
    let restart = format!(
        "echo restarted >> {log}; nohup sleep 600 >/dev/null 2>&1 & echo $! > {pid}",
        log = restarts.display(),
        pid = pidfile.display()
    );
    let config = dir.join("monitor.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[smtp]
url = "{url}"
from = "rtcroom monitor <monitor@example.com>"
attempts = 2
[alerts]
recipients = ["ops@example.com"]
[monitor]
interval_secs = 1
failures_before_down = 1
[[monitor.targets]]
name = "worker"
pidfile = "{pid}"
restart = '{restart}'
"#,
            url = sink.url(),
            pid = pidfile.display()
        ),
    )
    .unwrap();
    let mut monitor = Command::new(env!("CARGO_BIN_EXE_rtcroom"))
        .args(["monitor", "--rounds", "6", "--config"])
        .arg(&config)
        .env("RTCROOM_LOG_LEVEL", "warn")
        .spawn()
        .unwrap();
    // Let it see the worker alive, then kill the worker. (Whenever the kill lands, the
    // monitor must see one outage: the assertions do not depend on the timing.)
    std::thread::sleep(std::time::Duration::from_millis(1500));
    worker.kill().unwrap();
    worker.wait().unwrap();
    let status = monitor.wait().unwrap();
    assert!(status.success(), "{status:?}");

    let restarted = std::fs::read_to_string(&restarts).unwrap_or_default();
    assert_eq!(restarted.lines().count(), 1, "one restart: {restarted:?}");
    let mails = sink.texts();
    assert_eq!(mails.len(), 2, "one alert and one recovery: {mails:#?}");
    assert!(
        mails[0].contains("Subject: [rtcroom] DOWN: worker on"),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("To: ops@example.com"));
    assert!(mails[0].contains("is not running"), "{}", mails[0]);
    assert!(
        mails[1].contains("Subject: [rtcroom] UP: worker on"),
        "{}",
        mails[1]
    );
    // The restarted worker is ours to stop.
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let _ = Command::new("kill").arg(pid.trim()).status();
    std::fs::remove_dir_all(dir).unwrap();
}

//! ICE servers end to end: a real coturn with a real `rtcroom ice-agent` beside it registers
//! with the real room server, reports, is chosen for a pair (and the credentials minted for
//! that pair work on that coturn), leaves rotation with one alert mail when its agent dies,
//! and comes back when the agent restarts.

mod common;

use common::{Proc, Server, SmtpSink, free_udp_port, pair, tool, wait_ready};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "coturn-static-secret";

fn coturn(port: u16) -> Proc {
    // A relay port range of its own, away from the embedded servers' default range.
    let base = 40_000 + (std::process::id() % 400) as u16 * 20;
    let child = tool("turnserver")
        .args(["-n", "--listening-ip=127.0.0.2", "--relay-ip=127.0.0.2"])
        .arg(format!("--listening-port={port}"))
        .args([
            "--use-auth-secret",
            &format!("--static-auth-secret={SECRET}"),
            "--realm=test",
        ])
        .args([
            "--no-tls",
            "--no-dtls",
            "--allow-loopback-peers",
            "--no-cli",
        ])
        .arg(format!("--min-port={base}"))
        .arg(format!("--max-port={}", base + 19))
        .args(["--log-file=stdout", "--simple-log"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

/// The agent reports the loopback interface's real traffic, which on a shared machine can be
/// anything: the capacity it registers is far above what loopback carries.
fn agent(server: &Server, turn_port: u16) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_rtcroom"))
        .args([
            "ice-agent",
            "--room-server",
            &format!("http://{}", server.addr),
        ])
        .args(["--ip", "127.0.0.2", "--iface", "lo", "--interval", "1"])
        .args([
            "--turn-port",
            &turn_port.to_string(),
            "--max-bandwidth",
            "100000000",
        ])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    Proc(child)
}

async fn wait_mails(sink: &SmtpSink, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mails = sink.texts();
        if mails.len() >= n || Instant::now() > deadline {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_coturn_agent_registers_is_chosen_leaves_and_returns() {
    let sink = SmtpSink::start();
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_TURN_ENABLED", "false"),
        ("RTCROOM_ICE_TURN_SECRET", SECRET),
        ("RTCROOM_ICE_REPORT_TIMEOUT_SECS", "3"),
        ("RTCROOM_SMTP_URL", &sink.url()),
        ("RTCROOM_SMTP_FROM", "rtcroom <rtcroom@example.com>"),
        ("RTCROOM_ALERTS_RECIPIENTS", "[\"ops@example.com\"]"),
    ]);
    // No ICE server yet: not ready, and a pair cannot be served.
    wait_ready(&server, 503, "").await;
    assert_eq!(pair(&server, "before").await, Err(8));

    let turn_port = free_udp_port();
    let _coturn = coturn(turn_port);
    let mut agent1 = agent(&server, turn_port);
    wait_ready(&server, 200, "").await;

    // The pair gets the coturn, with credentials minted for each member.
    let cfg = pair(&server, "with-coturn")
        .await
        .expect("the pair is served");
    let turn = cfg["iceServers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["urls"][0].as_str().unwrap().starts_with("turn:"))
        .expect("a TURN entry")
        .clone();
    assert_eq!(
        turn["urls"][0],
        format!("turn:127.0.0.2:{turn_port}?transport=udp")
    );
    let user = turn["username"].as_str().unwrap();
    assert!(user.ends_with(":alice"), "{user}");
    // Those credentials work on that coturn: its own client relays through it.
    let peer_port = free_udp_port();
    let _peer = Proc(
        tool("turnutils_peer")
            .args(["-L", "127.0.0.1", "-p", &peer_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let out = tool("turnutils_uclient")
        .args(["-c", "-X", "-m", "1", "-n", "20", "-l", "200", "-z", "5"])
        .args([
            "-e",
            "127.0.0.1",
            "-r",
            &peer_port.to_string(),
            "-p",
            &turn_port.to_string(),
        ])
        .args([
            "-u",
            user,
            "-w",
            turn["credential"].as_str().unwrap(),
            "127.0.0.2",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "uclient failed: {text}");
    assert!(text.contains("Total lost packets 0"), "{text}");

    // The agent dies without deregistering: the server leaves rotation, one alert.
    let _ = agent1.0.kill();
    let _ = agent1.0.wait();
    wait_ready(&server, 503, "").await;
    assert_eq!(pair(&server, "after-death").await, Err(8));
    let mails = wait_mails(&sink, 1).await;
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(
        mails[0].contains("Subject: [rtcroom] ICE server 127.0.0.2 left rotation"),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("To: ops@example.com"));

    // The agent comes back: so does the server, with a recovery mail.
    let _agent2 = agent(&server, turn_port);
    wait_ready(&server, 200, "").await;
    assert!(pair(&server, "back").await.is_ok());
    let mails = wait_mails(&sink, 2).await;
    assert_eq!(mails.len(), 2, "{mails:#?}");
    assert!(mails[1].contains("back in rotation"), "{}", mails[1]);
}

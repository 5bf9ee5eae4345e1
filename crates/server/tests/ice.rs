//! ICE servers end to end: a real coturn with a real `rtcroom ice-agent` beside it registers
//! with the real room server, reports, is chosen for a pair (and the credentials minted for
//! that pair work on that coturn), leaves rotation with one alert mail when its agent dies,
//! and comes back when the agent restarts. A coturn serving TCP and TLS is registered with
//! exactly those URLs (`--turns-port`, `--turns-host`, `--turn-tcp-port`), and coturn's own
//! client relays over each with the credentials the pair got.

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

/// A coturn on 127.0.0.2 serving UDP and TCP on `port` and TLS on `tls_port`, with a
/// certificate for localhost made in `dir`.
fn coturn_tls(port: u16, tls_port: u16, dir: &std::path::Path) -> Proc {
    let (cert, key) = (dir.join("coturn.crt"), dir.join("coturn.key"));
    common::self_signed_cert(&cert, &key, "localhost");
    // Relay ports away from those of `coturn` (the tests of this file run at once).
    let base = 38_000 + (std::process::id() % 200) as u16 * 10;
    let child = tool("turnserver")
        .args(["-n", "--listening-ip=127.0.0.2", "--relay-ip=127.0.0.2"])
        .arg(format!("--listening-port={port}"))
        .arg(format!("--tls-listening-port={tls_port}"))
        .arg(format!("--cert={}", cert.display()))
        .arg(format!("--pkey={}", key.display()))
        .args([
            "--use-auth-secret",
            &format!("--static-auth-secret={SECRET}"),
            "--realm=test",
        ])
        .args(["--no-dtls", "--allow-loopback-peers", "--no-cli"])
        .arg(format!("--min-port={base}"))
        .arg(format!("--max-port={}", base + 9))
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
    agent_with(server, turn_port, &[])
}

fn agent_with(server: &Server, turn_port: u16, extra: &[&str]) -> Proc {
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
        .args(extra)
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
        mails[0].contains(&format!(
            "Subject: [rtcroom] ICE server 127.0.0.2:{turn_port} left rotation"
        )),
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

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The TURN entry of a pair's `rtcConfig`: its URLs, username and credential.
fn turn_entry(cfg: &serde_json::Value) -> (Vec<String>, String, String) {
    let turn = cfg["iceServers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["urls"][0].as_str().unwrap().starts_with("turn:"))
        .expect("a TURN entry");
    let urls = turn["urls"].as_array().unwrap();
    (
        urls.iter()
            .map(|u| u.as_str().unwrap().to_owned())
            .collect(),
        turn["username"].as_str().unwrap().to_owned(),
        turn["credential"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_coturn_agent_registers_the_tcp_and_tls_urls_its_coturn_serves() {
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_TURN_ENABLED", "false"),
        ("RTCROOM_ICE_TURN_SECRET", SECRET),
    ]);
    let dir = std::env::temp_dir().join(format!("rtcroom-ice-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (turn_port, tls_port) = (free_udp_port(), free_tcp_port());
    let _coturn = coturn_tls(turn_port, tls_port, &dir);
    let tls = tls_port.to_string();
    let mut agent1 = agent_with(
        &server,
        turn_port,
        &["--turns-port", &tls, "--turns-host", "localhost"],
    );
    wait_ready(&server, 200, "").await;
    let (urls, user, credential) = turn_entry(&pair(&server, "with-tls").await.expect("served"));
    assert_eq!(
        urls,
        [
            format!("turn:127.0.0.2:{turn_port}?transport=udp"),
            format!("turn:127.0.0.2:{turn_port}?transport=tcp"),
            format!("turns:localhost:{tls_port}?transport=tcp"),
        ]
    );

    // coturn's own client relays over TCP and over TLS with the pair's credentials.
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
    for (transport, port) in [(&["-t"][..], turn_port), (&["-t", "-S"][..], tls_port)] {
        let out = tool("turnutils_uclient")
            .args(transport)
            .args(["-c", "-X", "-m", "1", "-n", "20", "-l", "200", "-z", "5"])
            .args(["-e", "127.0.0.1", "-r", &peer_port.to_string()])
            .args(["-p", &port.to_string(), "-u", &user, "-w", &credential])
            .arg("127.0.0.2")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "uclient {transport:?} failed: {text}");
        assert!(
            text.contains("Total lost packets 0"),
            "{transport:?}: {text}"
        );
    }

    // Registered again as run with --no-tcp and without TLS: only the UDP URL is handed out.
    let _ = agent1.0.kill();
    let _ = agent1.0.wait();
    let _agent2 = agent_with(&server, turn_port, &["--turn-tcp-port", "0"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    for round in 0.. {
        let room = format!("udp-only-{round}");
        let (urls, _, _) = turn_entry(&pair(&server, &room).await.expect("served"));
        if urls == [format!("turn:127.0.0.2:{turn_port}?transport=udp")] {
            break;
        }
        assert!(Instant::now() < deadline, "still handed out: {urls:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

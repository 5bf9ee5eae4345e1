//! The embedded TURN server over TCP and TLS in the real binary (`[turn] tcp`, `tls_listen`,
//! `tls_cert`/`tls_key`): a pair's `rtcConfig` names exactly the transports that are served,
//! and coturn's own client relays through each URL handed out with the credentials minted
//! for the pair (`turnutils_uclient -t`, `-t -S`, against a `turnutils_peer` echo), with no
//! loss; `/metrics` counts the connections. The TLS listener's certificate is replaced
//! without a restart when its files change. A TLS listener without a certificate is refused
//! by `check-config` with a message that says what to set.

mod common;

use common::{
    Proc, Scratch, Server, connector, der, free_udp_port, pair, self_signed_cert, served_cert, tool,
};
use serde_json::Value;
use std::process::Stdio;

/// The TURN entry of an `rtcConfig`: its URLs, username and credential.
fn turn_entry(cfg: &Value) -> (Vec<String>, String, String) {
    let turn = cfg["iceServers"]
        .as_array()
        .expect("iceServers")
        .iter()
        .find(|s| {
            s["urls"][0]
                .as_str()
                .is_some_and(|u| u.starts_with("turn:"))
        })
        .expect("a TURN entry");
    let urls = turn["urls"]
        .as_array()
        .expect("urls")
        .iter()
        .map(|u| u.as_str().expect("a URL").to_owned())
        .collect();
    (
        urls,
        turn["username"].as_str().expect("username").to_owned(),
        turn["credential"].as_str().expect("credential").to_owned(),
    )
}

/// The port of a `turn:127.0.0.1:PORT?...` or `turns:...` URL.
fn port_of(url: &str) -> u16 {
    let rest = url.rsplit_once(':').expect("a port").1;
    rest.split('?')
        .next()
        .expect("a port")
        .parse()
        .expect("a port")
}

fn echo_peer() -> (Proc, u16) {
    let port = free_udp_port();
    let peer = Proc(
        tool("turnutils_peer")
            .args(["-L", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnutils_peer starts"),
    );
    (peer, port)
}

/// coturn's client over `flags` (`-t`, `-t -S`) to `port`: relays 20 messages to the echo.
fn relays(flags: &[&str], port: u16, peer_port: u16, user: &str, password: &str) {
    let out = tool("turnutils_uclient")
        .args(flags)
        .args(["-c", "-X", "-m", "1", "-n", "20", "-l", "200", "-z", "5"])
        .args(["-e", "127.0.0.1", "-r", &peer_port.to_string()])
        .args(["-p", &port.to_string(), "-u", user, "-w", password])
        .arg("127.0.0.1")
        .output()
        .expect("uclient runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "uclient {flags:?} failed: {text}");
    assert!(text.contains("Total lost packets 0"), "{flags:?}: {text}");
}

#[tokio::test]
async fn tcp_and_tls_urls_are_handed_out_when_served_and_relay() {
    let dir = Scratch::new("turn-streams");
    let (cert, key) = (dir.0.join("turn.crt"), dir.0.join("turn.key"));
    self_signed_cert(&cert, &key, "localhost");
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_TURN_RELAY_PORTS", "42000-42099"),
        ("RTCROOM_TURN_TLS_LISTEN", "127.0.0.1:0"),
        ("RTCROOM_TURN_TLS_CERT", cert.to_str().expect("a path")),
        ("RTCROOM_TURN_TLS_KEY", key.to_str().expect("a path")),
    ]);
    let cfg = pair(&server, "streams").await.expect("the pair is served");
    let (urls, user, password) = turn_entry(&cfg);
    assert_eq!(urls.len(), 3, "{urls:?}");
    let udp = port_of(&urls[0]);
    assert_eq!(urls[0], format!("turn:127.0.0.1:{udp}?transport=udp"));
    // TCP on the UDP listener's port; TLS on its own, named by the public address.
    assert_eq!(urls[1], format!("turn:127.0.0.1:{udp}?transport=tcp"));
    let tls = port_of(&urls[2]);
    assert_eq!(urls[2], format!("turns:127.0.0.1:{tls}?transport=tcp"));
    assert_ne!(tls, udp);

    let (_peer, peer_port) = echo_peer();
    relays(&[], udp, peer_port, &user, &password);
    relays(&["-t"], udp, peer_port, &user, &password);
    relays(&["-t", "-S"], tls, peer_port, &user, &password);

    let m = server.metrics().await;
    assert!(
        m["rtcroom_turn_stream_connections_total"] >= 2.0,
        "{:?}",
        m.get("rtcroom_turn_stream_connections_total")
    );
    assert_eq!(m["rtcroom_turn_stream_connections_refused"], 0.0);
}

#[tokio::test]
async fn without_tcp_only_udp_is_handed_out_and_tcp_is_not_served() {
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_TURN_TCP", "false"),
    ]);
    let cfg = pair(&server, "udp-only").await.expect("the pair is served");
    let (urls, _, _) = turn_entry(&cfg);
    assert_eq!(urls.len(), 1, "{urls:?}");
    assert!(urls[0].ends_with("?transport=udp"), "{urls:?}");
    let port = port_of(&urls[0]);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "a TCP listener on {port} though TCP is off"
    );
}

#[test]
fn a_tls_listener_without_a_certificate_is_refused_with_what_to_set() {
    let dir = Scratch::new("turn-tls-config");
    let file = dir.dir("conf").join("rtcroom.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:0\"\n[turn]\nlisten = \"127.0.0.1:0\"\ntls_listen = \"127.0.0.1:0\"\n",
    )
    .expect("config written");
    let out = common::rtcroom_command(&dir.0)
        .arg("check-config")
        .arg("--config")
        .arg(&file)
        .output()
        .expect("check-config runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {err}");
    assert!(
        err.contains("[turn] tls_listen needs a certificate")
            && err.contains("[turn] tls_cert and tls_key"),
        "{err}"
    );
}

#[tokio::test]
async fn a_renewed_turn_certificate_is_served_without_a_restart() {
    let dir = Scratch::new("turn-renew");
    let (cert, key) = (dir.0.join("turn.crt"), dir.0.join("turn.key"));
    self_signed_cert(&cert, &key, "first");
    let (next_cert, next_key) = (dir.0.join("next.crt"), dir.0.join("next.key"));
    self_signed_cert(&next_cert, &next_key, "second");
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_TURN_TLS_LISTEN", "127.0.0.1:0"),
        ("RTCROOM_TURN_TLS_CERT", cert.to_str().expect("a path")),
        ("RTCROOM_TURN_TLS_KEY", key.to_str().expect("a path")),
    ]);
    let cfg = pair(&server, "renew").await.expect("the pair is served");
    let (urls, _, _) = turn_entry(&cfg);
    let turns = urls
        .iter()
        .find(|u| u.starts_with("turns:"))
        .expect("a turns: URL");
    let addr = format!("127.0.0.1:{}", port_of(turns));
    let connector = connector(&[&cert, &next_cert]);
    assert_eq!(served_cert(&addr, &connector).await, Some(der(&cert)));

    // Renewal as an ACME client does it: the new files replace the old ones.
    std::fs::rename(&next_key, &key).expect("key replaced");
    std::fs::rename(&next_cert, &cert).expect("certificate replaced");
    let renewed = der(&cert);
    // How long the test waits for the reload (checked every 2 s), not a performance bound.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while served_cert(&addr, &connector).await.as_ref() != Some(&renewed) {
        assert!(
            std::time::Instant::now() < until,
            "the renewed certificate was never served on the TURN TLS listener"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

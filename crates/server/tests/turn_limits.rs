//! The embedded TURN server's limits as the `[turn]` keys of the real binary set them: a
//! credential lifetime of `[ice]` beyond `[turn] max_credential_lifetime_secs` is refused by
//! `check-config` and `serve`; `/readyz` says not ready once `max_allocations` are live; the
//! refusals (403 refused peer, 486 per-user quota, 401 over-long credential) and bandwidth
//! drops show in `/metrics`. Driven by a small scripted TURN client over UDP (messages built
//! with the `stun` crate, credentials minted by `rtcroom-ice` from the configured secret).

mod common;

use common::{Server, http};
#[path = "../../turn/tests/support/mod.rs"]
mod turn_client;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use turn_client::{Client, WAIT, now_ms, ok};

const SECRET: &str = "turn-limits-secret";

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `rtcroom <args> --config FILE` with no `RTCROOM_*` variable of the caller's environment;
/// `(exit status, stderr)`, or `None` if it was still running after 30 s (then killed).
fn run_with_config(args: &[&str], text: &str) -> Option<(bool, String)> {
    let dir = std::env::temp_dir().join(format!(
        "rtcroom-turn-limits-{}-{}",
        std::process::id(),
        now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rtcroom.toml");
    std::fs::write(&file, text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtcroom"));
    cmd.args(args)
        .arg("--config")
        .arg(&file)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("RTCROOM_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd.spawn().expect("the rtcroom binary runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    let result = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            break Some((status.success(), err));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[test]
fn a_credential_ttl_beyond_the_turn_lifetime_is_refused_at_start() {
    let config_in = |mode: &str, ttl: u64| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
             [ice]\nmode = \"{mode}\"\ncredential_ttl_secs = {ttl}\n\
             [turn]\nlisten = \"127.0.0.1:0\"\nmax_credential_lifetime_secs = 3600\n"
        )
    };
    let config = |ttl: u64| config_in("registry", ttl);
    let (ok, err) = run_with_config(&["check-config"], &config(3600)).expect("it exits");
    assert!(ok, "a ttl equal to the maximum is fine: {err}");

    let (ok, err) = run_with_config(&["check-config"], &config(3601)).expect("it exits");
    assert!(!ok, "check-config accepted a ttl above the maximum");
    for needle in [
        "[ice] credential_ttl_secs (3601)",
        "[turn] max_credential_lifetime_secs (3600)",
        "to at most 3600",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from {err:?}");
    }

    let (ok, err) = run_with_config(&["serve"], &config(3601)).expect("serve refuses at once");
    assert!(!ok, "serve started with a ttl above the maximum");
    assert!(err.contains("[ice] credential_ttl_secs (3601)"), "{err:?}");

    // Without the embedded server ([ice] mode static runs none) there is nothing to refuse.
    let (ok, err) =
        run_with_config(&["check-config"], &config_in("static", 90_000)).expect("it exits");
    assert!(ok, "{err}");
}

async fn readyz(server: &Server) -> (u16, String) {
    http("GET", &format!("http://{}/readyz", server.addr), None, None).await
}

/// The metric `name` once `pred` holds for it (bounded wait), or the last value seen.
async fn metric_when(server: &Server, name: &str, pred: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = server.metrics().await;
        let v = *m
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from /metrics"));
        if pred(v) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_relay_is_not_ready_and_the_limit_counters_move() {
    let port = free_udp_port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start(&[
        ("RTCROOM_TURN_LISTEN", listen.as_str()),
        ("RTCROOM_TURN_SECRET", SECRET),
        ("RTCROOM_TURN_MAX_ALLOCATIONS", "2"),
        ("RTCROOM_TURN_MAX_ALLOCATIONS_PER_USER", "1"),
        ("RTCROOM_TURN_MAX_CREDENTIAL_LIFETIME_SECS", "3600"),
        ("RTCROOM_TURN_ALLOCATION_BYTES_PER_SEC", "2000"),
        ("RTCROOM_ICE_CREDENTIAL_TTL_SECS", "3600"),
    ]);
    let turn: SocketAddr = listen.parse().unwrap();

    let before = server.metrics().await;
    for name in [
        "rtcroom_turn_permissions_refused",
        "rtcroom_turn_allocations_refused_user_quota",
        "rtcroom_turn_bandwidth_dropped_packets",
        "rtcroom_turn_bandwidth_dropped_bytes",
        "rtcroom_turn_credentials_too_long",
    ] {
        assert_eq!(before.get(name), Some(&0.0), "{name} at start");
    }
    let deadline = Instant::now() + WAIT;
    while readyz(&server).await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "never ready: {:?}",
            readyz(&server).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A credential minted for longer than the server allows: 401, counted.
    let mut greedy = Client::new(turn, SECRET, "greedy", 7200).await;
    assert_eq!(greedy.allocate().await.code, 401);
    assert_eq!(
        metric_when(&server, "rtcroom_turn_credentials_too_long", |v| v >= 1.0).await,
        1.0
    );

    // One allocation of two: still ready.
    let mut alice = Client::new(turn, SECRET, "alice", 600).await;
    let resp = alice.allocate().await;
    assert!(ok(&resp), "alice's allocate: {}", resp.code);
    assert_eq!(readyz(&server).await, (200, "ready\n".to_owned()));

    // alice's second allocation (another socket, same uid) is over her quota of one.
    let mut alice2 = Client::new(turn, SECRET, "alice", 600).await;
    assert_eq!(alice2.allocate().await.code, 486);
    assert_eq!(
        metric_when(
            &server,
            "rtcroom_turn_allocations_refused_user_quota",
            |v| v >= 1.0
        )
        .await,
        1.0
    );

    // A permission for a private peer (allow_private_peers is off): 403, counted.
    assert_eq!(alice.permit("10.1.2.3:9".parse().unwrap()).await.code, 403);
    assert_eq!(
        metric_when(&server, "rtcroom_turn_permissions_refused", |v| v >= 1.0).await,
        1.0
    );

    // Relaying 20 kB at once to a loopback peer exceeds 2000 bytes/s: drops are counted.
    let peer = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let resp = alice.permit(peer_addr).await;
    assert!(ok(&resp), "permission for a loopback peer: {}", resp.code);
    for _ in 0..40 {
        alice.send(peer_addr, &[7u8; 500]).await;
    }
    let dropped = metric_when(&server, "rtcroom_turn_bandwidth_dropped_packets", |v| {
        v >= 1.0
    })
    .await;
    assert!(dropped >= 1.0, "no datagram dropped");
    let dropped_bytes = metric_when(&server, "rtcroom_turn_bandwidth_dropped_bytes", |v| {
        v >= 500.0
    })
    .await;
    assert!(dropped_bytes >= 500.0 * dropped, "{dropped_bytes} bytes");

    // bob takes the second allocation: the relay is full and /readyz says so.
    let mut bob = Client::new(turn, SECRET, "bob", 600).await;
    let resp = bob.allocate().await;
    assert!(ok(&resp), "bob's allocate: {}", resp.code);
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("the embedded TURN relay is full"), "{body}");
    assert_eq!(
        metric_when(&server, "rtcroom_turn_allocations", |v| v >= 2.0).await,
        2.0
    );
}

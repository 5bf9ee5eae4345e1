//! The embedded TURN server against coturn's own test client: `turnutils_uclient` allocates,
//! binds channels (or sends indications) and relays through the server to a
//! `turnutils_peer` echo on 127.0.0.1, with REST credentials minted by `rtcroom-ice`.
//!
//! The same runs over TCP (`-t`) and TLS (`-t -S`): the server's stream listeners frame
//! messages from connections, and relays still reach the peer over UDP.
//!
//! Needs coturn's tools: `scripts/deps/ice.sh` installs them; TLS certificates are made by
//! the `openssl` command.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rtcroom_turn::{
    CounterSnapshot, PeerFilter, PortRange, TlsListen, TurnConfig, TurnHandle, TurnServer,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const SECRET: &str = "test-secret";

fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(name).is_file()));
    assert!(
        found,
        "{name} is missing: run scripts/deps/ice.sh to install coturn's tools"
    );
    Command::new(name)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port()
}

/// A child process stopped by its pid when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn echo_peer() -> (Proc, u16) {
    let port = free_udp_port();
    let child = tool("turnutils_peer")
        .args(["-L", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnutils_peer starts");
    (Proc(child), port)
}

/// Each test gets its own relay ports, so tests running at once never compete for them.
async fn start(
    relay_ports: (u16, u16),
    loopback_peers: bool,
    max_allocations: usize,
) -> TurnHandle {
    TurnServer::start(config(relay_ports, loopback_peers, max_allocations))
        .await
        .expect("server starts")
}

fn config(relay_ports: (u16, u16), loopback_peers: bool, max_allocations: usize) -> TurnConfig {
    let mut cfg = TurnConfig::new(SECRET);
    cfg.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    cfg.relay_ports = PortRange::new(relay_ports.0, relay_ports.1).expect("range");
    cfg.realm = "test".into();
    cfg.max_allocations = max_allocations;
    cfg.peers = PeerFilter {
        allow_loopback: loopback_peers,
        allow_private: false,
    };
    cfg
}

enum Auth<'a> {
    /// `-u USER -w PASSWORD`
    Password(&'a str, &'a str),
    /// `-u UID -W SECRET`: uclient mints the REST credential itself.
    Secret(&'a str, &'a str),
}

struct Load {
    clients: u32,
    messages: u32,
    send_indications: bool,
}

/// How uclient reaches the server.
#[derive(Debug, Clone, Copy)]
enum Via {
    Udp,
    Tcp,
    Tls,
}

fn uclient(server: &TurnHandle, peer_port: u16, auth: Auth<'_>, load: Load) -> Output {
    uclient_via(Via::Udp, server, peer_port, auth, load)
}

fn uclient_via(
    via: Via,
    server: &TurnHandle,
    peer_port: u16,
    auth: Auth<'_>,
    load: Load,
) -> Output {
    let mut cmd = tool("turnutils_uclient");
    cmd.args(["-c", "-X"]);
    let port = match via {
        Via::Udp => server.local_addr().port(),
        Via::Tcp => {
            cmd.arg("-t");
            server.tcp_addr().expect("a TCP listener").port()
        }
        Via::Tls => {
            cmd.args(["-t", "-S"]);
            server.tls_addr().expect("a TLS listener").port()
        }
    };
    if load.send_indications {
        cmd.arg("-s");
    }
    cmd.args(["-m", &load.clients.to_string()])
        .args(["-n", &load.messages.to_string()])
        .args(["-l", "200", "-z", "5"])
        .args(["-e", "127.0.0.1", "-r", &peer_port.to_string()])
        .args(["-p", &port.to_string()]);
    match auth {
        Auth::Password(u, w) => cmd.args(["-u", u, "-w", w]),
        Auth::Secret(u, s) => cmd.args(["-u", u, "-W", s]),
    };
    // Blocking is fine: the server runs on the runtime's worker threads.
    cmd.arg("127.0.0.1").output().expect("uclient runs")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// uclient's closing statistics: `Total lost packets N (P%)`.
fn lost_packets(out: &Output) -> Option<u64> {
    let s = String::from_utf8_lossy(&out.stdout);
    let line = s.lines().rev().find(|l| l.contains("Total lost packets"))?;
    let after = line.split("Total lost packets").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

fn relayed_ok(out: &Output, server: &CounterSnapshot, expected_datagrams: u64) {
    assert!(out.status.success(), "{}", text(out));
    assert_eq!(lost_packets(out), Some(0), "{}", text(out));
    assert!(
        server.peer_tx_packets >= expected_datagrams
            && server.peer_rx_packets >= expected_datagrams,
        "{server:?}"
    );
    assert!(
        server.peer_tx_bytes >= expected_datagrams * 200,
        "{server:?}"
    );
    assert_eq!(server.peer_denied_packets, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_with_credentials_minted_by_rtcroom_ice() {
    let (_peer, peer_port) = echo_peer();
    let server = start((41000, 41099), true, 100).await;

    let cred = rtcroom_ice::mint(SECRET.as_bytes(), "alice", now_secs() * 1000, 600);
    let out = uclient(
        &server,
        peer_port,
        Auth::Password(&cred.username, &cred.credential),
        Load {
            clients: 2,
            messages: 30,
            send_indications: false,
        },
    );
    relayed_ok(&out, &server.counters(), 60);
    let c = server.counters();
    // uclient makes two allocations per client (the second with the first's reservation).
    assert!(c.allocations_total >= 2, "{c:?}");
    assert!(c.allocations_active <= c.allocations_total, "{c:?}");
    assert!(
        c.client_rx_packets > 60 && c.client_tx_packets > 60,
        "{c:?}"
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_when_uclient_mints_from_the_secret() {
    let (_peer, peer_port) = echo_peer();
    // The recommended way to run it: on a thread of its own.
    let server =
        TurnServer::start_on_own_thread(config((41100, 41199), true, 100)).expect("server starts");
    let out = uclient(
        &server,
        peer_port,
        Auth::Secret("bob", SECRET),
        Load {
            clients: 1,
            messages: 30,
            send_indications: true,
        },
    );
    relayed_ok(&out, &server.counters(), 30);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_and_expired_credentials_are_refused() {
    let (_peer, peer_port) = echo_peer();
    let server = start((41200, 41299), true, 100).await;
    let one = || Load {
        clients: 1,
        messages: 5,
        send_indications: false,
    };

    let good = rtcroom_ice::mint(SECRET.as_bytes(), "carol", now_secs() * 1000, 600);
    let out = uclient(
        &server,
        peer_port,
        Auth::Password(&good.username, "d3Jvbmc="),
        one(),
    );
    assert!(
        !out.status.success(),
        "wrong password accepted: {}",
        text(&out)
    );

    let other = rtcroom_ice::mint(b"another secret", "carol", now_secs() * 1000, 600);
    let out = uclient(
        &server,
        peer_port,
        Auth::Password(&other.username, &other.credential),
        one(),
    );
    assert!(
        !out.status.success(),
        "foreign secret accepted: {}",
        text(&out)
    );

    // Minted an hour ago with a ten-minute lifetime: signed right, but expired.
    let old = rtcroom_ice::mint(SECRET.as_bytes(), "carol", (now_secs() - 3600) * 1000, 600);
    let out = uclient(
        &server,
        peer_port,
        Auth::Password(&old.username, &old.credential),
        one(),
    );
    assert!(
        !out.status.success(),
        "expired username accepted: {}",
        text(&out)
    );

    let c = server.counters();
    assert_eq!((c.allocations_total, c.peer_tx_packets), (0, 0), "{c:?}");
    assert!(c.auth_refused >= 1, "the expired username was seen: {c:?}");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_peers_are_refused_by_default() {
    let (_peer, peer_port) = echo_peer();
    let server = start((41300, 41399), false, 100).await;
    // With channels (ChannelBind) and with Send indications (CreatePermission): coturn's
    // client is told 403 and gives up; nothing reaches the peer.
    for send_indications in [false, true] {
        let out = uclient(
            &server,
            peer_port,
            Auth::Secret("dave", SECRET),
            Load {
                clients: 1,
                messages: 10,
                send_indications,
            },
        );
        assert!(!out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("403"), "{}", text(&out));
    }
    let c = server.counters();
    assert_eq!(c.peer_tx_packets, 0, "{c:?}");
    assert!(c.permissions_refused >= 2, "{c:?}");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocations_beyond_the_cap_are_refused() {
    let (_peer, peer_port) = echo_peer();
    let server = start((41400, 41499), true, 1).await;
    let out = uclient(
        &server,
        peer_port,
        Auth::Secret("erin", SECRET),
        Load {
            clients: 3,
            messages: 5,
            send_indications: false,
        },
    );
    let c = server.counters();
    assert!(c.allocations_refused >= 1, "{c:?}\n{}", text(&out));
    assert!(c.allocations_active <= 1, "{c:?}");
    server.shutdown().await.expect("clean shutdown");
}

/// A self-signed certificate for 127.0.0.1 made by `openssl`, as a rustls configuration.
fn tls_config(dir: &Path) -> Arc<rustls::ServerConfig> {
    let (cert, key) = (dir.join("turn.crt"), dir.join("turn.key"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let chain = CertificateDer::pem_file_iter(&cert)
        .expect("a PEM certificate")
        .collect::<Result<Vec<_>, _>>()
        .expect("a PEM certificate");
    let key = PrivateKeyDer::from_pem_file(&key).expect("a PEM key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("the certificate and its key");
    Arc::new(config)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rtcroom-turn-{name}-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// A server listening on UDP, TCP and TLS.
async fn start_streams(
    relay_ports: (u16, u16),
    loopback_peers: bool,
    max_allocations: usize,
    tls: Arc<rustls::ServerConfig>,
) -> TurnHandle {
    let mut cfg = config(relay_ports, loopback_peers, max_allocations);
    cfg.tcp_listen = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    cfg.tls = Some(TlsListen {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        config: tls,
    });
    TurnServer::start(cfg).await.expect("server starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_over_tcp_and_tls() {
    let dir = temp_dir("relay");
    let (_peer, peer_port) = echo_peer();
    let server = start_streams((41600, 41699), true, 100, tls_config(&dir)).await;
    let cred = rtcroom_ice::mint(SECRET.as_bytes(), "gina", now_secs() * 1000, 600);
    let mut expected = 0;
    for (via, send_indications) in [
        (Via::Tcp, false),
        (Via::Tcp, true),
        (Via::Tls, false),
        (Via::Tls, true),
    ] {
        let out = uclient_via(
            via,
            &server,
            peer_port,
            Auth::Password(&cred.username, &cred.credential),
            Load {
                clients: 2,
                messages: 30,
                send_indications,
            },
        );
        expected += 60;
        relayed_ok(&out, &server.counters(), expected);
        // Over the stream listener: each client is a connection of its own.
        let c = server.counters();
        assert!(
            c.stream_connections_total >= expected / 30,
            "{via:?}: {c:?}"
        );
    }
    let c = server.counters();
    assert!(c.allocations_total >= 8, "{c:?}");
    assert_eq!(c.stream_dropped_packets, 0, "{c:?}");
    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_tls_allocations_get_the_peer_filter_and_the_quotas() {
    let dir = temp_dir("limits");
    let (_peer, peer_port) = echo_peer();
    let tls = tls_config(&dir);
    // Loopback peers refused: 403 over both, nothing reaches the peer.
    let server = start_streams((41700, 41749), false, 100, Arc::clone(&tls)).await;
    for via in [Via::Tcp, Via::Tls] {
        let out = uclient_via(
            via,
            &server,
            peer_port,
            Auth::Secret("hank", SECRET),
            Load {
                clients: 1,
                messages: 10,
                send_indications: false,
            },
        );
        assert!(!out.status.success(), "{via:?}: {}", text(&out));
        assert!(text(&out).contains("403"), "{via:?}: {}", text(&out));
    }
    let c = server.counters();
    assert_eq!(c.peer_tx_packets, 0, "{c:?}");
    assert!(c.permissions_refused >= 2, "{c:?}");
    assert!(
        c.client_rx_packets >= 4 && c.client_tx_packets >= 4,
        "{c:?}"
    );
    server.shutdown().await.expect("clean shutdown");

    // One live allocation in all: a second client over TCP or TLS gets 508.
    let server = start_streams((41750, 41789), true, 1, Arc::clone(&tls)).await;
    for via in [Via::Tcp, Via::Tls] {
        let out = uclient_via(
            via,
            &server,
            peer_port,
            Auth::Secret("ivan", SECRET),
            Load {
                clients: 3,
                messages: 5,
                send_indications: false,
            },
        );
        let c = server.counters();
        assert!(c.allocations_refused >= 1, "{via:?}: {c:?}\n{}", text(&out));
    }
    let c = server.counters();
    assert!(c.allocations_active <= 1, "{c:?}");
    assert_eq!(c.stream_connections_refused, 0, "{c:?}");
    server.shutdown().await.expect("clean shutdown");

    // One live allocation per user: that user's second client over TLS gets 486.
    let mut cfg = config((41800, 41849), true, 100);
    cfg.max_allocations_per_user = 1;
    cfg.tls = Some(TlsListen {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        config: tls,
    });
    let server = TurnServer::start(cfg).await.expect("server starts");
    let out = uclient_via(
        Via::Tls,
        &server,
        peer_port,
        Auth::Secret("kate", SECRET),
        Load {
            clients: 3,
            messages: 5,
            send_indications: false,
        },
    );
    let c = server.counters();
    assert!(
        c.allocations_refused_user_quota >= 1,
        "{c:?}\n{}",
        text(&out)
    );
    assert_eq!(server.allocations_of("kate"), c.allocations_active as usize);
    assert!(server.allocations_of("kate") <= 1, "{c:?}");
    server.shutdown().await.expect("clean shutdown");

    // One connection per listener: the second client's connection is closed at once.
    let mut cfg = config((41790, 41799), true, 100);
    cfg.tcp_listen = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    cfg.max_connections = 1;
    let server = TurnServer::start(cfg).await.expect("server starts");
    let out = uclient_via(
        Via::Tcp,
        &server,
        peer_port,
        Auth::Secret("jill", SECRET),
        Load {
            clients: 2,
            messages: 5,
            send_indications: false,
        },
    );
    let c = server.counters();
    assert!(c.stream_connections_refused >= 1, "{c:?}\n{}", text(&out));
    // The UDP listener's port serves TCP too.
    assert_eq!(server.tcp_addr(), Some(server.local_addr()));
    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(dir);
}

/// A bare Allocate request (REQUESTED-TRANSPORT UDP, no credentials) with transaction id `id`.
fn bare_allocate(id: u32) -> Vec<u8> {
    let mut b = vec![0x00, 0x03, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42];
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&[0x00, 0x19, 0x00, 0x04, 17, 0, 0, 0]);
    b
}

/// `(error code, nonce)` of a STUN error response.
fn challenge_of(b: &[u8]) -> (u16, Vec<u8>) {
    let (mut code, mut nonce) = (0, Vec::new());
    let mut rest = &b[20..];
    while rest.len() >= 4 {
        let typ = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = &rest[4..4 + len];
        match typ {
            0x0009 => code = u16::from(value[2]) * 100 + u16::from(value[3]),
            0x0015 => nonce = value.to_vec(),
            _ => {}
        }
        rest = &rest[(4 + len).next_multiple_of(4).min(rest.len())..];
    }
    (code, nonce)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_do_not_grow_the_nonce_store() {
    let server = start((41500, 41599), true, 100).await;
    let client = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("client socket");
    let mut nonces = std::collections::BTreeSet::new();
    let mut buf = [0u8; 1500];
    for id in 0..200 {
        client
            .send_to(&bare_allocate(id), server.local_addr())
            .await
            .expect("sent");
        let (n, _) = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            client.recv_from(&mut buf),
        )
        .await
        .expect("an answer to every request")
        .expect("received");
        assert_eq!(buf[8..20], bare_allocate(id)[8..20], "same transaction");
        let (code, nonce) = challenge_of(&buf[..n]);
        assert_eq!(code, 401);
        nonces.insert(nonce);
    }
    let c = server.counters();
    assert_eq!(nonces.len(), 1, "one nonce for everyone");
    assert_eq!((c.nonces_issued, c.challenges_answered), (1, 199), "{c:?}");
    server.shutdown().await.expect("clean shutdown");
}

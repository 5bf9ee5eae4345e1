//! The limits of the embedded TURN server, driven over UDP by a small scripted TURN client
//! (long-term credentials minted by `rtcroom-ice`, messages built with the `stun` crate):
//! refused peers get 403, the per-user quota 486, over-long credentials 401, and relayed
//! traffic beyond the per-allocation bandwidth is dropped and counted.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rtcroom_turn::{PeerFilter, PortRange, TurnConfig, TurnHandle, TurnServer};
use stun::message::{CLASS_ERROR_RESPONSE, METHOD_REFRESH};
use support::{Client, ok, relayed_address};
use tokio::net::UdpSocket;
use turn::proto::lifetime::Lifetime;

const SECRET: &str = "limits-secret";

/// A server on 127.0.0.1 with its own relay ports, so tests running at once never compete.
fn config(relay_ports: (u16, u16)) -> TurnConfig {
    let mut cfg = TurnConfig::new(SECRET);
    cfg.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    cfg.relay_ports = PortRange::new(relay_ports.0, relay_ports.1).expect("range");
    cfg.realm = "test".into();
    cfg
}

async fn start(cfg: TurnConfig) -> TurnHandle {
    TurnServer::start(cfg).await.expect("server starts")
}

/// A client of `server` for `uid`, with a credential from the test's secret.
async fn client(server: &TurnHandle, uid: &str, ttl_secs: u64) -> Client {
    Client::new(server.local_addr(), SECRET, uid, ttl_secs).await
}

/// Datagrams a socket receives until none comes for a second: their count.
async fn drain(socket: &UdpSocket) -> usize {
    let mut buf = vec![0u8; 2048];
    let mut count = 0;
    while let Ok(r) = tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await
    {
        r.expect("received");
        count += 1;
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_and_channels_to_refused_peers_get_403() {
    // Listening on loopback, advertising a public address as the relay address: that address
    // is the server's own.
    let mut cfg = config((42000, 42099));
    cfg.public_ip = Some(IpAddr::from([203, 0, 113, 7]));
    let server = start(cfg).await;
    let mut client = client(&server, "mallory", 600).await;
    let resp = client.allocate().await;
    assert!(ok(&resp), "code {}", resp.code);
    let relay = relayed_address(&resp);
    assert_eq!(relay.ip(), IpAddr::from([203, 0, 113, 7]));

    let refused = [
        "127.0.0.1:9",
        "10.0.0.1:5000",
        "169.254.169.254:80",
        "192.168.1.1:53",
        "224.0.0.1:5004",
        "0.0.0.0:9",
        // The server's own address, outside its relay ports: the host's own services.
        "203.0.113.7:22",
        "203.0.113.7:3478",
    ];
    for peer in refused {
        let resp = client.permit(peer.parse().expect("addr")).await;
        assert_eq!(
            (resp.class, resp.code),
            (CLASS_ERROR_RESPONSE, 403),
            "CreatePermission {peer}"
        );
        // Signed with the request's key, as an answer to an authenticated request.
        let mut msg = resp.msg;
        client
            .key()
            .check(&mut msg)
            .expect("the 403 carries MESSAGE-INTEGRITY");
    }
    let resp = client
        .bind_channel(0x4000, "10.0.0.1:5000".parse().expect("addr"))
        .await;
    assert_eq!((resp.class, resp.code), (CLASS_ERROR_RESPONSE, 403));

    // Public peers, and another client's relayed address on this server, are fine.
    assert!(ok(&client
        .permit("8.8.8.8:53".parse().expect("addr"))
        .await));
    let other_relay = SocketAddr::new(relay.ip(), 42050);
    assert!(ok(&client.permit(other_relay).await));
    assert!(ok(&client
        .bind_channel(0x4001, "8.8.4.4:53".parse().expect("addr"))
        .await));

    let c = server.counters();
    assert_eq!(c.permissions_refused, refused.len() as u64 + 1, "{c:?}");
    assert_eq!(c.allocations_total, 1, "{c:?}");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocations_beyond_the_user_quota_get_486() {
    let mut cfg = config((42100, 42199));
    cfg.max_allocations_per_user = 2;
    cfg.max_allocations = 3;
    let server = start(cfg).await;

    // Three credentials of one uid (different expiries), from three client addresses.
    let mut mallory = Vec::new();
    for ttl in [600, 700, 800] {
        mallory.push(client(&server, "mallory", ttl).await);
    }
    assert!(ok(&mallory[0].allocate().await));
    assert!(ok(&mallory[1].allocate().await));
    let third = mallory[2].allocate().await;
    assert_eq!((third.class, third.code), (CLASS_ERROR_RESPONSE, 486));
    let mut msg = third.msg;
    mallory[2].key().check(&mut msg).expect("the 486 is signed");
    assert_eq!(server.allocations_of("mallory"), 2);
    assert!(!server.is_full());

    // Another user is not held back by mallory's quota; the third live allocation fills the
    // server.
    let mut trent = client(&server, "trent", 600).await;
    assert!(ok(&trent.allocate().await));
    assert_eq!(server.allocations(), 3);
    assert!(server.is_full());

    // Giving one back (Refresh with lifetime 0) makes room in the quota and on the server.
    let refresh = mallory[0]
        .request(METHOD_REFRESH, vec![Box::new(Lifetime(Duration::ZERO))])
        .await;
    assert!(ok(&refresh), "code {}", refresh.code);
    assert_eq!(server.allocations_of("mallory"), 1);
    assert!(!server.is_full());
    assert!(ok(&mallory[2].allocate().await));
    assert_eq!(server.allocations_of("mallory"), 2);

    let c = server.counters();
    assert_eq!(c.allocations_refused_user_quota, 1, "{c:?}");
    assert_eq!(c.allocations_refused, 0, "{c:?}");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_beyond_the_maximum_lifetime_get_401() {
    // The default maximum: one day.
    let server = start(config((42200, 42299))).await;
    let mut long = client(&server, "mallory", 86_400 + 3_600).await;
    let resp = long.allocate().await;
    assert_eq!((resp.class, resp.code), (CLASS_ERROR_RESPONSE, 401));
    let c = server.counters();
    assert_eq!(
        (c.credentials_too_long, c.allocations_total),
        (1, 0),
        "{c:?}"
    );

    // A day exactly is accepted.
    let mut day = client(&server, "alice", 86_400).await;
    assert!(ok(&day.allocate().await));

    // A lower maximum refuses what the default accepts.
    let mut cfg = config((42300, 42399));
    cfg.max_credential_lifetime_secs = 3_600;
    let strict = start(cfg).await;
    let mut day = client(&strict, "alice", 86_400).await;
    assert_eq!(day.allocate().await.code, 401);
    let mut hour = client(&strict, "alice", 3_000).await;
    assert!(ok(&hour.allocate().await));
    assert_eq!(strict.counters().credentials_too_long, 1);

    server.shutdown().await.expect("clean shutdown");
    strict.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_traffic_beyond_the_allocation_bandwidth_is_dropped_and_counted() {
    let mut cfg = config((42400, 42499));
    cfg.peers = PeerFilter {
        allow_loopback: true,
        allow_private: false,
    };
    cfg.allocation_bytes_per_sec = 4_000;
    let server = start(cfg).await;
    let peer = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("peer socket");
    let peer_addr = peer.local_addr().expect("peer addr");
    let mut client = client(&server, "alice", 600).await;
    let resp = client.allocate().await;
    assert!(ok(&resp));
    let relay = relayed_address(&resp);
    assert!(ok(&client.permit(peer_addr).await));

    // 40 kB at once towards the peer: the allocation's bucket holds 4 kB.
    const N: usize = 40;
    const SIZE: usize = 1_000;
    for _ in 0..N {
        client.send(peer_addr, &[7; SIZE]).await;
    }
    let arrived = drain(&peer).await;
    let c = server.counters();
    assert!(arrived >= 1, "the first datagrams pass");
    assert!(c.bandwidth_dropped_packets >= 1, "{c:?}");
    assert_eq!(
        arrived as u64 + c.bandwidth_dropped_packets,
        N as u64,
        "{c:?}"
    );
    assert_eq!(
        c.bandwidth_dropped_bytes,
        c.bandwidth_dropped_packets * SIZE as u64
    );
    assert_eq!(c.peer_tx_packets, arrived as u64);

    // And 40 kB at once from the peer towards the client.
    for _ in 0..N {
        peer.send_to(&[9; SIZE], relay).await.expect("sent");
    }
    let delivered = client.drain_data().await;
    let d = server.counters();
    let dropped_back = d.bandwidth_dropped_packets - c.bandwidth_dropped_packets;
    assert!(delivered >= 1 && dropped_back >= 1, "{d:?}");
    assert_eq!(delivered as u64 + dropped_back, N as u64, "{d:?}");
    server.shutdown().await.expect("clean shutdown");
}

//! Channels of the embedded TURN server, driven by a small scripted TURN client over UDP and
//! over TCP: ChannelData relayed both ways on bound channels only (the server's own fast
//! path), the crate's Data indications for peers without a channel, and an allocation over
//! TCP that ends with its connection (RFC 8656 §3.1).

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rtcroom_turn::{PeerFilter, PortRange, TurnConfig, TurnHandle, TurnServer};
use stun::attributes::ATTR_DATA;
use stun::message::{CLASS_INDICATION, METHOD_DATA, Message, MessageType};
use support::{Client, ok, relayed_address};
use tokio::net::UdpSocket;

const SECRET: &str = "channels-secret";

/// A server on 127.0.0.1 over UDP and TCP, relaying to loopback peers.
async fn start(relay_ports: (u16, u16)) -> TurnHandle {
    let mut cfg = TurnConfig::new(SECRET);
    cfg.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    cfg.tcp_listen = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    cfg.relay_ports = PortRange::new(relay_ports.0, relay_ports.1).expect("range");
    cfg.realm = "test".into();
    cfg.peers = PeerFilter {
        allow_loopback: true,
        allow_private: false,
    };
    TurnServer::start(cfg).await.expect("server starts")
}

/// A peer on `ip` (permissions are by IP: two peers on one IP share them).
async fn peer(ip: [u8; 4]) -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind((Ipv4Addr::from(ip), 0))
        .await
        .expect("peer socket");
    let a = s.local_addr().expect("addr");
    (s, a)
}

/// The next datagram a peer gets within half a second, with its sender.
async fn peer_gets(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 2048];
    let (n, from) = tokio::time::timeout(Duration::from_millis(500), s.recv_from(&mut buf))
        .await
        .ok()?
        .expect("received");
    buf.truncate(n);
    Some((buf, from))
}

/// The next message the client gets within half a second that is not a STUN response.
async fn client_gets(c: &Client) -> Option<Vec<u8>> {
    c.recv_raw(Duration::from_millis(500)).await
}

/// ChannelData of `number` carrying `data`, padded to 4 bytes as the server sends it.
fn channel_data(number: u16, data: &[u8]) -> Vec<u8> {
    let mut m = number.to_be_bytes().to_vec();
    m.extend_from_slice(&u16::try_from(data.len()).expect("short").to_be_bytes());
    m.extend_from_slice(data);
    m.resize(4 + data.len().div_ceil(4) * 4, 0);
    m
}

async fn relays_on_bound_channels_only(mut c: Client) {
    let alloc = c.allocate().await;
    assert!(ok(&alloc), "allocate: {}", alloc.code);
    let relayed = relayed_address(&alloc);
    let (p, p_addr) = peer([127, 0, 0, 1]).await;
    let (q, q_addr) = peer([127, 0, 0, 2]).await;

    // No channel yet: nothing is relayed.
    c.send_channel(0x4000, b"early").await;
    assert_eq!(peer_gets(&p).await, None);

    assert!(ok(&c.bind_channel(0x4000, p_addr).await));
    c.send_channel(0x4000, b"hello").await;
    assert_eq!(peer_gets(&p).await, Some((b"hello".to_vec(), relayed)));
    p.send_to(b"world", relayed).await.expect("sent");
    assert_eq!(client_gets(&c).await, Some(channel_data(0x4000, b"world")));

    // The number is bound to P: binding it to Q is refused, and it still reaches P.
    assert_eq!(c.bind_channel(0x4000, q_addr).await.code, 400);
    c.send_channel(0x4000, b"again").await;
    assert_eq!(peer_gets(&p).await, Some((b"again".to_vec(), relayed)));
    assert_eq!(peer_gets(&q).await, None);
    // A channel number never bound relays nothing.
    c.send_channel(0x4001, b"stray").await;
    assert_eq!(peer_gets(&q).await, None);

    // Q has no permission: its datagrams go nowhere. With one and no channel, they come
    // as Data indications.
    q.send_to(b"unasked", relayed).await.expect("sent");
    assert_eq!(client_gets(&c).await, None);
    assert!(ok(&c.permit(q_addr).await));
    q.send_to(b"asked", relayed).await.expect("sent");
    let data = client_gets(&c).await.expect("a Data indication");
    let mut m = Message::new();
    m.unmarshal_binary(&data).expect("STUN");
    assert_eq!(m.typ, MessageType::new(METHOD_DATA, CLASS_INDICATION));
    assert_eq!(m.get(ATTR_DATA).expect("DATA"), b"asked");

    // A second channel to Q, both ways, beside the first.
    assert!(ok(&c.bind_channel(0x4001, q_addr).await));
    c.send_channel(0x4001, b"to q").await;
    assert_eq!(peer_gets(&q).await, Some((b"to q".to_vec(), relayed)));
    q.send_to(b"from q", relayed).await.expect("sent");
    assert_eq!(client_gets(&c).await, Some(channel_data(0x4001, b"from q")));
}

#[tokio::test]
async fn channel_data_is_relayed_both_ways_on_bound_channels_only() {
    let server = start((42300, 42349)).await;
    let udp = Client::new(server.local_addr(), SECRET, "ulla", 600).await;
    relays_on_bound_channels_only(udp).await;
    let tcp_addr = server.tcp_addr().expect("TCP listener");
    let tcp = Client::new_tcp(tcp_addr, SECRET, "tom", 600).await;
    relays_on_bound_channels_only(tcp).await;
    let c = server.counters();
    assert_eq!(c.peer_tx_packets, 6, "{c:?}");
    assert_eq!(c.peer_rx_packets, 8, "{c:?}");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn an_allocation_over_tcp_ends_with_its_connection() {
    let server = start((42350, 42359)).await;
    let tcp_addr = server.tcp_addr().expect("TCP listener");
    let mut c = Client::new_tcp(tcp_addr, SECRET, "carl", 600).await;
    let alloc = c.allocate().await;
    assert!(ok(&alloc), "allocate: {}", alloc.code);
    let relayed = relayed_address(&alloc);
    let (p, p_addr) = peer([127, 0, 0, 1]).await;
    assert!(ok(&c.bind_channel(0x4000, p_addr).await));
    assert_eq!(server.allocations(), 1);
    assert_eq!(server.allocations_of("carl"), 1);

    // The allocation would live 10 minutes; the connection closes now, and it goes with it.
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.allocations() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.allocations(), 0, "{:?}", server.counters());
    assert_eq!(server.allocations_of("carl"), 0);
    // Its relayed address is gone: nothing listens there, its port can be bound again.
    p.send_to(b"anyone?", relayed).await.expect("sent");
    let again = UdpSocket::bind(relayed).await;
    assert!(again.is_ok(), "the relay port is still taken: {again:?}");

    // A new connection allocates afresh.
    let mut c2 = Client::new_tcp(tcp_addr, SECRET, "carl", 600).await;
    assert!(ok(&c2.allocate().await));
    assert_eq!(server.allocations(), 1);
    server.shutdown().await.expect("clean shutdown");
}

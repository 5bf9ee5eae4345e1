//! A handful of hostile sockets must lock nobody out: connections that never join, clients
//! that stop reading, slowloris headers, many connections or joins from one address, and
//! identifiers with control characters, each against the real binary.

mod common;

use common::{Client, Server, connect_within, join, parse_prometheus, tcp_from};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a test waits for something the server must do eventually (not a performance
/// bound: the timeouts under test are one second).
const WAIT: Duration = Duration::from_secs(15);

async fn metric(server: &Server, name: &str) -> f64 {
    let url = format!("http://{}/metrics", server.addr);
    let (status, text) = common::http("GET", &url, None, None).await;
    assert_eq!(status, 200, "{text}");
    parse_prometheus(&text).get(name).copied().unwrap_or(0.0)
}

/// Sockets that upgrade and only ever send keepLive held every slot of `max_connections`
/// for good. Now each is closed after `join_timeout_secs` (4005) and a new client joins.
#[tokio::test]
async fn sockets_that_never_join_give_their_slots_back() {
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_SERVER_MAX_CONNECTIONS", "4"),
        ("RTCROOM_SERVER_JOIN_TIMEOUT_SECS", "1"),
    ]);
    let url = format!("ws://{}/ws", server.addr);
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(server.client().await);
    }
    // Every slot is taken: a fifth connection is refused.
    assert!(
        tokio_tungstenite::connect_async(&url).await.is_err(),
        "a connection above max_connections was accepted"
    );
    let closes =
        futures_util::future::join_all(idle.iter_mut().map(|c| c.keep_alive_until_closed(WAIT)))
            .await;
    assert!(closes.iter().all(|c| *c == Some(4005)), "{closes:?}");
    let mut newcomer = connect_within(&url, WAIT)
        .await
        .expect("a slot came free for a client that joins");
    newcomer.send(join("r", "alice", "Alice")).await;
    assert_eq!(newcomer.expect("respJoin").await["result"], 0);
    drop(idle);
}

/// A member that stops reading while large offers are sent to it is cut off by the hub; its
/// connection task used to stay blocked in the socket write, holding the slot and the queued
/// messages until the client went away. Now the kill aborts the write: the slot is free at
/// once, though the client's socket is still open, and the room goes on.
#[tokio::test]
async fn a_client_that_does_not_read_gives_its_slot_back_when_cut_off() {
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_SERVER_MAX_CONNECTIONS", "3"),
        ("RTCROOM_SERVER_OUTBOUND_QUEUE", "8"),
        // Only the hub's kill may end the write here, not the write timeout.
        ("RTCROOM_SERVER_WRITE_TIMEOUT_SECS", "3600"),
        ("RTCROOM_ROOM_RATE_PER_SEC", "100000"),
        ("RTCROOM_ROOM_RATE_BURST", "100000"),
    ]);
    let url = format!("ws://{}/ws", server.addr);
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(join("slow", "alice", "A")).await;
    a.expect("respJoin").await;
    b.send(join("slow", "bob", "B")).await;
    b.expect("respJoin").await;
    a.expect("notifyNewPeer").await;
    // Bob stops reading; Alice offers until the server gives up on him.
    let offer = format!(
        r#"{{"cmd":"offer","remoteUid":"bob","msg":"{}"}}"#,
        "s".repeat(60_000)
    );
    let mut cut = false;
    for _ in 0..5_000 {
        a.send_text(&offer).await;
        let resp = a.expect("respOffer").await;
        if resp["result"] == 6 {
            cut = true;
            break;
        }
        assert_eq!(resp["result"], 0);
    }
    assert!(cut, "the server cut off the client that does not read");
    // Bob's socket is still open (`b` lives), yet his slot is free: two newcomers fit
    // beside Alice under max_connections = 3.
    let mut c = connect_within(&url, WAIT).await.expect("a slot for carol");
    c.send(join("slow", "carol", "C")).await;
    assert_eq!(c.expect("respJoin").await["result"], 0);
    a.expect("notifyNewPeer").await;
    let mut d = connect_within(&url, WAIT)
        .await
        .expect("bob's slot was given back while his socket is open");
    d.send(join("other", "dave", "D")).await;
    assert_eq!(d.expect("respJoin").await["result"], 0);
    a.send(json!({"cmd":"offer","remoteUid":"carol","msg":"{}"}))
        .await;
    assert_eq!(c.expect("relayOffer").await["uid"], "alice");
    assert_eq!(a.expect("respOffer").await["result"], 0);
    drop(b);
}

/// A client that reads nothing while its queue never fills (few, large messages) is
/// disconnected once a write has taken `write_timeout_secs`, and its slot is free.
#[tokio::test]
async fn a_write_that_takes_too_long_ends_the_connection() {
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_SERVER_MAX_CONNECTIONS", "3"),
        ("RTCROOM_SERVER_MAX_FRAME_BYTES", "1048576"),
        ("RTCROOM_SERVER_OUTBOUND_QUEUE", "4096"),
        ("RTCROOM_SERVER_WRITE_TIMEOUT_SECS", "1"),
        ("RTCROOM_ROOM_RATE_PER_SEC", "100000"),
        ("RTCROOM_ROOM_RATE_BURST", "100000"),
    ]);
    let url = format!("ws://{}/ws", server.addr);
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(join("w", "alice", "A")).await;
    a.expect("respJoin").await;
    b.send(join("w", "bob", "B")).await;
    b.expect("respJoin").await;
    a.expect("notifyNewPeer").await;
    // 64 MB for Bob, far more than the kernel's socket buffers hold, in 64 messages: the
    // queue of 4096 never fills, so only the write timeout can end this.
    let offer = format!(
        r#"{{"cmd":"offer","remoteUid":"bob","msg":"{}"}}"#,
        "s".repeat(1_000_000)
    );
    for _ in 0..64 {
        a.send_text(&offer).await;
        a.expect("respOffer").await;
    }
    let mut c = connect_within(&url, WAIT).await.expect("a slot for carol");
    c.send(join("w2", "carol", "C")).await;
    assert_eq!(c.expect("respJoin").await["result"], 0);
    let mut d = connect_within(&url, WAIT)
        .await
        .expect("bob's slot was given back after the write timeout");
    d.send(join("w2", "dave", "D")).await;
    assert_eq!(d.expect("respJoin").await["result"], 0);
    assert_eq!(metric(&server, "rtcroom_write_timeouts_total").await, 1.0);
    drop(b);
}

/// Slowloris: connections that send a request header a byte at a time are closed after
/// `header_read_timeout_secs`; one address holds at most `max_connections_per_ip`
/// connections, the next is refused, and other addresses (here /healthz from 127.0.0.1)
/// are served throughout.
#[tokio::test]
async fn slowloris_connections_are_closed_and_one_address_cannot_take_them_all() {
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_SERVER_MAX_CONNECTIONS_PER_IP", "4"),
        ("RTCROOM_SERVER_HEADER_READ_TIMEOUT_SECS", "1"),
    ]);
    let healthz = format!("http://{}/healthz", server.addr);
    let attacker = [127, 0, 0, 2];
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = tcp_from(attacker, &server.addr).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    // The fifth connection from that address is refused: it gets a 503 saying why, or
    // nothing at all, never an answer to its request.
    let mut fifth = tcp_from(attacker, &server.addr).await;
    let _ = fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(WAIT, fifth.read_to_end(&mut got))
        .await
        .expect("the refused connection is closed");
    let got = String::from_utf8_lossy(&got);
    assert!(!got.contains("200 OK"), "{got}");
    if !got.is_empty() {
        assert!(
            got.starts_with("HTTP/1.1 503") && got.contains("max_connections_per_ip"),
            "{got}"
        );
    }
    // Another address is served meanwhile.
    assert_eq!(common::http("GET", &healthz, None, None).await.0, 200);
    // Each slowloris connection, trickling a header line every 200 ms, is closed.
    let trickle = futures_util::future::join_all(slow.iter_mut().map(|s| async move {
        let until = tokio::time::Instant::now() + WAIT;
        let mut buf = [0u8; 256];
        while tokio::time::Instant::now() < until {
            if s.write_all(b"X-Slow: 1\r\n").await.is_err() {
                return true;
            }
            let read = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await;
            if let Ok(Ok(0) | Err(_)) = read {
                return true;
            }
        }
        false
    }))
    .await;
    assert!(trickle.iter().all(|closed| *closed), "{trickle:?}");
    // Their places are given back: the attacker's address is served again.
    let mut again = tcp_from(attacker, &server.addr).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, again.read_to_end(&mut got))
        .await
        .expect("an answer")
        .unwrap();
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(metric(&server, "rtcroom_connections_refused_per_ip_total").await >= 1.0);
}

/// A trusted proxy's connections carry many clients: they are not counted against
/// `max_connections_per_ip`.
#[tokio::test]
async fn a_trusted_proxy_is_not_limited_per_address() {
    let server = Server::start(&[
        ("RTCROOM_SERVER_MAX_CONNECTIONS_PER_IP", "2"),
        ("RTCROOM_SERVER_TRUSTED_PROXIES", "[\"127.0.0.3\"]"),
    ]);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = tcp_from([127, 0, 0, 3], &server.addr).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(s);
    }
}

/// Joins from one address beyond `[room] joins_per_ip_burst` are refused with result 14.
#[tokio::test]
async fn joins_from_one_address_are_rate_limited() {
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_ROOM_JOINS_PER_IP_PER_SEC", "1"),
        ("RTCROOM_ROOM_JOINS_PER_IP_BURST", "2"),
    ]);
    let mut results = Vec::new();
    let mut clients: Vec<Client> = Vec::new();
    for i in 0..3 {
        let mut c = server.client().await;
        c.send(join(&format!("room{i}"), &format!("u{i}"), "U"))
            .await;
        let resp = c.expect("respJoin").await;
        results.push((resp["result"].clone(), resp["desc"].clone()));
        clients.push(c);
    }
    assert_eq!(results[0].0, 0);
    assert_eq!(results[1].0, 0);
    assert_eq!(results[2].0, 14, "{results:?}");
    assert!(
        results[2]
            .1
            .as_str()
            .unwrap()
            .contains("joins per second from one address"),
        "{results:?}"
    );
}

/// A uid, roomId or appId with a control character (NUL, a line break) is refused with
/// result 3 naming the field; nothing is joined.
#[tokio::test]
async fn identifiers_with_control_characters_are_refused() {
    let server = Server::start(&[("RTCROOM_AUTH_REQUIRED", "false")]);
    let mut c = server.client().await;
    for (field, value) in [
        ("uid", "bob\u{0}"),
        ("roomId", "r\n1"),
        ("appId", "10000\u{0}"),
    ] {
        let mut frame = join("r", "bob", "Bob");
        frame[field] = json!(value);
        c.send(frame).await;
        let resp = c.expect("respJoin").await;
        assert_eq!(resp["result"], 3, "{resp}");
        let desc = resp["desc"].as_str().unwrap();
        assert!(
            desc.contains(field) && desc.contains("control characters"),
            "{desc}"
        );
        assert!(
            !resp.to_string().contains("\\u0000"),
            "the refused value is echoed: {resp}"
        );
    }
    // Nothing was joined: the printable uid joins as a new member.
    c.send(join("r", "bob", "Bob")).await;
    let resp = c.expect("respJoin").await;
    assert_eq!(resp["result"], 0);
    assert_eq!(resp["userList"], serde_json::Value::Null);
}

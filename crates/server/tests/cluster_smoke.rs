//! Two nodes of a cluster on the shared Redis (a key prefix of their own): a room with one
//! member on each node, offers and answers relayed both ways through the room's owner.

mod common;

use common::{Server, join};
use serde_json::json;

const REDIS: &str = "redis://127.0.0.1:6379/0";

fn node(prefix: &str) -> Server {
    node_on(REDIS, prefix)
}

fn node_on(redis: &str, prefix: &str) -> Server {
    node_named(redis, prefix, "")
}

fn node_named(redis: &str, prefix: &str, id: &str) -> Server {
    node_with(redis, prefix, id, &[])
}

fn node_with(redis: &str, prefix: &str, id: &str, extra: &[(&str, &str)]) -> Server {
    Server::start(&cluster_env(redis, prefix, id, extra))
}

/// The settings of a test node: a fast heartbeat, no records, no tokens, static ICE unless
/// `extra` says otherwise.
fn cluster_env<'a>(
    redis: &'a str,
    prefix: &'a str,
    id: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("RTCROOM_CLUSTER_NODE_ID", id),
        ("RTCROOM_CLUSTER_REDIS", redis),
        ("RTCROOM_CLUSTER_KEY_PREFIX", prefix),
        ("RTCROOM_CLUSTER_HEARTBEAT_MS", "200"),
        ("RTCROOM_CLUSTER_DEAD_AFTER_MS", "600"),
        ("RTCROOM_DATABASE_URL", "off"),
        ("RTCROOM_ICE_MODE", "static"),
        ("RTCROOM_AUTH_REQUIRED", "false"),
    ];
    env.extend_from_slice(extra);
    env
}

/// Wait (bounded) until every node's registry holds `n` live nodes.
async fn wait_for_nodes(nodes: &[&Server], n: usize) {
    for node in nodes {
        common::wait_until("every node in the registry", || async {
            node.metrics().await.get("rtcroom_cluster_nodes") == Some(&(n as f64))
        })
        .await;
    }
}

#[tokio::test]
async fn a_room_spans_two_nodes_and_relays_both_ways() {
    let prefix = Prefix(format!("rtcroom-smoke-{}", std::process::id()));
    let a = node(&prefix.0);
    let b = node(&prefix.0);
    let mut alice = a.client().await;
    let mut bob = b.client().await;
    alice.send(join("smoke", "alice", "Alice")).await;
    let ja = alice.expect("respJoin").await;
    assert_eq!(ja["result"], 0, "{ja}");
    bob.send(join("smoke", "bob", "Bob")).await;
    let jb = bob.expect("respJoin").await;
    assert_eq!(jb["result"], 0, "{jb}");
    // bob's join was served by the room's owner (a's engine): alice hears of him.
    let peer = alice.expect("notifyNewPeer").await;
    assert_eq!(peer["uid"], "bob", "{peer}");
    alice
        .send(json!({"cmd":"offer","remoteUid":"bob","msg":"{\"type\":\"offer\",\"n\":1}"}))
        .await;
    let offer = bob.expect("relayOffer").await;
    assert_eq!(offer["uid"], "alice", "{offer}");
    assert_eq!(offer["msg"], "{\"type\":\"offer\",\"n\":1}", "{offer}");
    alice.expect("respOffer").await;
    bob.send(json!({"cmd":"answer","remoteUid":"alice","msg":"{\"type\":\"answer\"}"}))
        .await;
    let answer = alice.expect("relayAnswer").await;
    assert_eq!(answer["uid"], "bob", "{answer}");
    // From the remote side too, several frames in a row arrive in order.
    for n in 0..20 {
        let msg = format!("{{\"type\":\"offer\",\"n\":{n}}}");
        bob.send(json!({"cmd":"offer","remoteUid":"alice","msg": msg}))
            .await;
    }
    for n in 0..20 {
        let relayed = alice.expect("relayOffer").await;
        assert_eq!(relayed["msg"], format!("{{\"type\":\"offer\",\"n\":{n}}}"));
    }
    for _ in 0..20 {
        bob.expect("respOffer").await;
    }
    // Each node counts the sockets it holds, whichever node owns their room.
    for (node, who) in [(&a, "a"), (&b, "b")] {
        let open = node.metrics().await["rtcroom_open_connections"];
        assert_eq!(open, 1.0, "node {who} holds one socket");
    }
    // A binary frame from the remote member is refused by the owner, as on one node.
    bob.send_binary(vec![1, 2, 3]).await;
    let refused = bob.expect("generalMsgResp").await;
    assert_ne!(refused["result"], 0, "{refused}");
    bob.send(json!({"cmd":"leave","appId":"10000","roomId":"smoke","uid":"bob"}))
        .await;
    let left = bob.expect("respLeave").await;
    assert_eq!(left["result"], 0, "{left}");
    alice.expect("relayLeave").await;
}

/// The owner of a room killed (`kill -9`) while its members sit on two other nodes: a
/// survivor adopts the room, nobody hears a thing, and the room keeps relaying.
#[tokio::test]
async fn a_killed_owner_s_room_is_adopted_silently() {
    let prefix = Prefix(format!("rtcroom-smoke-fo-{}", std::process::id()));
    let mut a = node(&prefix.0);
    let b = node(&prefix.0);
    let c = node(&prefix.0);
    wait_for_nodes(&[&a, &b, &c], 3).await;
    let mut carol = a.client().await;
    carol.send(join("fo", "carol", "Carol")).await;
    carol.expect("respJoin").await;
    let mut alice = b.client().await;
    alice.send(join("fo", "alice", "Alice")).await;
    alice.expect("respJoin").await;
    carol.expect("notifyNewPeer").await;
    let mut bob = c.client().await;
    bob.send(join("fo", "bob", "Bob")).await;
    bob.expect("respJoin").await;
    carol.expect("notifyNewPeer").await;
    alice.expect("notifyNewPeer").await;
    carol
        .send(json!({"cmd":"leave","appId":"10000","roomId":"fo","uid":"carol"}))
        .await;
    carol.expect("respLeave").await;
    alice.expect("relayLeave").await;
    bob.expect("relayLeave").await;
    // The owner's state of the room reaches Redis within 100 ms; then the owner dies.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    a.kill();
    // Dead after 600 ms unheard; nobody is told anything meanwhile.
    alice.expect_silence().await;
    bob.expect_silence().await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    alice
        .send(json!({"cmd":"offer","remoteUid":"bob","msg":"{\"type\":\"offer\"}"}))
        .await;
    let offer = bob.expect("relayOffer").await;
    assert_eq!(offer["uid"], "alice", "{offer}");
    alice.expect("respOffer").await;
    bob.send(json!({"cmd":"answer","remoteUid":"alice","msg":"{\"type\":\"answer\"}"}))
        .await;
    alice.expect("relayAnswer").await;
}

/// The node a member's socket is on is killed: the owner counts the member as dropped (it
/// keeps its place), and the member resumes on another node with its key; the other member
/// hears nothing.
#[tokio::test]
async fn a_killed_edge_s_members_resume_elsewhere() {
    let prefix = Prefix(format!("rtcroom-smoke-edge-{}", std::process::id()));
    let a = node(&prefix.0);
    let mut b = node(&prefix.0);
    wait_for_nodes(&[&a, &b], 2).await;
    let mut alice = a.client().await;
    alice.send(join("edge", "alice", "Alice")).await;
    alice.expect("respJoin").await;
    let mut bob = b.client().await;
    bob.send(join("edge", "bob", "Bob")).await;
    let jb = bob.expect("respJoin").await;
    alice.expect("notifyNewPeer").await;
    b.kill();
    drop(bob);
    alice.expect_silence().await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let mut again = a.client().await;
    let mut resume = join("edge", "bob", "Bob");
    resume["resumeKey"] = jb["resumeKey"].clone();
    again.send(resume).await;
    let back = again.expect("respJoin").await;
    assert_eq!(back["resumed"], true, "{back}");
    assert_eq!(back["sessionId"], jb["sessionId"], "{back}");
    alice.expect_silence().await;
    again
        .send(json!({"cmd":"offer","remoteUid":"alice","msg":"{\"type\":\"offer\"}"}))
        .await;
    alice.expect("relayOffer").await;
}

/// A member of a killed owner resumes on another node with its key (told to reconnect at
/// most once more while the room is taken over); the member on a live node hears nothing.
#[tokio::test]
async fn a_member_of_a_killed_owner_resumes_on_a_survivor() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let prefix = Prefix(format!("rtcroom-smoke-res-{}", std::process::id()));
    let mut a = node(&prefix.0);
    let b = node(&prefix.0);
    let c = node(&prefix.0);
    wait_for_nodes(&[&a, &b, &c], 3).await;
    let mut alice = a.client().await;
    alice.send(join("res", "alice", "Alice")).await;
    let ja = alice.expect("respJoin").await;
    let mut bob = b.client().await;
    bob.send(join("res", "bob", "Bob")).await;
    bob.expect("respJoin").await;
    alice.expect("notifyNewPeer").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    a.kill();
    let mut resume = join("res", "alice", "Alice");
    resume["resumeKey"] = ja["resumeKey"].clone();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let back = 'tries: loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice never resumed"
        );
        let url = format!("ws://{}/ws", c.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        ws.send(Message::text(resume.to_string())).await.unwrap();
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
            match msg {
                Message::Text(t) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    if v["cmd"] == "respJoin" {
                        break 'tries v;
                    }
                }
                Message::Close(_) => continue 'tries,
                _ => {}
            }
        }
    };
    assert_eq!(back["result"], 0, "{back}");
    assert_eq!(back["resumed"], true, "{back}");
    assert_eq!(back["sessionId"], ja["sessionId"], "{back}");
    bob.expect_silence().await;
}

/// A node drains (SIGTERM): the room it owns goes to the node holding the other member,
/// which hears nothing; the drained node's member is told to reconnect (1012) and resumes
/// on a third node with its resume key.
#[tokio::test]
async fn a_draining_owner_hands_its_room_over() {
    let prefix = Prefix(format!("rtcroom-smoke-dr-{}", std::process::id()));
    let a = node(&prefix.0);
    let mut b = node(&prefix.0);
    let c = node(&prefix.0);
    let mut alice = b.client().await;
    alice.send(join("dr", "alice", "Alice")).await;
    let ja = alice.expect("respJoin").await;
    let mut bob = c.client().await;
    bob.send(join("dr", "bob", "Bob")).await;
    bob.expect("respJoin").await;
    alice.expect("notifyNewPeer").await;
    wait_for_nodes(&[&a, &b, &c], 3).await;
    let status = tokio::task::spawn_blocking(move || b.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(alice.expect_close().await, Some(1012));
    bob.expect_silence().await;
    // The drained node left the registry.
    wait_for_nodes(&[&a, &c], 2).await;
    let mut again = a.client().await;
    let mut resume = join("dr", "alice", "Alice");
    resume["resumeKey"] = ja["resumeKey"].clone();
    again.send(resume).await;
    let back = again.expect("respJoin").await;
    assert_eq!(back["result"], 0, "{back}");
    assert_eq!(back["resumed"], true, "{back}");
    assert_eq!(back["sessionId"], ja["sessionId"], "{back}");
    bob.expect_silence().await;
    again
        .send(json!({"cmd":"offer","remoteUid":"bob","msg":"{\"type\":\"offer\"}"}))
        .await;
    bob.expect("relayOffer").await;
    again.expect("respOffer").await;
}

/// The operator API of any node answers for the whole cluster: rooms of every node, summed
/// counts, and a kick sent to the room's owner.
#[tokio::test]
async fn the_operator_api_answers_for_the_cluster() {
    let prefix = Prefix(format!("rtcroom-smoke-adm-{}", std::process::id()));
    let start = |p: &str| {
        Server::start(&[
            ("RTCROOM_CLUSTER_REDIS", "redis://127.0.0.1:6379/0"),
            ("RTCROOM_CLUSTER_KEY_PREFIX", p),
            ("RTCROOM_CLUSTER_HEARTBEAT_MS", "200"),
            ("RTCROOM_CLUSTER_DEAD_AFTER_MS", "600"),
            ("RTCROOM_DATABASE_URL", "off"),
            ("RTCROOM_ICE_MODE", "static"),
            ("RTCROOM_AUTH_REQUIRED", "false"),
            ("RTCROOM_ADMIN_TOKEN", "ops-token"),
        ])
    };
    let a = start(&prefix.0);
    let b = start(&prefix.0);
    wait_for_nodes(&[&a, &b], 2).await;
    // Login hands out the least-loaded node's own address (both are empty: the lower id).
    let (status, body) = common::http(
        "POST",
        &format!("http://{}/api/login", a.addr),
        None,
        Some(r#"{"cmd":"login","appId":"10000","url":"http://localhost/"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let login: serde_json::Value = serde_json::from_str(&body).unwrap();
    let server = login["roomServer"].as_str().unwrap_or_default().to_owned();
    assert!(
        server == format!("ws://{}/ws", a.addr) || server == format!("ws://{}/ws", b.addr),
        "{body}"
    );
    let mut alice = a.client().await;
    alice.send(join("adm", "alice", "Alice")).await;
    alice.expect("respJoin").await;
    let mut bob = b.client().await;
    bob.send(join("adm", "bob", "Bob")).await;
    bob.expect("respJoin").await;
    alice.expect("notifyNewPeer").await;
    let mut carol = b.client().await;
    carol.send(join("adm-b", "carol", "Carol")).await;
    carol.expect("respJoin").await;
    let api = |path: &str| format!("http://{}{path}", b.addr);
    let (status, body) = common::http("GET", &api("/api/rooms"), Some("ops-token"), None).await;
    assert_eq!(status, 200, "{body}");
    let rooms: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut names: Vec<&str> = rooms
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["roomId"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["adm", "adm-b"], "{body}");
    let (status, body) = common::http("GET", &api("/api/stats"), Some("ops-token"), None).await;
    assert_eq!(status, 200, "{body}");
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["cluster"]["members"], 3, "{body}");
    assert_eq!(stats["cluster"]["rooms"], 2, "{body}");
    assert_eq!(stats["cluster"]["nodesAnswered"], 2, "{body}");
    let kick = r#"{"uid":"bob","reason":"test"}"#;
    let (status, body) = common::http(
        "POST",
        &api("/api/rooms/10000/adm/kick"),
        Some("ops-token"),
        Some(kick),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(bob.expect_close().await, Some(4004));
    alice.expect("relayLeave").await;
}

/// An ICE server registered through one node's ICE API is in every node's rotation, and
/// in the registry of a node that starts later.
#[tokio::test]
async fn the_ice_registry_is_shared() {
    let prefix = Prefix(format!("rtcroom-smoke-ice-{}", std::process::id()));
    let env = |p: &str| -> Vec<(String, String)> {
        vec![
            (
                "RTCROOM_CLUSTER_REDIS".into(),
                "redis://127.0.0.1:6379/0".into(),
            ),
            ("RTCROOM_CLUSTER_KEY_PREFIX".into(), p.into()),
            ("RTCROOM_CLUSTER_HEARTBEAT_MS".into(), "200".into()),
            ("RTCROOM_CLUSTER_DEAD_AFTER_MS".into(), "600".into()),
            ("RTCROOM_DATABASE_URL".into(), "off".into()),
            ("RTCROOM_TURN_ENABLED".into(), "false".into()),
            ("RTCROOM_ICE_TURN_SECRET".into(), "coturn-secret".into()),
            ("RTCROOM_AUTH_REQUIRED".into(), "false".into()),
        ]
    };
    let start = |p: &str| {
        let vars = env(p);
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::start(&pairs)
    };
    let a = start(&prefix.0);
    let b = start(&prefix.0);
    common::wait_ready(&b, 503, "no ICE server in rotation").await;
    let register = r#"{"cmd":"iceRegister","ip":"198.51.100.7","iceType":"turn","turnPort":3478,"stunPort":3478,"maxBandwidth":100000}"#;
    let (status, body) = common::http(
        "POST",
        &format!("http://{}/icebandwidthload", a.addr),
        None,
        Some(register),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    common::wait_ready(&b, 200, "ready").await;
    let c = start(&prefix.0);
    common::wait_ready(&c, 200, "ready").await;
}

/// The metric of `name` for the ICE server at `ip` on `node`, if one is registered there
/// (the first by TURN port, when several share the address).
async fn ice_metric(node: &Server, name: &str, ip: &str) -> Option<f64> {
    ice_metrics(node, name, ip).await.first().map(|(_, v)| *v)
}

/// The metric of `name` for each ICE server at `ip` on `node`: (TURN port, value), by port.
async fn ice_metrics(node: &Server, name: &str, ip: &str) -> Vec<(u16, f64)> {
    let head = format!("rtcroom_{name}{{ip=\"{ip}\",port=\"");
    let mut all: Vec<(u16, f64)> = node
        .metrics()
        .await
        .into_iter()
        .filter_map(|(series, v)| {
            let port = series.strip_prefix(&head)?.strip_suffix("\"}")?;
            Some((port.parse().ok()?, v))
        })
        .collect();
    all.sort_by_key(|(port, _)| *port);
    all
}

/// A reservation one node's selection makes is held by every node's registry until the
/// server's next report: another node does not hand out the headroom the first just took,
/// and a report taken by any node ends the reservation everywhere.
#[tokio::test]
async fn a_reservation_on_one_node_is_seen_by_the_others() {
    let prefix = Prefix(format!("rtcroom-smoke-resv-{}", std::process::id()));
    let extra = [
        ("RTCROOM_ICE_MODE", "registry"),
        ("RTCROOM_TURN_ENABLED", "false"),
        ("RTCROOM_ICE_TURN_SECRET", "coturn-secret"),
    ];
    let a = node_with(REDIS, &prefix.0, "", &extra);
    let b = node_with(REDIS, &prefix.0, "", &extra);
    wait_for_nodes(&[&a, &b], 2).await;
    // Room for one video pair (400 kbit/s) and 100 kbit/s more.
    let ip = "198.51.100.9";
    let register = format!(
        r#"{{"cmd":"iceRegister","ip":"{ip}","iceType":"turn","turnPort":3478,"stunPort":3478,"maxBandwidth":500}}"#
    );
    let (status, body) = common::http(
        "POST",
        &format!("http://{}/icebandwidthload", a.addr),
        None,
        Some(&register),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    common::wait_ready(&b, 200, "ready").await;
    let cfg = common::pair(&a, "resv-1").await.expect("a pair on node a");
    let url = turn_entry(&cfg)["urls"][0].as_str().unwrap().to_owned();
    assert!(url.contains(ip), "{cfg}");
    common::wait_until("node b holds node a's reservation", || async {
        ice_metric(&b, "ice_headroom_kbps", ip).await == Some(100.0)
    })
    .await;
    assert_eq!(
        common::pair(&b, "resv-2").await.err(),
        Some(8),
        "node b has no room left for a video pair"
    );
    // The server's report, taken by node b, ends the reservation on node a too.
    let report = format!(r#"{{"cmd":"iceReportRxTxRate","ip":"{ip}","rxRate":0,"txRate":0}}"#);
    let (status, body) = common::http(
        "POST",
        &format!("http://{}/icebandwidthload", b.addr),
        None,
        Some(&report),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    common::wait_until("node a's reservation ends with the report", || async {
        ice_metric(&a, "ice_headroom_kbps", ip).await == Some(500.0)
    })
    .await;
    assert!(common::pair(&a, "resv-3").await.is_ok());
}

/// Each node's embedded TURN server is in every node's registry: a pair on node a gets node
/// b's server (it has the most headroom), the credentials node a minted allocate and relay
/// on it, and when node b is killed its server leaves node a's registry.
#[tokio::test]
async fn embedded_turn_servers_are_shared_and_leave_with_their_node() {
    let prefix = Prefix(format!("rtcroom-smoke-emb-{}", std::process::id()));
    // Node a's own server is small, node b's (on 127.0.0.2) has the default 1 Gbit/s.
    let a = node_with(
        REDIS,
        &prefix.0,
        "",
        &registry_env(&[("RTCROOM_TURN_MAX_BANDWIDTH_KBPS", "1000")]),
    );
    let mut b = node_with(
        REDIS,
        &prefix.0,
        "",
        &registry_env(&[("RTCROOM_TURN_LISTEN", "127.0.0.2:0")]),
    );
    wait_for_nodes(&[&a, &b], 2).await;
    common::wait_until(
        "node b's embedded TURN server in node a's rotation",
        || async { ice_metric(&a, "ice_in_rotation", "127.0.0.2").await == Some(1.0) },
    )
    .await;
    // Node b's server, and a real allocation on it with the credentials node a minted.
    let (port, turn) = pair_turn(&a, "emb", "127.0.0.2").await;
    relay_through("127.0.0.2", &port, &turn);
    // Node b dies: its server leaves node a's registry (not only its rotation).
    b.kill();
    common::wait_until("node b's embedded TURN server gone from node a", || async {
        ice_metric(&a, "ice_in_rotation", "127.0.0.2")
            .await
            .is_none()
    })
    .await;
    let cfg = common::pair(&a, "emb-after")
        .await
        .expect("a pair on node a");
    let url = turn_entry(&cfg)["urls"][0].as_str().unwrap().to_owned();
    assert!(url.starts_with("turn:127.0.0.1:"), "{cfg}");
}

/// The settings of a node in a cluster with a shared ICE registry and one TURN secret,
/// followed by `more`.
fn registry_env(more: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut env = vec![
        ("RTCROOM_ICE_MODE", "registry"),
        ("RTCROOM_TURN_SECRET", "the cluster's turn secret"),
    ];
    env.extend_from_slice(more);
    env
}

/// A real allocation on the TURN server at `ip:port` with the credentials of `turn` (an
/// `iceServers` entry some node minted), relaying 20 messages to a local peer: none lost.
fn relay_through(ip: &str, port: &str, turn: &serde_json::Value) {
    let peer_port = common::free_udp_port();
    let _peer = common::Proc(
        common::tool("turnutils_peer")
            .args(["-L", "127.0.0.1", "-p", &peer_port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = common::tool("turnutils_uclient")
        .args(["-c", "-X", "-m", "1", "-n", "20", "-l", "200", "-z", "5"])
        .args(["-e", "127.0.0.1", "-r", &peer_port.to_string(), "-p", port])
        .args([
            "-u",
            turn["username"].as_str().unwrap(),
            "-w",
            turn["credential"].as_str().unwrap(),
            ip,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "uclient on {ip}:{port} failed: {text}"
    );
    assert!(text.contains("Total lost packets 0"), "{text}");
}

/// The TURN port of the `turn:IP:PORT?transport=udp` URL a pair on `node` gets.
async fn pair_turn(node: &Server, room: &str, ip: &str) -> (String, serde_json::Value) {
    let cfg = common::pair(node, room).await.expect("a pair");
    let turn = turn_entry(&cfg);
    let url = turn["urls"][0].as_str().unwrap();
    let port = url
        .strip_prefix(&format!("turn:{ip}:"))
        .and_then(|rest| rest.strip_suffix("?transport=udp"))
        .unwrap_or_else(|| panic!("a server at {ip}: {cfg}"))
        .to_owned();
    (port, turn)
}

/// Two nodes' embedded TURN servers on one address (127.0.0.1, as nodes on one host or
/// behind one NAT address), each on a TURN port of its own, are two servers of the shared
/// registry: every node hands both out (a's own is small, so a hands out b's; c, whose own
/// server has no room for a pair, hands out b's, then a's once b is gone), with credentials
/// each server accepts; b's leaves with b (killed) and a's with a (drained).
#[tokio::test]
async fn embedded_turn_servers_on_one_address_are_told_apart_by_their_port() {
    let prefix = Prefix(format!("rtcroom-smoke-port-{}", std::process::id()));
    let one = ("RTCROOM_TURN_LISTEN", "127.0.0.1:0");
    let mut a = node_with(
        REDIS,
        &prefix.0,
        "",
        &registry_env(&[one, ("RTCROOM_TURN_MAX_BANDWIDTH_KBPS", "1000")]),
    );
    let mut b = node_with(REDIS, &prefix.0, "", &registry_env(&[one]));
    let c = node_with(
        REDIS,
        &prefix.0,
        "",
        &registry_env(&[
            ("RTCROOM_TURN_LISTEN", "127.0.0.2:0"),
            ("RTCROOM_TURN_MAX_BANDWIDTH_KBPS", "1"),
        ]),
    );
    wait_for_nodes(&[&a, &b, &c], 3).await;
    for (node, name) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        common::wait_until(
            &format!("both servers at 127.0.0.1 in node {name}'s rotation"),
            || async {
                let rotation = ice_metrics(node, "ice_in_rotation", "127.0.0.1").await;
                rotation.len() == 2 && rotation.iter().all(|(_, v)| *v == 1.0)
            },
        )
        .await;
    }
    // Which is which: a's has 1,000 kbit/s, b's the default 1 Gbit/s.
    let headroom = ice_metrics(&c, "ice_headroom_kbps", "127.0.0.1").await;
    let port_of = |big: bool| {
        headroom
            .iter()
            .find(|(_, kbps)| (*kbps > 1000.0) == big)
            .unwrap_or_else(|| panic!("{headroom:?}"))
            .0
            .to_string()
    };
    let (port_a, port_b) = (port_of(false), port_of(true));
    assert_ne!(port_a, port_b);

    let (port, _) = pair_turn(&a, "port-a", "127.0.0.1").await;
    assert_eq!(port, port_b, "node a hands out b's server");
    let (port, turn) = pair_turn(&c, "port-c", "127.0.0.1").await;
    assert_eq!(port, port_b, "node c hands out b's server");
    relay_through("127.0.0.1", &port_b, &turn);

    // Node b dies: its server leaves c's registry; a's, on the same address, stays.
    b.kill();
    common::wait_until("only a's server at 127.0.0.1 on node c", || async {
        let left = ice_metrics(&c, "ice_in_rotation", "127.0.0.1").await;
        left.iter().map(|(p, _)| p.to_string()).collect::<Vec<_>>() == [port_a.clone()]
    })
    .await;
    let (port, turn) = pair_turn(&c, "port-c-after", "127.0.0.1").await;
    assert_eq!(port, port_a, "node c hands out a's server");
    relay_through("127.0.0.1", &port_a, &turn);

    // Node a drains: its server leaves c's registry with it.
    assert!(a.terminate().success());
    common::wait_until("no server at 127.0.0.1 on node c", || async {
        ice_metrics(&c, "ice_in_rotation", "127.0.0.1")
            .await
            .is_empty()
    })
    .await;
}

/// A node whose `[turn] secret` differs from another's does not hand out that node's
/// embedded server (the credentials it would mint are refused there), and says why.
#[tokio::test]
async fn an_embedded_turn_server_with_another_secret_is_not_handed_out() {
    let prefix = Prefix(format!("rtcroom-smoke-sec-{}", std::process::id()));
    let log = std::env::temp_dir().join(format!("{}.log", prefix.0));
    let _ = std::fs::remove_file(&log);
    let a = Server::start_logging_to(
        &cluster_env(
            REDIS,
            &prefix.0,
            "",
            &[
                ("RTCROOM_ICE_MODE", "registry"),
                ("RTCROOM_TURN_SECRET", "one secret"),
            ],
        ),
        &log,
    );
    let b = node_with(
        REDIS,
        &prefix.0,
        "sec-b",
        &[
            ("RTCROOM_ICE_MODE", "registry"),
            ("RTCROOM_TURN_SECRET", "another secret"),
            ("RTCROOM_TURN_LISTEN", "127.0.0.2:0"),
        ],
    );
    wait_for_nodes(&[&a, &b], 2).await;
    common::wait_until(
        "node a says why it does not take node b's server",
        || async {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("node sec-b has another [turn] secret")
        },
    )
    .await;
    assert_eq!(ice_metric(&a, "ice_in_rotation", "127.0.0.2").await, None);
    let cfg = common::pair(&a, "sec").await.expect("a pair on node a");
    let url = turn_entry(&cfg)["urls"][0].as_str().unwrap().to_owned();
    assert!(url.starts_with("turn:127.0.0.1:"), "{cfg}");
    let _ = std::fs::remove_file(&log);
}

/// The TURN entry of an `rtcConfig`.
fn turn_entry(cfg: &serde_json::Value) -> serde_json::Value {
    cfg["iceServers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["urls"][0].as_str().unwrap().starts_with("turn:"))
        .unwrap_or_else(|| panic!("a TURN entry in {cfg}"))
        .clone()
}

/// A private `redis-server` on `port`, stopped (by its pid) when dropped.
struct Redis(std::process::Child);

impl Redis {
    fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self(child)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Redis stopped during a call and started again: the call goes on, a join meanwhile is
/// served, /healthz stays ok while /readyz says the cluster is degraded, and the nodes are
/// ready again once Redis is back.
#[tokio::test]
async fn calls_go_on_while_redis_is_away() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let redis = Redis::start(port);
    let smtp = common::SmtpSink::start();
    let mail = [
        ("RTCROOM_SMTP_URL", smtp.url()),
        (
            "RTCROOM_ALERTS_RECIPIENTS",
            "[\"ops@example.com\"]".to_owned(),
        ),
    ];
    let mail: Vec<(&str, &str)> = mail.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = node_with(&url, "outage", "", &mail);
    let b = node_on(&url, "outage");
    let (mut alice, mut bob) = (a.client().await, a.client().await);
    alice.send(join("out1", "alice", "Alice")).await;
    alice.expect("respJoin").await;
    bob.send(join("out1", "bob", "Bob")).await;
    bob.expect("respJoin").await;
    alice.expect("notifyNewPeer").await;
    drop(redis);
    common::wait_ready(&a, 503, "cluster degraded: redis unreachable since").await;
    let (status, _) = common::http("GET", &format!("http://{}/healthz", a.addr), None, None).await;
    assert_eq!(status, 200);
    alice
        .send(json!({"cmd":"offer","remoteUid":"bob","msg":"{\"type\":\"offer\"}"}))
        .await;
    bob.expect("relayOffer").await;
    alice.expect("respOffer").await;
    let mut carol = b.client().await;
    carol.send(join("out2", "carol", "Carol")).await;
    let jc = carol.expect("respJoin").await;
    assert_eq!(jc["result"], 0, "{jc}");
    let _redis = Redis::start(port);
    common::wait_ready(&a, 200, "ready").await;
    common::wait_ready(&b, 200, "ready").await;
    bob.send(json!({"cmd":"answer","remoteUid":"alice","msg":"{\"type\":\"answer\"}"}))
        .await;
    alice.expect("relayAnswer").await;
    let metrics = a.metrics().await;
    assert_eq!(
        metrics.get("rtcroom_cluster_degraded"),
        Some(&0.0),
        "{metrics:?}"
    );
}

/// A test's key prefix on the shared Redis; its keys are removed when the test ends (the
/// nodes, declared after it, are stopped first).
struct Prefix(String);

impl Drop for Prefix {
    fn drop(&mut self) {
        forget_prefix(&self.0);
    }
}

/// A room both nodes held while Redis was away: when it is back, the lower node id keeps
/// it; the other node's member is told to reconnect (1012) and joins the kept room.
#[tokio::test]
async fn after_an_outage_the_lower_node_id_keeps_a_split_room() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let redis = Redis::start(port);
    let a = node_named(&url, "split", "n1");
    let b = node_named(&url, "split", "n2");
    wait_for_nodes(&[&a, &b], 2).await;
    let mut alice = a.client().await;
    alice.send(join("split", "alice", "Alice")).await;
    alice.expect("respJoin").await;
    drop(redis);
    common::wait_ready(&b, 503, "cluster degraded").await;
    let mut bob = b.client().await;
    bob.send(join("split", "bob", "Bob")).await;
    let jb = bob.expect("respJoin").await;
    assert_eq!(jb["result"], 0, "{jb}");
    let _redis = Redis::start(port);
    common::wait_ready(&a, 200, "ready").await;
    common::wait_ready(&b, 200, "ready").await;
    assert_eq!(bob.expect_close().await, Some(1012));
    let mut again = b.client().await;
    again.send(join("split", "bob", "Bob")).await;
    let back = again.expect("respJoin").await;
    assert_eq!(back["result"], 0, "{back}");
    let peer = alice.expect("notifyNewPeer").await;
    assert_eq!(peer["uid"], "bob", "{peer}");
}

/// Remove every key of this test's prefix from the shared Redis.
fn forget_prefix(prefix: &str) {
    let keys = std::process::Command::new("redis-cli")
        .args(["--scan", "--pattern", &format!("{prefix}:*")])
        .output()
        .expect("redis-cli runs");
    for key in String::from_utf8_lossy(&keys.stdout).lines() {
        let _ = std::process::Command::new("redis-cli")
            .args(["del", key])
            .output();
    }
}

/// One connection joins three rooms in turn, each owned by another node, and two more
/// connections do the same from the node that owns their first room. The script; each
/// member's transcript by its name. `n` holds where each of three seats connects.
async fn hop(n: [&str; 3]) -> Vec<(&'static str, Vec<String>)> {
    use common::cluster::Member;
    let leave =
        |room: &str, uid: &str| json!({"cmd":"leave","appId":"10000","roomId":room,"uid":uid});
    // Each room's first member makes its node the room's owner: A on the second node, B on
    // the third, C on the first.
    let mut ann = Member::connect(n[1], "ann").await;
    ann.send(join("hop-a", "ann", "Ann")).await;
    ann.until("respJoin").await;
    let mut bea = Member::connect(n[2], "bea").await;
    bea.send(join("hop-b", "bea", "Bea")).await;
    bea.until("respJoin").await;
    let mut cat = Member::connect(n[0], "cat").await;
    cat.send(join("hop-c", "cat", "Cat")).await;
    cat.until("respJoin").await;
    // Sam's socket is on the first node; A is owned by the second.
    let mut sam = Member::connect(n[0], "sam").await;
    sam.send(join("hop-a", "sam", "Sam")).await;
    sam.until("respJoin").await;
    ann.until("notifyNewPeer").await;
    // Still in A: another room is refused ("leave it first"), wherever that room lives.
    sam.send(join("hop-b", "sam", "Sam")).await;
    sam.until("respJoin").await;
    sam.send(leave("hop-a", "sam")).await;
    sam.until("respLeave").await;
    ann.until("relayLeave").await;
    // A to B: from the second node's room to the third's.
    sam.send(join("hop-b", "sam", "Sam")).await;
    sam.until("respJoin").await;
    bea.until("notifyNewPeer").await;
    sam.send(json!({"cmd":"offer","remoteUid":"bea","msg":"{\"type\":\"offer\"}"}))
        .await;
    sam.until("respOffer").await;
    bea.until("relayOffer").await;
    bea.send(json!({"cmd":"answer","remoteUid":"sam","msg":"{\"type\":\"answer\"}"}))
        .await;
    sam.until("relayAnswer").await;
    // B to C: from the third node's room to one owned where the socket is.
    sam.send(leave("hop-b", "sam")).await;
    sam.until("respLeave").await;
    bea.until("relayLeave").await;
    sam.send(join("hop-c", "sam", "Sam")).await;
    sam.until("respJoin").await;
    cat.until("notifyNewPeer").await;
    cat.send(json!({"cmd":"offer","remoteUid":"sam","msg":"{\"type\":\"offer\"}"}))
        .await;
    cat.until("respOffer").await;
    sam.until("relayOffer").await;
    // Lou's socket is on the second node, which owns A: from there to B.
    let mut lou = Member::connect(n[1], "lou").await;
    lou.send(join("hop-a", "lou", "Lou")).await;
    lou.until("respJoin").await;
    ann.until("notifyNewPeer").await;
    lou.send(leave("hop-a", "lou")).await;
    lou.until("respLeave").await;
    ann.until("relayLeave").await;
    lou.send(join("hop-b", "lou", "Lou")).await;
    lou.until("respJoin").await;
    bea.until("notifyNewPeer").await;
    lou.send(json!({"cmd":"offer","remoteUid":"bea","msg":"{\"type\":\"offer\"}"}))
        .await;
    lou.until("respOffer").await;
    bea.until("relayOffer").await;
    // A join refused (a uid that is in the room already, without its key) leaves the
    // connection in no room: it may join elsewhere. Ned's socket is on the third node.
    let mut ned = Member::connect(n[2], "ned").await;
    ned.send(join("hop-a", "ann", "Ann")).await;
    ned.until("respJoin").await;
    ned.send(join("hop-c", "ned", "Ned")).await;
    ned.until("respJoin").await;
    cat.until("notifyNewPeer").await;
    sam.until("notifyNewPeer").await;
    // Closed with a close frame: each leaves the room it is in now.
    sam.close().await;
    cat.until("relayLeave").await;
    ned.until("relayLeave").await;
    ned.close().await;
    cat.until("relayLeave").await;
    lou.close().await;
    bea.until("relayLeave").await;
    for m in [&mut ann, &mut bea, &mut cat] {
        m.sync().await;
    }
    vec![
        ("ann", ann.transcript),
        ("bea", bea.transcript),
        ("cat", cat.transcript),
        ("sam", sam.transcript),
        ("lou", lou.transcript),
        ("ned", ned.transcript),
    ]
}

/// A connection that left its room (or whose join was refused) joins a room another node
/// owns: it is served there from then on, exactly as one node serves a second join on the
/// same connection.
#[tokio::test]
async fn a_join_to_another_room_moves_the_socket_to_that_room_s_owner() {
    let prefix = Prefix(format!("rtcroom-smoke-hop-{}", std::process::id()));
    let single = Server::start(&[
        ("RTCROOM_DATABASE_URL", "off"),
        ("RTCROOM_ICE_MODE", "static"),
        ("RTCROOM_AUTH_REQUIRED", "false"),
    ]);
    let a = node(&prefix.0);
    let b = node(&prefix.0);
    let c = node(&prefix.0);
    wait_for_nodes(&[&a, &b, &c], 3).await;
    let one = single.addr.as_str();
    let alone = hop([one, one, one]).await;
    let spread = hop([a.addr.as_str(), b.addr.as_str(), c.addr.as_str()]).await;
    for ((who, expected), (_, got)) in alone.iter().zip(&spread) {
        assert_eq!(
            got,
            expected,
            "{who}'s transcript across three nodes differs from one node's:\ncluster:\n{}\none node:\n{}",
            got.join("\n"),
            expected.join("\n")
        );
    }
    // The script did what it says (the comparison alone would pass if both runs broke alike).
    let t = |who: &str| spread.iter().find(|(w, _)| *w == who).unwrap().1.join("\n");
    assert!(t("sam").contains("leave it first"), "{}", t("sam"));
    let joined = |who: &str| {
        let t = t(who);
        let n = t
            .lines()
            .filter(|l| l.contains("\"cmd\":\"respJoin\"") && l.contains("\"result\":0"))
            .count();
        (n, t)
    };
    let (n, sam) = joined("sam");
    assert_eq!(n, 3, "sam joined three rooms in turn: {sam}");
    assert!(t("bea").contains("\"uid\":\"sam\""), "{}", t("bea"));
    assert!(t("bea").contains("\"uid\":\"lou\""), "{}", t("bea"));
    assert!(t("cat").contains("\"uid\":\"ned\""), "{}", t("cat"));
    assert!(t("ned").contains("\"result\":13"), "{}", t("ned"));
    // Each node owns the one room it was first in; nobody opened a room elsewhere.
    for node in [&a, &b, &c] {
        common::wait_until("one room per node", || async {
            node.metrics().await.get("rtcroom_cluster_rooms_owned") == Some(&1.0)
        })
        .await;
    }
}

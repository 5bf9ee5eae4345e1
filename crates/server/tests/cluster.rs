//! Three nodes with `[cluster]`, one three-party call with each member on a different node,
//! walking every protocol behaviour: join and capacity, offers, answers and candidates,
//! relayLeave, turnTalkType, keepLive and the heartbeat timeout, the room list and a kick
//! through the admin API of a node that is not the room's owner, token prompt, renewal and expiry, rejoin on the
//! same connection and resume on another node. Each member's transcript (every message it
//! got, ids and times normalized) must be identical to the same script's on one node without
//! `[cluster]`: a member cannot tell that the room spans nodes.

mod common;

use common::Server;
use common::cluster::{Cluster, Member, unique};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Tokens are required (so that prompt and expiry happen), prompted 3 s before they expire.
const CONFIG: &str = "[auth]\nrequired = true\ntoken_prompt_secs = 3\n\n[[apps]]\nid = \"10000\"\nsecret = \"cluster-walk-secret\"\n";

/// The settings both runs share: the smallest heartbeat timeout the server takes.
const ENV: &[(&str, &str)] = &[
    ("RTCROOM_AUTH_REQUIRED", "true"),
    ("RTCROOM_ROOM_HEARTBEAT_TIMEOUT_SECS", "5"),
    ("RTCROOM_ADMIN_TOKEN", "adm"),
];

/// A token for `uid` valid for `ttl` seconds, minted with the app's key by `rtcroom token`.
fn token(cfg: &Path, uid: &str, ttl: u64) -> String {
    let out = common::rtcroom_command(&std::env::temp_dir())
        .args(["token", "--app", "10000", "--uid", uid, "--config"])
        .arg(cfg)
        .env("RTCROOM_AUTH_TOKEN_TTL_SECS", ttl.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Where the script runs: the address each of the three seats connects to, and what to
/// check of the cluster while the call is complete.
struct Place<'a> {
    nodes: [String; 3],
    cluster: Option<&'a Cluster>,
}

/// Keep every member heard (keepLive) while waiting until `done` holds; then sync them all.
async fn wait_all(ms: &mut [&mut Member], what: &str, done: impl Fn(&[&mut Member]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(ms) {
        if Instant::now() >= deadline {
            let seen: Vec<String> = ms
                .iter()
                .map(|m| {
                    format!(
                        "{} (open: {}):\n{}",
                        m.uid,
                        m.is_open(),
                        m.transcript.join("\n")
                    )
                })
                .collect();
            panic!("timed out waiting for {what}; so far:\n{}", seen.join("\n"));
        }
        for m in ms.iter_mut() {
            m.ping().await;
        }
        for m in ms.iter_mut() {
            m.pump(Duration::from_millis(150)).await;
        }
    }
    sync(ms).await;
}

async fn sync(ms: &mut [&mut Member]) {
    for m in ms.iter_mut() {
        m.sync().await;
    }
}

/// `from` offers to `to`, `to` answers, both send a candidate.
async fn negotiate(from: &mut Member, to: &mut Member) {
    let (f, t) = (from.uid.clone(), to.uid.clone());
    from.send(json!({"cmd":"offer","remoteUid":t,"msg":"{\"type\":\"offer\"}"}))
        .await;
    from.until("respOffer").await;
    to.sync().await;
    to.send(json!({"cmd":"answer","remoteUid":f,"msg":"{\"type\":\"answer\"}"}))
        .await;
    to.sync().await;
    from.send(json!({"cmd":"candidate","remoteUid":t,"msg":"{\"candidate\":\"candidate:1 1 udp 1 127.0.0.1 5000 typ host\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}"}))
        .await;
    from.sync().await;
    to.send(json!({"cmd":"candidate","remoteUid":f,"msg":{"type":"candidate","label":0,"id":"0","candidate":"candidate:2 1 udp 1 127.0.0.1 5001 typ host"}}))
        .await;
    to.sync().await;
    from.sync().await;
}

async fn connected(m: &mut Member, remote: &str, kind: &str) {
    m.send(json!({"cmd":"peerConnected","remoteUid":remote,"connectType":kind}))
        .await;
    m.until("respPeerConnected").await;
}

/// The script; each member's transcript by its label.
async fn walk(place: Place<'_>, cfg: &Path, room: &str) -> Vec<(&'static str, Vec<String>)> {
    let n = &place.nodes;
    let join = |uid: &str, name: &str| -> Value {
        let mut j = common::join(room, uid, name);
        j["token"] = json!(token(cfg, uid, 3600));
        j
    };
    // Join: alice first (her node owns the room), then bob and carol on the other nodes.
    let mut a = Member::connect(&n[0], "alice").await;
    a.send(join("alice", "Alice")).await;
    let ja = a.until("respJoin").await;
    let mut b = Member::connect(&n[1], "bob").await;
    b.send(join("bob", "Bob")).await;
    b.until("respJoin").await;
    a.sync().await;
    let mut c = Member::connect(&n[2], "carol").await;
    c.send(join("carol", "Carol")).await;
    c.until("respJoin").await;
    sync(&mut [&mut a, &mut b, &mut c]).await;
    // Capacity: a fourth is refused.
    let mut dan = Member::connect(&n[1], "dan").await;
    dan.send(join("dan", "Dan")).await;
    dan.until("respJoin").await;
    dan.close().await;
    sync(&mut [&mut a, &mut b, &mut c]).await;
    if let Some(cluster) = place.cluster {
        // The room spans the nodes: one owner, two members served for it by other nodes
        // (dan's refused connection is let go once its close reaches the owner).
        common::wait_until("one owner serving two remote members", || async {
            cluster.total("rtcroom_cluster_rooms_owned").await == 1.0
                && cluster.metric(0, "rtcroom_cluster_rooms_owned").await == 1.0
                && cluster.total("rtcroom_cluster_remote_members").await == 2.0
        })
        .await;
    }
    // The admin API of a node that does not own the room lists it with its three members.
    let (status, body) = common::http(
        "GET",
        &format!("http://{}/api/rooms", n[2]),
        Some("adm"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rooms: Value = serde_json::from_str(&body).unwrap();
    let listed = rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["roomId"] == room)
        .unwrap_or_else(|| panic!("{room} is not listed: {rooms}"));
    let mut uids: Vec<String> = listed["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m["uid"].as_str().unwrap_or_default(),
                m["connected"]
            )
        })
        .collect();
    uids.sort();
    let admin = vec![format!("/api/rooms: {} {uids:?}", listed["appId"])];
    // Offers, answers and candidates between every pair; two pairs connect.
    negotiate(&mut a, &mut b).await;
    negotiate(&mut a, &mut c).await;
    negotiate(&mut b, &mut c).await;
    for (m, remote, kind) in [(&mut a, "bob", "TURN"), (&mut b, "alice", "TURN")] {
        connected(m, remote, kind).await;
    }
    connected(&mut a, "carol", "STUN").await;
    connected(&mut c, "alice", "STUN").await;
    sync(&mut [&mut a, &mut b, &mut c]).await;
    // A device switch.
    b.send(json!({"cmd":"turnTalkType","index":1,"enable":false}))
        .await;
    b.until("respTurnTalkType").await;
    sync(&mut [&mut a, &mut b, &mut c]).await;
    // relayLeave, then carol joins again on her connection and offers anew.
    c.send(json!({"cmd":"leave"})).await;
    c.until("respLeave").await;
    sync(&mut [&mut a, &mut b, &mut c]).await;
    c.send(join("carol", "Carol")).await;
    c.until("respJoin").await;
    sync(&mut [&mut a, &mut b, &mut c]).await;
    negotiate(&mut c, &mut a).await;
    sync(&mut [&mut a, &mut b, &mut c]).await;
    // Rejoin on the same connection: bob keeps his session, the others are told anew.
    b.send(join("bob", "Bobby")).await;
    b.until("respJoin").await;
    sync(&mut [&mut a, &mut b, &mut c]).await;
    // Resume on another connection (another node in the cluster) with the resume key.
    let mut a2 = Member::connect(&n[2], "alice").await;
    let mut resume = join("alice", "Alice");
    resume["resumeKey"] = ja["resumeKey"].clone();
    a2.send(resume).await;
    a2.until("respJoin").await;
    a.until_closed().await;
    sync(&mut [&mut a2, &mut b, &mut c]).await;
    a2.send(
        json!({"cmd":"offer","remoteUid":"bob","isIceReset":true,"msg":"{\"type\":\"offer\"}"}),
    )
    .await;
    a2.until("respOffer").await;
    sync(&mut [&mut a2, &mut b, &mut c]).await;
    // Tokens: bob and carol renew with tokens that expire in 5 s; both are prompted; bob
    // renews again for an hour, carol does not and is removed when hers expires.
    for m in [&mut b, &mut c] {
        let short = token(cfg, &m.uid, 5);
        m.send(json!({"cmd":"updateToken","token":short})).await;
        m.until("respUpdateToken").await;
    }
    wait_all(&mut [&mut a2, &mut b, &mut c], "the token prompts", |ms| {
        ms[1].count("systemPromptToken") == 1 && ms[2].count("systemPromptToken") == 1
    })
    .await;
    b.send(json!({"cmd":"updateToken","token":token(cfg, "bob", 3600)}))
        .await;
    b.until("respUpdateToken").await;
    wait_all(&mut [&mut a2, &mut b, &mut c], "carol's expiry", |ms| {
        !ms[2].is_open() && ms[0].count("relayLeave") == 1 && ms[1].count("relayLeave") == 2
    })
    .await;
    // A kick through the admin API of a node that does not own the room.
    let mut dave = Member::connect(&n[0], "dave").await;
    dave.send(join("dave", "Dave")).await;
    dave.until("respJoin").await;
    sync(&mut [&mut a2, &mut b, &mut dave]).await;
    let (status, body) = common::http(
        "POST",
        &format!("http://{}/api/rooms/10000/{room}/kick", n[1]),
        Some("adm"),
        Some(&json!({"uid":"dave","reason":"spamming"}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    dave.until_closed().await;
    sync(&mut [&mut a2, &mut b]).await;
    // The heartbeat timeout: erin's connection drops without a close.
    let mut erin = Member::connect(&n[1], "erin").await;
    erin.send(join("erin", "Erin")).await;
    erin.until("respJoin").await;
    sync(&mut [&mut a2, &mut b, &mut erin]).await;
    erin.drop_abruptly();
    wait_all(&mut [&mut a2, &mut b], "erin's timeout", |ms| {
        ms[0].count("relayLeave") == 3 && ms[1].count("relayLeave") == 4
    })
    .await;
    // The end.
    a2.send(json!({"cmd":"leave"})).await;
    a2.until("respLeave").await;
    b.sync().await;
    b.send(json!({"cmd":"leave"})).await;
    b.until("respLeave").await;
    vec![
        ("alice", a.transcript),
        ("alice resumed", a2.transcript),
        ("bob", b.transcript),
        ("carol", c.transcript),
        ("dan", dan.transcript),
        ("dave", dave.transcript),
        ("erin", erin.transcript),
        ("admin", admin),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_across_three_nodes_reads_exactly_like_one_node() {
    let cfg = common::config_file(&unique("cluster-walk"), CONFIG);
    let single = Server::start_with(ENV, Some(&cfg));
    let cluster = Cluster::start_with("walk", 3, ENV, Some(cfg.clone())).await;
    let room = unique("walk");
    let one = single.addr.clone();
    let (alone, spread) = tokio::join!(
        walk(
            Place {
                nodes: [one.clone(), one.clone(), one],
                cluster: None,
            },
            &cfg,
            &room
        ),
        walk(
            Place {
                nodes: [0, 1, 2].map(|i| cluster.node(i).addr.clone()),
                cluster: Some(&cluster),
            },
            &cfg,
            &room
        ),
    );
    for ((who, expected), (_, got)) in alone.iter().zip(&spread) {
        assert_eq!(
            got,
            expected,
            "{who}'s transcript across three nodes differs from one node's:\ncluster:\n{}\none node:\n{}",
            got.join("\n"),
            expected.join("\n")
        );
    }
    // The walk did what it says (the comparison alone would pass if both runs broke alike).
    let t = |who: &str| spread.iter().find(|(w, _)| *w == who).unwrap().1.join("\n");
    assert!(t("alice").ends_with("closed Some(4001)"), "{}", t("alice"));
    assert!(
        t("carol").contains("\"desc\":\"token is expire\""),
        "{}",
        t("carol")
    );
    assert!(t("carol").ends_with("closed Some(4003)"), "{}", t("carol"));
    assert!(t("dave").contains("\"desc\":\"spamming\""), "{}", t("dave"));
    assert!(t("dave").ends_with("closed Some(4004)"), "{}", t("dave"));
    assert!(t("dan").contains("room is full"), "{}", t("dan"));
    assert!(
        t("alice resumed").contains("\"resumed\":true"),
        "{}",
        t("alice resumed")
    );
    assert!(
        t("bob").contains("\"cmd\":\"relayTurnTalkType\"")
            || t("alice").contains("\"cmd\":\"relayTurnTalkType\"")
    );
    assert!(
        t("bob").contains("\"cmd\":\"relayCandidate\""),
        "{}",
        t("bob")
    );
    assert!(t("bob").contains("\"uid\":\"erin\""), "{}", t("bob"));
    assert_eq!(
        t("admin"),
        "/api/rooms: \"10000\" [\"alice:true\", \"bob:true\", \"carol:true\"]"
    );
    drop(cluster);
    std::fs::remove_file(cfg).unwrap();
}

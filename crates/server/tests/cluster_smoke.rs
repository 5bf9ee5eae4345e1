//! Two nodes of a cluster on the shared Redis (a key prefix of their own): a room with one
//! member on each node, offers and answers relayed both ways through the room's owner.

mod common;

use common::{Server, join};
use serde_json::json;

fn node(prefix: &str) -> Server {
    Server::start(&[
        ("RTCROOM_CLUSTER_REDIS", "redis://127.0.0.1:6379/0"),
        ("RTCROOM_CLUSTER_KEY_PREFIX", prefix),
        ("RTCROOM_CLUSTER_HEARTBEAT_MS", "200"),
        ("RTCROOM_CLUSTER_DEAD_AFTER_MS", "600"),
        ("RTCROOM_DATABASE_URL", "off"),
        ("RTCROOM_ICE_MODE", "static"),
        ("RTCROOM_AUTH_REQUIRED", "false"),
    ])
}

#[tokio::test]
async fn a_room_spans_two_nodes_and_relays_both_ways() {
    let prefix = format!("rtcroom-smoke-{}", std::process::id());
    let a = node(&prefix);
    let b = node(&prefix);
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
    bob.send(json!({"cmd":"leave","appId":"10000","roomId":"smoke","uid":"bob"}))
        .await;
    let left = bob.expect("respLeave").await;
    assert_eq!(left["result"], 0, "{left}");
    alice.expect("relayLeave").await;
    drop((a, b));
    forget_prefix(&prefix);
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

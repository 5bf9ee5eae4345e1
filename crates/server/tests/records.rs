//! A three-party call through the real binary, on each database backend, and every row and
//! column it should produce: a relayed (TURN) pair, a P2P pair, a pair that never connected,
//! a member who timed out, quality rows with loss as a string and as a number.

mod common;

use common::{Client, Server, http, join};
use rtcroom_store::{SessionDetail, Store};
use serde_json::json;
use std::time::{Duration, Instant};

fn db_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "rtcroom_rec_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000
    )
}

async fn backend_url(kind: &str) -> String {
    let name = db_name();
    let url = match kind {
        "sqlite" => format!(
            "sqlite://{}",
            std::env::temp_dir().join(format!("{name}.db")).display()
        ),
        "mysql" => format!("mysql://root@127.0.0.1:3306/{name}"),
        "postgres" => format!("postgres://postgres@127.0.0.1:5432/{name}"),
        _ => unreachable!(),
    };
    if kind != "sqlite" {
        Store::create_database(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot create a {kind} database ({e}); is the server running? scripts/deps/services.sh starts it"));
    }
    url
}

async fn connected(a: &mut Client, b: &mut Client, a_uid: &str, b_uid: &str, kind: Option<&str>) {
    a.send(json!({"cmd":"offer","remoteUid":b_uid,"msg":"{\"type\":\"offer\"}"}))
        .await;
    b.expect("relayOffer").await;
    a.expect("respOffer").await;
    b.send(json!({"cmd":"answer","remoteUid":a_uid,"msg":"{\"type\":\"answer\"}"}))
        .await;
    a.expect("relayAnswer").await;
    if let Some(kind) = kind {
        a.send(json!({"cmd":"peerConnected","remoteUid":b_uid,"connectType":kind}))
            .await;
        a.expect("respPeerConnected").await;
        b.send(json!({"cmd":"peerConnected","remoteUid":a_uid,"connectType":kind}))
            .await;
        b.expect("respPeerConnected").await;
    }
}

async fn member(server: &Server, uid: &str) -> Vec<SessionDetail> {
    let url = format!("http://{}/api/records/member/10000/{uid}", server.addr);
    let (status, body) = http("GET", &url, Some("adm"), None).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Wait (bounded) until the writer has closed every session of the call.
async fn closed_sessions(server: &Server, uids: &[&str]) -> Vec<SessionDetail> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut all = Vec::new();
        for uid in uids {
            all.extend(member(server, uid).await);
        }
        let done = all.len() == uids.len()
            && all.iter().all(|s| {
                s.session.leave_time.is_some()
                    && s.sub_sessions
                        .iter()
                        .all(|x| x.sub_session.finish_time.is_some())
            });
        if done {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "records did not arrive: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn three_party_call(kind: &str) {
    let url = backend_url(kind).await;
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_DATABASE_URL", &url),
        ("RTCROOM_ROOM_HEARTBEAT_TIMEOUT_SECS", "5"),
        ("RTCROOM_ADMIN_TOKEN", "adm"),
    ]);
    let (mut a, mut b, mut c) = (
        server.client().await,
        server.client().await,
        server.client().await,
    );
    a.send(join("call", "alice", "Alice")).await;
    a.expect("respJoin").await;
    b.send(join("call", "bob", "Bob")).await;
    b.expect("respJoin").await;
    a.expect("notifyNewPeer").await;
    c.send(join("call", "carol", "Carol")).await;
    c.expect("respJoin").await;
    a.expect("notifyNewPeer").await;
    b.expect("notifyNewPeer").await;
    // alice–bob relayed, alice–carol P2P, bob–carol offered but never connected.
    connected(&mut a, &mut b, "alice", "bob", Some("TURN")).await;
    connected(&mut a, &mut c, "alice", "carol", Some("STUN")).await;
    connected(&mut b, &mut c, "bob", "carol", None).await;
    b.send(json!({"cmd":"reportStats","remoteId":"alice","audio":{"recv":{"bitRate":39,"packetsLostRate":"0.50"}},
        "video":{"recv":{"bitRate":600,"packetsLostRate":"1.25","frameRateRecv":30,"width":640,"height":480}}})).await;
    b.send(json!({"cmd":"reportStats","remoteUid":"alice","audio":{"recv":{"bitRate":41,"packetsLostRate":0.7}},
        "video":{"recv":{"bitRate":620,"packetsLostRate":0.75}}})).await;
    // Carol's connection drops without a close: she times out after 5 s, while the others
    // keep their connections alive.
    c.drop_abruptly();
    let mut left = Vec::new();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        for m in [&mut a, &mut b] {
            m.send(json!({"cmd":"keepLive"})).await;
            // carol's relayLeave may come before the answer.
            loop {
                let msg = m.recv().await;
                match msg["cmd"].as_str() {
                    Some("respKeepLive") => break,
                    Some("relayLeave") => left.push(msg["uid"].as_str().unwrap().to_owned()),
                    _ => panic!("unexpected {msg}"),
                }
            }
        }
    }
    assert_eq!(left, ["carol", "carol"], "both were told carol timed out");
    b.send(json!({"cmd":"leave"})).await;
    b.expect("respLeave").await;
    a.close().await;

    let sessions = closed_sessions(&server, &["alice", "bob", "carol"]).await;
    let s = |uid: &str| sessions.iter().find(|s| s.session.user_id == uid).unwrap();
    let (alice, bob, carol) = (s("alice"), s("bob"), s("carol"));
    for m in [alice, bob, carol] {
        let row = &m.session;
        assert_eq!(
            (row.app_id.as_str(), row.room_id.as_str()),
            ("10000", "call")
        );
        assert_eq!(
            (row.user_ip.as_str(), row.os_name.as_str()),
            ("127.0.0.1", "Win32")
        );
        assert_eq!(
            (row.browser.as_str(), row.sdk_info.as_str(), row.talk_type),
            ("chrome58.0", "1.0.0", 1)
        );
        assert!(row.join_time.is_some() && row.create_time.is_some());
        assert!(row.leave_time >= row.join_time);
        assert_eq!(m.sub_sessions.len(), 2, "{m:#?}");
        let mut ids = m.sub_session_ids.clone();
        ids.sort();
        let mut subs: Vec<String> = m
            .sub_sessions
            .iter()
            .map(|x| x.sub_session.sub_session_id.clone())
            .collect();
        subs.sort();
        assert_eq!(ids, subs, "sub_session_ids lists the member's sub-sessions");
    }
    assert_eq!(
        (
            alice.session.time_out,
            bob.session.time_out,
            carol.session.time_out
        ),
        (false, false, true)
    );
    assert!(carol.session.duration >= 5, "{:?}", carol.session);
    let sub = |m: &SessionDetail, remote: &str| {
        m.sub_sessions
            .iter()
            .find(|x| x.sub_session.remote_user_id == remote)
            .unwrap()
            .clone()
    };
    // Relayed and ended by a leave: status 0, billed at the TURN price (1 cent a minute).
    for x in [sub(alice, "bob"), sub(bob, "alice")] {
        let r = &x.sub_session;
        assert_eq!((r.connect_type.as_str(), r.status), ("TURN", 0), "{r:?}");
        assert!(r.begin_time.is_some() && r.connect_time.is_some() && r.finish_time.is_some());
        assert!(r.duration >= 5, "{r:?}");
        assert_eq!(
            r.cost,
            r.duration.div_euclid(60) + i64::from(r.duration % 60 != 0),
            "{r:?}"
        );
        assert_eq!(
            r.ice_ip, "127.0.0.1",
            "the embedded TURN server served the pair"
        );
    }
    // P2P, ended by carol's timeout: status 1, free.
    for x in [sub(alice, "carol"), sub(carol, "alice")] {
        let r = &x.sub_session;
        assert_eq!(
            (r.connect_type.as_str(), r.status, r.cost),
            ("STUN", 1, 0),
            "{r:?}"
        );
        assert!(r.duration >= 5);
    }
    // Never connected, ended by the timeout: status 3, no duration, no cost.
    for x in [sub(bob, "carol"), sub(carol, "bob")] {
        let r = &x.sub_session;
        assert_eq!((r.status, r.duration, r.cost), (3, 0, 0), "{r:?}");
        assert!(r.connect_time.is_none() && r.begin_time.is_some());
        assert_eq!(r.remote_user_ip, "127.0.0.1");
    }
    assert_eq!(sub(alice, "bob").sub_session.remote_user_name, "Bob");
    // Bob's two reports about alice, loss read from a string and from a number.
    let q = sub(bob, "alice").quality;
    assert_eq!(q.reports, 2);
    assert_eq!(q.aud_rcv_bitrate.avg, Some(40.0));
    assert!(
        (q.aud_rcv_lost_rate.max.unwrap() - 0.7).abs() < 1e-3,
        "{q:?}"
    );
    assert!(
        (q.vid_rcv_lost_rate.min.unwrap() - 0.75).abs() < 1e-3,
        "{q:?}"
    );
    assert_eq!(sub(alice, "bob").quality.reports, 0);

    drop(server);
    if kind != "sqlite" {
        Store::drop_database(&url).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_party_call_is_recorded_on_every_backend() {
    tokio::join!(
        three_party_call("sqlite"),
        three_party_call("mysql"),
        three_party_call("postgres")
    );
}

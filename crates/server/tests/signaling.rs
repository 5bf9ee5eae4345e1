//! The document's call flow (section 6), with the document's own example messages, through
//! the real binary on a free port.

mod common;

use common::{Server, join, parse_prometheus};
use serde_json::json;

/// The offer of document 6.7 as the original web SDK sends it: `msg` is a string of JSON.
const OFFER_MSG: &str = r#""{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- 412018014342451671 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\na=group:BUNDLE audio video\\r\\n\"}""#;

#[tokio::test]
async fn the_documents_call_flow() {
    let server = Server::start(&[("RTCROOM_AUTH_REQUIRED", "false")]);
    let mut a = server.client().await;
    let mut b = server.client().await;

    // 6.1/6.2.1: the first member gets an empty room.
    a.send(join("22", "524965486", "client_535")).await;
    let resp = a.expect("respJoin").await;
    assert_eq!(resp["result"], 0);
    assert_eq!(resp["desc"], "ok");
    assert_eq!(resp["roomId"], "22");
    assert_eq!(resp["uid"], "524965486");
    assert_eq!(resp["reportStatsInterval"], 15);
    assert_eq!(resp["userList"], serde_json::Value::Null);
    let a_session = resp["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(a_session.len(), 26, "a ULID");

    // 6.2.2 and 6.3: the second gets the first in userList; the first gets notifyNewPeer.
    b.send(join("22", "851764077", "client_267")).await;
    let resp = b.expect("respJoin").await;
    assert_eq!(
        resp["userList"],
        json!([{"appId":"10000","uid":"524965486","uname":"client_535","userType":0,"talkType":1}])
    );
    let b_session = resp["sessionId"].as_str().unwrap().to_owned();
    assert_ne!(a_session, b_session);
    let notify = a.expect("notifyNewPeer").await;
    assert_eq!(notify["uid"], "851764077");
    assert_eq!(notify["rtcConfig"]["bundlePolicy"], "max-bundle");
    assert!(notify["rtcConfig"]["iceServers"].is_array());

    // 6.7–6.9: the existing member offers; msg is relayed byte-for-byte.
    let offer = format!(
        r#"{{"cmd":"offer","appId":"10000","sessionId":"{a_session}","roomId":"22","roomName":"talk-now","uid":"524965486","uname":"client_535","remoteUid":"851764077","time":"1560152983","msg":{OFFER_MSG}}}"#
    );
    a.send_text(&offer).await;
    let relay = b.recv_text().await;
    assert!(
        relay.contains(&format!(r#""msg":{OFFER_MSG}"#)),
        "msg not verbatim in {relay}"
    );
    let relay: serde_json::Value = serde_json::from_str(&relay).unwrap();
    assert_eq!(relay["cmd"], "relayOffer");
    assert_eq!(relay["uid"], "524965486");
    assert_eq!(relay["remoteUid"], "851764077");
    assert_eq!(relay["isIceReset"], false);
    let resp = a.expect("respOffer").await;
    assert_eq!(resp["result"], 0);
    assert_eq!(resp["remoteUid"], "851764077");
    let a_to_b = resp["subSessionId"].as_str().unwrap();
    let b_to_a = relay["subSessionId"].as_str().unwrap();
    assert_eq!((a_to_b.len(), b_to_a.len()), (26, 26));
    assert_ne!(a_to_b, b_to_a, "two directions, two sub-sessions");

    // 6.10–6.12: the answer goes back; no respAnswer on success.
    let answer_msg = json!({"type": "answer", "sdp": "v=0\r\n"});
    b.send(
        json!({"cmd":"answer","appId":"10000","sessionId":b_session,"roomId":"22","uid":"851764077",
        "uname":"client_267","remoteUid":"524965486","time":"1560152984","msg":answer_msg}),
    )
    .await;
    let relay = a.expect("relayAnswer").await;
    assert_eq!(relay["uid"], "851764077");
    assert_eq!(relay["msg"], answer_msg);

    // 6.13–6.15: candidates both ways, in the browser form and the Android form.
    b.send(json!({"cmd":"candidate","appId":"10000","sessionId":b_session,"roomId":"22","uid":"851764077",
        "remoteUid":"524965486","time":"1560152984",
        "msg":"{\"candidate\":\"candidate:3789381465 1 udp 2122260223 192.168.154.1 53202 typ host generation 0\",\"sdpMid\":\"audio\",\"sdpMLineIndex\":0}"}))
        .await;
    let relay = a.expect("relayCandidate").await;
    assert_eq!(relay["remoteUid"], "524965486");
    assert!(relay["msg"].as_str().unwrap().contains("typ host"));
    a.send(json!({"cmd":"candidate","remoteUid":"851764077","msg":{"type":"candidate","label":0,"id":"audio","candidate":"candidate:1 1 udp 1 10.0.0.1 5 typ host"}}))
        .await;
    assert_eq!(b.expect("relayCandidate").await["msg"]["label"], 0);

    // 6.16/6.17: heartbeat.
    a.send(json!({"cmd":"keepLive","appId":"10000","sessionId":a_session,"roomId":"22","uid":"524965486","time":"1560152985"}))
        .await;
    assert_eq!(
        a.expect("respKeepLive").await,
        json!({"cmd":"respKeepLive","result":0,"desc":"ok"})
    );

    // 6.18–6.20: device switches reach the others.
    b.send(json!({"cmd":"turnTalkType","appId":"10000","sessionId":b_session,"roomId":"22","uid":"851764077",
        "uname":"client_267","index":1,"enable":false,"time":"1560157482"}))
        .await;
    assert_eq!(b.expect("respTurnTalkType").await["result"], 0);
    assert_eq!(
        a.expect("relayTurnTalkType").await,
        json!({"cmd":"relayTurnTalkType","uid":"851764077","uname":"client_267","index":1,"enable":false})
    );

    // 6.21/6.22: the pair connected.
    a.send(json!({"cmd":"peerConnected","appId":"10000","sessionId":a_session,"connectType":"TURN","roomId":"22",
        "uid":"524965486","uname":"client_535","remoteUid":"851764077","time":"1560152953"}))
        .await;
    assert_eq!(a.expect("respPeerConnected").await["result"], 0);

    // 6.23/6.24: reports are accepted silently.
    b.send(json!({"cmd":"reportStats","appId":"10000","subSessionId":b_to_a,"roomId":"22","uid":"851764077",
        "remoteId":"524965486","audio":{"send":{"packetsLostRate":"0.00","bitRate":39},"recv":{"packetsLostRate":"0.00","bitRate":39}},
        "video":{"send":{"frameRateSent":30,"width":640,"height":480,"codecName":"VP8","packetsLostRate":"0.00","bitRate":604},
        "recv":{"frameRateRecv":30,"width":640,"height":480,"codecName":"VP8","packetsLostRate":"0.00","bitRate":607}},"time":"1560153017"}))
        .await;
    b.send(json!({"cmd":"reportInfo","appId":"10000","sessionId":b_session,"roomId":"22","uid":"851764077","uname":"client_267",
        "result":9,"desc":"ice server invalid","data1":{"iceTransportPolicy":"relay"},"data2":null,"time":"1560152970"}))
        .await;
    b.send(json!({"cmd":"keepLive"})).await;
    assert_eq!(
        b.expect("respKeepLive").await["result"],
        0,
        "reports got no answer"
    );

    // A third member fills the room; a fourth is refused (6.2.3).
    let mut c = server.client().await;
    c.send(join("22", "974825066", "client_183")).await;
    let resp = c.expect("respJoin").await;
    assert_eq!(resp["userList"].as_array().unwrap().len(), 2);
    a.expect("notifyNewPeer").await;
    b.expect("notifyNewPeer").await;
    let mut d = server.client().await;
    d.send(join("22", "075640288", "client_178")).await;
    let resp = d.expect("respJoin").await;
    assert_eq!(resp["result"], 1);
    assert_eq!(resp["desc"], "room is full, it up to max number:3");
    assert_eq!(resp["sessionId"], "");
    assert_eq!(resp["uid"], "075640288");

    // 6.4–6.6: leave; the others are told.
    c.send(json!({"cmd":"leave","appId":"10000","sessionId":"x","roomId":"22","uid":"974825066","uname":"client_183","userType":0,"time":"1560152982"}))
        .await;
    let resp = c.expect("respLeave").await;
    assert_eq!(resp["result"], 0);
    assert_eq!(resp["uid"], "974825066");
    let expected = json!({"cmd":"relayLeave","uid":"974825066","uname":"client_183","userType":0});
    assert_eq!(a.expect("relayLeave").await, expected);
    assert_eq!(b.expect("relayLeave").await, expected);

    // Now there is room for the fourth.
    d.send(join("22", "075640288", "client_178")).await;
    assert_eq!(d.expect("respJoin").await["result"], 0);

    // A clean close leaves at once.
    d.close().await;
    assert_eq!(a.expect("notifyNewPeer").await["uid"], "075640288");
    assert_eq!(a.expect("relayLeave").await["uid"], "075640288");
}

#[tokio::test]
async fn garbage_gets_an_error_and_the_connection_stays_open() {
    let server = Server::start(&[("RTCROOM_AUTH_REQUIRED", "false")]);
    let mut a = server.client().await;
    for garbage in [
        "garbage",
        "[1,2,3]",
        "{\"no\":\"cmd\"}",
        "{\"cmd\":\"dance\"}",
        "{\"cmd\":",
    ] {
        a.send_text(garbage).await;
        let resp = a.expect("generalMsgResp").await;
        assert_eq!(resp["result"], 3, "for {garbage}");
        assert!(resp["desc"].as_str().unwrap().contains("parse"), "{resp}");
    }
    a.send_binary(vec![0, 159, 146, 150]).await;
    assert_eq!(a.expect("generalMsgResp").await["result"], 3);
    // A frame above the 64 KiB limit is refused, not buffered.
    a.send_text(&format!(
        r#"{{"cmd":"keepLive","pad":"{}"}}"#,
        "x".repeat(70_000)
    ))
    .await;
    let resp = a.expect("generalMsgResp").await;
    assert!(
        resp["desc"].as_str().unwrap().contains("above the limit"),
        "{resp}"
    );
    // A known command with a bad field gets that command's response.
    a.send(json!({"cmd":"join","appId":"10000","uid":"u1"}))
        .await;
    let resp = a.expect("respJoin").await;
    assert_eq!(resp["result"], 3);
    assert_eq!(resp["uid"], "u1");
    assert!(resp["desc"].as_str().unwrap().contains("roomId"));
    // Before join, room commands are refused with 13.
    a.send(json!({"cmd":"keepLive"})).await;
    assert_eq!(a.expect("respKeepLive").await["result"], 13);
    // The connection still works.
    a.send(join("r", "u1", "U")).await;
    assert_eq!(a.expect("respJoin").await["result"], 0);
}

#[tokio::test]
async fn identity_is_bound_to_the_connection() {
    let server = Server::start(&[("RTCROOM_AUTH_REQUIRED", "false")]);
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(join("r", "alice", "A")).await;
    a.expect("respJoin").await;
    b.send(join("r", "bob", "B")).await;
    let bob = b.expect("respJoin").await;
    assert_eq!(bob["resumeKey"].as_str().map(str::len), Some(32));
    assert_eq!(bob["heartbeatTimeout"], 40);
    assert_eq!(bob["resumed"], false);
    a.expect("notifyNewPeer").await;
    // Bob pretends to be Alice.
    b.send(json!({"cmd":"offer","uid":"alice","remoteUid":"alice","msg":"{}"}))
        .await;
    let resp = b.expect("respOffer").await;
    assert_eq!(resp["result"], 13);
    a.expect_silence().await;
    // An offer to nobody.
    b.send(json!({"cmd":"offer","remoteUid":"carol","msg":"{}"}))
        .await;
    assert_eq!(b.expect("respOffer").await["result"], 6);
    // The same uid from a new connection takes nobody's place without Bob's resume key.
    let mut b2 = server.client().await;
    b2.send(join("r", "bob", "B")).await;
    let resp = b2.expect("respJoin").await;
    assert_eq!(resp["result"], 13);
    let mut wrong = join("r", "bob", "B");
    wrong["resumeKey"] = json!("0123456789abcdef0123456789abcdef");
    b2.send(wrong).await;
    assert_eq!(b2.expect("respJoin").await["result"], 13);
    b.send(json!({"cmd":"keepLive"})).await;
    assert_eq!(b.expect("respKeepLive").await["result"], 0);
    // With the key, Bob resumes on the new connection: same session, the old connection
    // closed, Alice told nothing.
    let mut resume = join("r", "bob", "B");
    resume["resumeKey"] = bob["resumeKey"].clone();
    b2.send(resume).await;
    let resp = b2.expect("respJoin").await;
    assert_eq!(resp["result"], 0);
    assert_eq!(resp["resumed"], true);
    assert_eq!(resp["sessionId"], bob["sessionId"]);
    assert_eq!(resp["userList"][0]["uid"], "alice");
    assert_eq!(b.expect_close().await, Some(4001));
    a.expect_silence().await;
}

/// `[server] worker_threads` sizes the runtime (reported as `rtcroom_runtime_workers`), and
/// a call goes through a server with fewer threads than the machine has cores.
#[tokio::test]
async fn the_runtime_has_the_configured_worker_threads() {
    let with_workers = |n: &str| {
        Server::start(&[
            ("RTCROOM_AUTH_REQUIRED", "false"),
            ("RTCROOM_SERVER_WORKER_THREADS", n),
        ])
    };
    let server = with_workers("1");
    assert_eq!(
        server.metrics().await.get("rtcroom_runtime_workers"),
        Some(&1.0)
    );
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(join("w", "alice", "A")).await;
    assert_eq!(a.expect("respJoin").await["result"], 0);
    b.send(join("w", "bob", "B")).await;
    assert_eq!(b.expect("respJoin").await["result"], 0);
    a.expect("notifyNewPeer").await;
    a.send(json!({"cmd":"offer","remoteUid":"bob","msg":"{}"}))
        .await;
    assert_eq!(a.expect("respOffer").await["result"], 0);
    assert_eq!(b.expect("relayOffer").await["msg"], "{}");

    let three = with_workers("3");
    assert_eq!(
        three.metrics().await.get("rtcroom_runtime_workers"),
        Some(&3.0)
    );
}

#[tokio::test]
async fn sigterm_tells_members_to_reconnect_and_exits() {
    let mut server = Server::start(&[("RTCROOM_AUTH_REQUIRED", "false")]);
    let mut a = server.client().await;
    a.send(join("r", "alice", "A")).await;
    a.expect("respJoin").await;
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    // Not a kick: "service restart", reconnect and resume (tests/continuity.rs).
    assert_eq!(a.expect_close().await, Some(1012));
}

/// Every member of a busy server gets its 1012 at a SIGTERM: the process waits for the
/// connection tasks to write the close frames the hub's last step queued, rather than
/// ending under them.
#[tokio::test]
async fn sigterm_reaches_every_member_before_the_process_ends() {
    let mut server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_SERVER_MAX_CONNECTIONS_PER_IP", "0"),
        ("RTCROOM_ROOM_JOINS_PER_IP_PER_SEC", "0"),
        // No record writer to flush at the stop: nothing else delays the process's end.
        ("RTCROOM_DATABASE_URL", "off"),
    ]);
    let mut members = Vec::new();
    for i in 0..1000 {
        let mut c = server.client().await;
        c.send(join(&format!("busy-{}", i / 2), &format!("u{i}"), "U"))
            .await;
        assert_eq!(c.expect("respJoin").await["result"], 0);
        members.push(c);
    }
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    let mut codes = std::collections::BTreeMap::new();
    for c in &mut members {
        *codes.entry(c.expect_close().await).or_insert(0) += 1;
    }
    assert_eq!(codes, [(Some(1012), 1000)].into(), "close codes");
}

#[tokio::test]
async fn operators_list_rooms_and_kick_members() {
    let server = Server::start(&[
        ("RTCROOM_ADMIN_TOKEN", "s3cret"),
        ("RTCROOM_AUTH_REQUIRED", "false"),
    ]);
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(join("r1", "alice", "A")).await;
    a.expect("respJoin").await;
    b.send(join("r1", "bob", "B")).await;
    b.expect("respJoin").await;
    a.expect("notifyNewPeer").await;
    let base = format!("http://{}", server.addr);
    let denied = common::http("GET", &format!("{base}/api/rooms"), None, None).await;
    assert_eq!(denied.0, 401, "{denied:?}");
    let (status, body) =
        common::http("GET", &format!("{base}/api/rooms"), Some("s3cret"), None).await;
    assert_eq!(status, 200);
    let rooms: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rooms[0]["roomId"], "r1");
    assert_eq!(rooms[0]["members"].as_array().unwrap().len(), 2);
    let kick = json!({"uid": "bob", "reason": "spamming"}).to_string();
    let (status, _) = common::http(
        "POST",
        &format!("{base}/api/rooms/10000/r1/kick"),
        Some("s3cret"),
        Some(&kick),
    )
    .await;
    assert_eq!(status, 200);
    let k = b.expect("systemKickUser").await;
    assert_eq!(k["desc"], "spamming");
    assert_eq!(b.expect_close().await, Some(4004));
    assert_eq!(a.expect("relayLeave").await["uid"], "bob");
    let (status, _) = common::http(
        "POST",
        &format!("{base}/api/rooms/10000/r1/kick"),
        Some("s3cret"),
        Some(&kick),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn metrics_and_readiness_follow_a_real_call() {
    let server = Server::start(&[("RTCROOM_AUTH_REQUIRED", "false")]);
    let base = format!("http://{}", server.addr);
    let (status, body) = common::http("GET", &format!("{base}/readyz"), None, None).await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let before = parse_prometheus(
        &common::http("GET", &format!("{base}/metrics"), None, None)
            .await
            .1,
    );
    assert_eq!(before.get("rtcroom_joins_total"), Some(&0.0));

    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(join("m", "alice", "A")).await;
    a.expect("respJoin").await;
    b.send(join("m", "bob", "B")).await;
    b.expect("respJoin").await;
    a.expect("notifyNewPeer").await;
    a.send(json!({"cmd":"offer","remoteUid":"bob","msg":"{}"}))
        .await;
    b.expect("relayOffer").await;
    a.expect("respOffer").await;
    a.send_text("garbage").await;
    a.expect("generalMsgResp").await;

    let (status, text) = common::http("GET", &format!("{base}/metrics"), None, None).await;
    assert_eq!(status, 200);
    let m = parse_prometheus(&text);
    assert_eq!(m["rtcroom_joins_total"], 2.0);
    assert_eq!(m["rtcroom_members"], 2.0);
    assert_eq!(m["rtcroom_rooms"], 1.0);
    assert_eq!(m["rtcroom_open_connections"], 2.0);
    assert_eq!(m[r#"rtcroom_frames_in_total{cmd="offer"}"#], 1.0);
    assert_eq!(m[r#"rtcroom_messages_out_total{cmd="relayOffer"}"#], 1.0);
    assert_eq!(m[r#"rtcroom_refusals_total{cmd="frame",result="3"}"#], 1.0);
    assert!(m["rtcroom_signaling_latency_seconds_count"] >= 4.0);
    assert!(
        m["rtcroom_records_emitted_total"] >= 4.0,
        "two sessions and two sub-sessions"
    );
    // The embedded TURN server of every test server reports its counters.
    assert_eq!(m["rtcroom_turn_allocations"], 0.0);
    assert_eq!(m["rtcroom_database_up"], 1.0);
}

#[tokio::test]
async fn a_client_that_does_not_read_is_cut_off_without_delaying_the_room() {
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_SERVER_OUTBOUND_QUEUE", "16"),
        ("RTCROOM_ROOM_RATE_PER_SEC", "100000"),
        ("RTCROOM_ROOM_RATE_BURST", "100000"),
    ]);
    let mut a = server.client().await;
    let mut b = server.client().await;
    let mut c = server.client().await;
    a.send(join("slow", "alice", "A")).await;
    a.expect("respJoin").await;
    b.send(join("slow", "bob", "B")).await;
    b.expect("respJoin").await;
    a.expect("notifyNewPeer").await;
    c.send(join("slow", "carol", "C")).await;
    c.expect("respJoin").await;
    a.expect("notifyNewPeer").await;
    b.expect("notifyNewPeer").await;
    // Bob stops reading. Alice sends him large offers; each is answered to her at once until
    // the server gives up on Bob, and then the offers are refused as undeliverable.
    let big = format!("\"{}\"", "s".repeat(60_000));
    let offer = format!(r#"{{"cmd":"offer","remoteUid":"bob","msg":{big}}}"#);
    let mut refused_at = None;
    for i in 0..5_000 {
        a.send_text(&offer).await;
        let resp = a.expect("respOffer").await;
        if resp["result"] == 6 {
            refused_at = Some(i);
            break;
        }
        assert_eq!(resp["result"], 0);
    }
    let refused_at = refused_at.expect("the server cut off the client that does not read");
    assert!(
        refused_at > 16,
        "the queue held at least its bound before the cut ({refused_at})"
    );
    // The room goes on for everyone else.
    a.send(json!({"cmd":"offer","remoteUid":"carol","msg":"{}"}))
        .await;
    assert_eq!(c.expect("relayOffer").await["uid"], "alice");
    assert_eq!(a.expect("respOffer").await["result"], 0);
    let (_, text) = common::http(
        "GET",
        &format!("http://{}/metrics", server.addr),
        None,
        None,
    )
    .await;
    assert_eq!(parse_prometheus(&text)["rtcroom_slow_clients_total"], 1.0);
    drop(b);
}

/// A request to /ws that is not a WebSocket upgrade is told what is missing, and gives its
/// connection slot back: with `max_connections = 1`, refused requests do not use it up.
#[tokio::test]
async fn a_plain_request_to_ws_is_refused_and_keeps_no_slot() {
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_SERVER_MAX_CONNECTIONS", "1"),
    ]);
    let url = format!("http://{}/ws", server.addr);
    for _ in 0..3 {
        let (status, body) = common::http("GET", &url, None, None).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("upgrade"), "{body}");
    }
    let (status, _) = common::http("POST", &url, None, Some("{}")).await;
    assert_eq!(status, 405);
    let mut a = server.client().await;
    a.send(join("r", "u1", "U")).await;
    assert_eq!(a.expect("respJoin").await["result"], 0);
    // The one slot is in use now: a second WebSocket is refused with 503.
    let second = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr)).await;
    assert!(
        second.is_err(),
        "a second connection above max_connections was accepted"
    );
}

//! A server whose stderr is a pipe nobody reads keeps serving calls: log lines go through a
//! bounded queue to a writer thread, so a full pipe stalls that thread only, and the lines
//! that do not fit in the queue are dropped and counted (`rtcroom_log_lines_dropped_total`).
//! Were the hub to write its log lines itself, it would block on the first line that does
//! not fit in the pipe, and no request below would be answered.

mod common;

use common::{Server, join};
use serde_json::json;

/// Requests that are refused (a keepLive before any join), each logged at warn.
const FLOOD: usize = 20_000;
/// Requests sent before their answers are read (well within the outbound queue).
const BATCH: usize = 100;

#[tokio::test]
async fn a_stderr_nobody_reads_does_not_stop_signaling() {
    let server = Server::start_with_stderr_pipe(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        // The flood is about logging, not the rate limit.
        ("RTCROOM_ROOM_RATE_PER_SEC", "1000000"),
        ("RTCROOM_ROOM_RATE_BURST", "1000000"),
    ]);
    let mut flooder = server.client().await;
    for _ in 0..FLOOD / BATCH {
        for _ in 0..BATCH {
            flooder.send(json!({"cmd": "keepLive"})).await;
        }
        for _ in 0..BATCH {
            let answer = flooder.expect("respKeepLive").await;
            assert_ne!(answer["result"], 0, "{answer}");
        }
    }

    // The log pipe is full and the queue overflowed: lines were dropped, not waited for.
    let dropped = server.metrics().await["rtcroom_log_lines_dropped_total"];
    assert!(
        dropped > 0.0,
        "{FLOOD} warn lines fit in a pipe nobody reads?"
    );

    // A call still goes through: join, a peer's notification, keepLive.
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(join("pipe", "alice", "Alice")).await;
    assert_eq!(a.expect("respJoin").await["result"], 0);
    b.send(join("pipe", "bob", "Bob")).await;
    let resp = b.expect("respJoin").await;
    assert_eq!(resp["result"], 0);
    assert_eq!(a.expect("notifyNewPeer").await["uid"], "bob");
    let session = resp["sessionId"].as_str().unwrap().to_owned();
    b.send(json!({"cmd":"keepLive","appId":"10000","sessionId":session,"roomId":"pipe","uid":"bob","time":"1"}))
        .await;
    assert_eq!(b.expect("respKeepLive").await["result"], 0);
}

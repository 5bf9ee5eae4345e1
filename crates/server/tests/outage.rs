//! The database goes away under a running server: calls go on, readiness says so, and when
//! the database is back readiness returns and every record of the calls made meanwhile
//! arrives, once.
//!
//! The server reaches the machine's MariaDB through a TCP proxy that the test stops and
//! starts, so that the shared database server itself is never stopped.

mod common;

use common::{Server, http, join, wait_ready};
use rtcroom_store::{SessionDetail, Store};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy to 127.0.0.1:3306 that can be stopped (every connection cut, the port closed)
/// and started again on the same port.
struct Proxy {
    port: u16,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the proxy port is free");
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let conns = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut db) = TcpStream::connect("127.0.0.1:3306").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut db).await;
                    }
                });
                conns.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(accept);
        Proxy { port, tasks }
    }

    fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

// Several threads: the proxy must run while `Server::start` blocks on the server's start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_on_while_the_database_is_away_and_no_record_is_lost() {
    let name = format!("rtcroom_outage_{}", std::process::id());
    Store::create_database(&format!("mysql://root@127.0.0.1:3306/{name}"))
        .await
        .expect("MariaDB runs on 127.0.0.1:3306 (scripts/deps/services.sh starts it)");
    let mut proxy = Proxy::start_on(0).await;
    let port = proxy.port;
    let url = format!("mysql://root@127.0.0.1:{port}/{name}");
    let server = Server::start(&[
        ("RTCROOM_AUTH_REQUIRED", "false"),
        ("RTCROOM_DATABASE_URL", &url),
        ("RTCROOM_ADMIN_TOKEN", "adm"),
    ]);
    wait_ready(&server, 200, "ready").await;

    proxy.stop();
    // A call while the database is away: signaling is not slowed or stopped by it.
    let (mut a, mut b) = (server.client().await, server.client().await);
    a.send(join("outage", "alice", "A")).await;
    a.expect("respJoin").await;
    b.send(join("outage", "bob", "B")).await;
    b.expect("respJoin").await;
    a.expect("notifyNewPeer").await;
    a.send(serde_json::json!({"cmd":"offer","remoteUid":"bob","msg":"{}"}))
        .await;
    b.expect("relayOffer").await;
    a.expect("respOffer").await;
    wait_ready(&server, 503, "call-record database is unreachable").await;
    b.send(serde_json::json!({"cmd":"leave"})).await;
    b.expect("respLeave").await;
    a.close().await;

    proxy = Proxy::start_on(port).await;
    wait_ready(&server, 200, "ready").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let sessions: Vec<SessionDetail> = loop {
        let (status, body) = http(
            "GET",
            &format!("http://{}/api/records/member/10000/bob", server.addr),
            Some("adm"),
            None,
        )
        .await;
        if status == 200 {
            let s: Vec<SessionDetail> = serde_json::from_str(&body).unwrap();
            if s.iter().any(|x| x.session.leave_time.is_some()) {
                break s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "bob's records did not arrive: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(sessions.len(), 1, "once: {sessions:#?}");
    let sub = &sessions[0].sub_sessions;
    assert_eq!(sub.len(), 1);
    assert!(sub[0].sub_session.finish_time.is_some());
    assert_eq!(
        sessions[0].sub_session_ids.len(),
        1,
        "the id was appended once"
    );
    proxy.stop();
    drop(server);
    Store::drop_database(&format!("mysql://root@127.0.0.1:3306/{name}"))
        .await
        .unwrap();
}

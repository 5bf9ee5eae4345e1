//! Losing a node, or Redis, costs no call (issue 15's acceptance, on real processes):
//! - the owner of a room killed (`kill -9`) while every member sits on other nodes: no
//!   message at all reaches the members, the room keeps relaying, every record once;
//! - offers a member sends right after the owner was killed reach the other member once the
//!   room is taken over: each once, in order, none lost;
//! - a member who left a room of the killed owner joins another room on the same socket
//!   at once: the join goes on without a reconnect; and so it does when the owner dies
//!   after the question to let the socket go reached it (stalled, then killed);
//! - a member's node killed: the member resumes on another node (`resumed: true`), the others
//!   are told nothing, every record once;
//! - Redis stopped for 10 s during calls and started again: the calls go on, joins during the
//!   outage succeed, `/healthz` stays 200 while `/readyz` says degraded, one alert and one
//!   resolution per node, and a room that two nodes served meanwhile ends up with one owner;
//! - a rolling SIGTERM restart of all three nodes during a three-party call: every member
//!   resumes each time, nobody is ever told that anyone left.

mod common;

use common::SmtpSink;
use common::cluster::{Cluster, DEAD_AFTER_MS, HEARTBEAT_MS, Member, Monitor, unique};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn join(room: &str, uid: &str) -> Value {
    common::join(room, uid, uid)
}

/// A member `uid` on node `node` joins `room`; the member (its transcript empty) and its
/// respJoin.
async fn seat(cluster: &Cluster, node: usize, room: &str, uid: &str) -> (Member, Value) {
    let mut m = Member::connect(&cluster.node(node).addr, uid).await;
    m.send(join(room, uid)).await;
    let resp = m.until("respJoin").await;
    assert_eq!(resp["result"], 0, "{resp}");
    m.transcript.clear();
    (m, resp)
}

/// The same member back on node `node` with its resume key: must resume its session.
async fn resume(cluster: &Cluster, node: usize, room: &str, old: &Value) -> Member {
    let uid = old["uid"].as_str().unwrap();
    let mut m = Member::connect(&cluster.node(node).addr, uid).await;
    let mut msg = join(room, uid);
    msg["resumeKey"] = old["resumeKey"].clone();
    m.send(msg).await;
    let resp = m.until("respJoin").await;
    assert_eq!(
        (&resp["result"], &resp["resumed"], &resp["sessionId"]),
        (&json!(0), &json!(true), &old["sessionId"]),
        "{uid} resumes its session on node {node}: {resp}"
    );
    m.transcript.clear();
    m
}

/// `a` and `b` offer, answer and connect (TURN) both ways.
async fn connect_pair(a: &mut Member, b: &mut Member) {
    offer_answer(a, b).await;
    offer_answer(b, a).await;
}

/// `x` offers to `y`, `y` answers, `x` reports the pair connected (TURN).
async fn offer_answer(x: &mut Member, y: &mut Member) {
    let remote = y.uid.clone();
    x.send(json!({"cmd":"offer","remoteUid":remote,"msg":"{\"type\":\"offer\"}"}))
        .await;
    x.until("respOffer").await;
    y.until("relayOffer").await;
    y.send(json!({"cmd":"answer","remoteUid":x.uid,"msg":"{\"type\":\"answer\"}"}))
        .await;
    x.until("relayAnswer").await;
    x.send(json!({"cmd":"peerConnected","remoteUid":remote,"connectType":"TURN"}))
        .await;
    x.until("respPeerConnected").await;
}

/// Every member joined and every pair connected; transcripts cleared.
async fn call(ms: &mut [Member]) {
    for i in 0..ms.len() {
        for j in i + 1..ms.len() {
            let (left, right) = ms.split_at_mut(j);
            connect_pair(&mut left[i], &mut right[0]).await;
        }
    }
    for m in ms.iter_mut() {
        m.sync().await;
        m.transcript.clear();
    }
}

/// Nothing reaches any of `ms` for `wait` (nobody sends anything meanwhile).
async fn silence(ms: &mut [&mut Member], wait: Duration, why: &str) {
    ms[0].pump(wait).await;
    for m in ms.iter_mut() {
        m.pump(Duration::from_millis(100)).await;
        assert!(
            m.transcript.is_empty(),
            "{why}: {} was told {:#?}",
            m.uid,
            m.transcript
        );
    }
}

/// `from` sends `to` an ICE-restart offer: `to` gets exactly the relay, `from` exactly its
/// answer (result 0). Transcripts cleared afterwards.
async fn relays(from: &mut Member, to: &mut Member) {
    from.send(
        json!({"cmd":"offer","remoteUid":to.uid,"isIceReset":true,"msg":"{\"type\":\"offer\"}"}),
    )
    .await;
    let relay = to.until("relayOffer").await;
    assert_eq!(relay["uid"], from.uid.as_str());
    let resp = from.until("respOffer").await;
    assert_eq!(resp["result"], 0, "{resp}");
    assert_eq!(to.transcript.len(), 1, "{:#?}", to.transcript);
    assert_eq!(from.transcript.len(), 1, "{:#?}", from.transcript);
    from.transcript.clear();
    to.transcript.clear();
}

async fn leave(m: &mut Member) {
    m.send(json!({"cmd":"leave"})).await;
    m.until("respLeave").await;
}

/// Wait out a node's death and the claim of its rooms.
fn failover_time() -> Duration {
    Duration::from_millis(DEAD_AFTER_MS.parse::<u64>().unwrap() * 5 / 2)
}

/// xavier's join makes n0 the owner; alice (n1) and bob (n2) call; xavier leaves, so the
/// owner holds no member. Returns alice and bob, their transcripts empty.
async fn call_on_n1_n2_owned_by_n0(cluster: &Cluster, room: &str) -> (Member, Member) {
    let (mut x, _) = seat(cluster, 0, room, "xavier").await;
    let (a, _) = seat(cluster, 1, room, "alice").await;
    let (b, _) = seat(cluster, 2, room, "bob").await;
    let mut ms = [a, b];
    call(&mut ms).await;
    leave(&mut x).await;
    let [mut a, mut b] = ms;
    for m in [&mut a, &mut b] {
        assert_eq!(m.until("relayLeave").await["uid"], "xavier");
        m.sync().await;
        m.transcript.clear();
    }
    common::wait_until("n0 owning the room", || async {
        cluster.metric(0, "rtcroom_cluster_rooms_owned").await == 1.0
    })
    .await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_dies_and_nobody_notices() {
    let mut cluster = Cluster::start("owner", 3, &[]).await;
    let room = unique("owner");
    let (mut a, mut b) = call_on_n1_n2_owned_by_n0(&cluster, &room).await;
    // What the owner recorded is in the database before it dies.
    cluster
        .db
        .wait_rows(
            &room,
            "xavier's session closed and the call connected",
            |r| {
                r.sessions_of("xavier").iter().all(|s| s.left.is_some())
                    && r.sessions.len() == 3
                    && r.subs.iter().filter(|s| s.connected).count() == 2
            },
        )
        .await;

    cluster.kill(0);
    silence(
        &mut [&mut a, &mut b],
        failover_time(),
        "the owner's death is noticed",
    )
    .await;
    // The room has a new owner and relays as before, both ways.
    common::wait_until("a new owner of the room", || async {
        cluster.total("rtcroom_cluster_rooms_owned").await == 1.0
    })
    .await;
    relays(&mut a, &mut b).await;
    relays(&mut b, &mut a).await;
    for m in [&mut a, &mut b] {
        m.sync().await;
        assert!(m.transcript.is_empty(), "{:#?}", m.transcript);
    }
    leave(&mut a).await;
    b.until("relayLeave").await;
    leave(&mut b).await;
    let rows = cluster
        .db
        .closed_rows(&room, |r| r.sessions.len() == 3)
        .await;
    rows.assert_once(&["alice", "bob", "xavier"]);
    assert_eq!(rows.status("alice", "bob"), 0, "{rows:#?}");
    assert_eq!(rows.status("bob", "alice"), 0, "{rows:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_sent_to_a_dead_owner_reach_the_next_one_in_order() {
    let mut cluster = Cluster::start("held", 3, &[]).await;
    let room = unique("held");
    // As above: n0 owns the room and holds no member; alice on n1, bob on n2.
    let (mut a, mut b) = call_on_n1_n2_owned_by_n0(&cluster, &room).await;

    cluster.kill(0);
    // At once, long before anyone can know that n0 is dead: their PUBLISH reaches nobody.
    let offer = |n: u32| format!("{{\"type\":\"offer\",\"n\":{n}}}");
    for n in 1..=3 {
        a.send(json!({"cmd":"offer","remoteUid":"bob","isIceReset":true,"msg":offer(n)}))
            .await;
    }
    // Once a live node has taken the room over: each reaches bob once, in order, and alice
    // gets her three answers.
    for n in 1..=3 {
        let relay = b.until("relayOffer").await;
        assert_eq!(relay["msg"], offer(n).as_str(), "{:#?}", b.transcript);
        assert_eq!(relay["uid"], "alice");
    }
    for _ in 1..=3 {
        let resp = a.until("respOffer").await;
        assert_eq!(resp["result"], 0, "{resp}");
    }
    for m in [&mut a, &mut b] {
        m.sync().await;
        assert_eq!(m.transcript.len(), 3, "{}: {:#?}", m.uid, m.transcript);
        m.transcript.clear();
    }
    assert!(cluster.metric(1, "rtcroom_cluster_bus_held_total").await >= 3.0);
    assert_eq!(
        cluster
            .total("rtcroom_cluster_bus_held_dropped_total")
            .await,
        0.0
    );
    // The room relays as before, both ways.
    relays(&mut b, &mut a).await;
    relays(&mut a, &mut b).await;
}

/// `redis-cli` against the cluster's private Redis: its answer as text.
fn redis_cli(cluster: &Cluster, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &cluster.redis.port.to_string(), "--raw"])
        .args(args)
        .output()
        .expect("redis-cli runs (it comes with redis-server)");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Whether the state of `room` kept in Redis (what its next owner would seat) is written
/// and seats `uid`: `None` while it is not written.
fn seated_in_state(cluster: &Cluster, room: &str, uid: &str) -> Option<bool> {
    let key = format!("rtcroom:state:10000\u{1f}{room}");
    let json = redis_cli(cluster, &["GET", &key]);
    let state = serde_json::from_str::<Value>(json.trim()).ok()?;
    let seats = state["seats"].as_object().expect("seats");
    Some(seats.keys().any(|k| k.contains(uid)))
}

/// Whether node `node`'s bus channel has a listener, as Redis sees it.
fn listens(cluster: &Cluster, node: &str) -> bool {
    let answer = redis_cli(
        cluster,
        &["PUBSUB", "NUMSUB", &format!("rtcroom:bus:{node}")],
    );
    answer.lines().nth(1).map(str::trim) != Some("0")
}

/// xavier sits on n0 in room `left` (so n0 owns it), bob on n2 in room `next`; alice (n1)
/// joins `left` and leaves it. Returns once n0 has written the room's state without her and
/// her session is closed in the database: (xavier, alice, bob).
async fn alice_left_a_room_of_n0(
    cluster: &Cluster,
    left: &str,
    next: &str,
) -> (Member, Member, Member) {
    let (x, _) = seat(cluster, 0, left, "xavier").await;
    let (b, _) = seat(cluster, 2, next, "bob").await;
    let (mut a, _) = seat(cluster, 1, left, "alice").await;
    leave(&mut a).await;
    a.transcript.clear();
    // The room's next owner reads its state from Redis: n0 has written it without alice.
    common::wait_until("the state of alice's old room without her", || async {
        seated_in_state(cluster, left, "alice") == Some(false)
    })
    .await;
    // What the owner recorded is in the database before it dies.
    cluster
        .db
        .wait_rows(left, "alice's session closed", |r| {
            let hers = r.sessions_of("alice");
            hers.len() == 1 && hers[0].left.is_some() && !hers[0].time_out
        })
        .await;
    (x, a, b)
}

/// After alice, who had left room `left`, joined room `next` on the same socket while the
/// old room's owner died: her join is answered 0 with no close, bob sees her, the pair calls
/// both ways on the socket, and each of their sessions is in the records once; her old
/// room's new owner did not record her again.
async fn the_join_goes_on_and_each_session_is_recorded_once(
    cluster: &Cluster,
    a: &mut Member,
    b: &mut Member,
    left: &str,
    next: &str,
) {
    let resp = a.until("respJoin").await;
    assert_eq!(resp["result"], 0, "{resp}");
    assert_eq!(b.until("notifyNewPeer").await["uid"], "alice");
    a.sync().await;
    assert!(
        a.is_open(),
        "alice's socket stays open: {:#?}",
        a.transcript
    );
    assert!(
        !a.transcript.iter().any(|l| l.starts_with("closed")),
        "{:#?}",
        a.transcript
    );
    // The socket is n2's now: the pair calls both ways.
    connect_pair(a, b).await;

    leave(a).await;
    b.until("relayLeave").await;
    leave(b).await;
    let rows = cluster
        .db
        .closed_rows(next, |r| r.sessions.len() == 2)
        .await;
    rows.assert_once(&["alice", "bob"]);
    let old = cluster.db.rows(left).await;
    let hers = old.sessions_of("alice");
    assert!(
        hers.len() == 1 && hers[0].left.is_some() && !hers[0].time_out,
        "alice left her old room once: {old:#?}"
    );
}

/// alice (n1) left a room of n0 and joins a room of n2 on the same socket right after n0
/// was killed: her edge asks n0 to let the socket go (in order after her frames), which
/// reaches nobody. The socket is let go once the room is settled without her (taken over
/// by a node that did not seat her): her join goes on, with no close 1012, and each of her
/// sessions is one row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_that_asked_a_killed_owner_goes_on_without_a_reconnect() {
    let mut cluster = Cluster::start("letgo", 3, &[]).await;
    let (left, next) = (unique("left"), unique("next"));
    let (_x, mut a, mut b) = alice_left_a_room_of_n0(&cluster, &left, &next).await;

    cluster.kill(0);
    common::wait_until("n0's channel without a listener", || async {
        !listens(&cluster, "n0")
    })
    .await;
    a.send(join(&next, "alice")).await;
    the_join_goes_on_and_each_session_is_recorded_once(&cluster, &mut a, &mut b, &left, &next)
        .await;
}

/// Node `node`'s registry entry, kept as it was and refreshed every heartbeat while the node
/// is stalled: the others take it for alive, as a node whose heartbeat runs while its bus
/// does not. [`Registered::end`] deletes it: the others see the node dead at their next
/// heartbeat.
struct Registered {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    key: String,
    port: String,
}

impl Registered {
    fn keep(cluster: &Cluster, node: &str) -> Self {
        use std::sync::atomic::Ordering;
        let key = format!("rtcroom:node:{node}");
        let entry = redis_cli(cluster, &["GET", &key]).trim().to_owned();
        assert!(entry.starts_with('{'), "{node} is registered: {entry:?}");
        let port = cluster.redis.port.to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (stop, key, port) = (stop.clone(), key.clone(), port.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    let set = std::process::Command::new("redis-cli")
                        .args(["-p", &port, "SET", &key, &entry, "PX", DEAD_AFTER_MS])
                        .output()
                        .expect("redis-cli runs");
                    assert!(set.status.success(), "{set:?}");
                    let beat =
                        Instant::now() + Duration::from_millis(HEARTBEAT_MS.parse().unwrap());
                    while Instant::now() < beat && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
        });
        Registered {
            stop,
            thread: Some(thread),
            key,
            port,
        }
    }

    fn end(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        let del = std::process::Command::new("redis-cli")
            .args(["-p", &self.port, "DEL", &self.key])
            .output()
            .expect("redis-cli runs");
        assert!(del.status.success(), "{del:?}");
    }
}

/// As above, but the owner dies after the question reached it: n0 is stalled (SIGSTOP: its
/// subscription stays open, so Redis delivers alice's `LetGo` to it, and it never answers)
/// and, its registry entry kept fresh meanwhile, taken for alive for longer than
/// `dead_after_ms` (an edge's patience with a live owner); then it is killed and seen dead.
/// The room is settled without her (taken over by a node that did not seat her): her join
/// goes on, with no close 1012, and each of her sessions is one row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_whose_question_reached_an_owner_that_then_died_goes_on_without_a_reconnect() {
    let mut cluster = Cluster::start("letgo_stalled", 3, &[]).await;
    let (left, next) = (unique("left"), unique("next"));
    let (_x, mut a, mut b) = alice_left_a_room_of_n0(&cluster, &left, &next).await;

    let monitor = Monitor::start(&cluster.redis);
    cluster.stall(0);
    let registered = Registered::keep(&cluster, "n0");
    a.send(join(&next, "alice")).await;
    // The question, published to n0's channel: a `LetGo` envelope (postcard: variant 8, then
    // the edge's id "n1"), as MONITOR escapes it.
    let asked = monitor
        .wait_for(r#""PUBLISH" "rtcroom:bus:n0" "\b\x02n1"#)
        .await;
    // n0 was still listening (stalled, not dead): the question reached it, it bounced not.
    assert!(listens(&cluster, "n0"), "n0's subscription is open");
    drop(monitor);
    // n0 stays silent and registered past the edge's first patience with it (which the edge
    // waited before, then sent the join to n0), then dies.
    let patience = Duration::from_millis(DEAD_AFTER_MS.parse().unwrap());
    let dies = asked + patience + Duration::from_millis(250);
    let wait = dies.duration_since(std::time::SystemTime::now());
    tokio::time::sleep(wait.unwrap_or_default()).await;
    cluster.kill(0);
    registered.end();

    the_join_goes_on_and_each_session_is_recorded_once(&cluster, &mut a, &mut b, &left, &next)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_node_dies_and_it_resumes_on_another() {
    let mut cluster = Cluster::start("edge", 3, &[]).await;
    let room = unique("edge");
    let (a, _) = seat(&cluster, 0, &room, "alice").await;
    let (b, _) = seat(&cluster, 1, &room, "bob").await;
    let (c, jc) = seat(&cluster, 2, &room, "carol").await;
    let mut ms = [a, b, c];
    call(&mut ms).await;
    let [mut a, mut b, c] = ms;
    cluster
        .db
        .wait_rows(&room, "the call connected", |r| {
            r.subs.iter().filter(|s| s.connected).count() == 6
        })
        .await;

    cluster.kill(2);
    drop(c);
    silence(
        &mut [&mut a, &mut b],
        Duration::from_millis(1500),
        "carol's node died",
    )
    .await;
    let mut c = resume(&cluster, 1, &room, &jc).await;
    silence(
        &mut [&mut a, &mut b, &mut c],
        Duration::from_millis(700),
        "carol resumed",
    )
    .await;
    relays(&mut c, &mut a).await;
    relays(&mut b, &mut c).await;
    for (m, others) in [(&mut a, 2), (&mut b, 1), (&mut c, 0)] {
        leave(m).await;
        // Those still in the room are told; nothing else.
        assert_eq!(m.count("relayLeave"), 2 - others, "{:#?}", m.transcript);
    }
    call_recorded_once(&cluster, &room).await;
}

/// `/healthz` of each address, every 200 ms until `stop`: the answers that were not 200.
fn watch_health(
    addrs: Vec<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut bad = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            for addr in &addrs {
                let (status, body) =
                    common::http("GET", &format!("http://{addr}/healthz"), None, None).await;
                if status != 200 {
                    bad.push(format!("{addr}: {status} {body}"));
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bad
    })
}

/// The mails about Redis received so far (subject line first).
fn redis_mails(smtp: &SmtpSink) -> Vec<String> {
    smtp.texts()
        .into_iter()
        .filter(|m| m.lines().next().is_some_and(|s| s.contains("Redis")))
        .collect()
}

/// Whether a mail's subject names node `me` (`... on n0: ...`).
fn from(mail: &str, me: &str) -> bool {
    mail.lines()
        .next()
        .is_some_and(|s| s.contains(&format!(" on {me}:")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_on_through_a_redis_outage_and_the_cluster_reconciles() {
    let smtp = SmtpSink::start();
    let smtp_url = smtp.url();
    let mut cluster = Cluster::start(
        "redis",
        2,
        &[
            ("RTCROOM_SMTP_URL", &smtp_url),
            ("RTCROOM_SMTP_FROM", "rtcroom <rtcroom@example.com>"),
            ("RTCROOM_ALERTS_RECIPIENTS", "[\"ops@example.com\"]"),
        ],
    )
    .await;
    let (call_room, split_room, new_room) = (unique("call"), unique("split"), unique("new"));
    // A call on n0; erin alone on n0 in another room.
    let (a, _) = seat(&cluster, 0, &call_room, "alice").await;
    let (b, _) = seat(&cluster, 0, &call_room, "bob").await;
    let mut ms = [a, b];
    call(&mut ms).await;
    let [mut a, mut b] = ms;
    let (mut erin, _) = seat(&cluster, 0, &split_room, "erin").await;
    for i in 0..2 {
        common::wait_ready(cluster.node(i), 200, "ready").await;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let health = watch_health(
        (0..2).map(|i| cluster.node(i).addr.clone()).collect(),
        stop.clone(),
    );

    let stopped = Instant::now();
    cluster.redis.stop();
    for i in 0..2 {
        common::wait_ready(cluster.node(i), 503, "cluster degraded: redis unreachable").await;
        assert_eq!(cluster.metric(i, "rtcroom_cluster_degraded").await, 1.0);
    }
    // The call goes on; joins succeed: into the call's room on its node, into a new room on
    // n1, and into erin's room on n1, which cannot know that n0 owns it (n1 serves it too).
    relays(&mut a, &mut b).await;
    let (mut dan, jd) = seat(&cluster, 0, &call_room, "dan").await;
    assert_eq!(jd["userList"].as_array().map(Vec::len), Some(2), "{jd}");
    for m in [&mut a, &mut b] {
        assert_eq!(m.until("notifyNewPeer").await["uid"], "dan");
        m.transcript.clear();
    }
    let (mut carol, _) = seat(&cluster, 1, &new_room, "carol").await;
    let (mut frank, jf) = seat(&cluster, 1, &split_room, "frank").await;
    assert_eq!(jf["userList"], Value::Null, "n1 cannot see erin: {jf}");
    common::wait_until("one alert mail per node", || async {
        redis_mails(&smtp).len() >= 2
    })
    .await;
    let alerts = redis_mails(&smtp);
    for me in ["n0", "n1"] {
        assert_eq!(
            alerts.iter().filter(|m| from(m, me)).count(),
            1,
            "one alert from {me}: {alerts:#?}"
        );
    }
    // Everyone stays heard while Redis is away for 10 s.
    while stopped.elapsed() < Duration::from_secs(10) {
        for m in [&mut a, &mut b, &mut dan, &mut erin, &mut carol, &mut frank] {
            m.ping().await;
            m.pump(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for m in [&a, &b, &dan, &erin, &carol, &frank] {
        assert!(m.transcript.is_empty(), "{}: {:#?}", m.uid, m.transcript);
    }

    cluster.redis.start_again();
    for i in 0..2 {
        common::wait_ready(cluster.node(i), 200, "ready").await;
        assert_eq!(cluster.metric(i, "rtcroom_cluster_degraded").await, 0.0);
    }
    // The split room: the lower node id (n0) keeps it; n1 ends its copy and tells frank to
    // reconnect, and frank joins anew into erin's room.
    assert_eq!(
        frank.until_closed().await,
        Some(1012),
        "{:#?}",
        frank.transcript
    );
    let (mut frank, jf) = seat(&cluster, 1, &split_room, "frank").await;
    assert_eq!(jf["userList"][0]["uid"], "erin", "{jf}");
    assert_eq!(erin.until("notifyNewPeer").await["uid"], "frank");
    common::wait_until("one resolution mail per node", || async {
        redis_mails(&smtp).len() >= 4
    })
    .await;
    // The call went on through all of it: nobody left.
    relays(&mut b, &mut a).await;
    relays(&mut a, &mut dan).await;
    for m in [&mut a, &mut b, &mut dan, &mut carol] {
        m.sync().await;
        assert_eq!(m.count("relayLeave"), 0, "{:#?}", m.transcript);
    }
    for m in [&mut a, &mut b, &mut dan, &mut carol, &mut frank, &mut erin] {
        leave(m).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let bad = health.await.unwrap();
    assert!(bad.is_empty(), "/healthz was not 200: {bad:#?}");
    // Exactly one alert and one resolution per node, also after the reconciliation.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mails = redis_mails(&smtp);
    for me in ["n0", "n1"] {
        let mine: Vec<&String> = mails.iter().filter(|m| from(m, me)).collect();
        assert_eq!(
            mine.len(),
            2,
            "one alert, one resolution from {me}: {mails:#?}"
        );
        assert_ne!(
            mine[0].lines().next(),
            mine[1].lines().next(),
            "the second is the resolution: {mine:#?}"
        );
    }
    let rows = cluster
        .db
        .closed_rows(&call_room, |r| r.sessions.len() == 3)
        .await;
    rows.assert_once(&["alice", "bob", "dan"]);
    let rows = cluster
        .db
        .closed_rows(&split_room, |r| r.sessions.len() == 3)
        .await;
    rows.assert_once(&["erin"]);
    assert_eq!(rows.sessions_of("frank").len(), 2, "{rows:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_node_loses_no_call() {
    let mut cluster = Cluster::start("rolling", 3, &[]).await;
    let room = unique("rolling");
    let mut joined = Vec::new();
    let mut ms = Vec::new();
    for (i, uid) in ["alice", "bob", "carol"].into_iter().enumerate() {
        let (m, j) = seat(&cluster, i, &room, uid).await;
        ms.push(m);
        joined.push(j);
    }
    call(&mut ms).await;
    let mut node_of = [0, 1, 2];
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); 3];
    for down in 0..3 {
        let to = (down + 1) % 3;
        cluster.sigterm(down);
        for (k, m) in ms.iter_mut().enumerate() {
            if node_of[k] != down {
                continue;
            }
            // Told to reconnect, nothing else; back on the next node with the resume key.
            assert_eq!(m.until_closed().await, Some(1012), "{:#?}", m.transcript);
            assert_eq!(m.transcript.len(), 1, "{:#?}", m.transcript);
            seen[k].append(&mut m.transcript);
            *m = resume(&cluster, to, &room, &joined[k]).await;
            node_of[k] = to;
        }
        let status = cluster.wait_exit(down).await;
        assert!(
            status.success(),
            "node {down} drained and exited: {status:?}"
        );
        cluster.start_node(down);
        // A load balancer sends it clients once its /readyz says so.
        common::wait_ready(cluster.node(down), 200, "ready").await;
        cluster.wait_nodes(3).await;
        // The call relays across whatever nodes the members are on now.
        let (first, rest) = ms.split_at_mut(1);
        relays(&mut first[0], &mut rest[1]).await;
        relays(&mut rest[0], &mut first[0]).await;
        for (k, m) in ms.iter_mut().enumerate() {
            m.sync().await;
            seen[k].append(&mut m.transcript);
        }
    }
    for (k, lines) in seen.iter().enumerate() {
        assert!(
            lines.iter().all(|l| l == "closed Some(1012)"),
            "{} was told more than to reconnect: {lines:#?}",
            ms[k].uid
        );
        assert!(!lines.is_empty(), "{} was on a drained node", ms[k].uid);
    }
    for m in ms.iter_mut() {
        leave(m).await;
    }
    call_recorded_once(&cluster, &room).await;
}

/// alice, bob and carol's call in `room`: every session and sub-session row exactly once,
/// every pair ended normally (status 0).
async fn call_recorded_once(cluster: &Cluster, room: &str) {
    let rows = cluster
        .db
        .closed_rows(room, |r| r.sessions.len() == 3)
        .await;
    rows.assert_once(&["alice", "bob", "carol"]);
    for (x, y) in [("alice", "bob"), ("alice", "carol"), ("bob", "carol")] {
        assert_eq!(rows.status(x, y), 0, "{rows:#?}");
        assert_eq!(rows.status(y, x), 0, "{rows:#?}");
    }
}

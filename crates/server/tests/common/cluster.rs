//! A cluster on loopback for the cluster tests (tests/cluster.rs, tests/cluster_failover.rs):
//! a private `redis-server` on a free port (stopped and started again by its pid for outage
//! tests; the machine's shared Redis is never touched), `rtcroom serve` nodes sharing it and
//! one MariaDB database of a unique name (dropped at the end), so that the records of every
//! node land in one place. Nodes are killed (`kill -9`), terminated (SIGTERM) and started
//! again with the same node id; members are the plain [`Client`]s of `common`, connected to
//! the node a test chooses.

use super::{Client, Server, http};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How often a node refreshes its registry entry, and after how long without it a node is
/// dead: short, so that failover happens within a test's patience.
pub const HEARTBEAT_MS: &str = "200";
pub const DEAD_AFTER_MS: &str = "1000";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A name no other run of any test uses: `<tag>_<pid>_<nanos>`.
pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}_{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// A `redis-server` of the test's own: free port, own directory, nothing kept on disk.
pub struct PrivateRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(unique("rtcroom-redis"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = PrivateRedis {
            port: free_port(),
            dir,
            child: None,
        };
        redis.start_again();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Start (again) on the same port, and wait until it answers PING.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "redis-server is running already");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/deps/cluster.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pong() {
            assert!(
                Instant::now() < deadline,
                "the private redis-server did not answer; see {}",
                self.dir.join("redis.log").display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pong(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    /// Stop it at once (SIGKILL by its pid): every client connection is cut.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill redis-server by its pid");
            c.wait().unwrap();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-cli MONITOR` on a private Redis: every command it runs, as MONITOR prints it
/// (binary arguments escaped as `\xNN`), kept from the start on. Stopped by its pid when
/// dropped.
pub struct Monitor {
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Monitor {
    /// Start watching; returns once Redis has confirmed the MONITOR (its `OK`).
    pub fn start(redis: &PrivateRedis) -> Self {
        use std::io::BufRead;
        let mut child = Command::new("redis-cli")
            .args(["-p", &redis.port.to_string(), "MONITOR"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli runs (it comes with redis-server)");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        assert_eq!(first.trim(), "OK", "redis-cli MONITOR");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { return };
                kept.lock().unwrap().push(line);
            }
        });
        Monitor { child, lines }
    }

    /// Wait (bounded) until a command containing `needle` has run; when Redis ran it.
    pub async fn wait_for(&self, needle: &str) -> std::time::SystemTime {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = {
                let lines = self.lines.lock().unwrap();
                lines.iter().find(|l| l.contains(needle)).cloned()
            };
            if let Some(line) = seen {
                // `<unix seconds>.<micros> [db addr] "COMMAND" ...`
                let secs: f64 = line.split(' ').next().unwrap().parse().unwrap();
                return std::time::UNIX_EPOCH + Duration::from_secs_f64(secs);
            }
            assert!(Instant::now() < deadline, "redis ran no {needle} in 30 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A MariaDB database of a unique name on the machine's server, its tables made once before
/// any node starts (nodes do not race to migrate); dropped when this is dropped.
pub struct SharedDb {
    pub name: String,
    pub url: String,
}

impl SharedDb {
    pub async fn create(tag: &str) -> Self {
        let name = unique(&format!("rtcroom_{tag}"));
        let url = format!("mysql://root@127.0.0.1:3306/{name}");
        rtcroom_store::Store::create_database(&url)
            .await
            .expect("MariaDB runs on 127.0.0.1:3306 (scripts/deps/services.sh starts it)");
        let store = rtcroom_store::Store::connect(&url, &Default::default())
            .await
            .unwrap();
        store.migrate().await.expect("the record tables are made");
        store.close().await;
        SharedDb { name, url }
    }

    /// Every session and sub-session row of `room`.
    pub async fn rows(&self, room: &str) -> Rows {
        use sqlx::Connection;
        let mut db = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
        let sessions: Vec<(String, String, Option<String>, bool, String)> = sqlx::query_as(
            "SELECT session_id, user_id, CAST(leave_time AS CHAR), time_out <> 0, \
             COALESCE(sub_session_ids, '') FROM rtc_talk_sessions WHERE room_id = ? ORDER BY id",
        )
        .bind(room)
        .fetch_all(&mut db)
        .await
        .unwrap();
        type Sub = (String, String, String, String, i32, Option<String>, bool);
        let subs: Vec<Sub> = sqlx::query_as(
            "SELECT sub_session_id, session_id, user_id, remote_user_id, CAST(status AS SIGNED), \
             CAST(finish_time AS CHAR), connect_time IS NOT NULL \
             FROM rtc_talk_subsessions WHERE room_id = ? ORDER BY id",
        )
        .bind(room)
        .fetch_all(&mut db)
        .await
        .unwrap();
        db.close().await.unwrap();
        Rows {
            sessions: sessions
                .into_iter()
                .map(|(id, uid, left, time_out, subs)| SessionRow {
                    id,
                    uid,
                    left,
                    time_out,
                    sub_ids: subs
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                })
                .collect(),
            subs: subs
                .into_iter()
                .map(
                    |(id, session, uid, remote, status, finished, connected)| SubRow {
                        id,
                        session,
                        uid,
                        remote,
                        status,
                        finished,
                        connected,
                    },
                )
                .collect(),
        }
    }

    /// Wait (bounded) until `done` holds for the rows of `room`.
    pub async fn wait_rows(&self, room: &str, what: &str, done: impl Fn(&Rows) -> bool) -> Rows {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows = self.rows(room).await;
            if done(&rows) {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "the records of {room} never showed {what}: {rows:#?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Wait (bounded) until every row of `room` is closed and `done` holds for them.
    pub async fn closed_rows(&self, room: &str, done: impl Fn(&Rows) -> bool) -> Rows {
        self.wait_rows(room, "every row closed", |r| r.all_closed() && done(r))
            .await
    }
}

impl Drop for SharedDb {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-u", "root", "-e"])
            .arg(format!("DROP DATABASE IF EXISTS `{}`", self.name))
            .status();
    }
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub uid: String,
    pub left: Option<String>,
    pub time_out: bool,
    pub sub_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SubRow {
    pub id: String,
    pub session: String,
    pub uid: String,
    pub remote: String,
    pub status: i32,
    pub finished: Option<String>,
    /// The pair connected (connect_time is set).
    pub connected: bool,
}

/// The records of one room.
#[derive(Debug, Clone)]
pub struct Rows {
    pub sessions: Vec<SessionRow>,
    pub subs: Vec<SubRow>,
}

impl Rows {
    pub fn all_closed(&self) -> bool {
        self.sessions.iter().all(|s| s.left.is_some())
            && self
                .subs
                .iter()
                .all(|s| s.finished.is_some() && s.status >= 0)
    }

    /// The sessions of `uid`.
    pub fn sessions_of(&self, uid: &str) -> Vec<&SessionRow> {
        self.sessions.iter().filter(|s| s.uid == uid).collect()
    }

    /// The sub-sessions from `uid` towards `remote`.
    pub fn subs_of(&self, uid: &str, remote: &str) -> Vec<&SubRow> {
        self.subs
            .iter()
            .filter(|s| s.uid == uid && s.remote == remote)
            .collect()
    }

    /// Each of `uids` was a member once from start to end: exactly one session, not timed
    /// out, and towards each other of `uids` exactly one sub-session of that session, which
    /// the session lists exactly once.
    pub fn assert_once(&self, uids: &[&str]) {
        for uid in uids {
            let mine = self.sessions_of(uid);
            assert_eq!(mine.len(), 1, "one session of {uid}: {self:#?}");
            let s = mine[0];
            assert!(!s.time_out, "{uid} left, not timed out: {s:?}");
            for remote in uids.iter().filter(|r| *r != uid) {
                let sub = self.subs_of(uid, remote);
                assert_eq!(sub.len(), 1, "one sub-session {uid}->{remote}: {self:#?}");
                assert_eq!(sub[0].session, s.id, "{:?}", sub[0]);
                assert_eq!(
                    s.sub_ids.iter().filter(|id| **id == sub[0].id).count(),
                    1,
                    "{uid}'s session lists its sub-session towards {remote} once: {s:?}"
                );
            }
        }
    }

    /// The status of the one sub-session `uid` -> `remote`.
    pub fn status(&self, uid: &str, remote: &str) -> i32 {
        let sub = self.subs_of(uid, remote);
        assert_eq!(sub.len(), 1, "one sub-session {uid}->{remote}: {self:#?}");
        sub[0].status
    }
}

/// N nodes on one private Redis and one database.
pub struct Cluster {
    // Fields drop in this order: the nodes go before their Redis and database.
    nodes: Vec<Option<Server>>,
    pub redis: PrivateRedis,
    pub db: SharedDb,
    env: Vec<(String, String)>,
    config: Option<PathBuf>,
}

impl Cluster {
    /// `n` nodes `n0`, `n1`, ... with `env` on top of the cluster's settings (the admin
    /// token is `adm`, tokens are not required unless `env` says so), each seeing all the
    /// others before this returns.
    pub async fn start(tag: &str, n: usize, env: &[(&str, &str)]) -> Self {
        Self::start_with(tag, n, env, None).await
    }

    /// As [`Cluster::start`], every node also reading the configuration file `config`.
    pub async fn start_with(
        tag: &str,
        n: usize,
        env: &[(&str, &str)],
        config: Option<PathBuf>,
    ) -> Self {
        let redis = PrivateRedis::start();
        let db = SharedDb::create(tag).await;
        let mut all = vec![
            ("RTCROOM_AUTH_REQUIRED".to_owned(), "false".to_owned()),
            ("RTCROOM_ADMIN_TOKEN".to_owned(), "adm".to_owned()),
            ("RTCROOM_DATABASE_URL".to_owned(), db.url.clone()),
            ("RTCROOM_CLUSTER_REDIS".to_owned(), redis.url()),
            (
                "RTCROOM_CLUSTER_HEARTBEAT_MS".to_owned(),
                HEARTBEAT_MS.to_owned(),
            ),
            (
                "RTCROOM_CLUSTER_DEAD_AFTER_MS".to_owned(),
                DEAD_AFTER_MS.to_owned(),
            ),
        ];
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut cluster = Cluster {
            nodes: (0..n).map(|_| None).collect(),
            redis,
            db,
            env: all,
            config,
        };
        for i in 0..n {
            cluster.start_node(i);
        }
        cluster.wait_nodes(n).await;
        cluster
    }

    pub fn node_id(i: usize) -> String {
        format!("n{i}")
    }

    /// Start node `i` (again): same node id and settings, a fresh port and data directory.
    pub fn start_node(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} runs already");
        let id = Self::node_id(i);
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.push(("RTCROOM_CLUSTER_NODE_ID", &id));
        self.nodes[i] = Some(Server::start_with(&env, self.config.as_deref()));
    }

    pub fn node(&self, i: usize) -> &Server {
        self.nodes[i].as_ref().expect("the node runs")
    }

    /// `http://ADDR` of node `i`.
    pub fn base(&self, i: usize) -> String {
        format!("http://{}", self.node(i).addr)
    }

    /// A member's WebSocket on node `i`.
    pub async fn client(&self, i: usize) -> Client {
        self.node(i).client().await
    }

    /// `kill -9` node `i`.
    pub fn kill(&mut self, i: usize) {
        let mut node = self.nodes[i].take().expect("the node runs");
        node.kill();
    }

    /// Stop node `i` (SIGSTOP): it reads nothing and answers nothing, but its connections
    /// stay open (Redis still delivers to its subscription) until its registry entry
    /// expires. [`Cluster::kill`] ends it.
    pub fn stall(&self, i: usize) {
        let node = self.nodes[i].as_ref().expect("the node runs");
        let status = Command::new("kill")
            .arg("-STOP")
            .arg(node.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Send SIGTERM to node `i` and return without waiting: it drains while the test
    /// watches its members; [`Cluster::wait_exit`] collects it.
    pub fn sigterm(&mut self, i: usize) {
        let node = self.nodes[i].as_ref().expect("the node runs");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(node.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait (bounded) for node `i` to exit after [`Cluster::sigterm`]; its exit status.
    pub async fn wait_exit(&mut self, i: usize) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let node = self.nodes[i].as_mut().expect("the node runs");
            if let Some(status) = node.child.try_wait().unwrap() {
                self.nodes[i] = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "node {i} did not exit within 20 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One sample of node `i`'s `/metrics` (0 when the series is absent).
    pub async fn metric(&self, i: usize, series: &str) -> f64 {
        self.node(i)
            .metrics()
            .await
            .get(series)
            .copied()
            .unwrap_or(0.0)
    }

    /// Wait (bounded) until every running node counts `n` live nodes in the cluster.
    pub async fn wait_nodes(&self, n: usize) {
        for i in (0..self.nodes.len()).filter(|i| self.nodes[*i].is_some()) {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let seen = self.metric(i, "rtcroom_cluster_nodes").await;
                if seen == n as f64 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {i} sees {seen} nodes, not {n}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// The sum over running nodes of a metric.
    pub async fn total(&self, series: &str) -> f64 {
        let mut sum = 0.0;
        for i in (0..self.nodes.len()).filter(|i| self.nodes[*i].is_some()) {
            sum += self.metric(i, series).await;
        }
        sum
    }

    /// `GET path` on node `i`: (status, body).
    pub async fn get(&self, i: usize, path: &str) -> (u16, String) {
        http("GET", &format!("{}{path}", self.base(i)), None, None).await
    }
}

/// A scripted member: a [`Client`] whose every message is kept, normalized (see
/// [`normalize`]), in its transcript, and whose close is kept as `closed CODE`. `keepLive`
/// answers with result 0 are not kept: how many a wait needs depends on timing.
pub struct Member {
    pub uid: String,
    client: Option<Client>,
    pub transcript: Vec<String>,
    /// Each distinct id seen, by first appearance: the same id gets the same name.
    ids: Vec<String>,
    /// keepLive requests sent whose answer has not been read yet.
    pings: usize,
}

/// One thing that reached a member.
enum Event {
    Text(serde_json::Value),
    Closed(Option<u16>),
}

impl Member {
    pub async fn connect(addr: &str, uid: &str) -> Self {
        Member {
            uid: uid.to_owned(),
            client: Some(Client::connect(&format!("ws://{addr}/ws")).await),
            transcript: Vec::new(),
            ids: Vec::new(),
            pings: 0,
        }
    }

    pub fn is_open(&self) -> bool {
        self.client.is_some()
    }

    pub async fn send(&mut self, v: serde_json::Value) {
        self.client
            .as_mut()
            .expect("the member's connection is open")
            .send(v)
            .await;
    }

    /// The next event within `wait`, if any.
    async fn next(&mut self, wait: Duration) -> Option<Event> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let client = self.client.as_mut()?;
        loop {
            let msg = match tokio::time::timeout(wait, client.ws.next()).await {
                Err(_) => return None,
                Ok(m) => m,
            };
            return Some(match msg {
                Some(Ok(Message::Text(t))) => Event::Text(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(frame))) => Event::Closed(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => Event::Closed(None),
            });
        }
    }

    /// Keep one event; true if it was the answer to a keepLive.
    fn keep(&mut self, event: Event) -> bool {
        match event {
            Event::Text(v) if v["cmd"] == "respKeepLive" => {
                self.pings = self.pings.saturating_sub(1);
                // A refusal (not in a room) is kept: it says something about the member.
                if v["result"] != 0 {
                    let line = normalize(&v, &mut self.ids).to_string();
                    self.transcript.push(line);
                }
                true
            }
            Event::Text(v) => {
                let line = normalize(&v, &mut self.ids).to_string();
                self.transcript.push(line);
                false
            }
            Event::Closed(code) => {
                self.transcript.push(format!("closed {code:?}"));
                self.client = None;
                false
            }
        }
    }

    /// Send keepLive and keep everything that arrives before its answer (and the answers of
    /// earlier keepLives): everything the server sent this member before it handled this
    /// keepLive. A member whose connection is closed has nothing to wait for.
    pub async fn sync(&mut self) {
        if self.client.is_none() {
            return;
        }
        self.send(serde_json::json!({"cmd":"keepLive"})).await;
        self.pings += 1;
        while self.pings > 0 {
            let Some(event) = self.next(Duration::from_secs(10)).await else {
                panic!("{}: no answer to keepLive in 10 s", self.uid);
            };
            self.keep(event);
            if self.client.is_none() {
                return;
            }
        }
    }

    /// Send keepLive (the answer is read later) so that the member stays heard.
    pub async fn ping(&mut self) {
        if self.client.is_some() {
            self.send(serde_json::json!({"cmd":"keepLive"})).await;
            self.pings += 1;
        }
    }

    /// Keep whatever arrives within `wait`.
    pub async fn pump(&mut self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        while self.client.is_some() {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(event) => {
                    self.keep(event);
                }
                None => return,
            }
        }
    }

    /// Keep everything up to and including a message with this `cmd`; that message.
    pub async fn until(&mut self, cmd: &str) -> serde_json::Value {
        loop {
            let Some(event) = self.next(Duration::from_secs(15)).await else {
                panic!(
                    "{}: no {cmd} in 15 s; so far {:#?}",
                    self.uid, self.transcript
                );
            };
            if let Event::Text(v) = &event
                && v["cmd"] == cmd
            {
                let v = v.clone();
                self.keep(event);
                return v;
            }
            self.keep(event);
            assert!(
                self.client.is_some(),
                "{}: closed before {cmd}: {:#?}",
                self.uid,
                self.transcript
            );
        }
    }

    /// Keep everything up to the close of the connection; its code.
    pub async fn until_closed(&mut self) -> Option<u16> {
        loop {
            match self.next(Duration::from_secs(15)).await {
                None => panic!("{}: not closed in 15 s: {:#?}", self.uid, self.transcript),
                Some(Event::Closed(code)) => {
                    self.keep(Event::Closed(code));
                    return code;
                }
                Some(event) => {
                    self.keep(event);
                }
            }
        }
    }

    /// How many kept messages have this `cmd`.
    pub fn count(&self, cmd: &str) -> usize {
        let needle = format!("\"cmd\":\"{cmd}\"");
        self.transcript
            .iter()
            .filter(|l| l.contains(&needle))
            .count()
    }

    /// Close with a close frame (a clean leave); kept as `closed by the client`.
    pub async fn close(&mut self) {
        if let Some(c) = self.client.take() {
            c.close().await;
            self.transcript.push("closed by the client".into());
        }
    }

    /// Drop the TCP connection without a close frame.
    pub fn drop_abruptly(&mut self) {
        if let Some(c) = self.client.take() {
            c.drop_abruptly();
            self.transcript.push("dropped by the client".into());
        }
    }
}

/// A message with what differs from run to run replaced, so that two runs of one script
/// compare equal: ids (ULIDs, resume keys) by their order of first appearance in the
/// member's transcript (`<id 0>`, ...; the same id stays the same name), Unix times
/// (`expireAt`, `time`) by `<time>`, and in `rtcConfig` the TURN credentials and ports.
pub fn normalize(v: &serde_json::Value, ids: &mut Vec<String>) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "expireAt" | "time" if v.is_number() || v.is_string() => {
                            Value::String("<time>".into())
                        }
                        "username" | "credential" if v.as_str().is_some_and(|s| !s.is_empty()) => {
                            Value::String(format!("<{k}>"))
                        }
                        "urls" => Value::Array(
                            v.as_array()
                                .into_iter()
                                .flatten()
                                .map(|u| Value::String(without_port(u.as_str().unwrap_or(""))))
                                .collect(),
                        ),
                        _ => normalize(v, ids),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|x| normalize(x, ids)).collect()),
        Value::String(s) if is_id(s) => {
            let n = ids.iter().position(|x| x == s).unwrap_or_else(|| {
                ids.push(s.clone());
                ids.len() - 1
            });
            Value::String(format!("<id {n}>"))
        }
        other => other.clone(),
    }
}

/// A ULID (26 Crockford base-32 characters) or a resume key (32 hex digits).
fn is_id(s: &str) -> bool {
    (s.len() == 26
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b))))
        || (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `turn:127.0.0.1:40001?transport=udp` -> `turn:127.0.0.1:<port>?transport=udp`.
fn without_port(url: &str) -> String {
    let (head, query) = url.split_once('?').map_or((url, ""), |(h, q)| (h, q));
    let head = match head.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{host}:<port>")
        }
        _ => head.to_owned(),
    };
    if query.is_empty() {
        head
    } else {
        format!("{head}?{query}")
    }
}

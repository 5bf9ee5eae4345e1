//! The shared ICE registry. Three things cross the cluster on `<prefix>:ice`:
//!
//! - a command of the ICE HTTP API (a coturn agent's registration, load report or
//!   deregistration) that one node takes: every node applies it to its own engine;
//! - each node's embedded TURN server (when `[turn] secret` is set, the same on every node):
//!   its registration and load reports, so that every node hands it out with credentials it
//!   mints with that secret; deregistered when its node drains or is seen dead;
//! - the reservations each node's selections make, which every node holds until the
//!   server's next report, so that least-loaded selection sees the whole cluster's bursts.
//!
//! The latest registration and report of each server are kept in the hash
//! `<prefix>:ice:servers` too, for nodes that start later (with `embedded:<node>` naming a
//! node's embedded server). Nothing here runs on the signaling path: selection stays in the
//! engine, and its reservations leave through a queue that a task of its own publishes.

use super::Cluster;
use super::bus::{EmbeddedNote, IceNote};
use super::link::Link;
use rtcroom_ice::{IceCommand, Reply, server_name};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

/// A TURN server as the registry tells them apart: its address and TURN port.
type Server = (String, u16);

/// The server an ICE command is about: its address, and its TURN port when it names one.
fn about(command: &IceCommand) -> (&str, Option<u16>) {
    match command {
        IceCommand::Register(r) => (&r.ip, Some(r.turn_port)),
        IceCommand::Report(r) => (&r.ip, r.turn_port),
        IceCommand::Deregister { ip, turn_port } => (ip, *turn_port),
    }
}

/// `ADDRESS:PORT` as kept in `embedded:<node>`; a bare address (a node of an earlier
/// version) has no port.
fn parse_server(name: &str) -> (String, Option<u16>) {
    match name.rsplit_once(':').map(|(ip, p)| (ip, p.parse::<u16>())) {
        Some((ip, Ok(port))) if !ip.is_empty() => (ip.to_owned(), Some(port)),
        _ => (name.to_owned(), None),
    }
}

/// What a node knows of the cluster's embedded TURN servers.
#[derive(Debug, Default)]
pub struct Turns {
    /// The fingerprint of this node's `[turn] secret`; `None`: not set, so this node neither
    /// shares its own embedded server nor hands out the others'.
    secret_id: Option<String>,
    /// This node's own embedded server's address and TURN port: another node's server at
    /// the same address and port is never taken in its place (servers on one address with
    /// different ports are servers of their own).
    own: Mutex<Option<Server>>,
    /// The other nodes' embedded servers: node id → address and TURN port.
    peers: Mutex<HashMap<String, Server>>,
    /// Servers already warned about, so that a misconfiguration is logged once.
    warned: Mutex<HashSet<String>>,
}

impl Turns {
    pub fn new(secret: Option<&str>) -> Self {
        Self {
            secret_id: secret.map(secret_id),
            ..Self::default()
        }
    }

    fn warn_once(&self, ip: &str, why: &str) {
        if self
            .warned
            .lock()
            .expect("warned lock")
            .insert(ip.to_owned())
        {
            tracing::warn!(ice = %ip, "cluster: another node's embedded TURN server is not handed out here: {why}");
        }
    }
}

/// Names a `[turn] secret` without telling it: nodes compare these to know that the
/// credentials they mint are accepted by each other's embedded servers.
fn secret_id(secret: &str) -> String {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(b"rtcroom cluster TURN secret");
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    id[..16].to_owned()
}

fn note(from: &str, body: String, at: Option<(f64, f64)>) -> IceNote {
    IceNote {
        from: from.to_owned(),
        body,
        at,
        embedded: None,
        reserved: Vec::new(),
    }
}

/// The hash field of a server's latest registration or report: `register:ADDRESS:PORT`,
/// `report:ADDRESS:PORT` (`report:ADDRESS` for an agent's report that names no port).
fn field(kind: &str, ip: &str, turn_port: Option<u16>) -> String {
    match turn_port {
        Some(port) => format!("{kind}:{}", server_name(ip, port)),
        None => format!("{kind}:{ip}"),
    }
}

/// Keep `json` as the latest word on the server `command` is about (or forget the server:
/// without a port, every server at its address).
async fn keep(link: &Link, command: &IceCommand, json: &str) -> redis::RedisResult<()> {
    let mut conn = link.conn();
    let (ip, turn_port) = about(command);
    match command {
        IceCommand::Register(_) | IceCommand::Report(_) => {
            let kind = match command {
                IceCommand::Register(_) => "register",
                _ => "report",
            };
            redis::cmd("HSET")
                .arg(link.ice_hash())
                .arg(field(kind, ip, turn_port))
                .arg(json)
                .query_async::<()>(&mut conn)
                .await
        }
        IceCommand::Deregister { .. } => {
            let fields: Vec<String> = match turn_port {
                Some(_) => vec![
                    field("register", ip, turn_port),
                    field("report", ip, turn_port),
                ],
                None => {
                    let all: Vec<String> = redis::cmd("HKEYS")
                        .arg(link.ice_hash())
                        .query_async(&mut conn)
                        .await?;
                    all.into_iter()
                        .filter(|f| {
                            let rest = f
                                .strip_prefix("register:")
                                .or_else(|| f.strip_prefix("report:"));
                            rest.is_some_and(|r| parse_server(r).0 == ip)
                        })
                        .collect()
                }
            };
            if fields.is_empty() {
                return Ok(());
            }
            redis::cmd("HDEL")
                .arg(link.ice_hash())
                .arg(fields)
                .query_async::<()>(&mut conn)
                .await
        }
    }
}

impl Cluster {
    /// Publish an ICE API command's body and keep the latest per server.
    pub(super) async fn share_agent_command(
        &self,
        body: &[u8],
        at: Option<(f64, f64)>,
    ) -> redis::RedisResult<()> {
        let Ok(req) = rtcroom_ice::parse(body) else {
            return Ok(());
        };
        let note = note(self.me(), String::from_utf8_lossy(body).into_owned(), at);
        let json = serde_json::to_string(&note).expect("ICE notes serialize");
        keep(&self.link, &req.command, &json).await?;
        self.bus.publish(self.link.ice_channel(), json).await;
        Ok(())
    }

    /// Whether this node's embedded TURN server joins the shared registry (`[turn] secret`
    /// is set).
    pub fn shares_embedded_turn(&self) -> bool {
        self.turns.secret_id.is_some()
    }

    /// This node's embedded TURN server registered, reported or left: pass it on to the other
    /// nodes. Never waits; the task of [`Self::share_embedded_loop`] talks to Redis.
    pub fn embedded_turn(&self, command: IceCommand) {
        if let IceCommand::Register(r) = &command {
            *self.turns.own.lock().expect("own lock") = Some((r.ip.clone(), r.turn_port));
        }
        if self.shares_embedded_turn() && self.embedded_tx.try_send(command).is_err() {
            tracing::debug!("cluster: the embedded TURN server's queue is full; a note skipped");
        }
    }

    /// Publish this node's embedded TURN server's notes, and keep them for later nodes.
    pub(super) async fn share_embedded_loop(self: Arc<Self>, mut rx: mpsc::Receiver<IceCommand>) {
        let Some(secret_id) = self.turns.secret_id.clone() else {
            return;
        };
        while let Some(command) = rx.recv().await {
            // A drained node's server is gone from the registry for good; Redis away: the
            // next report after it returns tells the others again.
            if self.left.load(Ordering::Acquire) || self.degraded_since().is_some() {
                continue;
            }
            if let Err(e) = self.publish_embedded(&secret_id, &command).await {
                self.link.trouble(&e);
            }
        }
    }

    async fn publish_embedded(
        &self,
        secret_id: &str,
        command: &IceCommand,
    ) -> redis::RedisResult<()> {
        let mut note = note(self.me(), String::new(), None);
        note.embedded = Some(EmbeddedNote {
            body: command.to_body(),
            secret_id: secret_id.to_owned(),
        });
        let json = serde_json::to_string(&note).expect("ICE notes serialize");
        keep(&self.link, command, &json).await?;
        let field = format!("embedded:{}", self.me());
        let mut conn = self.link.conn();
        match command {
            IceCommand::Register(r) => {
                redis::cmd("HSET")
                    .arg(self.link.ice_hash())
                    .arg(field)
                    .arg(server_name(&r.ip, r.turn_port))
                    .query_async::<()>(&mut conn)
                    .await?;
            }
            IceCommand::Deregister { .. } => {
                redis::cmd("HDEL")
                    .arg(self.link.ice_hash())
                    .arg(field)
                    .query_async::<()>(&mut conn)
                    .await?;
            }
            IceCommand::Report(_) => {}
        }
        self.bus.publish(self.link.ice_channel(), json).await;
        Ok(())
    }

    /// The node drains: its embedded TURN server leaves every node's registry now.
    pub(super) async fn forget_own_embedded(&self) {
        let Some(secret_id) = self.turns.secret_id.clone() else {
            return;
        };
        let Some((ip, port)) = self.turns.own.lock().expect("own lock").clone() else {
            return;
        };
        if self.degraded_since().is_some() {
            return;
        }
        let gone = IceCommand::Deregister {
            ip,
            turn_port: Some(port),
        };
        if let Err(e) = self.publish_embedded(&secret_id, &gone).await {
            self.link.trouble(&e);
        }
    }

    /// Node `node` is dead: its embedded TURN server leaves this node's registry, and the
    /// shared hash (every node that sees it dead does this; the second finds nothing).
    pub(super) async fn forget_embedded_of(&self, node: &str) {
        let known = self.turns.peers.lock().expect("peers lock").remove(node);
        let embedded = format!("embedded:{node}");
        let server = match known {
            Some((ip, port)) => Some((ip, Some(port))),
            None => redis::cmd("HGET")
                .arg(self.link.ice_hash())
                .arg(&embedded)
                .query_async::<Option<String>>(&mut self.link.conn())
                .await
                .unwrap_or_else(|e| {
                    self.link.trouble(&e);
                    None
                })
                .map(|name| parse_server(&name)),
        };
        let Some((ip, turn_port)) = server else {
            return;
        };
        if self.is_own_turn(&ip, turn_port) {
            return;
        }
        let gone = IceCommand::Deregister {
            ip: ip.clone(),
            turn_port,
        };
        if self.hub.ice(gone).await == Some(Reply::Successful) {
            tracing::info!(node, ice = %ip, port = ?turn_port, "cluster: the embedded TURN server of a dead node left the registry");
        }
        let forgotten: redis::RedisResult<()> = redis::cmd("HDEL")
            .arg(self.link.ice_hash())
            .arg(field("register", &ip, turn_port))
            .arg(field("report", &ip, turn_port))
            .arg(embedded)
            .query_async(&mut self.link.conn())
            .await;
        if let Err(e) = forgotten {
            self.link.trouble(&e);
        }
    }

    /// Whether the server at `ip` (on `turn_port`; any port when it names none) is this
    /// node's own embedded one.
    fn is_own_turn(&self, ip: &str, turn_port: Option<u16>) -> bool {
        self.turns
            .own
            .lock()
            .expect("own lock")
            .as_ref()
            .is_some_and(|(own, port)| own == ip && turn_port.is_none_or(|p| p == *port))
    }

    /// Publish the reservations of this node's selections as the hub hands them over, a
    /// batch per note.
    pub(super) async fn share_reserved_loop(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<(String, u64)>,
    ) {
        let mut batch = Vec::with_capacity(64);
        while rx.recv_many(&mut batch, 256).await > 0 {
            if self.degraded_since().is_some() {
                batch.clear();
                continue;
            }
            let mut n = note(self.me(), String::new(), None);
            n.reserved = std::mem::take(&mut batch);
            let json = serde_json::to_string(&n).expect("ICE notes serialize");
            self.bus.publish(self.link.ice_channel(), json).await;
        }
    }

    /// Apply a note another node published (this node's own are applied already).
    pub(super) async fn apply_ice(&self, payload: &[u8]) {
        let Ok(note) = serde_json::from_slice::<IceNote>(payload) else {
            return;
        };
        if note.from != self.me() {
            self.apply_note(note).await;
        }
    }

    async fn apply_note(&self, note: IceNote) {
        if !note.reserved.is_empty() {
            self.hub.ice_reserved(note.reserved).await;
            return;
        }
        if let Some(embedded) = note.embedded {
            self.apply_embedded(&note.from, embedded).await;
            return;
        }
        let Ok(req) = rtcroom_ice::parse(note.body.as_bytes()) else {
            return;
        };
        let mut command = req.command;
        if let (IceCommand::Register(r), Some((lat, lon))) = (&mut command, note.at)
            && r.location.is_none()
        {
            r.location = rtcroom_ice::GeoPoint::new(lat, lon);
        }
        let _ = self.hub.ice(command).await;
    }

    /// Another node's embedded TURN server: handed out here only when this node mints
    /// credentials it accepts (the same `[turn] secret`) and it is not at this node's own
    /// server's address.
    async fn apply_embedded(&self, from: &str, note: EmbeddedNote) {
        let Ok(req) = rtcroom_ice::parse(note.body.as_bytes()) else {
            return;
        };
        let (ip, turn_port) = about(&req.command);
        let ip = ip.to_owned();
        let name = match turn_port {
            Some(port) => server_name(&ip, port),
            None => ip.clone(),
        };
        if self.is_own_turn(&ip, turn_port) {
            self.turns.warn_once(
                &name,
                &format!("node {from} registers it at this node's own [turn] public_ip and port; give each node an address or a TURN port of its own"),
            );
            return;
        }
        match req.command {
            IceCommand::Register(r) => {
                if self.turns.secret_id.as_deref() != Some(note.secret_id.as_str()) {
                    self.turns.warn_once(
                        &name,
                        &format!("node {from} has another [turn] secret (or this node none); set the same [turn] secret on every node"),
                    );
                    return;
                }
                self.turns
                    .peers
                    .lock()
                    .expect("peers lock")
                    .insert(from.to_owned(), (ip, r.turn_port));
                let _ = self.hub.ice_peer(r).await;
            }
            IceCommand::Deregister { ip, turn_port } => {
                let known = self.turns.peers.lock().expect("peers lock").remove(from);
                // A node of an earlier version names no port: the one its server was
                // registered with.
                let turn_port = turn_port.or(known.map(|(_, port)| port));
                let _ = self.hub.ice(IceCommand::Deregister { ip, turn_port }).await;
            }
            // A report of a server not taken here is answered `ice_no_found`: nothing happens.
            report @ IceCommand::Report(_) => {
                let _ = self.hub.ice(report).await;
            }
        }
    }

    /// Apply the registrations, then the reports, kept in Redis; a dead node's embedded
    /// server is not taken.
    pub(super) async fn load_ice(&self) {
        let kept: redis::RedisResult<Vec<(String, String)>> = redis::cmd("HGETALL")
            .arg(self.link.ice_hash())
            .query_async(&mut self.link.conn())
            .await;
        let Ok(mut kept) = kept else {
            return;
        };
        // Registrations first: a report of a server not registered is refused.
        kept.sort_by_key(|(field, _)| !field.starts_with("register:"));
        let mut alive: HashMap<String, bool> = HashMap::new();
        for (_, json) in kept {
            let Ok(note) = serde_json::from_str::<IceNote>(&json) else {
                continue;
            };
            if note.embedded.is_some() {
                if note.from == self.me() {
                    continue;
                }
                let live = match alive.get(&note.from) {
                    Some(live) => *live,
                    None => {
                        let exists: redis::RedisResult<i64> = redis::cmd("EXISTS")
                            .arg(self.link.node_key(&note.from))
                            .query_async(&mut self.link.conn())
                            .await;
                        let live = matches!(exists, Ok(1));
                        alive.insert(note.from.clone(), live);
                        live
                    }
                };
                if !live {
                    continue;
                }
            }
            self.apply_note(note).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{EmbeddedNote, IceNote, note};

    /// A note of an earlier version reads as an agent's command; the new kinds carry an
    /// empty `body`, which an earlier node does not take for a command.
    #[test]
    fn notes_of_both_versions_read_each_other() {
        let old =
            r#"{"from":"n1","body":"{\"cmd\":\"iceDeregister\",\"ip\":\"10.0.0.1\"}","at":null}"#;
        let n: IceNote = serde_json::from_str(old).expect("an earlier note");
        assert!(n.embedded.is_none() && n.reserved.is_empty());
        assert!(rtcroom_ice::parse(n.body.as_bytes()).is_ok());
        let mut reserved = note("n2", String::new(), None);
        reserved.reserved = vec![("10.0.0.1".into(), 400)];
        let mut embedded = note("n2", String::new(), None);
        embedded.embedded = Some(EmbeddedNote {
            body: r#"{"cmd":"iceDeregister","ip":"10.0.0.2"}"#.into(),
            secret_id: super::secret_id("s"),
        });
        for n in [reserved, embedded] {
            let json = serde_json::to_string(&n).expect("serializes");
            let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
            assert_eq!((&v["from"], &v["body"]), (&"n2".into(), &"".into()));
            assert!(rtcroom_ice::parse(b"").is_err());
            let back: IceNote = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back.reserved, n.reserved);
            assert_eq!(back.embedded.map(|e| e.body), n.embedded.map(|e| e.body));
        }
    }

    /// A server is kept and forgotten by address and TURN port; a bare address (an agent's
    /// report, a node of an earlier version) names no port.
    #[test]
    fn servers_are_named_by_address_and_port() {
        use super::{field, parse_server};
        assert_eq!(
            parse_server("127.0.0.1:3479"),
            ("127.0.0.1".into(), Some(3479))
        );
        assert_eq!(parse_server("[::1]:3478"), ("[::1]".into(), Some(3478)));
        assert_eq!(parse_server("10.0.0.1"), ("10.0.0.1".into(), None));
        assert_eq!(
            parse_server("turn.example.com"),
            ("turn.example.com".into(), None)
        );
        assert_eq!(
            field("register", "127.0.0.1", Some(3479)),
            "register:127.0.0.1:3479"
        );
        assert_eq!(field("report", "10.0.0.1", None), "report:10.0.0.1");
    }

    #[test]
    fn a_secret_id_names_the_secret_without_telling_it() {
        let a = super::secret_id("one secret");
        assert_eq!(a, super::secret_id("one secret"));
        assert_ne!(a, super::secret_id("another secret"));
        assert!(!a.contains("secret"));
        assert_eq!(a.len(), 16);
    }
}

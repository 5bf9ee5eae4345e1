//! The registry of ICE servers: who is registered, who is healthy, and which server a new pair
//! of members gets.
//!
//! **Invariant:** a server is in rotation exactly while its last registration or report is no
//! older than the configured timeout at the `now` the caller passes in; selection computes this
//! itself, so it never depends on how often the shell calls [`Registry::poll_health`].
//!
//! Selection, per pair: among healthy servers with room for the pair's need, servers in the
//! pair's region first (when the caller names one), then the nearest to the pair's members
//! (the least sum of great-circle distances, in whole km, from the server to each member
//! whose place is known; servers of unknown place after every located one; no effect when
//! no member's place is known), then the most headroom (`maxBandwidth − txRate − reserved`),
//! then the lowest address so that the choice is deterministic. The chosen server reserves the pair's need until its next report, because
//! the report is the first measurement that includes the new call's traffic.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;

use rtcroom_protocol::RtcConfig;

use crate::api::{IceCommand, Register, Reply, Report};
use crate::geo::{GeoPoint, pair_distance};
use crate::rtc::rtc_config;

/// How the registry judges and serves ICE servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// A server that has neither registered nor reported for this long leaves rotation.
    pub report_timeout_ms: u64,
    /// kbit/s reserved per audio-only member of a new pair (orig: 40).
    pub audio_reserve_kbps: u64,
    /// kbit/s reserved per video member of a new pair (orig: 200).
    pub video_reserve_kbps: u64,
    /// Registrations of new addresses beyond this many are answered `ice_full_loading`, so a
    /// misbehaving agent cannot grow the registry without bound.
    pub max_servers: usize,
    /// The TURN REST shared secret (coturn's `--static-auth-secret`) of every server without
    /// an entry in `server_secrets`. `None`: such servers hand out the static credentials of
    /// their registration.
    pub shared_secret: Option<String>,
    /// Per-server shared secrets by registered `ip`, for deployments whose TURN servers do not
    /// all share one secret.
    pub server_secrets: BTreeMap<String, String>,
    /// Lifetime of minted TURN credentials. A TURN server refuses refreshes once the username
    /// has expired, so this bounds the length of a relayed call.
    pub credential_ttl_secs: u64,
    /// The REST shared secret of the embedded TURN servers of the other nodes of a cluster
    /// (`[turn] secret`, the same on every node): servers registered with
    /// [`Registry::register_peer`] mint their credentials with it. `None`: such servers are
    /// never chosen (no credential this node could mint would be accepted there).
    pub peer_secret: Option<String>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            report_timeout_ms: 30_000,
            audio_reserve_kbps: 40,
            video_reserve_kbps: 200,
            max_servers: 1024,
            shared_secret: None,
            server_secrets: BTreeMap::new(),
            credential_ttl_secs: 24 * 3600,
            peer_secret: None,
        }
    }
}

/// What one member of a pair sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    AudioOnly,
    Video,
}

/// The members a selection must make room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Need {
    pub audio_only: u32,
    pub video: u32,
}

impl Need {
    /// The need of a pair of members.
    pub fn pair(a: Media, b: Media) -> Self {
        let mut need = Self::default();
        for m in [a, b] {
            match m {
                Media::AudioOnly => need.audio_only += 1,
                Media::Video => need.video += 1,
            }
        }
        need
    }

    fn kbps(self, cfg: &RegistryConfig) -> u64 {
        u64::from(self.audio_only)
            .saturating_mul(cfg.audio_reserve_kbps)
            .saturating_add(u64::from(self.video).saturating_mul(cfg.video_reserve_kbps))
    }
}

/// No healthy server has room for the pair: the room server answers `result: 8`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no ICE server has {need_kbps} kbit/s left ({healthy} of {registered} servers healthy)")]
pub struct NoRoom {
    pub need_kbps: u64,
    pub healthy: usize,
    pub registered: usize,
}

/// A change of a server's place in rotation, for the shell to log and alert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthEvent {
    /// The server (`ADDRESS:TURN_PORT`, [`server_name`]) has not reported since
    /// `last_seen_ms` and no longer gets new pairs.
    LeftRotation { server: String, last_seen_ms: u64 },
    /// The server reported or registered again and is back in rotation.
    Returned { server: String },
}

/// The server chosen for one pair: everything needed to hand each member its `rtcConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    registration: Arc<Register>,
    secret: Option<Arc<str>>,
    ttl_secs: u64,
    /// kbit/s this selection reserved on the server (0 for [`Registry::peek`]).
    pub reserved_kbps: u64,
}

impl Chosen {
    /// The server's registered address, for records (`ice_ip`) and logs.
    pub fn ip(&self) -> &str {
        &self.registration.ip
    }

    /// The server's name in the registry, `ADDRESS:TURN_PORT` ([`server_name`]): what a
    /// reservation names it by.
    pub fn server(&self) -> String {
        server_name(&self.registration.ip, self.registration.turn_port)
    }

    pub fn region(&self) -> Option<&str> {
        self.registration.region.as_deref()
    }

    /// Whether members get ephemeral credentials minted with a shared secret (`true`) or the
    /// static credentials of the registration (`false`).
    pub fn mints_credentials(&self) -> bool {
        self.secret.is_some()
    }

    /// The `rtcConfig` for member `uid` at `now_ms`, with credentials of its own.
    pub fn rtc_config(&self, uid: &str, now_ms: u64) -> RtcConfig {
        rtc_config(
            &self.registration,
            self.secret.as_deref().map(str::as_bytes),
            uid,
            now_ms,
            self.ttl_secs,
        )
    }
}

/// How the registry names a server: `ADDRESS:TURN_PORT`. Servers are told apart by both,
/// so that several share one address (two TURN servers on one host, or behind one NAT
/// address, on different ports).
pub fn server_name(ip: &str, turn_port: u16) -> String {
    format!("{ip}:{turn_port}")
}

/// A registered server as operators and metrics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    pub ip: String,
    pub turn_port: u16,
    pub region: Option<String>,
    pub max_bandwidth_kbps: u64,
    pub rx_kbps: u64,
    pub tx_kbps: u64,
    pub reserved_kbps: u64,
    pub headroom_kbps: u64,
    pub last_seen_ms: u64,
    pub healthy: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    registration: Arc<Register>,
    last_seen_ms: u64,
    rx_kbps: u64,
    tx_kbps: u64,
    reserved_kbps: u64,
    /// Registered through [`Registry::register_peer`]: another node's embedded TURN server,
    /// whose credentials are minted with [`RegistryConfig::peer_secret`].
    peer: bool,
    /// Rotation as last announced through [`HealthEvent`]s; only `poll_health` reads it.
    announced_in_rotation: bool,
}

impl Entry {
    fn headroom(&self) -> u64 {
        self.registration
            .max_bandwidth_kbps
            .saturating_sub(self.tx_kbps)
            .saturating_sub(self.reserved_kbps)
    }
}

/// The ICE servers this room server hands out. Pure: every call that depends on time takes
/// `now_ms` (unix milliseconds).
#[derive(Debug, Clone)]
pub struct Registry {
    cfg: RegistryConfig,
    // Keyed by the registered address and TURN port, which an agent chooses: std's BTreeMap
    // cannot be flooded, and its order makes ties in selection deterministic.
    servers: BTreeMap<(String, u16), Entry>,
}

impl Registry {
    pub fn new(cfg: RegistryConfig) -> Self {
        Self {
            cfg,
            servers: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.cfg
    }

    /// Carry out one API command and give the reply text to send.
    pub fn handle(&mut self, now_ms: u64, command: IceCommand) -> Reply {
        match command {
            IceCommand::Register(r) => self.register(now_ms, r),
            IceCommand::Deregister { ip, turn_port } => self.deregister(&ip, turn_port),
            IceCommand::Report(r) => self.report(now_ms, r),
        }
    }

    /// Register a server, or update the registration of a known address. A known address is
    /// answered `ice_have_registered` but its registration is replaced all the same (its TURN
    /// port too), because an agent that registers again has usually restarted with a changed
    /// configuration; its measured rates and reservations are kept, since the traffic they
    /// describe goes on. Servers registered with [`Self::register_peer`] are told apart by
    /// address and TURN port: several share one address (nodes on one host, or behind one
    /// NAT address), beside one registered here.
    pub fn register(&mut self, now_ms: u64, registration: Register) -> Reply {
        self.enter(now_ms, registration, false)
    }

    /// Register (or update) another cluster node's embedded TURN server: as [`Self::register`],
    /// but its members' credentials are minted with [`RegistryConfig::peer_secret`]. It never
    /// replaces a server registered with [`Self::register`] (this node's own embedded server,
    /// or an agent's), which is answered `ice_have_registered` and left as it is; a later
    /// [`Self::register`] of the same address makes it an ordinary server again.
    pub fn register_peer(&mut self, now_ms: u64, registration: Register) -> Reply {
        self.enter(now_ms, registration, true)
    }

    fn enter(&mut self, now_ms: u64, registration: Register, peer: bool) -> Reply {
        let registration = Arc::new(registration);
        let key = (registration.ip.clone(), registration.turn_port);
        // An agent (or this node's own server) registered again at its address with another
        // TURN port has restarted with a changed configuration: its one server moves to the
        // new port. Another node's embedded server at that address stays a server of its own.
        if !peer && !self.servers.contains_key(&key) {
            let moved = self
                .servers
                .range((key.0.clone(), 0)..=(key.0.clone(), u16::MAX))
                .find(|(_, e)| !e.peer)
                .map(|(k, _)| k.clone());
            if let Some(old) = moved {
                let e = self.servers.remove(&old).expect("found above");
                self.servers.insert(key.clone(), e);
            }
        }
        if let Some(e) = self.servers.get_mut(&key) {
            if peer && !e.peer {
                return Reply::HaveRegistered;
            }
            e.registration = registration;
            e.peer = peer;
            e.last_seen_ms = e.last_seen_ms.max(now_ms);
            return Reply::HaveRegistered;
        }
        if self.servers.len() >= self.cfg.max_servers {
            return Reply::FullLoading;
        }
        self.servers.insert(
            key,
            Entry {
                registration,
                last_seen_ms: now_ms,
                rx_kbps: 0,
                tx_kbps: 0,
                reserved_kbps: 0,
                peer,
                announced_in_rotation: true,
            },
        );
        Reply::Successful
    }

    /// The servers registered at `ip`: the one with `turn_port`, or every one without it.
    fn at<'a>(
        &'a mut self,
        ip: &'a str,
        turn_port: Option<u16>,
    ) -> impl Iterator<Item = &'a mut Entry> + 'a {
        self.servers
            .range_mut((ip.to_owned(), 0)..=(ip.to_owned(), u16::MAX))
            .filter(move |((_, port), _)| turn_port.is_none_or(|p| p == *port))
            .map(|(_, e)| e)
    }

    /// Remove a server (`turn_port` `None`: every server at `ip`); pairs that already have it
    /// keep it.
    pub fn deregister(&mut self, ip: &str, turn_port: Option<u16>) -> Reply {
        let before = self.servers.len();
        self.servers
            .retain(|(at, port), _| !(at == ip && turn_port.is_none_or(|p| p == *port)));
        if self.servers.len() < before {
            Reply::Successful
        } else {
            Reply::NotFound
        }
    }

    /// Take a server's measured rates (a report without `turn_port`: of every server at its
    /// address). The reservations made since its last report end here: the rates now include
    /// the calls they were made for.
    pub fn report(&mut self, now_ms: u64, report: Report) -> Reply {
        let mut found = false;
        for e in self.at(&report.ip, report.turn_port) {
            e.rx_kbps = report.rx_kbps;
            e.tx_kbps = report.tx_kbps;
            e.reserved_kbps = 0;
            e.last_seen_ms = e.last_seen_ms.max(now_ms);
            found = true;
        }
        if found {
            Reply::Successful
        } else {
            Reply::NotFound
        }
    }

    /// Add a reservation another node of a cluster made on `server` (its selection's
    /// [`Chosen::server`] and [`Chosen::reserved_kbps`]); like this registry's own, it ends
    /// with the server's next report. A bare address (a node of an earlier version) names the
    /// server at it when there is exactly one. `false`: no such server here.
    pub fn reserve(&mut self, server: &str, kbps: u64) -> bool {
        let named = server
            .rsplit_once(':')
            .and_then(|(ip, port)| Some((ip.to_owned(), port.parse::<u16>().ok()?)))
            .filter(|key| self.servers.contains_key(key));
        let key = match named {
            Some(key) => key,
            None => {
                let mut at = self.servers.keys().filter(|(ip, _)| ip == server);
                match (at.next(), at.next()) {
                    (Some(key), None) => key.clone(),
                    _ => return false,
                }
            }
        };
        let e = self.servers.get_mut(&key).expect("looked up above");
        e.reserved_kbps = e.reserved_kbps.saturating_add(kbps);
        true
    }

    /// Whether a server at `ip` is registered as another node's embedded TURN server.
    pub fn is_peer(&self, ip: &str) -> bool {
        self.servers
            .range((ip.to_owned(), 0)..=(ip.to_owned(), u16::MAX))
            .any(|(_, e)| e.peer)
    }

    fn healthy(&self, e: &Entry, now_ms: u64) -> bool {
        now_ms.saturating_sub(e.last_seen_ms) <= self.cfg.report_timeout_ms
    }

    /// Whether this registry can hand `e` out: in rotation, and with credentials it can mint.
    fn usable(&self, e: &Entry, now_ms: u64) -> bool {
        self.healthy(e, now_ms) && (!e.peer || self.cfg.peer_secret.is_some())
    }

    /// The best server for `need` at `now_ms`, with the order of the module docs, or `None`.
    fn best(
        &self,
        now_ms: u64,
        need_kbps: u64,
        region: Option<&str>,
        near: &[Option<GeoPoint>],
    ) -> Option<&Entry> {
        self.servers
            .values()
            .filter(|e| self.usable(e, now_ms) && e.headroom() >= need_kbps)
            .min_by_key(|e| {
                let elsewhere = region.is_some_and(|want| {
                    !e.registration
                        .region
                        .as_deref()
                        .is_some_and(|r| r.eq_ignore_ascii_case(want))
                });
                let distance = pair_distance(e.registration.location, near);
                (
                    elsewhere,
                    distance,
                    Reverse(e.headroom()),
                    &e.registration.ip,
                    e.registration.turn_port,
                )
            })
    }

    fn chosen(&self, e: &Entry, reserved_kbps: u64) -> Chosen {
        let secret = match self.cfg.server_secrets.get(&e.registration.ip) {
            Some(own) => Some(own),
            None if e.peer => self.cfg.peer_secret.as_ref(),
            None => self.cfg.shared_secret.as_ref(),
        }
        .map(|s| Arc::from(s.as_str()));
        Chosen {
            registration: Arc::clone(&e.registration),
            secret,
            ttl_secs: self.cfg.credential_ttl_secs,
            reserved_kbps,
        }
    }

    /// Choose the server for a new pair and reserve its need there. Call once per pair and
    /// give both members the returned server, so that both legs of the call meet on it.
    /// `region` is the pair's region, if known; `near` the places of the pair's members
    /// (from the shell's GeoIP lookup), each `None` when unknown.
    pub fn select(
        &mut self,
        now_ms: u64,
        need: Need,
        region: Option<&str>,
        near: &[Option<GeoPoint>],
    ) -> Result<Chosen, NoRoom> {
        let need_kbps = need.kbps(&self.cfg);
        let Some(chosen) = self
            .best(now_ms, need_kbps, region, near)
            .map(|e| self.chosen(e, need_kbps))
        else {
            return Err(NoRoom {
                need_kbps,
                healthy: self
                    .servers
                    .values()
                    .filter(|e| self.healthy(e, now_ms))
                    .count(),
                registered: self.servers.len(),
            });
        };
        let key = (chosen.ip().to_owned(), chosen.registration.turn_port);
        if let Some(e) = self.servers.get_mut(&key) {
            e.reserved_kbps = e.reserved_kbps.saturating_add(need_kbps);
        }
        Ok(chosen)
    }

    /// The server a new pair would get, without reserving anything: for the login server's
    /// `iceServer` hint.
    pub fn peek(
        &self,
        now_ms: u64,
        region: Option<&str>,
        near: &[Option<GeoPoint>],
    ) -> Option<Chosen> {
        self.best(now_ms, 0, region, near)
            .map(|e| self.chosen(e, 0))
    }

    /// The server registered at `ip`, in rotation or not, without reserving anything: for a
    /// pair whose server was chosen before the room server restarted (a snapshot keeps the
    /// address, and the agent registers again). Of several servers at one address, the one
    /// with the lowest TURN port.
    pub fn registered(&self, ip: &str) -> Option<Chosen> {
        self.servers
            .range((ip.to_owned(), 0)..=(ip.to_owned(), u16::MAX))
            .next()
            .map(|(_, e)| self.chosen(e, 0))
    }

    /// Changes of rotation since the last call, for the shell to log and alert on. Call it
    /// every few seconds; selection does not depend on it.
    pub fn poll_health(&mut self, now_ms: u64) -> Vec<HealthEvent> {
        let timeout = self.cfg.report_timeout_ms;
        let mut events = Vec::new();
        for e in self.servers.values_mut() {
            let healthy = now_ms.saturating_sub(e.last_seen_ms) <= timeout;
            if healthy == e.announced_in_rotation {
                continue;
            }
            e.announced_in_rotation = healthy;
            let server = server_name(&e.registration.ip, e.registration.turn_port);
            events.push(if healthy {
                HealthEvent::Returned { server }
            } else {
                HealthEvent::LeftRotation {
                    server,
                    last_seen_ms: e.last_seen_ms,
                }
            });
        }
        events
    }

    /// Every registered server, in address order.
    pub fn servers(&self, now_ms: u64) -> Vec<ServerStatus> {
        self.servers
            .values()
            .map(|e| ServerStatus {
                ip: e.registration.ip.clone(),
                turn_port: e.registration.turn_port,
                region: e.registration.region.clone(),
                max_bandwidth_kbps: e.registration.max_bandwidth_kbps,
                rx_kbps: e.rx_kbps,
                tx_kbps: e.tx_kbps,
                reserved_kbps: e.reserved_kbps,
                headroom_kbps: e.headroom(),
                last_seen_ms: e.last_seen_ms,
                healthy: self.healthy(e, now_ms),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::IceType;

    const T0: u64 = 1_700_000_000_000;

    fn reg(ip: &str, max: u64) -> Register {
        Register::new(ip, max)
    }

    fn report(ip: &str, tx: u64) -> Report {
        Report {
            ip: ip.into(),
            turn_port: None,
            rx_kbps: tx / 2,
            tx_kbps: tx,
        }
    }

    fn registry(servers: &[(&str, u64)]) -> Registry {
        let mut r = Registry::new(RegistryConfig::default());
        for (ip, max) in servers {
            assert_eq!(r.register(T0, reg(ip, *max)), Reply::Successful);
        }
        r
    }

    const VIDEO_PAIR: Need = Need {
        audio_only: 0,
        video: 2,
    };

    #[test]
    fn need_of_a_pair() {
        let cfg = RegistryConfig::default();
        assert_eq!(
            Need::pair(Media::AudioOnly, Media::AudioOnly).kbps(&cfg),
            80
        );
        assert_eq!(Need::pair(Media::AudioOnly, Media::Video).kbps(&cfg), 240);
        assert_eq!(Need::pair(Media::Video, Media::Video).kbps(&cfg), 400);
    }

    #[test]
    fn most_headroom_first() {
        let mut r = registry(&[
            ("10.0.0.1", 10_000),
            ("10.0.0.2", 10_000),
            ("10.0.0.3", 8_000),
        ]);
        r.report(T0, report("10.0.0.1", 5_000));
        r.report(T0, report("10.0.0.2", 1_000));
        r.report(T0, report("10.0.0.3", 0));
        // Headroom: .1 5000, .2 9000, .3 8000.
        let got = r.select(T0, VIDEO_PAIR, None, &[]).expect("room");
        assert_eq!(got.ip(), "10.0.0.2");
        assert_eq!(got.reserved_kbps, 400);
    }

    #[test]
    fn ties_go_to_the_lowest_address() {
        let mut r = registry(&[("10.0.0.9", 1_000), ("10.0.0.1", 1_000)]);
        assert_eq!(
            r.select(T0, VIDEO_PAIR, None, &[]).expect("room").ip(),
            "10.0.0.1"
        );
    }

    #[test]
    fn reservation_holds_until_next_report() {
        let mut r = registry(&[("a.example", 1_000), ("b.example", 900)]);
        // a: 1000 → 600 after one video pair, so the next pair goes to b (900).
        let picks: Vec<_> = (0..4)
            .map(|_| {
                r.select(T0, VIDEO_PAIR, None, &[])
                    .map(|c| c.ip().to_owned())
            })
            .collect();
        assert_eq!(
            picks,
            vec![
                Ok("a.example".to_owned()),
                Ok("b.example".to_owned()),
                Ok("a.example".to_owned()), // a 600 vs b 500
                Ok("b.example".to_owned()), // a 200 vs b 500
            ]
        );
        let status = r.servers(T0);
        assert_eq!(
            status.iter().map(|s| s.reserved_kbps).collect::<Vec<_>>(),
            [800, 800]
        );
        // The report measures the calls: reservations end, measured tx counts instead.
        assert_eq!(
            r.report(T0 + 5_000, report("a.example", 700)),
            Reply::Successful
        );
        let a = &r.servers(T0 + 5_000)[0];
        assert_eq!((a.reserved_kbps, a.tx_kbps, a.headroom_kbps), (0, 700, 300));
    }

    #[test]
    fn both_legs_get_the_same_server() {
        let mut r = Registry::new(RegistryConfig {
            shared_secret: Some("s".into()),
            ..RegistryConfig::default()
        });
        r.register(T0, reg("10.0.0.1", 1_000));
        r.register(T0, reg("10.0.0.2", 1_000));
        let chosen = r.select(T0, VIDEO_PAIR, None, &[]).expect("room");
        let (a, b) = (chosen.rtc_config("alice", T0), chosen.rtc_config("bob", T0));
        assert_eq!(a.ice_servers[0].urls, b.ice_servers[0].urls);
        assert_ne!(a.ice_servers[0].username, b.ice_servers[0].username);
        // The pair's reservation was made once, on that one server.
        let reserved: Vec<_> = r.servers(T0).iter().map(|s| s.reserved_kbps).collect();
        assert_eq!(reserved, [400, 0]);
    }

    #[test]
    fn nothing_left_is_an_error() {
        let mut r = registry(&[("10.0.0.1", 500)]);
        r.select(T0, VIDEO_PAIR, None, &[])
            .expect("first pair fits");
        assert_eq!(
            r.select(T0, VIDEO_PAIR, None, &[]),
            Err(NoRoom {
                need_kbps: 400,
                healthy: 1,
                registered: 1
            })
        );
        // A smaller need still fits in what is left.
        let audio = Need::pair(Media::AudioOnly, Media::AudioOnly);
        assert!(r.select(T0, audio, None, &[]).is_ok());
        let empty = &mut Registry::new(RegistryConfig::default());
        assert_eq!(
            empty.select(T0, audio, None, &[]),
            Err(NoRoom {
                need_kbps: 80,
                healthy: 0,
                registered: 0
            })
        );
    }

    /// Of two servers at one address, the one that falls silent is the one named.
    #[test]
    fn a_silent_server_is_named_by_its_address_and_turn_port() {
        let mut r = Registry::new(RegistryConfig {
            peer_secret: Some("cluster".into()),
            ..RegistryConfig::default()
        });
        let timeout = r.config().report_timeout_ms;
        let on = |port: u16| Register {
            turn_port: port,
            ..reg("10.0.0.1", 1_000)
        };
        r.register(T0, on(3478));
        r.register_peer(T0, on(3479));
        let from = |port: u16| Report {
            turn_port: Some(port),
            ..report("10.0.0.1", 0)
        };
        r.report(T0 + 10_000, from(3479));
        assert_eq!(
            r.poll_health(T0 + timeout + 1),
            vec![HealthEvent::LeftRotation {
                server: "10.0.0.1:3478".into(),
                last_seen_ms: T0
            }]
        );
        r.report(T0 + timeout + 2, from(3478));
        assert_eq!(
            r.poll_health(T0 + timeout + 2),
            vec![HealthEvent::Returned {
                server: "10.0.0.1:3478".into()
            }]
        );
    }

    #[test]
    fn health_timeout_and_return() {
        let mut r = registry(&[("10.0.0.1", 10_000), ("10.0.0.2", 1_000)]);
        let timeout = r.config().report_timeout_ms;
        r.report(T0 + 10_000, report("10.0.0.2", 0));
        assert_eq!(r.poll_health(T0 + timeout), vec![]);
        // .1 last seen at T0: still in rotation at exactly the timeout, out just after.
        assert_eq!(
            r.select(T0 + timeout, VIDEO_PAIR, None, &[])
                .expect("room")
                .ip(),
            "10.0.0.1"
        );
        let later = T0 + timeout + 1;
        assert_eq!(
            r.select(later, VIDEO_PAIR, None, &[]).expect("room").ip(),
            "10.0.0.2"
        );
        assert_eq!(
            r.poll_health(later),
            vec![HealthEvent::LeftRotation {
                server: "10.0.0.1:3478".into(),
                last_seen_ms: T0
            }]
        );
        assert_eq!(r.poll_health(later + 1), vec![], "announced once");
        assert_eq!(
            r.peek(later, None, &[]).expect("one healthy").ip(),
            "10.0.0.2"
        );
        let status = r.servers(later);
        assert_eq!(
            status.iter().map(|s| s.healthy).collect::<Vec<_>>(),
            [false, true]
        );

        assert_eq!(
            r.report(later + 5, report("10.0.0.1", 0)),
            Reply::Successful
        );
        assert_eq!(
            r.poll_health(later + 5),
            vec![HealthEvent::Returned {
                server: "10.0.0.1:3478".into()
            }]
        );
        assert_eq!(
            r.select(later + 5, VIDEO_PAIR, None, &[])
                .expect("room")
                .ip(),
            "10.0.0.1"
        );
    }

    #[test]
    fn nothing_healthy_is_an_error() {
        let mut r = registry(&[("10.0.0.1", 10_000)]);
        let late = T0 + r.config().report_timeout_ms + 1;
        assert_eq!(
            r.select(late, VIDEO_PAIR, None, &[]),
            Err(NoRoom {
                need_kbps: 400,
                healthy: 0,
                registered: 1
            })
        );
        assert_eq!(r.peek(late, None, &[]), None);
    }

    #[test]
    fn re_registration_updates_and_says_so() {
        let mut r = registry(&[("10.0.0.1", 1_000)]);
        r.report(T0 + 1_000, report("10.0.0.1", 300));
        r.select(T0 + 1_000, VIDEO_PAIR, None, &[]).expect("room");
        let mut changed = reg("10.0.0.1", 5_000);
        changed.turn_port = 3480;
        assert_eq!(r.register(T0 + 2_000, changed), Reply::HaveRegistered);
        let s = &r.servers(T0 + 2_000)[0];
        // New capacity; the measured rate and the reservation still stand.
        assert_eq!(
            (
                s.max_bandwidth_kbps,
                s.tx_kbps,
                s.reserved_kbps,
                s.last_seen_ms
            ),
            (5_000, 300, 400, T0 + 2_000)
        );
        let c = r.select(T0 + 2_000, VIDEO_PAIR, None, &[]).expect("room");
        assert!(c.rtc_config("u", T0).ice_servers[0].urls[0].ends_with(":3480?transport=udp"));
        assert_eq!(r.servers(T0).len(), 1);
    }

    #[test]
    fn unknown_ip() {
        let mut r = registry(&[("10.0.0.1", 1_000)]);
        assert_eq!(r.report(T0, report("10.0.0.2", 1)), Reply::NotFound);
        assert_eq!(r.deregister("10.0.0.2", None), Reply::NotFound);
        assert_eq!(r.deregister("10.0.0.1", None), Reply::Successful);
        assert_eq!(r.report(T0, report("10.0.0.1", 1)), Reply::NotFound);
        assert!(r.servers(T0).is_empty());
    }

    #[test]
    fn full_registry() {
        let mut r = Registry::new(RegistryConfig {
            max_servers: 1,
            ..RegistryConfig::default()
        });
        assert_eq!(r.register(T0, reg("10.0.0.1", 1)), Reply::Successful);
        assert_eq!(r.register(T0, reg("10.0.0.2", 1)), Reply::FullLoading);
        assert_eq!(r.register(T0, reg("10.0.0.1", 2)), Reply::HaveRegistered);
    }

    #[test]
    fn region_is_preferred_while_it_has_room() {
        let mut r = Registry::new(RegistryConfig::default());
        let mut eu = reg("10.0.0.1", 500);
        eu.region = Some("EU".into());
        let mut us = reg("10.0.0.2", 10_000);
        us.region = Some("us".into());
        r.register(T0, eu);
        r.register(T0, us);
        r.register(T0, reg("10.0.0.3", 20_000));
        assert_eq!(
            r.select(T0, VIDEO_PAIR, Some("eu"), &[])
                .expect("room")
                .ip(),
            "10.0.0.1"
        );
        // The EU server is full now: fall back to the most headroom anywhere.
        assert_eq!(
            r.select(T0, VIDEO_PAIR, Some("eu"), &[])
                .expect("room")
                .ip(),
            "10.0.0.3"
        );
        assert_eq!(
            r.select(T0, VIDEO_PAIR, Some("us"), &[])
                .expect("room")
                .ip(),
            "10.0.0.2"
        );
        assert_eq!(
            r.select(T0, VIDEO_PAIR, None, &[]).expect("room").ip(),
            "10.0.0.3"
        );
    }

    fn at(lat: f64, lon: f64) -> Option<GeoPoint> {
        GeoPoint::new(lat, lon)
    }

    fn located(ip: &str, max: u64, place: Option<GeoPoint>) -> Register {
        Register {
            location: place,
            ..reg(ip, max)
        }
    }

    const FRANKFURT: (f64, f64) = (50.11, 8.68);
    const AMSTERDAM: (f64, f64) = (52.37, 4.90);
    const NEW_YORK: (f64, f64) = (40.71, -74.01);
    const BOSTON: (f64, f64) = (42.36, -71.06);

    #[test]
    fn the_nearest_server_with_room_is_preferred() {
        let mut r = Registry::new(RegistryConfig::default());
        // The US server has far more headroom; the pair in Europe still gets the EU one.
        r.register(T0, located("10.0.0.1", 500, at(FRANKFURT.0, FRANKFURT.1)));
        r.register(T0, located("10.0.0.2", 100_000, at(NEW_YORK.0, NEW_YORK.1)));
        r.register(T0, reg("10.0.0.3", 1_000_000));
        let eu_pair = [at(AMSTERDAM.0, AMSTERDAM.1), at(FRANKFURT.0, FRANKFURT.1)];
        let us_pair = [at(BOSTON.0, BOSTON.1), at(NEW_YORK.0, NEW_YORK.1)];
        assert_eq!(
            r.select(T0, VIDEO_PAIR, None, &eu_pair).expect("room").ip(),
            "10.0.0.1"
        );
        assert_eq!(
            r.select(T0, VIDEO_PAIR, None, &us_pair).expect("room").ip(),
            "10.0.0.2"
        );
        // The EU server is full now: the next nearest with room, before one of unknown place.
        assert_eq!(
            r.select(T0, VIDEO_PAIR, None, &eu_pair).expect("room").ip(),
            "10.0.0.2"
        );
        // One member located is enough to prefer the nearest.
        let half = [None, at(BOSTON.0, BOSTON.1)];
        assert_eq!(
            r.select(T0, VIDEO_PAIR, None, &half).expect("room").ip(),
            "10.0.0.2"
        );
        // No member located: the most headroom, as without places.
        assert_eq!(
            r.select(T0, VIDEO_PAIR, None, &[None, None])
                .expect("room")
                .ip(),
            "10.0.0.3"
        );
        // A named region still comes first.
        let mut r2 = Registry::new(RegistryConfig::default());
        r2.register(T0, located("10.0.0.1", 500, at(FRANKFURT.0, FRANKFURT.1)));
        r2.register(
            T0,
            Register {
                region: Some("us".into()),
                ..reg("10.0.0.2", 500)
            },
        );
        assert_eq!(
            r2.select(T0, VIDEO_PAIR, Some("us"), &eu_pair)
                .expect("room")
                .ip(),
            "10.0.0.2"
        );
    }

    proptest::proptest! {
        /// Whatever the servers and members: the chosen server has room for the need, and no
        /// healthy server with room is nearer to the pair (sum of whole-km distances).
        #[test]
        fn no_server_with_room_is_nearer_than_the_chosen(
            servers in proptest::collection::vec(
                ((-90.0..=90.0f64, -180.0..=180.0f64), 0u64..2_000, proptest::bool::ANY),
                1..8,
            ),
            a in (-90.0..=90.0f64, -180.0..=180.0f64),
            b in proptest::option::of((-90.0..=90.0f64, -180.0..=180.0f64)),
        ) {
            let mut r = Registry::new(RegistryConfig::default());
            for (i, ((lat, lon), max, known)) in servers.iter().enumerate() {
                let place = if *known { at(*lat, *lon) } else { None };
                r.register(T0, located(&format!("10.0.0.{i}"), *max, place));
            }
            let near = [at(a.0, a.1), b.and_then(|(lat, lon)| at(lat, lon))];
            let need = VIDEO_PAIR.kbps(r.config());
            let before = r.servers(T0);
            match r.select(T0, VIDEO_PAIR, None, &near) {
                Ok(c) => {
                    let dist = |ip: &str| pair_distance(r.servers[&(ip.to_owned(), 3478)].registration.location, &near);
                    let mine = dist(c.ip());
                    for s in before.iter().filter(|s| s.headroom_kbps >= need) {
                        proptest::prop_assert!(dist(&s.ip) >= mine, "{} is nearer than {}", s.ip, c.ip());
                    }
                    let chosen = before.iter().find(|s| s.ip == c.ip()).expect("registered");
                    proptest::prop_assert!(chosen.headroom_kbps >= need);
                }
                Err(_) => proptest::prop_assert!(before.iter().all(|s| s.headroom_kbps < need)),
            }
        }
    }

    #[test]
    fn handle_dispatches() {
        let mut r = Registry::new(RegistryConfig::default());
        let body = br#"{"cmd":"iceRegister","ip":"10.0.0.1","maxBandwidth":100}"#;
        let cmd = crate::api::parse(body).expect("parses").command;
        assert_eq!(r.handle(T0, cmd.clone()), Reply::Successful);
        assert_eq!(r.handle(T0, cmd), Reply::HaveRegistered);
        let cmd = IceCommand::Report(report("10.0.0.1", 60));
        assert_eq!(r.handle(T0, cmd), Reply::Successful);
        assert_eq!(r.servers(T0)[0].headroom_kbps, 40);
        let cmd = IceCommand::Deregister {
            ip: "10.0.0.1".into(),
            turn_port: None,
        };
        assert_eq!(r.handle(T0, cmd.clone()), Reply::Successful);
        assert_eq!(r.handle(T0, cmd), Reply::NotFound);
    }

    #[test]
    fn secrets_decide_between_minted_and_static_credentials() {
        let mut static_reg = reg("10.0.0.1", 1_000);
        static_reg.username = "legacy".into();
        static_reg.credential = "pw".into();
        let mut r = Registry::new(RegistryConfig::default());
        r.register(T0, static_reg.clone());
        let c = r.peek(T0, None, &[]).expect("healthy");
        assert!(!c.mints_credentials());
        let turn = &c.rtc_config("alice", T0).ice_servers[0];
        assert_eq!(
            (turn.username.as_str(), turn.credential.as_str()),
            ("legacy", "pw")
        );

        let mut r = Registry::new(RegistryConfig {
            server_secrets: [("10.0.0.1".to_owned(), "north-secret".to_owned())].into(),
            credential_ttl_secs: 600,
            ..RegistryConfig::default()
        });
        r.register(T0, static_reg);
        let c = r.peek(T0, None, &[]).expect("healthy");
        assert!(c.mints_credentials());
        let turn = &c.rtc_config("42", T0).ice_servers[0];
        // The vector of credential::tests, minted for this member at T0.
        assert_eq!(
            (turn.username.as_str(), turn.credential.as_str()),
            ("1700000600:42", "IJqLNx10NKZjt+Umu/9xSgStSaA=")
        );
    }

    #[test]
    fn peers_mint_with_the_peer_secret_and_need_one() {
        let cfg = RegistryConfig {
            shared_secret: Some("coturn".into()),
            server_secrets: [("10.0.0.1".to_owned(), "cluster".to_owned())].into(),
            credential_ttl_secs: 600,
            ..RegistryConfig::default()
        };
        let mut r = Registry::new(RegistryConfig {
            peer_secret: Some("cluster".into()),
            ..cfg.clone()
        });
        r.register(T0, reg("10.0.0.1", 1_000));
        r.register_peer(T0, reg("10.0.0.2", 10_000));
        r.register(T0, reg("10.0.0.3", 1_000));
        assert!(r.is_peer("10.0.0.2") && !r.is_peer("10.0.0.3"));
        let pick = r.select(T0, VIDEO_PAIR, None, &[]).expect("room");
        assert_eq!(pick.ip(), "10.0.0.2");
        let turn = &pick.rtc_config("42", T0).ice_servers[0];
        let minted = crate::credential::mint(b"cluster", "42", T0, 600);
        assert_eq!(
            (turn.username.as_str(), turn.credential.as_str()),
            (minted.username.as_str(), minted.credential.as_str())
        );
        // An agent registering the address makes it an ordinary (coturn) server again, and a
        // peer's registration does not take it back.
        r.register(T0, reg("10.0.0.2", 10_000));
        assert!(!r.is_peer("10.0.0.2"));
        assert_eq!(
            r.register_peer(T0, reg("10.0.0.2", 5)),
            Reply::HaveRegistered
        );
        assert!(!r.is_peer("10.0.0.2"));
        assert_eq!(r.servers(T0)[1].max_bandwidth_kbps, 10_000);
        let turn = &r
            .select(T0, VIDEO_PAIR, None, &[])
            .expect("room")
            .rtc_config("42", T0)
            .ice_servers[0];
        let minted = crate::credential::mint(b"coturn", "42", T0, 600);
        assert_eq!(turn.credential, minted.credential);

        // Without a peer secret, a peer is registered but never handed out.
        let mut r = Registry::new(cfg);
        r.register_peer(T0, reg("10.0.0.2", 10_000));
        r.register(T0, reg("10.0.0.3", 1_000));
        assert_eq!(
            r.select(T0, VIDEO_PAIR, None, &[]).expect("room").ip(),
            "10.0.0.3"
        );
        assert_eq!(r.peek(T0, None, &[]).expect("healthy").ip(), "10.0.0.3");
        assert_eq!(r.servers(T0).len(), 2);
    }

    #[test]
    fn reservations_of_other_nodes_hold_until_the_next_report() {
        let mut r = registry(&[("10.0.0.1", 1_000), ("10.0.0.2", 900)]);
        assert!(r.reserve("10.0.0.1", 400));
        assert!(!r.reserve("10.0.0.9", 400), "unknown server");
        // 1: 600 left, 2: 900: the next pair goes to 2.
        assert_eq!(
            r.select(T0, VIDEO_PAIR, None, &[]).expect("room").ip(),
            "10.0.0.2"
        );
        assert!(r.reserve("10.0.0.1", 400));
        // 1: 200 left, 2: 500 left: a pair of 400 fits only on 2, then nowhere.
        assert_eq!(
            r.select(T0, VIDEO_PAIR, None, &[]).expect("room").ip(),
            "10.0.0.2"
        );
        assert!(r.select(T0, VIDEO_PAIR, None, &[]).is_err());
        r.report(T0 + 5_000, report("10.0.0.1", 100));
        let s = &r.servers(T0 + 5_000)[0];
        assert_eq!((s.reserved_kbps, s.headroom_kbps), (0, 900));
    }

    /// Two TURN servers on one address (one host, or one NAT address) on different ports
    /// are two servers: each registered, chosen, reported, reserved and deregistered on its
    /// own; a coturn agent's report or deregistration without `turnPort` concerns every
    /// server at its address, as before.
    #[test]
    fn servers_sharing_an_address_are_told_apart_by_their_turn_port() {
        let mut r = Registry::new(RegistryConfig {
            peer_secret: Some("cluster".into()),
            ..RegistryConfig::default()
        });
        let on = |port: u16, max: u64| Register {
            turn_port: port,
            ..reg("10.0.0.1", max)
        };
        // This node's own server, and another node's on the same address.
        assert_eq!(r.register(T0, on(3478, 1_000)), Reply::Successful);
        assert_eq!(r.register_peer(T0, on(3479, 900)), Reply::Successful);
        assert_eq!(r.register_peer(T0, on(3479, 900)), Reply::HaveRegistered);
        let ports = |r: &Registry| {
            r.servers(T0)
                .iter()
                .map(|s| s.turn_port)
                .collect::<Vec<_>>()
        };
        assert_eq!(ports(&r), [3478, 3479]);
        // 1,000 then 900 of headroom: the first pair gets 3478, the next (600 left) 3479.
        let first = r.select(T0, VIDEO_PAIR, None, &[]).expect("room");
        assert_eq!(first.server(), "10.0.0.1:3478");
        let second = r.select(T0, VIDEO_PAIR, None, &[]).expect("room");
        assert_eq!(second.server(), "10.0.0.1:3479");
        let url = &second.rtc_config("u", T0).ice_servers[0].urls[0];
        assert!(url.starts_with("turn:10.0.0.1:3479"), "{url}");
        // Another node's reservation names the server by address and port.
        assert!(r.reserve("10.0.0.1:3479", 100));
        assert!(!r.reserve("10.0.0.1:3480", 100), "unknown server");
        assert!(!r.reserve("10.0.0.1", 100), "two servers there: which one?");
        let reserved = |r: &Registry| {
            r.servers(T0)
                .iter()
                .map(|s| s.reserved_kbps)
                .collect::<Vec<_>>()
        };
        assert_eq!(reserved(&r), [400, 500]);
        // A report with its port is its server's alone.
        let mine = Report {
            turn_port: Some(3479),
            ..report("10.0.0.1", 50)
        };
        assert_eq!(r.report(T0, mine), Reply::Successful);
        assert_eq!(reserved(&r), [400, 0]);
        // An agent's report without a port: every server at the address.
        assert_eq!(r.report(T0, report("10.0.0.1", 50)), Reply::Successful);
        assert_eq!(reserved(&r), [0, 0]);
        // The own server registered again on another port moves there; the peer stays.
        assert_eq!(r.register(T0, on(3477, 1_000)), Reply::HaveRegistered);
        assert_eq!(ports(&r), [3477, 3479]);
        assert_eq!(r.deregister("10.0.0.1", Some(3480)), Reply::NotFound);
        assert_eq!(r.deregister("10.0.0.1", Some(3477)), Reply::Successful);
        assert_eq!(ports(&r), [3479]);
        // One server left at the address: a bare address names it.
        assert!(r.reserve("10.0.0.1", 100));
        assert_eq!(r.deregister("10.0.0.1", None), Reply::Successful);
        assert!(r.servers(T0).is_empty());
    }

    #[test]
    fn stun_only_servers_get_no_turn_entry() {
        let mut r = Registry::new(RegistryConfig::default());
        let mut s = reg("10.0.0.1", 1_000);
        s.ice_type = IceType::Stun;
        r.register(T0, s);
        let cfg = r.peek(T0, None, &[]).expect("healthy").rtc_config("u", T0);
        assert_eq!(cfg.ice_servers.len(), 1);
        assert_eq!(cfg.ice_servers[0].urls, ["stun:10.0.0.1:3478"]);
    }
}

//! ICE servers in the room server: the embedded STUN/TURN server, the ICE HTTP API
//! (`POST /icebandwidthload`) that coturn agents use, and `rtcroom ice-agent`.
//!
//! The registry and the per-pair selection are in the engine (pure, `rtcroom-ice`); this
//! module only starts sockets, reads counters and NIC rates, and speaks HTTP.

use crate::http::AppState;
use crate::hub::{Hub, HubMsg};
use anyhow::Context;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rtcroom_ice::{IceCommand, IceType, Register, RegistryConfig, Reply, Report};
use rtcroom_turn::{PeerFilter, PortRange, TurnConfig, TurnHandle, TurnServer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `[ice]`: how pairs get ICE servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IceSection {
    /// `registry`: each pair gets the registered server with the most headroom (the embedded
    /// TURN server and coturn agents). `static`: every pair gets `[rtc] ice_servers`.
    pub mode: String,
    /// The secret an agent sends to register from another host; empty: only loopback may.
    pub register_secret: String,
    /// coturn's `--static-auth-secret`, shared by the registered coturn servers, for minting
    /// per-member credentials. Empty: coturn servers hand out their registered credentials.
    pub turn_secret: String,
    /// A server that has not reported for this long leaves rotation (and an alert is sent).
    pub report_timeout_secs: u64,
    /// Lifetime of minted TURN credentials; a relayed call cannot outlast it.
    pub credential_ttl_secs: u64,
    pub audio_reserve_kbps: u64,
    pub video_reserve_kbps: u64,
    pub max_servers: usize,
}

impl Default for IceSection {
    fn default() -> Self {
        let r = RegistryConfig::default();
        Self {
            mode: "registry".into(),
            register_secret: String::new(),
            turn_secret: String::new(),
            report_timeout_secs: r.report_timeout_ms / 1000,
            credential_ttl_secs: r.credential_ttl_secs,
            audio_reserve_kbps: r.audio_reserve_kbps,
            video_reserve_kbps: r.video_reserve_kbps,
            max_servers: r.max_servers,
        }
    }
}

/// `[turn]`: the embedded STUN/TURN server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnSection {
    pub enabled: bool,
    /// UDP address of the server; relay sockets bind to the same IP.
    pub listen: SocketAddr,
    /// The address clients reach it at (in URLs and relayed addresses); empty: the listen IP.
    pub public_ip: String,
    /// Relay ports, `"MIN-MAX"`.
    pub relay_ports: String,
    /// The REST shared secret of its credentials; empty: generated once into data_dir.
    pub secret: String,
    pub max_allocations: usize,
    /// Relay to loopback peers; empty (unset) means yes when `listen` is a loopback address.
    pub allow_loopback_peers: Option<bool>,
    /// Relay to private networks (10/8, 172.16/12, 192.168/16, fc00::/7).
    pub allow_private_peers: bool,
    /// The bandwidth it may use, for selection (kbit/s). Each new pair reserves its need
    /// (40 kbit/s per audio member, 200 per video member) until the next report, so this also
    /// bounds how many pairs may start within one report interval: size it to the NIC.
    pub max_bandwidth_kbps: u64,
    /// How often it reports its own load to the registry.
    pub report_interval_secs: u64,
    /// The `iceTransportPolicy` pairs on this server get: `all`, or `relay` to force every
    /// call through TURN (for testing relays, or to hide members' addresses from each other).
    pub ice_transport_policy: String,
}

impl Default for TurnSection {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 3478)),
            public_ip: String::new(),
            relay_ports: "49152-65535".into(),
            secret: String::new(),
            max_allocations: 10_000,
            allow_loopback_peers: None,
            allow_private_peers: false,
            max_bandwidth_kbps: 1_000_000,
            report_interval_secs: 5,
            ice_transport_policy: "all".into(),
        }
    }
}

/// The registry configuration of `[ice]` (and the embedded server's secret).
pub fn registry_config(ice: &IceSection, embedded: Option<(&str, &str)>) -> RegistryConfig {
    let mut server_secrets = BTreeMap::new();
    if let Some((ip, secret)) = embedded {
        server_secrets.insert(ip.to_owned(), secret.to_owned());
    }
    RegistryConfig {
        report_timeout_ms: ice.report_timeout_secs.saturating_mul(1000),
        audio_reserve_kbps: ice.audio_reserve_kbps,
        video_reserve_kbps: ice.video_reserve_kbps,
        max_servers: ice.max_servers,
        shared_secret: (!ice.turn_secret.is_empty()).then(|| ice.turn_secret.clone()),
        server_secrets,
        credential_ttl_secs: ice.credential_ttl_secs,
    }
}

/// The embedded server's secret: configured, or generated once and kept in `data_dir`.
pub fn turn_secret(turn: &TurnSection, data_dir: &Path) -> anyhow::Result<String> {
    if !turn.secret.is_empty() {
        return Ok(turn.secret.clone());
    }
    crate::config::persistent_secret(data_dir, "turn.secret")
}

/// The embedded server's public address.
pub fn turn_public_ip(turn: &TurnSection) -> anyhow::Result<IpAddr> {
    if turn.public_ip.is_empty() {
        anyhow::ensure!(
            !turn.listen.ip().is_unspecified(),
            "[turn] public_ip is needed when [turn] listen ({}) is a wildcard address",
            turn.listen
        );
        Ok(turn.listen.ip())
    } else {
        turn.public_ip
            .parse()
            .with_context(|| format!("[turn] public_ip {:?} is not an IP address", turn.public_ip))
    }
}

/// The running embedded server and the task that reports its load.
#[derive(Debug)]
pub struct Embedded {
    pub handle: std::sync::Arc<TurnHandle>,
    reporter: tokio::task::JoinHandle<()>,
}

impl Embedded {
    /// Stop reporting, close every allocation, stop listening.
    pub async fn shutdown(self) {
        self.reporter.abort();
        let _ = self.reporter.await;
        match std::sync::Arc::try_unwrap(self.handle) {
            Ok(handle) => {
                if let Err(e) = handle.shutdown().await {
                    tracing::warn!(error = %e, "the embedded TURN server did not stop cleanly");
                }
            }
            Err(_) => tracing::warn!("the embedded TURN server is still in use at shutdown"),
        }
    }
}

/// Start the embedded TURN server and keep it registered and reporting.
pub async fn start_embedded(
    turn: &TurnSection,
    secret: String,
    hub: Hub,
) -> anyhow::Result<Embedded> {
    let public_ip = turn_public_ip(turn)?;
    let relay_ports: PortRange = turn
        .relay_ports
        .parse()
        .context("[turn] relay_ports must be \"MIN-MAX\"")?;
    let mut cfg = TurnConfig::new(secret);
    cfg.listen = turn.listen;
    cfg.public_ip = Some(public_ip);
    cfg.relay_ports = relay_ports;
    cfg.max_allocations = turn.max_allocations;
    cfg.peers = PeerFilter {
        allow_loopback: turn
            .allow_loopback_peers
            .unwrap_or(turn.listen.ip().is_loopback()),
        allow_private: turn.allow_private_peers,
    };
    let handle = TurnServer::start_on_own_thread(cfg).with_context(|| {
        format!(
            "cannot start the embedded TURN server on {} (is the port taken? set [turn] listen, or [turn] enabled = false)",
            turn.listen
        )
    })?;
    let port = handle.local_addr().port();
    let mut registration = Register::new(public_ip.to_string(), turn.max_bandwidth_kbps);
    registration.ice_type = IceType::Turn;
    anyhow::ensure!(
        ["all", "relay"].contains(&turn.ice_transport_policy.as_str()),
        "[turn] ice_transport_policy must be \"all\" or \"relay\""
    );
    registration.ice_transport_policy = turn.ice_transport_policy.clone();
    registration.turn_port = port;
    registration.stun_port = port;
    let reply = ask(&hub, IceCommand::Register(registration.clone())).await;
    tracing::info!(
        addr = %handle.local_addr(),
        public_ip = %public_ip,
        reply = reply.map_or("the room engine is gone", Reply::as_str),
        "embedded TURN server started"
    );
    let handle = std::sync::Arc::new(handle);
    let counters = handle.clone();
    let interval = Duration::from_secs(turn.report_interval_secs.max(1));
    let reporter = tokio::spawn(async move {
        let mut last = (counters.counters(), Instant::now());
        loop {
            tokio::time::sleep(interval).await;
            let now = (counters.counters(), Instant::now());
            let elapsed =
                u64::try_from(now.1.duration_since(last.1).as_millis()).unwrap_or(u64::MAX);
            let (rx_kbps, tx_kbps) = now.0.rates_kbps(&last.0, elapsed);
            last = now;
            let report = IceCommand::Report(Report {
                ip: registration.ip.clone(),
                rx_kbps,
                tx_kbps,
            });
            match ask(&hub, report).await {
                Some(Reply::NotFound) => {
                    ask(&hub, IceCommand::Register(registration.clone())).await;
                }
                None => return,
                Some(_) => {}
            }
        }
    });
    Ok(Embedded { handle, reporter })
}

/// Hand an ICE command to the engine; `None` once the engine has stopped.
async fn ask(hub: &Hub, command: IceCommand) -> Option<Reply> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    if !hub.send(HubMsg::Ice { command, reply: tx }).await {
        return None;
    }
    rx.await.ok()
}

/// `POST /icebandwidthload`: the ICE HTTP API of the document, with its plain-text replies.
pub async fn http_api(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Response {
    let reply = match rtcroom_ice::parse(&body) {
        Err(e) => e.reply(),
        Ok(req) => {
            let secret =
                (!state.ice_register_secret.is_empty()).then_some(&*state.ice_register_secret);
            if req.authorized(secret, peer.ip().is_loopback()) {
                match ask(&state.signaling.hub, req.command).await {
                    Some(reply) => reply,
                    None => {
                        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
                            .into_response();
                    }
                }
            } else {
                return (
                    StatusCode::FORBIDDEN,
                    "forbidden: registering from another host needs the [ice] register_secret as \"secret\"\n",
                )
                    .into_response();
            }
        }
    };
    let status = StatusCode::from_u16(reply.http_status()).unwrap_or(StatusCode::OK);
    (status, reply.as_str().to_owned()).into_response()
}

/// `rtcroom ice-agent` settings.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// `http://host:port` of the room server.
    pub room_server: String,
    /// The ICE server's public IP (what clients connect to).
    pub ip: String,
    /// The network interface whose rates are reported.
    pub iface: String,
    pub max_bandwidth_kbps: u64,
    pub turn_port: u16,
    pub secret: Option<String>,
    pub interval: Duration,
    /// Where the agent answers `/healthz` and `/readyz`.
    pub listen: Option<SocketAddr>,
}

/// Bytes received and sent by `iface`, from `/proc/net/dev`.
pub fn nic_bytes(proc_net_dev: &str, iface: &str) -> Option<(u64, u64)> {
    proc_net_dev.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        if name.trim() != iface {
            return None;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        // Receive: bytes packets errs drop fifo frame compressed multicast; then transmit.
        Some((*f.first()?, *f.get(8)?))
    })
}

async fn post(room_server: &str, body: &str) -> anyhow::Result<String> {
    let rest = room_server
        .trim_end_matches('/')
        .strip_prefix("http://")
        .context("--room-server must be an http:// URL (agents talk to the room server on the internal network)")?;
    let mut s = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(rest))
        .await
        .context("the room server did not accept within 5 s")?
        .with_context(|| format!("cannot connect to the room server at {rest}"))?;
    let req = format!(
        "POST /icebandwidthload HTTP/1.1\r\nHost: {rest}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw))
        .await
        .context("the room server did not answer within 5 s")??;
    let text = String::from_utf8_lossy(&raw);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(body.trim().to_owned())
}

/// Run the agent until SIGTERM/ctrl-c: register, report NIC rates every interval,
/// re-register on `ice_no_found`, deregister on the way out.
pub async fn run_agent(
    opts: AgentOptions,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    if let Some(addr) = opts.listen {
        let h = healthy.clone();
        let interval = opts.interval;
        let app = axum::Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok\n" }))
            .route(
                "/readyz",
                axum::routing::get(move || async move {
                    let last = h.load(std::sync::atomic::Ordering::Acquire);
                    let now = crate::hub::now().0;
                    if last > 0 && now.saturating_sub(last) < 3 * interval.as_millis() as u64 {
                        (StatusCode::OK, "ready\n".to_owned())
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "not ready: no accepted report recently\n".to_owned(),
                        )
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (--listen)"))?;
        println!("agent health on http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    let secret = opts.secret.clone();
    let with_secret = |mut v: serde_json::Value| {
        if let Some(s) = &secret {
            v["secret"] = serde_json::json!(s);
        }
        v.to_string()
    };
    let register = with_secret(serde_json::json!({
        "cmd": "iceRegister", "ip": opts.ip, "iceType": "turn", "bundlePolicy": "max-bundle",
        "rtcpMuxPolicy": "require", "iceTransportPolicy": "all", "turnPort": opts.turn_port,
        "stunPort": opts.turn_port, "maxBandwidth": opts.max_bandwidth_kbps, "username": "", "credential": ""
    }));
    let read_nic = || -> anyhow::Result<(u64, u64)> {
        let text = std::fs::read_to_string("/proc/net/dev").context("cannot read /proc/net/dev")?;
        nic_bytes(&text, &opts.iface)
            .with_context(|| format!("no interface {} in /proc/net/dev", opts.iface))
    };
    read_nic()?;
    let work = async {
        let mut registered = false;
        let mut last = (read_nic()?, Instant::now());
        loop {
            if !registered {
                match post(&opts.room_server, &register).await {
                    Ok(r) if r == "successful" || r == "ice_have_registered" => {
                        tracing::info!(reply = %r, "registered with the room server");
                        registered = true;
                    }
                    Ok(r) => tracing::warn!(reply = %r, "the room server refused the registration"),
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot register"),
                }
            }
            tokio::time::sleep(opts.interval).await;
            let now = (read_nic()?, Instant::now());
            let secs = now.1.duration_since(last.1).as_secs_f64().max(0.001);
            let rx = ((now.0.0.saturating_sub(last.0.0)) as f64 * 8.0 / 1000.0 / secs) as u64;
            let tx = ((now.0.1.saturating_sub(last.0.1)) as f64 * 8.0 / 1000.0 / secs) as u64;
            last = now;
            if registered {
                let report = with_secret(
                    serde_json::json!({"cmd":"iceReportRxTxRate","ip":opts.ip,"rxRate":rx,"txRate":tx}),
                );
                match post(&opts.room_server, &report).await {
                    Ok(r) if r == "successful" => {
                        healthy.store(crate::hub::now().0, std::sync::atomic::Ordering::Release)
                    }
                    Ok(r) if r == "ice_no_found" => {
                        tracing::warn!(
                            "the room server does not know this server (restarted?); registering again"
                        );
                        registered = false;
                    }
                    Ok(r) => tracing::warn!(reply = %r, "report refused"),
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot report"),
                }
            }
        }
        #[allow(unreachable_code)]
        Ok::<(), anyhow::Error>(())
    };
    tokio::select! {
        r = work => r?,
        () = stop => {}
    }
    let bye = with_secret(serde_json::json!({"cmd":"iceDeregister","ip":opts.ip}));
    match post(&opts.room_server, &bye).await {
        Ok(r) => tracing::info!(reply = %r, "deregistered"),
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot deregister"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nic_rates_are_read_from_proc_net_dev() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n  eth0: 123456 100 0 0 0 0 0 0 654321 200 0 0 0 0 0 0\n";
        assert_eq!(nic_bytes(text, "eth0"), Some((123_456, 654_321)));
        assert_eq!(nic_bytes(text, "lo"), Some((1000, 2000)));
        assert_eq!(nic_bytes(text, "wlan0"), None);
    }
}

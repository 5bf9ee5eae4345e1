//! The embedded STUN/TURN server of `[turn]`: started on its own thread, registered with the
//! ICE registry in the engine, and reporting its load every few seconds.

use crate::config::{Config, TurnSection};
use crate::signaling::hub::Hub;
use crate::tls::Certificates;
use anyhow::Context;
use rtcroom_ice::{IceCommand, IceType, Register, Reply, Report, Turns};
use rtcroom_turn::{PeerFilter, PortRange, TlsListen, TurnConfig, TurnHandle, TurnServer};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

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

/// The settings the embedded server cannot start with: its public address, its relay
/// ports, its transport policy, its TLS listener and certificate. `serve` and `check-config`
/// check them before anything starts.
pub fn check(cfg: &Config) -> anyhow::Result<()> {
    let turn = &cfg.turn;
    turn_public_ip(turn)?;
    relay_ports(turn)?;
    anyhow::ensure!(
        ["all", "relay"].contains(&turn.ice_transport_policy.as_str()),
        "[turn] ice_transport_policy must be \"all\" or \"relay\""
    );
    if let Some((_, cert, key, section)) = tls_listener(cfg)? {
        Certificates::load(cert, key, section).map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// The TLS listener of `[turn] tls_listen`, when set: its address and the certificate files
/// it serves (`[turn] tls_cert`/`tls_key`, or those of `[server]`).
fn tls_listener(cfg: &Config) -> anyhow::Result<Option<(SocketAddr, &Path, &Path, &'static str)>> {
    let turn = &cfg.turn;
    if turn.tls_listen.is_empty() {
        return Ok(None);
    }
    let addr = turn.tls_listen.parse().with_context(|| {
        format!(
            "[turn] tls_listen {:?} must be an address and port such as \"0.0.0.0:5349\"",
            turn.tls_listen
        )
    })?;
    if !turn.tls_cert.as_os_str().is_empty() {
        return Ok(Some((addr, &turn.tls_cert, &turn.tls_key, "[turn]")));
    }
    anyhow::ensure!(
        !cfg.server.tls_cert.as_os_str().is_empty(),
        "[turn] tls_listen needs a certificate: set [turn] tls_cert and tls_key (or [server] tls_cert and tls_key, which it then uses)"
    );
    Ok(Some((
        addr,
        &cfg.server.tls_cert,
        &cfg.server.tls_key,
        "[server]",
    )))
}

fn relay_ports(turn: &TurnSection) -> anyhow::Result<PortRange> {
    turn.relay_ports.parse().with_context(|| {
        format!(
            "[turn] relay_ports {:?} must be \"MIN-MAX\" (e.g. \"49152-65535\")",
            turn.relay_ports
        )
    })
}

/// A task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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
    config: &Config,
    secret: String,
    hub: Hub,
    geoip: Option<&crate::geoip::GeoIp>,
    cluster: Option<std::sync::Arc<crate::cluster::Cluster>>,
) -> anyhow::Result<Embedded> {
    check(config)?;
    let turn = &config.turn;
    let public_ip = turn_public_ip(turn)?;
    let relay_ports = relay_ports(turn)?;
    let mut cfg = TurnConfig::new(secret);
    cfg.listen = turn.listen;
    // Port 0 there: the port the UDP listener gets.
    cfg.tcp_listen = turn.tcp.then_some(turn.listen);
    cfg.max_connections = turn.max_connections;
    let mut watch_certs = None;
    if let Some((listen, cert, key, section)) = tls_listener(config)? {
        let certs = Certificates::load(cert, key, section).map_err(anyhow::Error::msg)?;
        // No application protocol: TURN clients offer none, or "stun.turn".
        let tls = certs.server_config(&[]).map_err(anyhow::Error::msg)?;
        cfg.tls = Some(TlsListen {
            listen,
            config: tls,
        });
        watch_certs = Some(certs);
    }
    cfg.public_ip = Some(public_ip);
    cfg.relay_ports = relay_ports;
    cfg.max_allocations = turn.max_allocations;
    cfg.max_allocations_per_user = turn.max_allocations_per_user;
    cfg.allocation_bytes_per_sec = turn.allocation_bytes_per_sec;
    cfg.max_credential_lifetime_secs = turn.max_credential_lifetime_secs;
    cfg.peers = PeerFilter {
        allow_loopback: turn
            .allow_loopback_peers
            .unwrap_or(turn.listen.ip().is_loopback()),
        allow_private: turn.allow_private_peers,
    };
    let handle = TurnServer::start_on_own_thread(cfg).with_context(|| {
        format!(
            "cannot start the embedded TURN server on {} (UDP{}{}): is a port taken? set [turn] listen{}, or [turn] enabled = false",
            turn.listen,
            if turn.tcp { " and TCP" } else { "" },
            if turn.tls_listen.is_empty() { String::new() } else { format!(", TLS on {}", turn.tls_listen) },
            if turn.tls_listen.is_empty() { "" } else { " or tls_listen" },
        )
    })?;
    let port = handle.local_addr().port();
    let mut registration = Register::new(public_ip.to_string(), turn.max_bandwidth_kbps);
    registration.ice_type = IceType::Turn;
    registration.ice_transport_policy = turn.ice_transport_policy.clone();
    registration.turn_port = port;
    registration.stun_port = port;
    // Only the transports that are listened on are handed out.
    registration.turn_tcp_port = handle.tcp_addr().map(|a| a.port());
    registration.turns = handle.tls_addr().map(|a| Turns {
        host: if turn.tls_host.is_empty() {
            public_ip.to_string()
        } else {
            turn.tls_host.clone()
        },
        port: a.port(),
    });
    registration.location = geoip.and_then(|g| g.lookup(public_ip).at);
    // In a cluster, every node hands it out too (with `[turn] secret` set on every node).
    // Told first, so that from here on no other node's server is taken at this address.
    if let Some(c) = &cluster {
        c.embedded_turn(IceCommand::Register(registration.clone()));
        if !c.shares_embedded_turn() {
            tracing::info!(
                "the embedded TURN server stays this node's own: set [turn] secret, the same on every node, for every node to hand it out"
            );
        }
    }
    let reply = hub.ice(IceCommand::Register(registration.clone())).await;
    tracing::info!(
        addr = %handle.local_addr(),
        tcp = ?handle.tcp_addr(),
        tls = ?handle.tls_addr(),
        public_ip = %public_ip,
        reply = reply.map_or("the room engine is gone", Reply::as_str),
        "embedded TURN server started"
    );
    let handle = std::sync::Arc::new(handle);
    let counters = handle.clone();
    let interval = Duration::from_secs(turn.report_interval_secs.max(1));
    let reporter = tokio::spawn(async move {
        // Renewed certificates are picked up for as long as the server reports.
        let _watch = watch_certs.map(|certs| AbortOnDrop(tokio::spawn(certs.watch())));
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
                turn_port: Some(registration.turn_port),
                rx_kbps,
                tx_kbps,
            });
            // The registration goes along with each report: a node that saw this one dead
            // while Redis was away (or started meanwhile) takes it again.
            if let Some(c) = &cluster {
                c.embedded_turn(IceCommand::Register(registration.clone()));
                c.embedded_turn(report.clone());
            }
            match hub.ice(report).await {
                Some(Reply::NotFound) => {
                    hub.ice(IceCommand::Register(registration.clone())).await;
                }
                None => return,
                Some(_) => {}
            }
        }
    });
    Ok(Embedded { handle, reporter })
}

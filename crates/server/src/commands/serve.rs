//! `rtcroom serve`: the room server. The start order here is the order of dependencies
//! (alerts, records, the hub, the embedded TURN server, HTTP), and the stop order its
//! reverse: stop taking connections, tell clients to reconnect and keep the rooms in
//! `data_dir` (or, when they cannot be kept, end every call), stop TURN, write the queued
//! records. A start restores the rooms kept by the previous run before it accepts anyone.

use crate::auth::Apps;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::geoip::GeoIp;
use crate::ice::embedded::{self, Embedded};
use crate::ops::alerts::Alerts;
use crate::ops::{log, mail};
use crate::records::daily;
use crate::records::writer::Recording;
use crate::signaling::Signaling;
use crate::signaling::hub::{self, Hub, OsEntropy, Sinks};
use crate::signaling::snapshot;
use crate::signaling::token::{JwtCheck, NoTokenCheck, TokenCheck};
use crate::state::AppState;
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = Config::load(config.as_deref())?;
    super::preflight(&cfg)?;
    let _log = log::init(&cfg.log.format, &cfg.log.level);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if cfg.server.worker_threads > 0 {
        runtime.worker_threads(cfg.server.worker_threads);
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(cfg))
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    crate::ops::metrics::metrics()
        .runtime_workers
        .set(i64::try_from(workers).unwrap_or(i64::MAX));
    let registry = cfg.ice.mode == "registry";
    let embedded = if registry && cfg.turn.enabled {
        let ip = embedded::turn_public_ip(&cfg.turn)?.to_string();
        Some((ip, embedded::turn_secret(&cfg.turn, &cfg.server.data_dir)?))
    } else {
        None
    };
    if registry && embedded.is_none() {
        tracing::warn!(
            "[turn] enabled = false: no ICE server is in rotation until a coturn agent registers; \
             until then /readyz answers 503 and second members of a room get result 8"
        );
    }
    let engine_cfg = cfg.engine(embedded.as_ref().map(|(ip, s)| (ip.as_str(), s.as_str())));
    let prices = engine_cfg.prices;
    let mut engine = rtcroom_core::Engine::new(engine_cfg, OsEntropy::new());
    // In a cluster, rooms outlive a node in Redis and on the other nodes, not on its disk.
    let restored = !cfg.cluster.enabled() && restore(&cfg, &mut engine);
    let geoip = GeoIp::from_config(&cfg.geoip.database).map_err(anyhow::Error::msg)?;
    if let Some(g) = &geoip {
        tracing::info!(database = %cfg.geoip.database.display(), "GeoIP database loaded");
        tokio::spawn(g.clone().watch());
    }
    let alerts = start_alerts(&cfg, super::hostname())?;
    let listener = listen(cfg.server.listen)
        .with_context(|| format!("cannot listen on {} ([server] listen)", cfg.server.listen))?;
    // The restart recovery closes every session left open in the database: in a cluster the
    // database is shared and those sessions go on elsewhere (a node's rooms outlive it), so it
    // never runs there; the engine that adopts a room closes what does not come back.
    let recover = !restored && !cfg.cluster.enabled();
    let recording = start_recording(&cfg, alerts.clone(), prices, recover).await?;
    let daily_task = schedule_report(&cfg, recording.as_ref(), geoip.clone())?;
    // With records off the hub gets the default sink, which discards.
    let (states_tx, states_rx) = match cfg.cluster.enabled() {
        true => {
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    // The reservations of this node's selections, for the other nodes' registries.
    let (reserved_tx, reserved_rx) = match cfg.cluster.enabled() {
        true => {
            let (tx, rx) = tokio::sync::mpsc::channel(1024);
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    let sinks = Sinks {
        states: states_tx,
        reserved: reserved_tx,
        records: recording
            .as_ref()
            .map(|r| r.sink.clone())
            .unwrap_or_default(),
        alerts,
    };
    let alerts = sinks.alerts.clone();
    let (hub, hub_task) = hub::spawn(engine, sinks, 4096);
    let cluster = start_cluster(
        &cfg,
        &hub,
        alerts,
        listener.local_addr()?,
        states_rx.zip(reserved_rx),
    )
    .await?;
    let turn = match embedded {
        Some((_, secret)) => Some(
            embedded::start_embedded(&cfg, secret, hub.clone(), geoip.as_deref(), cluster.clone())
                .await?,
        ),
        None => None,
    };
    let draining = Arc::new(AtomicBool::new(false));
    let state = app_state(
        &cfg,
        hub.clone(),
        recording.as_ref(),
        turn.as_ref(),
        &draining,
        geoip,
        cluster,
    )?;
    let signaling = state.signaling.clone();
    serve_http(&cfg, state, hub.clone(), draining, listener).await?;
    drop(hub);
    let bound = Duration::from_secs(cfg.server.shutdown_secs);
    let closing = bound.min(Duration::from_secs(5));
    let _ = tokio::time::timeout(closing, hub_task).await;
    // The hub's last step queued a close frame (1012) for every connection; their tasks
    // write them now, and the process must not end under them.
    if !signaling.all_closed(closing).await {
        let open = signaling.open.load(Ordering::Acquire);
        tracing::warn!(
            open,
            "some connections did not close within the shutdown's bound; their clients see the connection drop"
        );
    }
    if let Some(turn) = turn {
        turn.shutdown().await;
    }
    if let Some(t) = daily_task {
        t.abort();
    }
    if let Some(recording) = recording {
        recording.close(bound).await;
    }
    Ok(())
}

/// Seat the rooms kept by the previous run's SIGTERM, when their snapshot is fresh (written
/// within the heartbeat timeout) and the engine takes it. Whether it did.
fn restore<E: rtcroom_core::Entropy>(cfg: &Config, engine: &mut rtcroom_core::Engine<E>) -> bool {
    let now = crate::clock::engine_now();
    let max_age = cfg.room.heartbeat_timeout_secs.saturating_mul(1000);
    let Some(snap) = snapshot::take(&cfg.server.data_dir, now.wall, max_age) else {
        return false;
    };
    let (rooms, members) = (snap.rooms(), snap.members());
    match engine.restore(now, snap) {
        Ok(()) => {
            tracing::info!(
                rooms,
                members,
                "restored the rooms of the previous run; their members resume within the heartbeat timeout"
            );
            true
        }
        Err(e) => {
            tracing::warn!(
                file = %snapshot::path(&cfg.server.data_dir).display(),
                "the rooms snapshot is ignored and nobody is restored: {e}"
            );
            false
        }
    }
}

/// The alert task, when `[smtp]` and `[alerts] recipients` are set; else alerts are only
/// logged.
fn start_alerts(cfg: &Config, host: String) -> anyhow::Result<Alerts> {
    if let Some(mailer) = mail::Mailer::from_config(&cfg.smtp)? {
        let to = mail::mailboxes(&cfg.alerts.recipients, "[alerts] recipients")?;
        if !to.is_empty() {
            return Ok(Alerts::start(mailer, to, host));
        }
    }
    Ok(Alerts::default())
}

/// The database, the record writer and its watch, unless records are off.
async fn start_recording(
    cfg: &Config,
    alerts: Alerts,
    prices: rtcroom_core::Prices,
    recover: bool,
) -> anyhow::Result<Option<Recording>> {
    if cfg.database.is_off() {
        tracing::info!(
            "{}: no database is opened and no call record is written",
            crate::records::OFF_MESSAGE
        );
        return Ok(None);
    }
    Recording::start(&cfg.database, &cfg.server.data_dir, alerts, prices, recover)
        .await
        .map(Some)
}

/// The daily report's schedule, when records are on and it has somewhere to go.
fn schedule_report(
    cfg: &Config,
    recording: Option<&Recording>,
    geoip: Option<Arc<GeoIp>>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    match (recording, mail::Mailer::from_config(&cfg.smtp)?) {
        (None, _) => {
            if cfg.report.enabled {
                tracing::info!(
                    "the daily report is not scheduled: {}",
                    crate::records::OFF_MESSAGE
                );
            }
            Ok(None)
        }
        (Some(r), Some(mailer)) if cfg.report.enabled && !cfg.report.recipients.is_empty() => {
            Ok(Some(daily::schedule(
                r.store.clone(),
                mailer,
                cfg.report.clone(),
                cfg.server.data_dir.clone(),
                geoip,
            )?))
        }
        (Some(_), _) => {
            if cfg.report.enabled {
                tracing::info!(
                    "the daily report is not mailed: set [smtp] url and [report] recipients"
                );
            }
            Ok(None)
        }
    }
}

/// What the HTTP handlers share.
fn app_state(
    cfg: &Config,
    hub: Hub,
    recording: Option<&Recording>,
    turn: Option<&Embedded>,
    draining: &Arc<AtomicBool>,
    geoip: Option<Arc<GeoIp>>,
    cluster: Option<Arc<Cluster>>,
) -> anyhow::Result<AppState> {
    let apps = Arc::new(Apps::new(cfg.apps()?, cfg.auth.token_ttl_secs));
    let tokens: Arc<dyn TokenCheck> = if cfg.auth.required {
        Arc::new(JwtCheck {
            apps: (*apps).clone(),
        })
    } else {
        tracing::warn!("[auth] required = false: joins are not checked for a token");
        Arc::new(NoTokenCheck)
    };
    let mut signaling = Signaling::new(
        hub,
        tokens,
        cfg.server.max_frame_bytes,
        cfg.server.outbound_queue,
        cfg.server.max_connections,
        Duration::from_secs(cfg.server.write_timeout_secs),
    );
    if let Some(c) = &cluster {
        signaling = signaling.with_edge(c.clone());
    }
    let signaling = Arc::new(signaling);
    Ok(AppState {
        signaling,
        store: recording.map(|r| r.store.clone()),
        report: Arc::new(cfg.report.clone()),
        writer: recording.map(|r| r.writer.clone()),
        admin_token: cfg.admin.token.as_str().into(),
        apps,
        rtc_config: rtcroom_protocol::SharedJson::rtc_config(&cfg.rtc_config()),
        public_url: cfg.server.public_url.as_str().into(),
        trusted_proxies: Arc::new(
            crate::peer::TrustedProxies::parse(&cfg.server.trusted_proxies)
                .map_err(|e| anyhow::anyhow!("[server] trusted_proxies: {e}"))?,
        ),
        draining: draining.clone(),
        turn: turn.map(|t| t.handle.clone()),
        ice_register_secret: cfg.ice.register_secret.as_str().into(),
        ice_registry: cfg.ice.mode == "registry",
        tls: !cfg.server.tls_cert.as_os_str().is_empty(),
        geoip,
        cluster,
    })
}

/// Serve HTTP until SIGTERM or ctrl-c; then stop being ready, have the hub tell every client
/// to reconnect, and keep its rooms in `data_dir` for the next start. When they cannot be
/// kept, the hub ends every call instead (members leave, records close). The process exits
/// within `[server] shutdown_secs` of the signal, done or not.
async fn serve_http(
    cfg: &Config,
    state: AppState,
    hub: Hub,
    draining: Arc<AtomicBool>,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    let trusted = state.trusted_proxies.clone();
    let cluster = state.cluster.clone();
    let tls = tls_config(cfg)?;
    let app = crate::http::app(state);
    let addr = listener.local_addr()?;
    let (http, ws) = if tls.is_some() {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    // Tests and scripts read this line to find the port when `listen` has port 0. Nobody
    // reading it is no reason to stop serving.
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {http}://{addr}").and_then(|()| out.flush());
    }
    tracing::info!(%addr, ws = %format!("{ws}://{addr}/ws"), "rtcroom room server started");
    let data_dir = cfg.server.data_dir.clone();
    let bound = Duration::from_secs(cfg.server.shutdown_secs);
    let limits = crate::http::accept::Limits {
        per_ip: cfg.server.max_connections_per_ip,
        trusted,
        header_read_timeout: Duration::from_secs(cfg.server.header_read_timeout_secs),
        tls,
    };
    crate::http::accept::serve(listener, app, limits, async move {
            super::shutdown_signal().await;
            draining.store(true, Ordering::Release);
            tokio::spawn(async move {
                tokio::time::sleep(bound).await;
                tracing::error!(
                    "the shutdown took longer than [server] shutdown_secs; exiting now (queued records are in the spool)"
                );
                std::process::exit(1);
            });
            match cluster {
                Some(cluster) => {
                    tracing::info!("draining: handing the rooms to other nodes, telling clients to reconnect");
                    cluster.drain().await;
                    hub.restart().await;
                }
                None => {
                    tracing::info!("restarting: telling clients to reconnect, keeping the rooms");
                    keep_rooms(&hub, data_dir).await;
                }
            }
        })
        .await;
    Ok(())
}

/// What the hub hands the cluster: the rooms that changed, the reservations made.
type ClusterQueues = (
    tokio::sync::mpsc::Receiver<Vec<hub::RoomState>>,
    tokio::sync::mpsc::Receiver<(String, u64)>,
);

/// Join the cluster with `[cluster] redis`; `None` for a single node.
async fn start_cluster(
    cfg: &Config,
    hub: &Hub,
    alerts: Alerts,
    addr: std::net::SocketAddr,
    queues: Option<ClusterQueues>,
) -> anyhow::Result<Option<Arc<Cluster>>> {
    let Some((states, reserved)) = queues else {
        return Ok(None);
    };
    let node_id = if cfg.cluster.node_id.is_empty() {
        format!("{}:{}", super::hostname(), addr.port())
    } else {
        cfg.cluster.node_id.clone()
    };
    let public_url = if cfg.server.public_url.is_empty() {
        let ws = if cfg.server.tls_cert.as_os_str().is_empty() {
            "ws"
        } else {
            "wss"
        };
        format!("{ws}://{addr}/ws")
    } else {
        cfg.server.public_url.clone()
    };
    let settings = crate::cluster::Settings {
        section: cfg.cluster.clone(),
        node_id,
        public_url,
        outbound_queue: cfg.server.outbound_queue,
        max_frame: cfg.server.max_frame_bytes,
        turn_secret: cfg.cluster_turn_secret().map(str::to_owned),
    };
    Cluster::start(settings, hub.clone(), alerts, states, reserved)
        .await
        .map(Some)
}

/// TLS from `[server] tls_cert`/`tls_key` when they are set, with a task that reloads the
/// files when they change.
fn tls_config(cfg: &Config) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let (cert, key) = (&cfg.server.tls_cert, &cfg.server.tls_key);
    if cert.as_os_str().is_empty() {
        return Ok(None);
    }
    let certs =
        crate::tls::Certificates::load(cert, key, "[server]").map_err(anyhow::Error::msg)?;
    let config = certs
        .server_config(&[b"http/1.1"])
        .map_err(anyhow::Error::msg)?;
    tokio::spawn(certs.watch());
    Ok(Some(config))
}

/// Write the hub's snapshot, then tell every client to reconnect; when the snapshot cannot
/// be written, end every call instead.
async fn keep_rooms(hub: &Hub, data_dir: PathBuf) {
    let Some(snap) = hub.freeze().await else {
        return;
    };
    let (rooms, members) = (snap.rooms(), snap.members());
    let written =
        tokio::task::spawn_blocking(move || snapshot::write(&data_dir, snap, crate::clock::now()))
            .await
            .map_err(anyhow::Error::from)
            .and_then(|r| r);
    match written {
        Ok(()) => {
            tracing::info!(rooms, members, "the rooms are kept for the next start");
            hub.restart().await;
        }
        Err(e) => {
            tracing::error!(
                critical = true,
                "cannot keep the rooms for the next start ({e:#}); ending every call"
            );
            hub.shutdown().await;
        }
    }
}

/// The listener, with a backlog for bursts of joins. `TcpListener::bind` listens with a
/// backlog of 128; a join storm (rtcroom-bench join-storm, 256 connects in flight) overflowed
/// it and the kernel dropped SYNs, so about 1% of the joins waited for the client's 1 s SYN
/// retry. The kernel caps the value at net.core.somaxconn.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

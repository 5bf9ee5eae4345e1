//! `rtcroom`: the one binary of the platform.

mod admin;
mod auth;
mod config;
mod http;
mod hub;
mod login;
mod mail;
mod monitor;
mod records;
mod signaling;
mod telemetry;
mod web;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::Config;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "rtcroom",
    version,
    about = "A self-hosted WebRTC calling platform in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the room server (signaling, web page, APIs).
    Serve {
        /// A TOML configuration file; every key can also be set as RTCROOM_<SECTION>_<KEY>.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the effective configuration (file + environment + defaults) and exit.
    CheckConfig {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// The apps allowed to use this server.
    Apps {
        #[command(subcommand)]
        action: AppsAction,
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
    },
    /// Watch services (HTTP health, TCP ports, processes), restart what died, mail alerts.
    Monitor {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Stop after this many rounds of probes (default: run until interrupted).
        #[arg(long)]
        rounds: Option<u64>,
    },
    /// Mint a join token for an app, as an app backend would (for testing and scripts).
    Token {
        /// The app id.
        #[arg(long)]
        app: String,
        /// Bind the token to this uid.
        #[arg(long)]
        uid: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AppsAction {
    /// List the apps, their key ids and domains (never the secrets).
    List,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            let cfg = Config::load(config.as_deref())?;
            telemetry::init(&cfg.log.format, &cfg.log.level);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(serve(cfg))
        }
        Command::CheckConfig { config } => {
            let cfg = Config::load(config.as_deref())?;
            println!("{cfg:#?}");
            Ok(())
        }
        Command::Apps {
            action: AppsAction::List,
            config,
        } => {
            let cfg = Config::load(config.as_deref())?;
            let apps = auth::Apps::new(cfg.apps()?, cfg.auth.token_ttl_secs);
            for app in apps.list() {
                let kids: Vec<String> = app.all_keys().into_iter().map(|k| k.kid).collect();
                println!(
                    "{}\tkeys: {}\tdomains: {}",
                    app.id,
                    kids.join(","),
                    app.domains.join(",")
                );
            }
            Ok(())
        }
        Command::Monitor { config, rounds } => {
            let cfg = Config::load(config.as_deref())?;
            telemetry::init(&cfg.log.format, &cfg.log.level);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let mailer = mail::Mailer::from_config(&cfg.smtp)?;
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "this host".into());
            runtime.block_on(async {
                tokio::select! {
                    r = monitor::run(cfg.monitor.clone(), mailer, &cfg.alerts, host, rounds) => r,
                    () = shutdown_signal() => Ok(()),
                }
            })
        }
        Command::Token { app, uid, config } => {
            let cfg = Config::load(config.as_deref())?;
            let apps = auth::Apps::new(cfg.apps()?, cfg.auth.token_ttl_secs);
            let found = apps
                .get(&app)
                .with_context(|| format!("no app {app}: see `rtcroom apps list`"))?;
            let (token, _) = apps
                .mint(found, uid.as_deref(), hub::now())
                .with_context(|| format!("app {app} has no key"))?;
            println!("{token}");
            Ok(())
        }
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let engine = rtcroom_core::Engine::new(cfg.engine(), hub::OsEntropy::new());
    let records = records::RecordSink::discard();
    tracing::warn!("no call-record store is configured: records are counted and dropped");
    let (hub, hub_task) = hub::spawn(engine, records.clone(), 4096);
    let apps = Arc::new(auth::Apps::new(cfg.apps()?, cfg.auth.token_ttl_secs));
    let tokens: Arc<dyn signaling::TokenCheck> = if cfg.auth.required {
        Arc::new(auth::JwtCheck {
            apps: (*apps).clone(),
        })
    } else {
        tracing::warn!("[auth] required = false: joins are not checked for a token");
        Arc::new(signaling::NoTokenCheck)
    };
    let sig = Arc::new(signaling::Signaling::new(
        hub.clone(),
        tokens,
        cfg.server.max_frame_bytes,
        cfg.server.outbound_queue,
        cfg.server.max_connections,
    ));
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = http::app(http::AppState {
        signaling: sig,
        records,
        admin_token: cfg.admin.token.as_str().into(),
        apps,
        rtc_config: rtcroom_protocol::SharedJson::rtc_config(&cfg.rtc_config()),
        public_url: cfg.server.public_url.as_str().into(),
        draining: draining.clone(),
    });
    let listener = listen(cfg.server.listen)
        .with_context(|| format!("cannot listen on {} ([server] listen)", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    // Signaling is request/response over small frames: with Nagle's algorithm on, a frame's
    // last partial segment waits for the peer's delayed ACK (up to 40 ms on Linux), which
    // rtcroom-bench measured as 20-50 ms relay latency and a closed loop slowed tenfold.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
    });
    // Tests and scripts read this line to find the port when `listen` has port 0.
    println!("listening on http://{addr}");
    tracing::info!(%addr, ws = %format!("ws://{addr}/ws"), "rtcroom room server started");
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let shutdown_hub = hub.clone();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            draining.store(true, std::sync::atomic::Ordering::Release);
            tracing::info!("shutting down: telling members, closing records");
            shutdown_hub.shutdown().await;
        })
        .await
        .context("the HTTP server failed")?;
    drop(hub);
    // The hub has stopped; give connection tasks a moment to send their close frames.
    let _ = tokio::time::timeout(Duration::from_secs(5), hub_task).await;
    Ok(())
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

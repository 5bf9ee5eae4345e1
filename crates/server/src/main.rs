//! `rtcroom`: the one binary of the platform.

mod admin;
mod config;
mod http;
mod hub;
mod records;
mod signaling;
mod telemetry;

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
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let engine = rtcroom_core::Engine::new(cfg.engine(), hub::OsEntropy::new());
    let records = records::RecordSink::discard();
    tracing::warn!("no call-record store is configured: records are counted and dropped");
    let (hub, hub_task) = hub::spawn(engine, records.clone(), 4096);
    let tokens: Arc<dyn signaling::TokenCheck> = Arc::new(signaling::NoTokenCheck);
    let sig = Arc::new(signaling::Signaling::new(
        hub.clone(),
        tokens,
        cfg.server.max_frame_bytes,
        cfg.server.outbound_queue,
        cfg.server.max_connections,
    ));
    let app = http::app(http::AppState {
        signaling: sig,
        records,
        admin_token: cfg.admin.token.as_str().into(),
    });
    let listener = tokio::net::TcpListener::bind(cfg.server.listen)
        .await
        .with_context(|| format!("cannot listen on {} ([server] listen)", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find the port when `listen` has port 0.
    println!("listening on http://{addr}");
    tracing::info!(%addr, ws = %format!("ws://{addr}/ws"), "rtcroom room server started");
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let shutdown_hub = hub.clone();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
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

//! The commands of the binary, one file each; `run` dispatches a parsed command line.

pub mod cli;

mod apps;
mod check_config;
mod ice_agent;
mod migrate;
mod monitor;
mod records;
mod report;
mod serve;
mod token;

use anyhow::Context;
use cli::{AppsAction, Cli, Command};

/// Run one command to its end.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => serve::run(config),
        Command::CheckConfig { config } => check_config::run(config),
        Command::Apps {
            action: AppsAction::List,
            config,
        } => apps::list(config),
        Command::Monitor { config, rounds } => monitor::run(config, rounds),
        Command::IceAgent {
            room_server,
            ip,
            iface,
            max_bandwidth,
            turn_port,
            secret,
            interval,
            listen,
        } => ice_agent::run(crate::ice::agent::AgentOptions {
            room_server,
            ip,
            iface,
            max_bandwidth_kbps: max_bandwidth,
            turn_port,
            secret,
            interval: std::time::Duration::from_secs(interval.max(1)),
            listen,
        }),
        Command::Migrate { config } => migrate::run(config),
        Command::Records { query, config } => records::run(query, config),
        Command::Report {
            date,
            out,
            json,
            send,
            config,
        } => report::run(
            report::Options {
                date,
                out,
                json,
                send,
            },
            config,
        ),
        Command::Token { app, uid, config } => token::run(&app, uid.as_deref(), config),
    }
}

/// A single-threaded runtime for the commands that do one thing and exit.
fn small_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// This host's name, for alert mails.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "this host".into())
}

/// SIGTERM or ctrl-c.
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

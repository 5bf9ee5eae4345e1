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

use crate::config::Config;
use anyhow::Context;
use cli::{AppsAction, Cli, Command};
use std::io::Write as _;

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
            turn_tcp_port,
            turns_port,
            turns_host,
            secret,
            interval,
            listen,
        } => ice_agent::run(crate::ice::agent::AgentOptions {
            room_server,
            ip,
            iface,
            max_bandwidth_kbps: max_bandwidth,
            turn_port,
            turn_tcp_port: turn_tcp_port.unwrap_or(turn_port),
            turns: turns_port.map(|port| (turns_host, port)),
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

/// Every check `serve` makes of its configuration before it starts, beyond those of
/// `Config::load`: the ones that need a feature module (mail addresses and the SMTP URL,
/// the embedded TURN server's addresses, the TLS certificate and key, the GeoIP database). `check-config` runs the same function.
fn preflight(cfg: &Config) -> anyhow::Result<()> {
    crate::ops::mail::Mailer::from_config(&cfg.smtp)?;
    crate::ops::mail::mailboxes(&cfg.alerts.recipients, "[alerts] recipients")?;
    crate::ops::mail::mailboxes(&cfg.report.recipients, "[report] recipients")?;
    if cfg.ice.mode == "registry" && cfg.turn.enabled {
        crate::ice::embedded::check(cfg)?;
    }
    if !cfg.server.tls_cert.as_os_str().is_empty() {
        crate::tls::Certificates::load(&cfg.server.tls_cert, &cfg.server.tls_key, "[server]")
            .map_err(anyhow::Error::msg)?;
    }
    crate::geoip::GeoIp::from_config(&cfg.geoip.database).map_err(anyhow::Error::msg)?;
    Ok(())
}

/// Write `text` to standard output. A reader that went away (`| head -1`) makes this an
/// error that `main` ends quietly on ([`is_broken_pipe`]); `println!` would panic.
fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Whether an error comes from writing to a pipe whose reader has gone.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// An error and its causes for the terminal, each said once: a cause whose text its
/// outer error already includes (many libraries' errors repeat their source) is left out.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || said.iter().any(|s| s.contains(text)) {
            continue;
        }
        said.push(text.to_owned());
    }
    let mut out = String::new();
    for (i, text) in said.iter().enumerate() {
        if i == 0 {
            out.push_str(&format!("Error: {text}\n"));
        } else {
            out.push_str(&format!("  caused by: {text}\n"));
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let inner = anyhow::Error::new(io).context("database: connection refused");
        let e = inner.context("cannot reach the call-record database mysql://root@h/db");
        assert_eq!(
            error_text(&e),
            "Error: cannot reach the call-record database mysql://root@h/db\n  caused by: database: connection refused\n"
        );
    }

    #[test]
    fn a_closed_pipe_is_recognised_through_contexts() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::new(io).context("writing")));
        let other = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(!is_broken_pipe(&anyhow::Error::new(other)));
    }
}

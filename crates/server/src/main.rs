//! `rtcroom`: the one binary of the platform.

mod admin;
mod alerts;
mod auth;
mod config;
mod daily;
mod frame;
mod http;
mod hub;
mod ice;
mod login;
mod mail;
mod monitor;
mod records;
mod signaling;
mod telemetry;
mod web;
mod ws;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::Config;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

// mimalloc instead of glibc's malloc: messages are allocated on the hub's thread and freed on
// the connection's, and glibc's per-arena locks made those cross-thread frees contend
// (futex waits in the relay profile; docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run beside a TURN server (coturn): register it with the room server and report the
    /// NIC's load every few seconds, so that calls go to the least-loaded server.
    IceAgent {
        /// The room server, http://host:port.
        #[arg(long)]
        room_server: String,
        /// The public IP of this ICE server (what clients connect to).
        #[arg(long)]
        ip: String,
        /// The network interface whose rates are reported (as in /proc/net/dev).
        #[arg(long, default_value = "eth0")]
        iface: String,
        /// The bandwidth this server may use, kbit/s (each new pair reserves 400 until the
        /// next report: size it to the NIC).
        #[arg(long, default_value_t = 1_000_000)]
        max_bandwidth: u64,
        /// The TURN/STUN port of the server.
        #[arg(long, default_value_t = 3478)]
        turn_port: u16,
        /// The room server's [ice] register_secret (needed unless on the same host).
        #[arg(long, env = "RTCROOM_ICE_AGENT_SECRET")]
        secret: Option<String>,
        /// Seconds between reports.
        #[arg(long, default_value_t = 5)]
        interval: u64,
        /// Where to answer /healthz and /readyz.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Create or update the call-record tables ([database] url), then exit.
    Migrate {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Read call records: a member's history, one session, a day's calls (JSON).
    Records {
        #[command(subcommand)]
        query: RecordsQuery,
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
    },
    /// The daily call report of a day: printed as text, written as HTML or JSON, or mailed.
    Report {
        /// The day, YYYY-MM-DD (in [report] timezone). Default: yesterday.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// Write the full report (every call) to this file: standalone HTML, or JSON with --json.
        #[arg(long)]
        out: Option<PathBuf>,
        /// JSON instead of HTML (to --out, or to standard output).
        #[arg(long)]
        json: bool,
        /// Mail it to [report] recipients through [smtp].
        #[arg(long)]
        send: bool,
        #[arg(long, short)]
        config: Option<PathBuf>,
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
enum RecordsQuery {
    /// A member's sessions, newest first, with their sub-sessions and quality summary.
    Member {
        #[arg(long)]
        app: String,
        #[arg(long)]
        uid: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One session by id.
    Session { id: String },
    /// A day's sub-sessions (UTC), with their sessions and quality summary.
    Day {
        /// YYYY-MM-DD
        date: chrono::NaiveDate,
    },
}

#[derive(Debug, Subcommand)]
enum AppsAction {
    /// List the apps, their key ids and domains (never the secrets).
    List,
}

/// Errors end the process with status 1, as returning them from `main` would; a command that
/// needs call records while they are off ends with status 2, so that scripts can tell a
/// setting from a failure.
fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<records::RecordsOff>() => {
            eprintln!("Error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
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
            if cfg.database.is_off() {
                println!(
                    "{}: `serve` opens no database and writes no record; `migrate`, `records` and `report` exit with status 2",
                    records::OFF_MESSAGE
                );
            }
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
            let runtime = small_runtime()?;
            let mailer = mail::Mailer::from_config(&cfg.smtp)?;
            let host = hostname();
            runtime.block_on(async {
                tokio::select! {
                    r = monitor::run(cfg.monitor.clone(), mailer, &cfg.alerts, host, rounds) => r,
                    () = shutdown_signal() => Ok(()),
                }
            })
        }
        Command::IceAgent {
            room_server,
            ip,
            iface,
            max_bandwidth,
            turn_port,
            secret,
            interval,
            listen,
        } => {
            telemetry::init("human", "info");
            let runtime = small_runtime()?;
            let opts = ice::AgentOptions {
                room_server,
                ip,
                iface,
                max_bandwidth_kbps: max_bandwidth,
                turn_port,
                secret,
                interval: Duration::from_secs(interval.max(1)),
                listen,
            };
            runtime.block_on(ice::run_agent(opts, shutdown_signal()))
        }
        Command::Migrate { config } => {
            let cfg = Config::load(config.as_deref())?;
            let runtime = small_runtime()?;
            runtime.block_on(async {
                let store = records::open(&cfg.database, &cfg.server.data_dir).await?;
                println!(
                    "the call-record tables are up to date ({:?})",
                    store.backend()
                );
                store.close().await;
                Ok(())
            })
        }
        Command::Records { query, config } => {
            let cfg = Config::load(config.as_deref())?;
            let runtime = small_runtime()?;
            runtime.block_on(async {
                let store = records::open(&cfg.database, &cfg.server.data_dir).await?;
                let json = match query {
                    RecordsQuery::Member { app, uid, limit } => serde_json::to_string_pretty(
                        &store.member_sessions(&app, &uid, limit).await?,
                    )?,
                    RecordsQuery::Session { id } => match store.session(&id).await? {
                        Some(s) => serde_json::to_string_pretty(&s)?,
                        None => anyhow::bail!("no session {id}"),
                    },
                    RecordsQuery::Day { date } => serde_json::to_string_pretty(
                        &store.day_sub_sessions(date).collect().await?,
                    )?,
                };
                println!("{json}");
                store.close().await;
                Ok(())
            })
        }
        Command::Report {
            date,
            out,
            json,
            send,
            config,
        } => {
            let cfg = Config::load(config.as_deref())?;
            let runtime = small_runtime()?;
            runtime.block_on(report_command(cfg, date, out, json, send))
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
    let registry = cfg.ice.mode == "registry";
    let embedded = if registry && cfg.turn.enabled {
        let ip = ice::turn_public_ip(&cfg.turn)?.to_string();
        Some((ip, ice::turn_secret(&cfg.turn, &cfg.server.data_dir)?))
    } else {
        None
    };
    let engine_cfg = cfg.engine(embedded.as_ref().map(|(ip, s)| (ip.as_str(), s.as_str())));
    let prices = engine_cfg.prices;
    let engine = rtcroom_core::Engine::new(engine_cfg, hub::OsEntropy::new());
    let host = hostname();
    if let Some(mailer) = mail::Mailer::from_config(&cfg.smtp)? {
        let to = mail::mailboxes(&cfg.alerts.recipients, "[alerts] recipients")?;
        if !to.is_empty() {
            alerts::start(mailer, to, host);
        }
    }
    let recording = if cfg.database.is_off() {
        tracing::info!(
            "{}: no database is opened and no call record is written",
            records::OFF_MESSAGE
        );
        None
    } else {
        let store = records::open(&cfg.database, &cfg.server.data_dir).await?;
        let (writer, sink) =
            records::start_writer(store.clone(), &cfg.database, &cfg.server.data_dir, prices)?;
        let writer = Arc::new(writer);
        let watcher = records::watch(writer.clone());
        Some(Recording {
            store,
            writer,
            watcher,
            sink,
        })
    };
    let daily_task = match (&recording, mail::Mailer::from_config(&cfg.smtp)?) {
        (None, _) => {
            if cfg.report.enabled {
                tracing::info!(
                    "the daily report is not scheduled: {}",
                    records::OFF_MESSAGE
                );
            }
            None
        }
        (Some(r), Some(mailer)) if cfg.report.enabled && !cfg.report.recipients.is_empty() => {
            Some(daily::schedule(
                r.store.clone(),
                mailer,
                cfg.report.clone(),
                cfg.server.data_dir.clone(),
            )?)
        }
        (Some(_), _) => {
            if cfg.report.enabled {
                tracing::info!(
                    "the daily report is not mailed: set [smtp] url and [report] recipients"
                );
            }
            None
        }
    };
    // With records off the hub gets the default sink, which discards.
    let sink = recording
        .as_ref()
        .map(|r| r.sink.clone())
        .unwrap_or_default();
    let (hub, hub_task) = hub::spawn(engine, sink, 4096);
    let turn = match embedded {
        Some((_, secret)) => Some(ice::start_embedded(&cfg.turn, secret, hub.clone()).await?),
        None => None,
    };
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
        store: recording.as_ref().map(|r| r.store.clone()),
        report: Arc::new(cfg.report.clone()),
        writer: recording.as_ref().map(|r| r.writer.clone()),
        admin_token: cfg.admin.token.as_str().into(),
        apps,
        rtc_config: rtcroom_protocol::SharedJson::rtc_config(&cfg.rtc_config()),
        public_url: cfg.server.public_url.as_str().into(),
        draining: draining.clone(),
        turn: turn.as_ref().map(|t| t.handle.clone()),
        ice_register_secret: cfg.ice.register_secret.as_str().into(),
        ice_registry: registry,
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
    if let Some(turn) = turn {
        turn.shutdown().await;
    }
    if let Some(t) = daily_task {
        t.abort();
    }
    if let Some(recording) = recording {
        recording.close().await;
    }
    Ok(())
}

/// The call-record side of `serve` while records are on.
struct Recording {
    store: rtcroom_store::Store,
    writer: Arc<rtcroom_store::RecordWriter>,
    /// The database watch (alerts).
    watcher: tokio::task::JoinHandle<()>,
    /// The hub's handle on `writer`.
    sink: records::RecordSink,
}

impl Recording {
    /// Every session was closed by the hub's shutdown; write what is queued, within a bound.
    async fn close(self) {
        let Recording {
            store,
            writer,
            watcher,
            sink,
        } = self;
        drop(sink);
        watcher.abort();
        let _ = watcher.await;
        match Arc::try_unwrap(writer) {
            Ok(writer) => {
                let s = writer.shutdown(Duration::from_secs(10)).await;
                if s.queue_depth > 0 {
                    tracing::warn!(
                        left = s.queue_depth,
                        spooled = s.spooled,
                        "records not yet written are in the spool and will be written at the next start"
                    );
                }
            }
            Err(_) => tracing::warn!(
                "the record writer is still shared at shutdown; queued records stay in the spool"
            ),
        }
        store.close().await;
    }
}

/// `rtcroom report`.
async fn report_command(
    cfg: Config,
    date: Option<chrono::NaiveDate>,
    out: Option<PathBuf>,
    json: bool,
    send: bool,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let tz = cfg.report.tz()?;
    let date = date.unwrap_or_else(|| {
        (chrono::Utc::now().with_timezone(&tz) - chrono::Duration::days(1)).date_naive()
    });
    let store = records::open(&cfg.database, &cfg.server.data_dir).await?;
    let progress = |n: u64| eprint!("\rreading {date}: {n} rows");
    let (report, charts) =
        daily::compute(&store, &cfg.report, date, chrono::Utc::now(), progress).await?;
    eprintln!();
    match (&out, json) {
        (Some(path), _) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let n = daily::export(
                &store,
                &report,
                &charts,
                json,
                std::io::BufWriter::new(file),
            )
            .await?;
            eprintln!("wrote {} ({n} calls)", path.display());
        }
        (None, true) => {
            let stdout = std::io::stdout();
            daily::export(
                &store,
                &report,
                &charts,
                true,
                std::io::BufWriter::new(stdout.lock()),
            )
            .await?;
        }
        (None, false) if !send => {
            let subject = if cfg.report.subject.is_empty() {
                rtcroom_report::default_subject(date)
            } else {
                cfg.report.subject.replace("{date}", &date.to_string())
            };
            let mut stdout = std::io::stdout().lock();
            write!(stdout, "{}", rtcroom_report::email_text(&report, &subject))?;
        }
        (None, false) => {}
    }
    if send {
        let mailer = mail::Mailer::from_config(&cfg.smtp)?
            .context("--send needs [smtp] url (e.g. smtp://127.0.0.1:25)")?;
        daily::send(&mailer, &cfg.report, &report, &charts).await?;
        eprintln!(
            "sent the report of {date} to {}",
            cfg.report.recipients.join(", ")
        );
    }
    store.close().await;
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

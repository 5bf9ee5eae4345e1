//! `rtcroom ice-agent`: a program of its own that runs beside a TURN server (coturn),
//! registers it with the room server and reports the NIC's rates every few seconds.
//!
//! It shares nothing with the room server but the wire: it speaks the ICE HTTP API over a
//! plain HTTP/1.1 connection, and answers `/healthz` and `/readyz` for its supervisor.

use anyhow::Context;
use axum::http::StatusCode;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    /// The port of TURN over TCP; 0: not served.
    pub turn_tcp_port: u16,
    /// TURN over TLS: the host name its certificate names (`None`: `ip`) and the port;
    /// `None`: not served.
    pub turns: Option<(Option<String>, u16)>,
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
    let healthy = Arc::new(AtomicU64::new(0));
    if let Some(addr) = opts.listen {
        serve_health(addr, healthy.clone(), opts.interval).await?;
    }
    read_nic(&opts.iface)?;
    tokio::select! {
        r = report_loop(&opts, &healthy) => r?,
        () = stop => {}
    }
    let bye = with_secret(
        &opts,
        serde_json::json!({"cmd":"iceDeregister","ip":opts.ip}),
    );
    match post(&opts.room_server, &bye).await {
        Ok(r) => tracing::info!(reply = %r, "deregistered"),
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot deregister"),
    }
    Ok(())
}

/// `/healthz` (alive) and `/readyz` (a report was accepted within three intervals), for
/// the agent's supervisor.
async fn serve_health(
    addr: SocketAddr,
    healthy: Arc<AtomicU64>,
    interval: Duration,
) -> anyhow::Result<()> {
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route(
            "/readyz",
            axum::routing::get(move || async move {
                let last = healthy.load(Ordering::Acquire);
                let now = crate::clock::now().0;
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
    Ok(())
}

/// A request body with the agent's secret, when it has one.
fn with_secret(opts: &AgentOptions, mut v: serde_json::Value) -> String {
    if let Some(s) = &opts.secret {
        v["secret"] = serde_json::json!(s);
    }
    v.to_string()
}

/// Bytes received and sent by `iface` so far.
fn read_nic(iface: &str) -> anyhow::Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/net/dev").context("cannot read /proc/net/dev")?;
    nic_bytes(&text, iface).with_context(|| format!("no interface {iface} in /proc/net/dev"))
}

/// The `iceRegister` body: the transports the TURN server serves, so that the room server
/// hands out those URLs and no others.
fn register_body(opts: &AgentOptions) -> String {
    let mut body = serde_json::json!({
        "cmd": "iceRegister", "ip": opts.ip, "iceType": "turn", "bundlePolicy": "max-bundle",
        "rtcpMuxPolicy": "require", "iceTransportPolicy": "all", "turnPort": opts.turn_port,
        "turnTcpPort": opts.turn_tcp_port, "stunPort": opts.turn_port,
        "maxBandwidth": opts.max_bandwidth_kbps, "username": "", "credential": ""
    });
    if let Some((host, port)) = &opts.turns {
        body["turnsPort"] = serde_json::json!(port);
        if let Some(host) = host {
            body["turnsHost"] = serde_json::json!(host);
        }
    }
    with_secret(opts, body)
}

/// Register (again, whenever the room server forgot this server), then report the NIC's
/// rates every interval. Returns only on an error reading the NIC.
async fn report_loop(opts: &AgentOptions, healthy: &AtomicU64) -> anyhow::Result<()> {
    let register = register_body(opts);
    let mut registered = false;
    let mut last = (read_nic(&opts.iface)?, Instant::now());
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
        let now = (read_nic(&opts.iface)?, Instant::now());
        let secs = now.1.duration_since(last.1).as_secs_f64().max(0.001);
        let rx = ((now.0.0.saturating_sub(last.0.0)) as f64 * 8.0 / 1000.0 / secs) as u64;
        let tx = ((now.0.1.saturating_sub(last.0.1)) as f64 * 8.0 / 1000.0 / secs) as u64;
        last = now;
        if registered {
            let report = with_secret(
                opts,
                serde_json::json!({"cmd":"iceReportRxTxRate","ip":opts.ip,"rxRate":rx,"txRate":tx}),
            );
            match post(&opts.room_server, &report).await {
                Ok(r) if r == "successful" => {
                    healthy.store(crate::clock::now().0, Ordering::Release)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> AgentOptions {
        AgentOptions {
            room_server: "http://127.0.0.1:8080".into(),
            ip: "203.0.113.7".into(),
            iface: "eth0".into(),
            max_bandwidth_kbps: 1000,
            turn_port: 3478,
            turn_tcp_port: 3478,
            turns: None,
            secret: None,
            interval: Duration::from_secs(5),
            listen: None,
        }
    }

    /// The transports the room server reads from the body the agent sends.
    fn registered(opts: &AgentOptions) -> (Option<u16>, Option<rtcroom_ice::Turns>) {
        let body = register_body(opts);
        let request = rtcroom_ice::parse(body.as_bytes()).expect("the room server parses it");
        match request.command {
            rtcroom_ice::IceCommand::Register(r) => (r.turn_tcp_port, r.turns),
            other => panic!("not a registration: {other:?}"),
        }
    }

    #[test]
    fn the_registration_names_the_transports_served() {
        let mut opts = options();
        // coturn's default: TCP on the listening port, no TLS.
        assert_eq!(registered(&opts), (Some(3478), None));
        // --no-tcp, and TLS on 5349 under the certificate's name.
        opts.turn_tcp_port = 0;
        opts.turns = Some((Some("turn.example.com".into()), 5349));
        let turns = rtcroom_ice::Turns {
            host: "turn.example.com".into(),
            port: 5349,
        };
        assert_eq!(registered(&opts), (None, Some(turns)));
        // TCP on another port; TLS named by the IP.
        opts.turn_tcp_port = 3479;
        opts.turns = Some((None, 443));
        let turns = rtcroom_ice::Turns {
            host: "203.0.113.7".into(),
            port: 443,
        };
        assert_eq!(registered(&opts), (Some(3479), Some(turns)));
    }

    #[test]
    fn nic_rates_are_read_from_proc_net_dev() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n  eth0: 123456 100 0 0 0 0 0 0 654321 200 0 0 0 0 0 0\n";
        assert_eq!(nic_bytes(text, "eth0"), Some((123_456, 654_321)));
        assert_eq!(nic_bytes(text, "lo"), Some((1000, 2000)));
        assert_eq!(nic_bytes(text, "wlan0"), None);
    }
}

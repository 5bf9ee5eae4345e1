//! Opening WebSocket connections to the target from several loopback source addresses.
//!
//! One source address has about 28,000 ephemeral ports (32768–60999), so more connections
//! than that are spread over 127.0.0.2, 127.0.0.3, ...: the client socket is bound to its
//! source address before it connects.

use crate::wire::Proto;
use anyhow::{Context, bail};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub type Ws = WebSocketStream<TcpStream>;

/// Connections per source address before the next one is used.
pub const PER_SOURCE: usize = 20_000;

/// Where and how to connect.
#[derive(Debug)]
pub struct Connector {
    pub proto: Proto,
    addr: SocketAddr,
    /// `ws://host:port/path` without a query.
    base: String,
    sources: Vec<Ipv4Addr>,
    next: AtomicUsize,
    config: WebSocketConfig,
    /// A second server (a cluster's node 2) for the odd-numbered members.
    second: Option<(SocketAddr, String)>,
}

impl Connector {
    /// `url` is `ws://127.x.y.z:PORT[/path]`; only loopback targets are accepted.
    pub fn new(proto: Proto, url: &str, sources: usize) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("ws://")
            .with_context(|| format!("{url}: only ws:// URLs are supported"))?;
        let (hostport, path) = match rest.split_once('/') {
            Some((h, p)) => (h, format!("/{p}")),
            None => (rest, String::new()),
        };
        let addr: SocketAddr = hostport
            .parse()
            .with_context(|| format!("{url}: the host must be an IP address and a port"))?;
        if !addr.ip().is_loopback() {
            bail!("{url}: the bench only targets loopback addresses (127.0.0.0/8)");
        }
        let path = if path.is_empty() || path == "/" {
            match proto {
                Proto::Rtcroom => "/ws".to_owned(),
                Proto::PeerJs => "/peerjs".to_owned(),
            }
        } else {
            path
        };
        // No explicit source for a single one: the kernel picks 127.0.0.1.
        let sources = if sources <= 1 {
            Vec::new()
        } else {
            (0..sources)
                .map(|i| Ipv4Addr::new(127, 0, 0, u8::try_from(2 + i).unwrap_or(254)))
                .collect()
        };
        // Signaling frames are small: a 4 KiB read buffer instead of tungstenite's 128 KiB,
        // which it allocates per connection (50,000 idle members would hold 6 GB).
        let config = WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0)
            .max_message_size(Some(1 << 20))
            .max_frame_size(Some(1 << 20));
        Ok(Self {
            proto,
            addr,
            base: format!("ws://{hostport}{path}"),
            sources,
            next: AtomicUsize::new(0),
            config,
            second: None,
        })
    }

    /// Send the odd-numbered members (the second of each pair) to `url` instead.
    pub fn with_second(mut self, url: &str) -> anyhow::Result<Self> {
        let other = Self::new(self.proto, url, 0)?;
        self.second = Some((other.addr, other.base));
        Ok(self)
    }

    /// Source addresses needed for `n` connections.
    pub fn sources_for(n: usize) -> usize {
        n.div_ceil(PER_SOURCE)
    }

    fn url(base: &str, proto: Proto, id: &str) -> String {
        match proto {
            Proto::Rtcroom => base.to_owned(),
            Proto::PeerJs => format!("{base}?key=peerjs&id={id}&token=tok{id}"),
        }
    }

    /// Open one WebSocket as member `id`, the `member`-th of the run.
    pub async fn connect(&self, id: &str, member: usize) -> anyhow::Result<Ws> {
        let (addr, base) = match &self.second {
            Some((addr, base)) if member % 2 == 1 => (*addr, base.as_str()),
            _ => (self.addr, self.base.as_str()),
        };
        let socket = TcpSocket::new_v4()?;
        if !self.sources.is_empty() {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sources.len();
            socket.bind(SocketAddr::new(IpAddr::V4(self.sources[i]), 0))?;
        }
        let stream = socket.connect(addr).await?;
        stream.set_nodelay(true)?;
        let url = Self::url(base, self.proto, id);
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(self.config)).await?;
        Ok(ws)
    }
}

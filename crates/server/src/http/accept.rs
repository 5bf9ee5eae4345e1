//! The accept loop of the HTTP listener: every TCP connection counted against its client
//! address (`[server] max_connections_per_ip`), every request header bounded in time
//! (`[server] header_read_timeout_secs`, which also bounds an idle keep-alive connection),
//! HTTP/1.1 with upgrades (`/ws`), and a graceful stop.
//!
//! Without these bounds a client that opens connections and sends a request header a byte
//! at a time (slowloris) holds them, and their file descriptors, for as long as it likes.

use crate::peer::TrustedProxies;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// The bounds the accept loop keeps.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections per client address at most; 0: no limit.
    pub per_ip: usize,
    /// `[server] trusted_proxies`: their connections carry many clients and are not counted.
    pub trusted: Arc<TrustedProxies>,
    /// Time from the connection's start (or the previous response) to a complete request
    /// header.
    pub header_read_timeout: Duration,
    /// TLS for every connection (`[server] tls_cert`/`tls_key`); `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// The address a TCP connection counts against: its peer's, or none for a trusted proxy,
/// whose connections carry many clients (the proxy limits per client; joins are counted
/// against the client address it forwards, `peer::client_ip`). Before a request is read
/// nothing but the peer is known.
pub fn counted_address(peer: SocketAddr, trusted: &TrustedProxies) -> Option<IpAddr> {
    let ip = peer.ip().to_canonical();
    (!trusted.contains(ip)).then_some(ip)
}

/// Serve `app` on `listener` until `shutdown` completes, then stop accepting, let every
/// connection finish its request (hyper's graceful shutdown) and return once all are
/// closed. Upgraded WebSockets are the signaling side's to close.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let per_ip = Arc::new(PerIp {
        max: limits.per_ip,
        open: Mutex::new(HashMap::new()),
    });
    // Each connection task holds a receiver: `stop` tells them to finish, and `closed()`
    // resolves once every one has dropped its receiver.
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // `shutdown` is polled first, every time: its first poll installs the signal
        // handlers, so no connection is served before a SIGTERM would be handled.
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors (EMFILE) or a connection reset before it was
                // accepted: the listener itself is fine; do not spin while it lasts.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Signaling is request/response over small frames: with Nagle's algorithm on, a
        // frame's last partial segment waits for the peer's delayed ACK (up to 40 ms on
        // Linux), which rtcroom-bench measured as 20-50 ms relay latency.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
        let slot = match counted_address(peer, &limits.trusted) {
            None => None,
            Some(ip) => match per_ip.admit(ip) {
                Some(slot) => slot,
                None => {
                    refuse(&tcp);
                    continue;
                }
            },
        };
        let io = Counted { tcp, _slot: slot };
        let (app, timeout, stopped) = (app.clone(), limits.header_read_timeout, stopped.clone());
        match limits.tls.clone() {
            None => {
                tokio::spawn(connection(io, peer, app, timeout, stopped));
            }
            Some(tls) => {
                tokio::spawn(async move {
                    // The handshake is bounded like a request header: a client that opens
                    // a connection and stalls in the handshake holds nothing for long.
                    let accept = tokio_rustls::TlsAcceptor::from(tls).accept(io);
                    match tokio::time::timeout(timeout, accept).await {
                        Ok(Ok(stream)) => connection(stream, peer, app, timeout, stopped).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake took too long"),
                    }
                });
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    drop(stopped);
    stop.closed().await;
}

/// One HTTP/1.1 connection, upgrades included.
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    header_read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "HTTP connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Answer a connection over its address's limit with a 503 that says why, as far as a
/// fresh socket's send buffer takes it without waiting, and close it.
fn refuse(tcp: &TcpStream) {
    crate::ops::metrics::metrics()
        .connections_refused_per_ip
        .inc();
    const BODY: &str = "too many connections from your address: this server allows [server] max_connections_per_ip at once\n";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tcp.try_write(response.as_bytes());
}

/// Open connections per client address.
#[derive(Debug)]
struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerIp {
    /// A place for one more connection from `ip` (`Some(None)` when there is no limit);
    /// `None` when `ip` has `max` open.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Option<Slot>> {
        if self.max == 0 {
            return Some(None);
        }
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Some(Slot {
            per_ip: self.clone(),
            ip,
        }))
    }
}

/// One connection's place in its address's count, given back when dropped.
#[derive(Debug)]
struct Slot {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .per_ip
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A TCP stream that holds its address's slot until it is dropped: an upgraded WebSocket
/// owns the stream, so it keeps counting for as long as it is open.
#[derive(Debug)]
struct Counted {
    tcp: TcpStream,
    _slot: Option<Slot>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An address gets `max` places; a place dropped is given back, and an address with
    /// none open is forgotten.
    #[test]
    fn each_address_gets_its_own_places() {
        let per_ip = Arc::new(PerIp {
            max: 2,
            open: Mutex::new(HashMap::new()),
        });
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        let first = per_ip.admit(a).expect("a place");
        let second = per_ip.admit(a).expect("a place");
        assert!(per_ip.admit(a).is_none(), "a third place from one address");
        assert!(per_ip.admit(b).is_some(), "another address is not limited");
        drop(first);
        let third = per_ip.admit(a).expect("a place given back");
        drop((second, third));
        assert!(per_ip.open.lock().unwrap().is_empty());
        let unlimited = Arc::new(PerIp {
            max: 0,
            open: Mutex::new(HashMap::new()),
        });
        for _ in 0..10 {
            assert!(matches!(unlimited.admit(a), Some(None)));
        }
    }
}

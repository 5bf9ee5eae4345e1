//! The WebSocket upgrade of `/ws`, and the socket under it, sized for signaling.
//!
//! We answer the HTTP/1.1 upgrade ourselves instead of through axum's `WebSocketUpgrade` for
//! one reason: to put [`Coalesced`] between tungstenite and the TCP stream, which axum's
//! extractor does not allow. tungstenite reads at most its read-buffer size per `read` call,
//! and that buffer is allocated for every connection, idle or not: at 2 KiB an SDP of 5 KB
//! took three `recvfrom` calls, and a buffer big enough for one call per frame would cost
//! every idle member its size. [`Coalesced`] reads whatever the socket holds (up to 16 KiB)
//! into a per-thread scratch buffer in one system call and hands it out in tungstenite's
//! small pieces, so the per-connection buffer can stay small and a frame is one read.
//! (rtcroom-bench relay, 100 pairs: docs/benchmarks.md.)

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// The server side of one signaling connection.
pub type Socket = WebSocketStream<Coalesced<TokioIo<hyper::upgrade::Upgraded>>>;

/// Why an HTTP request to `/ws` is not a WebSocket upgrade (the same checks and statuses as
/// axum's extractor).
fn refuse(
    headers: &HeaderMap,
    method: &Method,
    version: Version,
) -> Option<(StatusCode, &'static str)> {
    if version != Version::HTTP_11 {
        return Some((
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            "WebSocket upgrades need HTTP/1.1",
        ));
    }
    if method != Method::GET {
        return Some((
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket upgrade must be a GET request",
        ));
    }
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.as_bytes()
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") {
        return Some((
            StatusCode::BAD_REQUEST,
            "Connection header did not include 'upgrade': connect with a WebSocket client",
        ));
    }
    if !has_token(header::UPGRADE, "websocket") {
        return Some((
            StatusCode::BAD_REQUEST,
            "`Upgrade` header did not include 'websocket'",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Some((
            StatusCode::BAD_REQUEST,
            "`Sec-WebSocket-Version` header did not include '13'",
        ));
    }
    if headers.get(header::SEC_WEBSOCKET_KEY).is_none() {
        return Some((
            StatusCode::BAD_REQUEST,
            "`Sec-WebSocket-Key` header missing",
        ));
    }
    None
}

/// Answer the upgrade with `101 Switching Protocols` and run `on_socket` on the connection
/// once hyper hands it over; any other request gets a 4xx that says what is missing.
pub fn upgrade<F, Fut>(mut req: Request, config: WebSocketConfig, on_socket: F) -> Response
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if let Some((status, why)) = refuse(req.headers(), req.method(), req.version()) {
        return (status, why).into_response();
    }
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return (
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded to a WebSocket",
        )
            .into_response();
    };
    let accept = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|key| derive_accept_key(key.as_bytes()))
        .unwrap_or_default();
    let Ok(accept) = HeaderValue::from_str(&accept) else {
        return (
            StatusCode::BAD_REQUEST,
            "`Sec-WebSocket-Key` header is invalid",
        )
            .into_response();
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = Coalesced::new(TokioIo::new(upgraded));
                let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                on_socket(socket).await;
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// Bytes read from the socket in one system call at most (a signaling frame is up to a few
/// KB; more than this waits for the next call).
const SCRATCH: usize = 16 * 1024;

thread_local! {
    /// Where a read lands before it is handed out; one per runtime thread, not per connection.
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// A stream whose reads take everything the socket holds in one system call, however small
/// the caller's buffer. What the caller has no room for is kept (`pending`, usually the rest
/// of the frame being read, handed out at once) and freed as soon as it is taken, so an idle
/// connection holds nothing here. Writes pass straight through.
#[derive(Debug)]
pub struct Coalesced<S> {
    inner: S,
    pending: Vec<u8>,
    taken: usize,
}

impl<S> Coalesced<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            taken: 0,
        }
    }

    /// Hand out kept bytes; `true` when there were any.
    fn give_pending(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let left = &self.pending[self.taken..];
        if left.is_empty() {
            return false;
        }
        let n = left.len().min(buf.remaining());
        buf.put_slice(&left[..n]);
        self.taken += n;
        if self.taken == self.pending.len() {
            self.pending = Vec::new();
            self.taken = 0;
        }
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesced<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 || this.give_pending(buf) {
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= SCRATCH {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        SCRATCH_BUF.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut tmp = ReadBuf::new(&mut scratch[..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut tmp))?;
            let got = tmp.filled();
            let n = got.len().min(buf.remaining());
            buf.put_slice(&got[..n]);
            if got.len() > n {
                this.pending = got[n..].to_vec();
                this.taken = 0;
            }
            Poll::Ready(Ok(()))
        })
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesced<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Server-to-client text frames, built by us and written in one system call.
///
/// tungstenite would copy each frame into a write buffer of the connection's own, write it,
/// and keep that buffer's capacity for as long as the connection lives: after one SDP every
/// member held ~7 KB for good. Here the messages a connection has queued are serialized
/// straight into one buffer, each behind its frame header (RFC 6455 §5.2: FIN, opcode 1,
/// unmasked, shortest length encoding), written with one `write_all`, and dropped.
/// tungstenite still reads every frame and writes the control frames (pong, close).
#[derive(Debug, Default)]
pub struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    /// Room for a typical batch (a relayed SDP and its neighbours) without growing.
    const START: usize = 16 * 1024;

    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(Self::START),
        }
    }

    /// Append one text frame whose payload `write` appends (valid UTF-8: JSON text).
    pub fn push_text(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        // Room for the common header (2-byte length); fixed up once the length is known.
        self.buf.extend_from_slice(&[0; 4]);
        write(&mut self.buf);
        let len = self.buf.len() - start - 4;
        self.buf[start] = 0x81; // FIN + text
        match len {
            0..=125 => {
                self.buf[start + 1] = len as u8;
                self.buf.drain(start + 2..start + 4);
            }
            126..=0xFFFF => {
                self.buf[start + 1] = 126;
                self.buf[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                self.buf[start + 1] = 127;
                let len = (len as u64).to_be_bytes();
                self.buf.splice(start + 2..start + 4, len);
            }
        }
    }

    /// Bytes of the frames so far, headers included.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Write every frame to `socket`, after whatever tungstenite still holds (a pong), so
    /// that frames never interleave.
    pub async fn write_to(&self, socket: &mut Socket) -> io::Result<()> {
        use futures_util::SinkExt;
        use tokio::io::AsyncWriteExt;
        socket.flush().await.map_err(io::Error::other)?;
        socket.get_mut().write_all(&self.buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Frames of every length class (1-, 2- and 8-byte lengths, at their edges) are read back
    /// whole and in order by tungstenite as a client, from one write.
    #[tokio::test]
    async fn frames_are_read_back_by_a_websocket_client() {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let (client, server) = tokio::io::duplex(1 << 20);
        let texts: Vec<String> = [0usize, 1, 125, 126, 127, 5_000, 65_535, 65_536, 70_000]
            .iter()
            .map(|&n| (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect())
            .collect();
        let mut frames = Frames::new();
        for t in &texts {
            frames.push_text(|out| out.extend_from_slice(t.as_bytes()));
        }
        let mut server = server;
        server.write_all(&frames.buf).await.unwrap();
        drop(server);
        let mut ws = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        for t in &texts {
            match ws.next().await {
                Some(Ok(Message::Text(got))) => {
                    assert_eq!(got.len(), t.len());
                    assert!(got.as_str() == t, "a frame of {} bytes changed", t.len());
                }
                other => panic!("wanted a text frame of {} bytes, got {other:?}", t.len()),
            }
        }
    }

    /// Everything written comes out in order, through reads of every size, and EOF is EOF.
    #[tokio::test]
    async fn small_reads_see_every_byte_in_order() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let mut reader = Coalesced::new(server);
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            for chunk in sent.chunks(7_000) {
                client.write_all(chunk).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let mut got = Vec::new();
        let mut sizes = [1usize, 3, 512, 2048, 17].into_iter().cycle();
        loop {
            let mut buf = vec![0; sizes.next().unwrap()];
            let n = reader.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        writer.await.unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "bytes came out changed or out of order");
        assert!(reader.pending.is_empty(), "nothing is kept after EOF");
    }

    /// One read of the socket serves a whole frame's worth of small reads, and what is kept
    /// is released when taken.
    #[tokio::test]
    async fn one_socket_read_serves_many_small_reads() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let mut reader = Coalesced::new(server);
        client.write_all(&[7u8; 5_000]).await.unwrap();
        let mut buf = [0u8; 2048];
        assert_eq!(reader.read(&mut buf).await.unwrap(), 2048);
        assert_eq!(
            reader.pending.len(),
            5_000 - 2048,
            "the rest of the read is kept"
        );
        assert_eq!(reader.read(&mut buf).await.unwrap(), 2048);
        assert_eq!(reader.read(&mut buf).await.unwrap(), 904);
        assert_eq!(
            reader.pending.capacity(),
            0,
            "kept bytes are freed once taken"
        );
        drop(client);
        assert_eq!(reader.read(&mut buf).await.unwrap(), 0);
    }

    #[test]
    fn only_a_websocket_upgrade_is_accepted() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        assert_eq!(refuse(&h, &Method::GET, Version::HTTP_11), None);
        assert_eq!(
            refuse(&h, &Method::POST, Version::HTTP_11).map(|r| r.0),
            Some(StatusCode::METHOD_NOT_ALLOWED)
        );
        let mut plain = h.clone();
        plain.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        assert_eq!(
            refuse(&plain, &Method::GET, Version::HTTP_11).map(|r| r.0),
            Some(StatusCode::BAD_REQUEST)
        );
        let mut old = h.clone();
        old.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert!(refuse(&old, &Method::GET, Version::HTTP_11).is_some());
        let mut keyless = h;
        keyless.remove(header::SEC_WEBSOCKET_KEY);
        assert!(refuse(&keyless, &Method::GET, Version::HTTP_11).is_some());
        // RFC 6455's own example of the accept key.
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}

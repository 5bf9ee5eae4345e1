//! The WebSocket upgrade of `/ws`, and the socket under it, sized for signaling.
//!
//! We answer the HTTP/1.1 upgrade ourselves and frame the connection with [`super::frame`]
//! rather than through axum/tungstenite, for memory and copies: a [`Socket`] reads whatever
//! the TCP stream holds (up to 16 KiB) into a per-thread scratch buffer in one system call
//! and takes frames straight out of it, so a connection holds bytes only while a frame is
//! incomplete (tungstenite kept a buffer as large as the largest frame received, ~10 KB per
//! member after a call), and a 5 KB SDP is one `recvfrom` and one copy (unmasking).
//! (rtcroom-bench relay and idle --call: docs/benchmarks.md.)

use super::frame::{Frames, Inbound, Incoming, Violation};
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
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

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
pub fn upgrade<F, Fut>(mut req: Request, max_message: usize, on_socket: F) -> Response
where
    F: FnOnce(Socket<TokioIo<hyper::upgrade::Upgraded>>) -> Fut + Send + 'static,
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
                on_socket(Socket::new(TokioIo::new(upgraded), max_message)).await;
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
    /// Where a read lands; one per runtime thread, not per connection.
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// Why reading stopped short of a message.
#[derive(Debug)]
pub enum ReadError {
    /// The client broke RFC 6455; answer with a close frame of this code.
    Protocol(Violation),
    Io(io::Error),
}

/// The server side of one WebSocket connection: messages in, frames out.
#[derive(Debug)]
pub struct Socket<S> {
    io: S,
    /// The bytes read and not yet taken as frames (none between frames).
    inbound: Inbound,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Socket<S> {
    /// A socket after the handshake; messages above `max_message` bytes end the connection.
    pub fn new(io: S, max_message: usize) -> Self {
        Self {
            io,
            inbound: Inbound::new(max_message),
        }
    }

    /// The next message; `None` once the client is gone. Cancel-safe: bytes read are kept
    /// for the next call.
    pub async fn next(&mut self) -> Option<Result<Incoming, ReadError>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Write `frames` in one call (the caller's frames never interleave with others: only
    /// its task writes).
    pub async fn write(&mut self, frames: &Frames) -> io::Result<()> {
        self.io.write_all(frames.bytes()).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, ReadError>>> {
        loop {
            // A frame already here (the rest of an earlier read).
            match self.inbound.next_held() {
                Err(v) => return Poll::Ready(Some(Err(ReadError::Protocol(v)))),
                Ok(Some(m)) => return Poll::Ready(Some(Ok(m))),
                Ok(None) => {}
            }
            match ready!(self.poll_read_more(cx)) {
                Err(e) => return Poll::Ready(Some(Err(ReadError::Io(e)))),
                Ok(None) => return Poll::Ready(None),
                Ok(Some(Err(v))) => return Poll::Ready(Some(Err(ReadError::Protocol(v)))),
                Ok(Some(Ok(Some(m)))) => return Poll::Ready(Some(Ok(m))),
                Ok(Some(Ok(None))) => {}
            }
        }
    }

    /// One read into the scratch buffer, handed to [`Inbound::received`]; `None` at the end
    /// of the stream.
    fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Received>>> {
        SCRATCH_BUF.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut buf = ReadBuf::new(&mut scratch[..]);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
            let got = buf.filled();
            if got.is_empty() {
                return Poll::Ready(Ok(None));
            }
            Poll::Ready(Ok(Some(self.inbound.received(got))))
        })
    }
}

/// What the bytes of one read gave: a message, nothing yet, or a violation.
type Received = Result<Option<Incoming>, Violation>;

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    /// A real WebSocket client (tungstenite) against a `Socket` over an in-memory pipe.
    async fn pair() -> (
        Socket<tokio::io::DuplexStream>,
        tokio_tungstenite::WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (client, server) = tokio::io::duplex(1 << 20);
        let client =
            tokio_tungstenite::WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        (Socket::new(server, 1 << 20), client)
    }

    /// Messages of every size, sent back to back, come out whole and in order, and server
    /// frames of every size are read back by the client.
    #[tokio::test]
    async fn messages_cross_both_ways_whole_and_in_order() {
        let (mut server, mut client) = pair().await;
        let texts: Vec<String> = [0usize, 1, 125, 126, 5_000, 16_000, 16_385, 65_536, 200_000]
            .iter()
            .map(|&n| (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect())
            .collect();
        for t in &texts {
            client.feed(Message::Text(t.as_str().into())).await.unwrap();
        }
        client.flush().await.unwrap();
        for t in &texts {
            match server.next().await {
                Some(Ok(Incoming::Text(got))) => {
                    assert!(got.as_str() == t, "a message of {} bytes changed", t.len());
                }
                other => panic!("wanted {} bytes of text, got {other:?}", t.len()),
            }
        }
        assert!(
            server.inbound.held().is_empty(),
            "nothing is kept between messages"
        );
        assert!(!server.inbound.allocated());
        let mut frames = Frames::new();
        for t in &texts {
            frames.push_text(|out| out.extend_from_slice(t.as_bytes()));
        }
        server.write(&frames).await.unwrap();
        for t in &texts {
            match client.next().await {
                Some(Ok(Message::Text(got))) => assert!(got.as_str() == t),
                other => panic!("wanted {} bytes of text, got {other:?}", t.len()),
            }
        }
    }

    /// A ping is handed to the caller, a close ends the stream, and a client that breaks
    /// the protocol is named with its close code.
    #[tokio::test]
    async fn pings_closes_and_violations() {
        let (mut server, mut client) = pair().await;
        client
            .send(Message::Ping(b"hi".to_vec().into()))
            .await
            .unwrap();
        assert_eq!(
            server.next().await.unwrap().unwrap(),
            Incoming::Ping(b"hi".to_vec())
        );
        client
            .send(Message::Binary(vec![1, 2].into()))
            .await
            .unwrap();
        assert_eq!(server.next().await.unwrap().unwrap(), Incoming::Binary(2));
        client.close(None).await.unwrap();
        assert_eq!(server.next().await.unwrap().unwrap(), Incoming::Close(None));

        let (client, io) = tokio::io::duplex(1024);
        let mut server = Socket::new(io, 100);
        let mut raw = client;
        // An unmasked text frame: clients must mask.
        raw.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
        match server.next().await {
            Some(Err(ReadError::Protocol(v))) => assert_eq!(v.code, 1002),
            other => panic!("wanted a protocol error, got {other:?}"),
        }
        drop(raw);
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

//! A raw relay: the least a WebSocket relay on this stack (tokio + tungstenite) can do, as
//! the floor for the servers' CPU per relayed message.
//!
//! It speaks the PeerJS wire format so the same load can be pointed at it: a client
//! connects with `?id=ID`, gets `{"type":"OPEN"}`, and every text frame naming a `"dst"` is
//! forwarded unchanged to that client. Nothing else is parsed, checked or answered. Like
//! the rtcroom server, each connection is one task that writes what others queue for it
//! (bounded) and reads its own frames, with the same small buffers.
//!
//! With `ack`, every forwarded frame is also answered to its sender with a frame the size
//! of rtcroom's `respOffer` (`{"type":"ACK",...}`, which the bench's PeerJS client ignores):
//! the floor for a protocol that acknowledges each offer, as rtcroom's does.

use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Registry = Arc<Mutex<HashMap<String, mpsc::Sender<Utf8Bytes>>>>;

/// What the relay answers a sender with `ack`: as long as a typical `respOffer`.
const ACK: &str = r#"{"type":"ACK","remoteUid":"m000001","result":0,"desc":"success","subSessionId":"01KBENCH0000000000000000AC"}"#;

pub async fn serve(listen: std::net::SocketAddr, ack: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        listen.ip().is_loopback(),
        "the raw relay listens on loopback only"
    );
    // A backlog for bursts of connections: `TcpListener::bind` listens with 128, which a
    // join storm overflows (the kernel then drops SYNs, and clients retry after 1 s).
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(listen)?;
    let listener = socket.listen(4096)?;
    println!("listening on http://{}", listener.local_addr()?);
    let registry: Registry = Arc::default();
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(connection(tcp, registry.clone(), ack));
    }
}

fn query_id(req: &Request) -> Option<String> {
    let query = req.uri().query()?;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("id="))
        .map(str::to_owned)
}

async fn connection(tcp: TcpStream, registry: Registry, ack: bool) {
    let _ = tcp.set_nodelay(true);
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(256 * 1024))
        .max_frame_size(Some(256 * 1024));
    let id = Arc::new(Mutex::new(None));
    let seen = id.clone();
    // The callback's signature is tungstenite's; its error type is not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = move |req: &Request, resp: Response| {
        *seen.lock().unwrap_or_else(|e| e.into_inner()) = query_id(req);
        Ok(resp)
    };
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(config)).await
    else {
        return;
    };
    let Some(id) = id.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(256);
    registry
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), tx);
    if ws
        .send(Message::Text(r#"{"type":"OPEN"}"#.into()))
        .await
        .is_ok()
    {
        loop {
            tokio::select! {
                out = rx.recv() => match out {
                    Some(text) => if ws.send(Message::Text(text)).await.is_err() { break },
                    None => break,
                },
                incoming = ws.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(dst) = crate::wire::str_field(text.as_str(), "dst") {
                            let peer = registry.lock().unwrap_or_else(|e| e.into_inner()).get(dst).cloned();
                            if let Some(peer) = peer {
                                let _ = peer.try_send(text);
                                if ack && ws.send(Message::Text(ACK.into())).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
            }
        }
    }
    registry
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
}

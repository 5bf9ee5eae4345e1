//! TURN over TCP and TLS: client connections on a stream, presented to the `turn` crate as
//! one packet socket.
//!
//! The crate's server reads from packet sockets only. A [`StreamHub`] is such a socket for a
//! stream listener: every accepted connection gets a reader task that cuts the stream into
//! messages (RFC 8656: a STUN message is its 20-byte header plus the length in it; ChannelData
//! is its 4-byte header plus the length in it, padded to a multiple of 4 over a stream) and
//! hands each to the crate tagged with the connection's remote address, and a writer task that
//! writes what the crate sends to that address. So an allocation's 5-tuple is the connection,
//! as RFC 8656 has it, and its relay socket reaches peers over UDP as for a UDP client. When
//! the connection closes (either side, an error, the idle timeout), its allocation is deleted
//! at once (RFC 8656 §3.1: the allocation is bound to the connection's 5-tuple), rather than
//! lingering until its lifetime ends.
//!
//! Every queue is bounded: messages from all connections wait in one queue for the crate's
//! read loop (a full queue stops reading the connections, and TCP slows their senders down);
//! messages to one connection wait in its own queue, and when a client reads too slowly the
//! message is dropped as a congested link drops a datagram, and counted.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::conn::lock;
use crate::counters::{Counters, add};
use crate::relay::Relays;

/// The largest message read from a stream: the crate reads datagrams into a buffer of 1,500
/// bytes, and a browser's ChannelData and TURN requests fit in it. A connection that sends a
/// longer one is closed.
pub(crate) const MAX_MESSAGE: usize = 1500;

/// Messages from all connections of one listener waiting for the crate's read loop.
const INBOX: usize = 1024;

/// Messages waiting to be written to one connection (at 100 packets/s of media, over half a
/// second; the kernel's send buffer holds more).
const OUTBOX: usize = 64;

/// A connection must complete its TLS handshake and send its first message within this.
const FIRST_MESSAGE: Duration = Duration::from_secs(10);

/// A connection that sends nothing for this long is closed: a live allocation is refreshed
/// (and its permissions, every 5 minutes) well within it, and the crate's allocations last
/// at most an hour without a refresh.
const IDLE: Duration = Duration::from_secs(3600);

/// The length of the message that `head` (at least 4 bytes) starts, with its padding; `None`
/// when it is neither a STUN message nor ChannelData.
fn message_len(head: &[u8; 4]) -> Option<usize> {
    let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
    match head[0] >> 6 {
        // STUN: the length excludes the 20-byte header and is a multiple of 4.
        0 if length % 4 == 0 => Some(20 + length),
        // ChannelData (channel numbers 0x4000-0x7FFF): padded to 4 over a stream.
        1 => Some(4 + length.div_ceil(4) * 4),
        _ => None,
    }
}

/// Read one message into `buf`; `Ok(None)` at a clean end of the stream.
async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> io::Result<Option<()>> {
    let mut head = [0u8; 4];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = message_len(&head).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "neither a STUN message nor ChannelData",
        )
    })?;
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message longer than 1500 bytes",
        ));
    }
    buf.clear();
    buf.extend_from_slice(&head);
    buf.resize(len, 0);
    r.read_exact(&mut buf[4..]).await?;
    Ok(Some(()))
}

/// The connections of one stream listener, as one packet socket.
pub(crate) struct StreamHub {
    local_addr: SocketAddr,
    inbox: tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

/// A connection's number and the queue to its writer.
type Outbox = (u64, mpsc::Sender<Vec<u8>>);

/// What the accept loop, the connections and the hub share.
struct Shared {
    /// The queue to each connection's writer, by its remote address, with the connection's
    /// number (so that a closing connection removes only its own entry).
    outboxes: Mutex<HashMap<SocketAddr, Outbox>>,
    counters: Arc<Counters>,
    /// The relays of this listener's allocations, by connection: a connection's allocation
    /// goes with it.
    relays: Arc<Relays>,
    open: AtomicUsize,
    next_id: AtomicU64,
}

impl StreamHub {
    /// Accept connections on `listener` (over TLS when `tls` is set), at most
    /// `max_connections` at a time; the tasks end when the hub is closed.
    pub fn start(
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        max_connections: usize,
        counters: Arc<Counters>,
        relays: Arc<Relays>,
    ) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (inbox_tx, inbox) = mpsc::channel(INBOX);
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            outboxes: Mutex::new(HashMap::new()),
            counters,
            relays,
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
        });
        tokio::spawn(accept_loop(
            listener,
            tls,
            max_connections,
            Arc::clone(&shared),
            inbox_tx,
            stopped,
        ));
        Ok(Self {
            local_addr,
            inbox: tokio::sync::Mutex::new(inbox),
            shared,
            stop,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next message of any connection, with the connection's remote address.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut inbox = self.inbox.lock().await;
        let (msg, from) = inbox.recv().await.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotConnected, "the TURN listener is closed")
        })?;
        let n = msg.len().min(buf.len());
        buf[..n].copy_from_slice(&msg[..n]);
        Ok((n, from))
    }

    /// Queue a message to the connection from `to`.
    pub fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        let outbox = lock(&self.shared.outboxes)
            .get(&to)
            .map(|(_, tx)| tx.clone());
        let Some(outbox) = outbox else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("no TURN connection from {to}"),
            ));
        };
        match outbox.try_send(buf.to_vec()) {
            Ok(()) => Ok(buf.len()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                add(&self.shared.counters.stream_dropped_packets, 1);
                Ok(buf.len())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("the TURN connection from {to} is closed"),
            )),
        }
    }
}

impl Drop for StreamHub {
    /// Stop accepting and close every connection.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
    shared: Arc<Shared>,
    inbox: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.changed() => return,
        };
        let Ok((stream, from)) = accepted else {
            // Out of file descriptors and the like: the next accept may succeed.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if shared
            .open
            .fetch_update(Relaxed, Relaxed, |n| (n < max_connections).then_some(n + 1))
            .is_err()
        {
            add(&shared.counters.stream_connections_refused, 1);
            continue;
        }
        add(&shared.counters.stream_connections_total, 1);
        let _ = stream.set_nodelay(true);
        let id = shared.next_id.fetch_add(1, Relaxed);
        let shared = Arc::clone(&shared);
        let inbox = inbox.clone();
        let mut stopped = stopped.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = connection(stream, from, id, tls, &shared, inbox) => {}
                _ = stopped.changed() => {}
            }
            let mut outboxes = lock(&shared.outboxes);
            if outboxes.get(&from).is_some_and(|(owner, _)| *owner == id) {
                outboxes.remove(&from);
                // Only this connection's allocation: a later connection from the same
                // address owns the entries now.
                shared.relays.close(from);
            }
            drop(outboxes);
            shared.open.fetch_sub(1, Relaxed);
        });
    }
}

/// Serve one connection until it ends: its TLS handshake when the listener does TLS, then
/// its messages.
async fn connection(
    stream: TcpStream,
    from: SocketAddr,
    id: u64,
    tls: Option<TlsAcceptor>,
    shared: &Shared,
    inbox: mpsc::Sender<(Vec<u8>, SocketAddr)>,
) {
    match tls {
        None => serve(stream, from, id, shared, inbox).await,
        Some(tls) => {
            if let Ok(Ok(stream)) = tokio::time::timeout(FIRST_MESSAGE, tls.accept(stream)).await {
                serve(stream, from, id, shared, inbox).await;
            }
        }
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    from: SocketAddr,
    id: u64,
    shared: &Shared,
    inbox: mpsc::Sender<(Vec<u8>, SocketAddr)>,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (outbox, mut queued) = mpsc::channel::<Vec<u8>>(OUTBOX);
    lock(&shared.outboxes).insert(from, (id, outbox));
    let write = async move {
        while let Some(msg) = queued.recv().await {
            if writer.write_all(&msg).await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    };
    let read = async move {
        let mut buf = Vec::with_capacity(MAX_MESSAGE);
        let mut wait = FIRST_MESSAGE;
        loop {
            match tokio::time::timeout(wait, read_message(&mut reader, &mut buf)).await {
                Ok(Ok(Some(()))) => {}
                // The end, an error, a message that is not TURN, or silence.
                _ => return,
            }
            wait = IDLE;
            if inbox.send((buf.clone(), from)).await.is_err() {
                return;
            }
        }
    };
    // Either half ending ends the connection: a client that stopped reading is gone too.
    tokio::select! {
        () = read => {}
        () = write => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_lengths() {
        // A STUN header announcing 8 bytes of attributes.
        assert_eq!(message_len(&[0x00, 0x01, 0x00, 0x08]), Some(28));
        // A STUN length must be a multiple of 4.
        assert_eq!(message_len(&[0x00, 0x01, 0x00, 0x07]), None);
        // ChannelData of 5 bytes is padded to 8 over a stream.
        assert_eq!(message_len(&[0x40, 0x00, 0x00, 0x05]), Some(12));
        assert_eq!(message_len(&[0x7f, 0xff, 0x00, 0x08]), Some(12));
        assert_eq!(message_len(&[0x40, 0x00, 0x00, 0x00]), Some(4));
        // Neither: a first byte with the top bit set (a TLS record at a TCP listener would
        // be taken for STUN, and then fail its magic cookie in the crate).
        assert_eq!(message_len(&[0xc0, 0x00, 0x00, 0x04]), None);
        assert_eq!(message_len(&[0x80, 0x00, 0x00, 0x04]), None);
    }

    #[tokio::test]
    async fn messages_are_cut_from_a_stream() {
        let mut stream: &[u8] = &[
            0x00, 0x01, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
            19, 20, 21, 22, 23, 24, // STUN: header and 8 bytes
            0x40, 0x01, 0x00, 0x01, 0xaa, 0, 0, 0, // ChannelData, 1 byte padded to 4
            0x40, 0x01, 0x00, // cut off
        ];
        let mut buf = Vec::new();
        assert!(matches!(
            read_message(&mut stream, &mut buf).await,
            Ok(Some(()))
        ));
        assert_eq!(buf.len(), 28);
        assert!(matches!(
            read_message(&mut stream, &mut buf).await,
            Ok(Some(()))
        ));
        assert_eq!(buf, [0x40, 0x01, 0x00, 0x01, 0xaa, 0, 0, 0]);
        // A stream that ends inside a header is the end.
        assert!(matches!(
            read_message(&mut stream, &mut buf).await,
            Ok(None)
        ));
        // One that ends inside a message is an error.
        let mut cut: &[u8] = &[0x40, 0x01, 0x00, 0x08, 1, 2];
        assert!(read_message(&mut cut, &mut buf).await.is_err());
        // A message longer than the crate reads is refused.
        let mut long: &[u8] = &[0x00, 0x01, 0x05, 0xdc, 0, 0, 0, 0];
        assert!(read_message(&mut long, &mut buf).await.is_err());
    }
}

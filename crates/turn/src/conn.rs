//! The listening sockets the `turn` crate reads clients from, wrapped to add what it lacks:
//! byte and packet counters, the limits of the `guard` module, and the ChannelData fast path
//! of the `relay` module.
//!
//! The `turn` crate has no hooks for policy, so the policy sits at the two seams it offers:
//!
//! - The listening sockets (UDP, and the TCP and TLS listeners of the `stream` module, each
//!   one packet socket to the crate), whose `recv_from` the crate's read loop calls for every
//!   datagram or framed message.
//!   The nonce gate (`nonce` module) and then the guard see each request first; what they
//!   answer themselves never reaches the crate. ChannelData on a channel the fast path knows
//!   is relayed here and never reaches the crate either.
//! - The relay sockets, which its `RelayAddressGenerator` hands out (`relay` module). Every
//!   datagram to a peer passes `send_to` and every datagram from a peer passes `recv_from` of
//!   that socket, so a refused peer is unreachable both ways (a Send indication carries no
//!   answer: it is dropped and counted in `peer_denied_packets`), and the bandwidth limit
//!   drops there.
//!
//! The per-user quota and the fast path need to know whose allocation a relay socket serves,
//! which `allocate_conn` is not told. The crate's read loop handles one request at a time (it
//! awaits each before it reads the next datagram), so the client and uid of the Allocate the
//! guard passed last are those of any relay socket allocated before the next datagram is
//! read: the listening socket notes them in its [`Allocating`] slot, the allocator of the same
//! listener reads them there (each listener has its own read loop, so each has its own slot).
//! In the same way the answer the crate sends to a ChannelBind comes before the next request
//! is read, so the listening socket pairs a success response with the ChannelBind it passed
//! last, by transaction ID and client.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use webrtc_util::Conn;

use crate::counters::{Counters, add};
use crate::guard::{Bind, Guard, Refusal, Screen};
use crate::nonce::{NonceGate, Verdict, maybe_stun};
use crate::relay::{Relays, channel_header, padding};
use crate::stream::StreamHub;

type UtilResult<T> = Result<T, webrtc_util::Error>;

/// Locks a mutex whose data stays consistent across a panic elsewhere: every critical section
/// here is a single insert, update or swap.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Live allocations per user (uid), shared by the listening sockets (which judge quotas) and
/// the relay sockets (which hold them).
#[derive(Debug, Default)]
pub(crate) struct UserTable {
    live: Mutex<HashMap<String, usize>>,
}

/// The last Allocate one listener passed to the crate: whenever the crate allocates for that
/// listener, that is the request it is handling (see the module docs). Each listener has its
/// own read loop, so each has its own.
pub(crate) type Allocating = Arc<Mutex<AllocateRequest>>;

/// Who sent an Allocate.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllocateRequest {
    /// The client's address on the listener.
    pub client: Option<SocketAddr>,
    /// The uid of its REST username; `None` if it was not authenticated.
    pub uid: Option<String>,
}

impl UserTable {
    pub fn acquire(&self, uid: &str) {
        *lock(&self.live).entry(uid.to_owned()).or_default() += 1;
    }

    pub fn release(&self, uid: &str) {
        let mut live = lock(&self.live);
        if let Some(n) = live.get_mut(uid) {
            *n -= 1;
            if *n == 0 {
                live.remove(uid);
            }
        }
    }

    /// The live allocations of one user.
    pub fn live_of(&self, uid: &str) -> usize {
        lock(&self.live).get(uid).copied().unwrap_or(0)
    }
}

/// Whether a datagram the crate sends to a client is a STUN error response, the only kind
/// that carries the crate's nonces (relayed ChannelData skips the gate's lock).
pub(crate) fn may_carry_nonce(datagram: &[u8]) -> bool {
    matches!(datagram, [b0, b1, ..] if maybe_stun(datagram) && b0 & 0x01 != 0 && b1 & 0x10 != 0)
}

/// Whether a datagram the crate sends is a ChannelBind success response.
fn is_channel_bind_success(datagram: &[u8]) -> bool {
    datagram.len() >= 20 && datagram[..2] == [0x01, 0x09]
}

/// Where clients' messages arrive: the UDP socket, or the connections of a TCP or TLS
/// listener.
pub(crate) enum Listener {
    Udp(UdpSocket),
    Stream(StreamHub),
}

impl Listener {
    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            Self::Udp(s) => s.recv_from(buf).await,
            Self::Stream(s) => s.recv_from(buf).await,
        }
    }

    async fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        match self {
            Self::Udp(s) => s.send_to(buf, to).await,
            Self::Stream(s) => s.send_to(buf, to),
        }
    }

    /// ChannelData of `number` carrying `data`, padded: over UDP one `sendmsg` of the header,
    /// the data and the padding, so the data is not copied (nor a buffer kept for it).
    async fn send_channel_data(
        &self,
        number: u16,
        data: &[u8],
        to: SocketAddr,
    ) -> io::Result<usize> {
        let head = channel_header(number, data.len());
        let pad = padding(data.len());
        match self {
            Self::Udp(s) => {
                let to = socket2::SockAddr::from(to);
                let parts = [IoSlice::new(&head), IoSlice::new(data), IoSlice::new(pad)];
                s.async_io(Interest::WRITABLE, || {
                    socket2::SockRef::from(s).send_to_vectored(&parts, &to)
                })
                .await
            }
            Self::Stream(s) => s.send_to(&[&head[..], data, pad].concat(), to),
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Self::Udp(s) => s.local_addr(),
            Self::Stream(s) => Ok(s.local_addr()),
        }
    }
}

/// A listener: counts client traffic and puts the nonce gate and the guard in front of the
/// crate.
pub(crate) struct ClientConn {
    pub socket: Listener,
    pub counters: Arc<Counters>,
    pub realm: String,
    pub gate: Mutex<NonceGate>,
    pub guard: Guard,
    pub users: Arc<UserTable>,
    pub allocating: Allocating,
    /// The relays of this listener's allocations, for the fast path.
    pub relays: Arc<Relays>,
    /// The last ChannelBind passed to the crate, and from whom, until the crate answers it.
    pub binding: Mutex<Option<(SocketAddr, Bind)>>,
    /// The listening address: the crate asks for it with every message it handles.
    pub local: SocketAddr,
}

impl ClientConn {
    fn sent(&self, n: usize, datagram: &[u8], to: SocketAddr) {
        add(&self.counters.client_tx_packets, 1);
        add(&self.counters.client_tx_bytes, n);
        if may_carry_nonce(datagram) && self.gate().on_response(Instant::now(), datagram) {
            add(&self.counters.nonces_issued, 1);
        }
        if is_channel_bind_success(datagram) {
            self.bound(datagram, to);
        }
    }

    /// The crate answered a ChannelBind with success: if it is the one passed last, the
    /// channel is bound for the fast path too.
    fn bound(&self, response: &[u8], to: SocketAddr) {
        let pending = lock(&self.binding).take();
        if let Some((client, bind)) = pending {
            if client == to && response.get(8..20) == Some(&bind.transaction[..]) {
                self.relays
                    .bind(client, bind.number, bind.peer, Instant::now());
            }
        }
    }

    /// Data from a peer, as ChannelData on channel `number`, to the client of an allocation
    /// (the fast path).
    pub async fn relay_to_client(&self, number: u16, data: &[u8], client: SocketAddr) {
        // A failed send is a lost datagram, as on the crate's path (which only logs it).
        if let Ok(n) = self.socket.send_channel_data(number, data, client).await {
            add(&self.counters.client_tx_packets, 1);
            add(&self.counters.client_tx_bytes, n);
        }
    }

    fn gate(&self) -> MutexGuard<'_, NonceGate> {
        lock(&self.gate)
    }

    /// Judge a request that passed the nonce gate: the reply to send instead of passing it on.
    fn screen(&self, datagram: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        // The one clock read of the guard: the shell is the only place that may read it.
        let now_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let screen = {
            let live = lock(&self.users.live);
            self.guard.screen(datagram, now_secs, &live)
        };
        let (refusal, reply) = match screen {
            Screen::Pass => return None,
            Screen::Allocate(uid) => {
                *lock(&self.allocating) = AllocateRequest {
                    client: Some(from),
                    uid,
                };
                return None;
            }
            Screen::ChannelBind(bind) => {
                *lock(&self.binding) = Some((from, bind));
                return None;
            }
            Screen::Refuse(refusal, reply) => (refusal, reply),
        };
        let counter = match refusal {
            Refusal::Peer => &self.counters.permissions_refused,
            Refusal::UserQuota => &self.counters.allocations_refused_user_quota,
            Refusal::CredentialTooLong => &self.counters.credentials_too_long,
        };
        add(counter, 1);
        Some(reply)
    }

    async fn answer(&self, reply: &[u8], to: SocketAddr) {
        // A failed send is a lost datagram like any other: the client retransmits.
        if let Ok(sent) = self.socket.send_to(reply, to).await {
            add(&self.counters.client_tx_packets, 1);
            add(&self.counters.client_tx_bytes, sent);
        }
    }
}

#[async_trait]
impl Conn for ClientConn {
    async fn connect(&self, _addr: SocketAddr) -> UtilResult<()> {
        // The crate never connects its listening sockets.
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "listening sockets stay unconnected",
        )
        .into())
    }

    async fn recv(&self, buf: &mut [u8]) -> UtilResult<usize> {
        // The listening socket is never connected; `recv_from` is the one way in, so that
        // every datagram passes the gate.
        self.recv_from(buf).await.map(|(n, _)| n)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> UtilResult<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.socket.recv_from(buf).await?;
            add(&self.counters.client_rx_packets, 1);
            add(&self.counters.client_rx_bytes, n);
            if !maybe_stun(&buf[..n]) {
                if self.relays.forward(from, &buf[..n]).await {
                    continue;
                }
                return Ok((n, from));
            }
            let verdict = self
                .gate()
                .on_request(Instant::now(), &buf[..n], &self.realm);
            match verdict {
                Verdict::Pass => match self.screen(&buf[..n], from) {
                    None => return Ok((n, from)),
                    Some(reply) => self.answer(&reply, from).await,
                },
                Verdict::Drop => {}
                Verdict::Answer(reply) => {
                    add(&self.counters.challenges_answered, 1);
                    self.answer(&reply, from).await;
                }
            }
        }
    }

    async fn send(&self, _buf: &[u8]) -> UtilResult<usize> {
        Err(io::Error::new(
            io::ErrorKind::NotConnected,
            "listening sockets send with send_to",
        )
        .into())
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> UtilResult<usize> {
        let n = self.socket.send_to(buf, target).await?;
        self.sent(n, buf, target);
        Ok(n)
    }

    fn local_addr(&self) -> UtilResult<SocketAddr> {
        Ok(self.local)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> UtilResult<()> {
        // The crate closes the listening socket with every allocation it closes: the listener
        // stays, and a stream listener stops when the last reference to it is dropped.
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

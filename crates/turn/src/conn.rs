//! The sockets the `turn` crate relays through, wrapped to add what it lacks: byte and packet
//! counters, the limits of the `guard` module, and the cap on live allocations.
//!
//! The `turn` crate has no hooks for policy, so the policy sits at the two seams it offers:
//!
//! - The listening sockets (UDP, and the TCP and TLS listeners of the `stream` module, each
//!   one packet socket to the crate), whose `recv_from` the crate's read loop calls for every
//!   datagram or framed message.
//!   The nonce gate (`nonce` module) and then the guard see each request first; what they
//!   answer themselves never reaches the crate.
//! - The relay sockets, which its `RelayAddressGenerator` hands out. Every datagram to a peer
//!   passes `send_to` and every datagram from a peer passes `recv_from` of that socket, so a
//!   refused peer is unreachable both ways (a Send indication carries no answer: it is dropped
//!   and counted in `peer_denied_packets`), and the bandwidth limit drops there.
//!
//! The per-user quota needs to know whose allocation a relay socket serves, which
//! `allocate_conn` is not told. The crate's read loop handles one request at a time (it awaits
//! each before it reads the next datagram), so the uid of the Allocate the guard passed last
//! is the uid of any relay socket allocated before the next datagram is read: the listening
//! socket notes it in its [`Allocating`] slot, the allocator of the same listener reads it
//! there (each listener has its own read loop, so each has its own slot).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use turn::relay::RelayAddressGenerator;
use webrtc_util::Conn;

use crate::config::PortRange;
use crate::counters::{Counters, add};
use crate::guard::{Guard, PeerPolicy, Refusal, Screen, TokenBucket};
use crate::nonce::{NonceGate, Verdict, maybe_stun};
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

/// The uid of the last Allocate one listener passed to the crate (None if it was not
/// authenticated): whenever the crate allocates for that listener, that is the request it is
/// handling (see the module docs). Each listener has its own read loop, so each has its own.
pub(crate) type Allocating = Arc<Mutex<Option<String>>>;

impl UserTable {
    fn acquire(&self, uid: &str) {
        *lock(&self.live).entry(uid.to_owned()).or_default() += 1;
    }

    fn release(&self, uid: &str) {
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

    fn local_addr(&self) -> io::Result<SocketAddr> {
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
}

impl ClientConn {
    fn sent(&self, n: usize, datagram: &[u8]) {
        add(&self.counters.client_tx_packets, 1);
        add(&self.counters.client_tx_bytes, n);
        if may_carry_nonce(datagram) && self.gate().on_response(Instant::now(), datagram) {
            add(&self.counters.nonces_issued, 1);
        }
    }

    fn gate(&self) -> MutexGuard<'_, NonceGate> {
        lock(&self.gate)
    }

    /// Judge a request that passed the nonce gate: the reply to send instead of passing it on.
    fn screen(&self, datagram: &[u8]) -> Option<Vec<u8>> {
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
                *lock(&self.allocating) = uid;
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
                return Ok((n, from));
            }
            let verdict = self
                .gate()
                .on_request(Instant::now(), &buf[..n], &self.realm);
            match verdict {
                Verdict::Pass => match self.screen(&buf[..n]) {
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
        self.sent(n, buf);
        Ok(n)
    }

    fn local_addr(&self) -> UtilResult<SocketAddr> {
        Ok(self.socket.local_addr()?)
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

/// One live allocation's claim on `max_allocations` and on its user's quota, given back
/// exactly once: when the allocation is closed, or when its socket is dropped without a close
/// (the `turn` crate binds and drops a socket to probe for an even port).
struct Slot {
    counters: Arc<Counters>,
    user: Option<(Arc<UserTable>, String)>,
    released: AtomicBool,
}

impl Slot {
    fn acquire(
        counters: &Arc<Counters>,
        max: u64,
        users: &Arc<UserTable>,
        uid: Option<String>,
    ) -> Option<Self> {
        counters
            .allocations_active
            .fetch_update(AcqRel, Relaxed, |n| (n < max).then_some(n + 1))
            .ok()?;
        if let Some(uid) = &uid {
            users.acquire(uid);
        }
        Some(Self {
            counters: Arc::clone(counters),
            user: uid.map(|uid| (Arc::clone(users), uid)),
            released: AtomicBool::new(false),
        })
    }

    fn release(&self) {
        if !self.released.swap(true, AcqRel) {
            self.counters.allocations_active.fetch_sub(1, AcqRel);
            if let Some((users, uid)) = &self.user {
                users.release(uid);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
    }
}

/// A relay socket: filters, limits and counts peer traffic, holds the allocation's slot.
struct RelayConn {
    socket: UdpSocket,
    peers: Arc<PeerPolicy>,
    counters: Arc<Counters>,
    slot: Slot,
    /// The bandwidth limits towards peers and from them (`None`: no limit).
    to_peers: Option<Mutex<TokenBucket>>,
    from_peers: Option<Mutex<TokenBucket>>,
    /// Whether an allocation's reader has started on this socket. The `turn` crate also binds
    /// sockets only to probe for an even port and drops them unread; counting allocations at
    /// the first read leaves those out of `allocations_total`.
    started: AtomicBool,
    closed: AtomicBool,
    on_close: Notify,
}

impl RelayConn {
    fn closed_error() -> webrtc_util::Error {
        io::Error::new(io::ErrorKind::NotConnected, "relay socket closed").into()
    }

    /// Whether a datagram of `n` bytes fits the bandwidth limit of its direction; counts it
    /// if not.
    fn admit(&self, bucket: Option<&Mutex<TokenBucket>>, n: usize) -> bool {
        let Some(bucket) = bucket else { return true };
        if lock(bucket).admit(Instant::now(), n) {
            return true;
        }
        add(&self.counters.bandwidth_dropped_packets, 1);
        add(&self.counters.bandwidth_dropped_bytes, n);
        false
    }
}

#[async_trait]
impl Conn for RelayConn {
    async fn connect(&self, addr: SocketAddr) -> UtilResult<()> {
        Ok(self.socket.connect(addr).await?)
    }

    async fn recv(&self, buf: &mut [u8]) -> UtilResult<usize> {
        self.recv_from(buf).await.map(|(n, _)| n)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> UtilResult<(usize, SocketAddr)> {
        if !self.started.swap(true, Relaxed) {
            add(&self.counters.allocations_total, 1);
        }
        loop {
            // Registered before the flag is read, so a close between the two still wakes us:
            // the allocation's reader task must end with the allocation, not when the `turn`
            // crate drops its last reference.
            let closing = self.on_close.notified();
            if self.closed.load(Relaxed) {
                return Err(Self::closed_error());
            }
            let (n, from) = tokio::select! {
                r = self.socket.recv_from(buf) => r?,
                () = closing => return Err(Self::closed_error()),
            };
            if !self.peers.allows(from) {
                add(&self.counters.peer_denied_packets, 1);
                continue;
            }
            if !self.admit(self.from_peers.as_ref(), n) {
                continue;
            }
            add(&self.counters.peer_rx_packets, 1);
            add(&self.counters.peer_rx_bytes, n);
            return Ok((n, from));
        }
    }

    async fn send(&self, _buf: &[u8]) -> UtilResult<usize> {
        // Relay sockets are never connected: every datagram names its peer.
        Err(io::Error::new(
            io::ErrorKind::NotConnected,
            "relay sockets send with send_to",
        )
        .into())
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> UtilResult<usize> {
        if !self.peers.allows(target) {
            // Report the datagram as sent, as a firewall would: an error here would only be
            // logged by the `turn` crate, once per datagram.
            add(&self.counters.peer_denied_packets, 1);
            return Ok(buf.len());
        }
        if !self.admit(self.to_peers.as_ref(), buf.len()) {
            // Dropped as a congested link drops: reported as sent.
            return Ok(buf.len());
        }
        let n = self.socket.send_to(buf, target).await?;
        add(&self.counters.peer_tx_packets, 1);
        add(&self.counters.peer_tx_bytes, n);
        Ok(n)
    }

    fn local_addr(&self) -> UtilResult<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> UtilResult<()> {
        self.closed.store(true, Relaxed);
        self.on_close.notify_waiters();
        self.slot.release();
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// Hands out relay sockets in the configured port range, at most `max_allocations` at a time.
pub(crate) struct RelayAllocator {
    pub bind_ip: IpAddr,
    pub relay_ip: IpAddr,
    pub ports: PortRange,
    pub peers: Arc<PeerPolicy>,
    pub max_allocations: u64,
    /// Per direction; 0: no limit.
    pub bytes_per_sec: u64,
    pub counters: Arc<Counters>,
    pub users: Arc<UserTable>,
    /// Shared with the listener this allocator serves.
    pub allocating: Allocating,
}

impl RelayAllocator {
    async fn bind(&self, requested_port: u16) -> io::Result<UdpSocket> {
        if requested_port != 0 {
            return UdpSocket::bind((self.bind_ip, requested_port)).await;
        }
        // A random start spreads allocations over the range (an off-path attacker cannot
        // guess the next relay port); walking on from it finds a free port whenever the range
        // has one.
        let len = self.ports.len();
        let start =
            (std::collections::hash_map::RandomState::new().hash_one(()) % u64::from(len)) as u32;
        let mut last = io::Error::new(io::ErrorKind::AddrInUse, "relay port range exhausted");
        for i in 0..len {
            let port = u32::from(self.ports.min) + (start + i) % len;
            let port = u16::try_from(port).expect("the range ends at a u16");
            match UdpSocket::bind((self.bind_ip, port)).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

#[async_trait]
impl RelayAddressGenerator for RelayAllocator {
    fn validate(&self) -> Result<(), turn::Error> {
        Ok(())
    }

    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        if use_ipv4 != self.bind_ip.is_ipv4() {
            return Err(turn::Error::Other(
                "requested address family is not served".into(),
            ));
        }
        let uid = lock(&self.allocating).clone();
        let Some(slot) = Slot::acquire(&self.counters, self.max_allocations, &self.users, uid)
        else {
            add(&self.counters.allocations_refused, 1);
            return Err(turn::Error::Other(format!(
                "{} allocations are live, the configured maximum",
                self.max_allocations
            )));
        };
        let socket = match self.bind(requested_port).await {
            Ok(s) => s,
            Err(e) => {
                add(&self.counters.allocations_refused, 1);
                return Err(e.into());
            }
        };
        let relay_addr = SocketAddr::new(self.relay_ip, socket.local_addr()?.port());
        let now = Instant::now();
        let bucket = || {
            (self.bytes_per_sec > 0).then(|| Mutex::new(TokenBucket::new(self.bytes_per_sec, now)))
        };
        let conn = RelayConn {
            socket,
            peers: Arc::clone(&self.peers),
            counters: Arc::clone(&self.counters),
            slot,
            to_peers: bucket(),
            from_peers: bucket(),
            started: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            on_close: Notify::new(),
        };
        Ok((Arc::new(conn), relay_addr))
    }
}

//! Relay sockets, and the ChannelData fast path.
//!
//! The `turn` crate hands out relay sockets through its `RelayAddressGenerator`; ours
//! ([`RelayConn`]) filter, limit and count every datagram to and from peers, and hold the
//! allocation's claim on the quotas ([`Slot`]).
//!
//! **The fast path.** The crate relays each ChannelData message through two or three tokio
//! Mutexes, a copy into a fresh vector (two on the way to the client), a string made of the
//! peer's IP, and a `getsockname` of the listening socket: about a fifth more CPU per relayed
//! datagram than coturn spends (docs/benchmarks.md). Calls relay their media over channels,
//! so this module relays ChannelData itself, both ways, for the channels the crate has bound:
//!
//! - The listening socket notes each authenticated ChannelBind the guard passes, and when the
//!   crate answers it with a success response, binds the channel in the allocation's
//!   [`Relay`] here too ([`Relays::bind`]), for the crate's channel lifetime. A refresh
//!   renews it; the crate refuses a channel number bound to another peer, and then nothing is
//!   bound here either.
//! - ChannelData from a client on a channel bound here goes straight out of the relay socket
//!   ([`Relays::forward`]); a datagram from a peer that a channel is bound to goes straight to
//!   the client as ChannelData, framed in place ([`RelayConn::recv_from`]). The peer policy, the
//!   bandwidth limit and the counters apply as on the crate's path.
//! - Everything else (Send and Data indications, a channel not bound here) takes the crate's
//!   path, which treats it as before.
//!
//! The crate ends an allocation by closing its relay socket (expiry, a Refresh of lifetime 0,
//! shutdown), which takes it out of the table here. The table also serves the TCP and TLS
//! listeners: when a client's connection closes, [`Relays::close`] closes the relay socket of
//! its allocation, and the crate's reader of that socket deletes the allocation (RFC 8656
//! §3.1 and RFC 6062: over TCP and TLS an allocation lives as long as its connection).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use turn::relay::RelayAddressGenerator;
use webrtc_util::Conn;

use crate::config::PortRange;
use crate::conn::{Allocating, ClientConn, UserTable, lock};
use crate::counters::{Counters, add};
use crate::guard::{PeerPolicy, TokenBucket};

type UtilResult<T> = Result<T, webrtc_util::Error>;

/// How long a channel binding lasts without a refresh: the crate's channel lifetime, which
/// `server.rs` leaves at its default (RFC 8656 §12: 10 minutes).
pub(crate) const CHANNEL_LIFETIME: Duration = turn::proto::lifetime::DEFAULT_LIFETIME;

/// A ChannelData message (RFC 8656 §12.4): its channel number and its data, or `None` when
/// `datagram` is not one (a channel number outside 0x4000–0x7FFF, a length beyond the end).
pub(crate) fn channel_data(datagram: &[u8]) -> Option<(u16, &[u8])> {
    let [a, b, c, d, rest @ ..] = datagram else {
        return None;
    };
    let number = u16::from_be_bytes([*a, *b]);
    let len = usize::from(u16::from_be_bytes([*c, *d]));
    ((0x4000..=0x7fff).contains(&number) && len <= rest.len()).then(|| (number, &rest[..len]))
}

/// The ChannelData header for `len` bytes of data on channel `number`.
pub(crate) fn channel_header(number: u16, len: usize) -> [u8; 4] {
    let [a, b] = number.to_be_bytes();
    let [c, d] = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
    [a, b, c, d]
}

/// The zero bytes that pad `len` bytes of ChannelData to a multiple of 4: required over TCP
/// and TLS, and what the crate sends over UDP too.
pub(crate) fn padding(len: usize) -> &'static [u8] {
    &[0; 3][..len.next_multiple_of(4) - len]
}

/// One channel binding, as the crate confirmed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Channel {
    number: u16,
    peer: SocketAddr,
    expires: Instant,
}

/// The channel bindings of one allocation (a browser binds one or two): a short list.
#[derive(Debug, Default)]
pub(crate) struct Channels(Vec<Channel>);

impl Channels {
    /// Bind (or refresh) `number` to `peer` at `now`. The crate has checked that neither is
    /// bound otherwise; a binding that did get replaced is replaced here too.
    pub fn bind(&mut self, number: u16, peer: SocketAddr, now: Instant) {
        self.0
            .retain(|c| c.expires > now && c.number != number && c.peer != peer);
        self.0.push(Channel {
            number,
            peer,
            expires: now + CHANNEL_LIFETIME,
        });
    }

    /// The peer of a live channel.
    pub fn peer_of(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        self.0
            .iter()
            .find(|c| c.number == number && c.expires > now)
            .map(|c| c.peer)
    }

    /// The number of the live channel bound to `peer`.
    pub fn number_of(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        self.0
            .iter()
            .find(|c| c.peer == peer && c.expires > now)
            .map(|c| c.number)
    }
}

/// What the relay socket of one allocation shares with the listener's fast path.
pub(crate) struct Relay {
    socket: UdpSocket,
    peers: Arc<PeerPolicy>,
    counters: Arc<Counters>,
    /// The bandwidth limits towards peers and from them (`None`: no limit).
    to_peers: Option<Mutex<TokenBucket>>,
    from_peers: Option<Mutex<TokenBucket>>,
    channels: Mutex<Channels>,
    closed: AtomicBool,
    on_close: Notify,
}

impl Relay {
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

    /// Send `data` to `peer` if the policy and the bandwidth limit let it pass. A datagram
    /// they drop is reported as sent, as a firewall or a congested link would drop it (an
    /// error would only be logged by the crate, once per datagram).
    async fn send_to_peer(&self, data: &[u8], peer: SocketAddr) -> io::Result<usize> {
        if !self.peers.allows(peer) {
            add(&self.counters.peer_denied_packets, 1);
            return Ok(data.len());
        }
        if !self.admit(self.to_peers.as_ref(), data.len()) {
            return Ok(data.len());
        }
        let n = self.socket.send_to(data, peer).await?;
        add(&self.counters.peer_tx_packets, 1);
        add(&self.counters.peer_tx_bytes, n);
        Ok(n)
    }

    fn close(&self) {
        self.closed.store(true, Relaxed);
        self.on_close.notify_waiters();
    }
}

/// The relays of one listener's allocations, by the client address of each (its 5-tuple
/// on that listener).
#[derive(Default)]
pub(crate) struct Relays(Mutex<HashMap<SocketAddr, Arc<Relay>>>);

impl Relays {
    fn get(&self, client: SocketAddr) -> Option<Arc<Relay>> {
        lock(&self.0).get(&client).cloned()
    }

    fn insert(&self, client: SocketAddr, relay: &Arc<Relay>) {
        lock(&self.0).insert(client, Arc::clone(relay));
    }

    /// Forget `relay`, if it is still the one of `client`.
    fn remove(&self, client: SocketAddr, relay: &Arc<Relay>) {
        if let Entry::Occupied(e) = lock(&self.0).entry(client) {
            if Arc::ptr_eq(e.get(), relay) {
                e.remove();
            }
        }
    }

    /// The crate bound `number` to `peer` on the allocation of `client`.
    pub fn bind(&self, client: SocketAddr, number: u16, peer: SocketAddr, now: Instant) {
        if let Some(relay) = self.get(client) {
            lock(&relay.channels).bind(number, peer, now);
        }
    }

    /// The connection of `client` closed: close its allocation's relay socket, which makes
    /// the crate delete the allocation.
    pub fn close(&self, client: SocketAddr) {
        if let Some(relay) = lock(&self.0).remove(&client) {
            relay.close();
        }
    }

    /// Relay ChannelData from `client` on a channel bound here; false when it is the crate's
    /// to handle (not ChannelData, no allocation, a channel not bound here).
    pub async fn forward(&self, client: SocketAddr, datagram: &[u8]) -> bool {
        let Some((number, data)) = channel_data(datagram) else {
            return false;
        };
        let Some(relay) = self.get(client) else {
            return false;
        };
        let Some(peer) = lock(&relay.channels).peer_of(number, Instant::now()) else {
            return false;
        };
        // A failed send is a lost datagram, as on the crate's path (which only logs it).
        let _ = relay.send_to_peer(data, peer).await;
        true
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

/// A relay socket as the crate sees it: its [`Relay`], the listener and client it serves,
/// and the allocation's slot.
struct RelayConn {
    relay: Arc<Relay>,
    listener: Arc<ClientConn>,
    /// The client's address on the listener, when known (the fast path needs it).
    client: Option<SocketAddr>,
    slot: Slot,
    /// Whether an allocation's reader has started on this socket. The `turn` crate also binds
    /// sockets only to probe for an even port and drops them unread; counting allocations at
    /// the first read leaves those out of `allocations_total`.
    started: AtomicBool,
}

impl RelayConn {
    fn closed_error() -> webrtc_util::Error {
        io::Error::new(io::ErrorKind::NotConnected, "relay socket closed").into()
    }

    /// The next datagram from an allowed peer within the bandwidth limit: its length and
    /// sender.
    async fn next_from_peer(&self, buf: &mut [u8]) -> UtilResult<(usize, SocketAddr)> {
        let relay = &self.relay;
        loop {
            // Registered before the flag is read, so a close between the two still wakes us:
            // the allocation's reader task must end with the allocation, not when the `turn`
            // crate drops its last reference.
            let closing = relay.on_close.notified();
            if relay.closed.load(Relaxed) {
                return Err(Self::closed_error());
            }
            let (n, from) = tokio::select! {
                r = relay.socket.recv_from(buf) => r?,
                () = closing => return Err(Self::closed_error()),
            };
            if !relay.peers.allows(from) {
                add(&relay.counters.peer_denied_packets, 1);
                continue;
            }
            if !relay.admit(relay.from_peers.as_ref(), n) {
                continue;
            }
            add(&relay.counters.peer_rx_packets, 1);
            add(&relay.counters.peer_rx_bytes, n);
            return Ok((n, from));
        }
    }
}

impl Drop for RelayConn {
    fn drop(&mut self) {
        if let Some(client) = self.client {
            self.listener.relays.remove(client, &self.relay);
        }
    }
}

#[async_trait]
impl Conn for RelayConn {
    async fn connect(&self, addr: SocketAddr) -> UtilResult<()> {
        Ok(self.relay.socket.connect(addr).await?)
    }

    async fn recv(&self, buf: &mut [u8]) -> UtilResult<usize> {
        self.recv_from(buf).await.map(|(n, _)| n)
    }

    /// Datagrams from peers bound to a channel go to the client here, as ChannelData; the
    /// first other one is returned to the crate.
    async fn recv_from(&self, buf: &mut [u8]) -> UtilResult<(usize, SocketAddr)> {
        if !self.started.swap(true, Relaxed) {
            add(&self.relay.counters.allocations_total, 1);
        }
        loop {
            let (n, from) = self.next_from_peer(buf).await?;
            let channel = match self.client {
                Some(client) => lock(&self.relay.channels)
                    .number_of(from, Instant::now())
                    .map(|number| (client, number)),
                None => None,
            };
            let Some((client, number)) = channel else {
                return Ok((n, from));
            };
            self.listener
                .relay_to_client(number, &buf[..n], client)
                .await;
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
        Ok(self.relay.send_to_peer(buf, target).await?)
    }

    fn local_addr(&self) -> UtilResult<SocketAddr> {
        Ok(self.relay.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> UtilResult<()> {
        self.relay.close();
        if let Some(client) = self.client {
            self.listener.relays.remove(client, &self.relay);
        }
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
    /// The listener this allocator serves (the crate runs one allocator per listener).
    pub listener: Arc<ClientConn>,
    /// Shared with that listener.
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
        let request = lock(&self.allocating).clone();
        let Some(slot) = Slot::acquire(
            &self.counters,
            self.max_allocations,
            &self.users,
            request.uid,
        ) else {
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
        let relay = Arc::new(Relay {
            socket,
            peers: Arc::clone(&self.peers),
            counters: Arc::clone(&self.counters),
            to_peers: bucket(),
            from_peers: bucket(),
            channels: Mutex::new(Channels::default()),
            closed: AtomicBool::new(false),
            on_close: Notify::new(),
        });
        // A socket bound only to probe for an even port is dropped at once, and its entry
        // with it; the allocation's own socket replaces it.
        if let Some(client) = request.client {
            self.listener.relays.insert(client, &relay);
        }
        let conn = RelayConn {
            relay,
            listener: Arc::clone(&self.listener),
            client: request.client,
            slot,
            started: AtomicBool::new(false),
        };
        Ok((Arc::new(conn), relay_addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn channel_data_is_parsed_and_framed() {
        assert_eq!(
            channel_data(&[0x40, 0x01, 0x00, 0x02, 7, 8, 0, 0]),
            Some((0x4001, &[7u8, 8][..]))
        );
        assert_eq!(
            channel_data(&[0x7f, 0xff, 0x00, 0x00]),
            Some((0x7fff, &[][..]))
        );
        // Too short, a length beyond the end, a number outside 0x4000-0x7FFF.
        assert_eq!(channel_data(&[0x40, 0x01, 0x00]), None);
        assert_eq!(channel_data(&[0x40, 0x01, 0x00, 0x03, 1, 2]), None);
        assert_eq!(channel_data(&[0x80, 0x00, 0x00, 0x00]), None);
        assert_eq!(channel_data(&[0x3f, 0xff, 0x00, 0x00]), None);

        let data = [1, 2, 3, 4, 5];
        let frame = [&channel_header(0x4001, 5)[..], &data, padding(5)].concat();
        assert_eq!(frame, [0x40, 0x01, 0, 5, 1, 2, 3, 4, 5, 0, 0, 0]);
        assert_eq!(channel_data(&frame), Some((0x4001, &data[..])));
        assert_eq!(padding(4), [0u8; 0]);
        assert_eq!(padding(6), [0u8; 2]);
        assert_eq!(padding(0), [0u8; 0]);
    }

    #[test]
    fn channels_bind_refresh_and_expire() {
        let t0 = Instant::now();
        let mut c = Channels::default();
        let (p, q) = (addr("203.0.113.7:5000"), addr("203.0.113.8:6000"));
        assert_eq!(c.peer_of(0x4000, t0), None);
        c.bind(0x4000, p, t0);
        c.bind(0x4001, q, t0);
        assert_eq!(c.peer_of(0x4000, t0), Some(p));
        assert_eq!(c.number_of(q, t0), Some(0x4001));
        assert_eq!(
            c.number_of(addr("203.0.113.7:5001"), t0),
            None,
            "by port too"
        );
        // A refresh renews one binding; the other expires at its time.
        let later = t0 + CHANNEL_LIFETIME - Duration::from_secs(1);
        c.bind(0x4000, p, later);
        let expired = t0 + CHANNEL_LIFETIME;
        assert_eq!(c.peer_of(0x4000, expired), Some(p));
        assert_eq!(c.peer_of(0x4001, expired), None);
        assert_eq!(c.number_of(q, expired), None);
        assert_eq!(c.peer_of(0x4000, later + CHANNEL_LIFETIME), None);
        // Binding again replaces what the crate replaced, and drops what expired.
        c.bind(0x4001, p, expired);
        assert_eq!(c.0.len(), 1);
        assert_eq!(c.number_of(p, expired), Some(0x4001));
        assert_eq!(c.peer_of(0x4000, expired), None);
    }
}

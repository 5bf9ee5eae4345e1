//! The sockets the `turn` crate relays through, wrapped to add what it lacks: byte and packet
//! counters, the peer filter, and the cap on live allocations.
//!
//! The `turn` crate has no hook to refuse a permission or a channel for a peer address, so the
//! peer filter sits at the narrowest seam it does offer: the relay socket that its
//! `RelayAddressGenerator` hands out. Every datagram to a peer passes `send_to` and every
//! datagram from a peer passes `recv_from` of that socket, so a denied peer is unreachable
//! both ways. The cost of the seam: a CreatePermission or ChannelBind for a denied peer still
//! succeeds (coturn answers 403) and the datagrams are dropped silently, counted in
//! `peer_denied_packets`.
//!
//! The listening socket also carries the nonce gate of the `nonce` module.

use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use turn::relay::RelayAddressGenerator;
use webrtc_util::Conn;

use crate::config::PortRange;
use crate::counters::{Counters, add};
use crate::filter::PeerFilter;
use crate::nonce::{NonceGate, Verdict, maybe_stun};

type UtilResult<T> = Result<T, webrtc_util::Error>;

/// The listening socket: counts client traffic and puts the nonce gate in front of the crate.
pub(crate) struct ClientConn {
    pub socket: UdpSocket,
    pub counters: Arc<Counters>,
    pub realm: String,
    pub gate: Mutex<NonceGate>,
}

impl ClientConn {
    fn sent(&self, n: usize, datagram: &[u8]) {
        add(&self.counters.client_tx_packets, 1);
        add(&self.counters.client_tx_bytes, n);
        // Only error responses carry the crate's nonces; relayed ChannelData skips the lock.
        let error_response =
            maybe_stun(datagram) && datagram[0] & 0x01 != 0 && datagram[1] & 0x10 != 0;
        if error_response && self.gate().on_response(Instant::now(), datagram) {
            add(&self.counters.nonces_issued, 1);
        }
    }

    fn gate(&self) -> std::sync::MutexGuard<'_, NonceGate> {
        // The gate's state stays consistent across a panic elsewhere: use it as it is.
        self.gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Conn for ClientConn {
    async fn connect(&self, addr: SocketAddr) -> UtilResult<()> {
        Ok(self.socket.connect(addr).await?)
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
                Verdict::Pass => return Ok((n, from)),
                Verdict::Drop => {}
                Verdict::Answer(reply) => {
                    add(&self.counters.challenges_answered, 1);
                    // A failed send is a lost datagram like any other: the client retransmits.
                    if let Ok(sent) = self.socket.send_to(&reply, from).await {
                        add(&self.counters.client_tx_packets, 1);
                        add(&self.counters.client_tx_bytes, sent);
                    }
                }
            }
        }
    }

    async fn send(&self, buf: &[u8]) -> UtilResult<usize> {
        let n = self.socket.send(buf).await?;
        self.sent(n, buf);
        Ok(n)
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
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// One live allocation's claim on `max_allocations`, given back exactly once: when the
/// allocation is closed, or when its socket is dropped without a close (the `turn` crate
/// binds and drops a socket to probe for an even port).
struct Slot {
    counters: Arc<Counters>,
    released: AtomicBool,
}

impl Slot {
    fn acquire(counters: &Arc<Counters>, max: u64) -> Option<Self> {
        counters
            .allocations_active
            .fetch_update(AcqRel, Relaxed, |n| (n < max).then_some(n + 1))
            .ok()?;
        Some(Self {
            counters: Arc::clone(counters),
            released: AtomicBool::new(false),
        })
    }

    fn release(&self) {
        if !self.released.swap(true, AcqRel) {
            self.counters.allocations_active.fetch_sub(1, AcqRel);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
    }
}

/// A relay socket: filters and counts peer traffic, holds the allocation's slot.
struct RelayConn {
    socket: UdpSocket,
    filter: PeerFilter,
    counters: Arc<Counters>,
    slot: Slot,
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
            if !self.filter.allows(from.ip()) {
                add(&self.counters.peer_denied_packets, 1);
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
        if !self.filter.allows(target.ip()) {
            // Report the datagram as sent, as a firewall would: an error here would only be
            // logged by the `turn` crate, once per datagram.
            add(&self.counters.peer_denied_packets, 1);
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
    pub filter: PeerFilter,
    pub max_allocations: u64,
    pub counters: Arc<Counters>,
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
        let Some(slot) = Slot::acquire(&self.counters, self.max_allocations) else {
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
        let conn = RelayConn {
            socket,
            filter: self.filter,
            counters: Arc::clone(&self.counters),
            slot,
            started: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            on_close: Notify::new(),
        };
        Ok((Arc::new(conn), relay_addr))
    }
}

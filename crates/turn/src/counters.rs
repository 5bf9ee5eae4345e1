//! Traffic and allocation counters of the embedded TURN server, for metrics and for its own
//! `iceReportRxTxRate`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The live counters, shared by every socket of one server. Updated with relaxed atomics:
/// each is an independent tally, read now and then.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub client_rx_packets: AtomicU64,
    pub client_rx_bytes: AtomicU64,
    pub client_tx_packets: AtomicU64,
    pub client_tx_bytes: AtomicU64,
    pub peer_rx_packets: AtomicU64,
    pub peer_rx_bytes: AtomicU64,
    pub peer_tx_packets: AtomicU64,
    pub peer_tx_bytes: AtomicU64,
    pub peer_denied_packets: AtomicU64,
    pub allocations_active: AtomicU64,
    pub allocations_total: AtomicU64,
    pub allocations_refused: AtomicU64,
    pub auth_refused: AtomicU64,
    pub challenges_answered: AtomicU64,
    pub nonces_issued: AtomicU64,
    pub permissions_refused: AtomicU64,
    pub allocations_refused_user_quota: AtomicU64,
    pub credentials_too_long: AtomicU64,
    pub bandwidth_dropped_packets: AtomicU64,
    pub bandwidth_dropped_bytes: AtomicU64,
    pub stream_connections_total: AtomicU64,
    pub stream_connections_refused: AtomicU64,
    pub stream_dropped_packets: AtomicU64,
}

pub(crate) fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> CounterSnapshot {
        let g = |c: &AtomicU64| c.load(Relaxed);
        CounterSnapshot {
            client_rx_packets: g(&self.client_rx_packets),
            client_rx_bytes: g(&self.client_rx_bytes),
            client_tx_packets: g(&self.client_tx_packets),
            client_tx_bytes: g(&self.client_tx_bytes),
            peer_rx_packets: g(&self.peer_rx_packets),
            peer_rx_bytes: g(&self.peer_rx_bytes),
            peer_tx_packets: g(&self.peer_tx_packets),
            peer_tx_bytes: g(&self.peer_tx_bytes),
            peer_denied_packets: g(&self.peer_denied_packets),
            allocations_active: g(&self.allocations_active),
            allocations_total: g(&self.allocations_total),
            allocations_refused: g(&self.allocations_refused),
            auth_refused: g(&self.auth_refused),
            challenges_answered: g(&self.challenges_answered),
            nonces_issued: g(&self.nonces_issued),
            permissions_refused: g(&self.permissions_refused),
            allocations_refused_user_quota: g(&self.allocations_refused_user_quota),
            credentials_too_long: g(&self.credentials_too_long),
            bandwidth_dropped_packets: g(&self.bandwidth_dropped_packets),
            bandwidth_dropped_bytes: g(&self.bandwidth_dropped_bytes),
            stream_connections_total: g(&self.stream_connections_total),
            stream_connections_refused: g(&self.stream_connections_refused),
            stream_dropped_packets: g(&self.stream_dropped_packets),
        }
    }
}

/// The counters at one moment. Client traffic is what passes the listening socket (STUN, TURN
/// control, ChannelData and indications); peer traffic is what relay sockets exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterSnapshot {
    pub client_rx_packets: u64,
    pub client_rx_bytes: u64,
    pub client_tx_packets: u64,
    pub client_tx_bytes: u64,
    pub peer_rx_packets: u64,
    pub peer_rx_bytes: u64,
    pub peer_tx_packets: u64,
    pub peer_tx_bytes: u64,
    /// Datagrams to or from refused peers that relay sockets dropped (Send indications and
    /// ChannelData for peers that got no permission, datagrams from such peers).
    pub peer_denied_packets: u64,
    /// Live allocations (sockets bound to probe for an even port count while they exist).
    pub allocations_active: u64,
    /// Allocations created since start.
    pub allocations_total: u64,
    /// Allocations refused because `max_allocations` were live or no relay port was free
    /// (508).
    pub allocations_refused: u64,
    /// Requests whose username was malformed or expired.
    pub auth_refused: u64,
    /// 401/438 challenges the nonce gate answered itself (see the `nonce` module).
    pub challenges_answered: u64,
    /// Nonces the `turn` crate issued, each one entry it keeps for good.
    pub nonces_issued: u64,
    /// CreatePermission and ChannelBind requests answered 403 for naming a refused peer.
    pub permissions_refused: u64,
    /// Allocate requests answered 486: the user held `max_allocations_per_user`.
    pub allocations_refused_user_quota: u64,
    /// Requests answered 401: the credential expires further ahead than
    /// `max_credential_lifetime_secs`.
    pub credentials_too_long: u64,
    /// Relayed datagrams (either direction) dropped by `allocation_bytes_per_sec`...
    pub bandwidth_dropped_packets: u64,
    /// ...and their bytes.
    pub bandwidth_dropped_bytes: u64,
    /// TCP and TLS connections accepted since start.
    pub stream_connections_total: u64,
    /// TCP and TLS connections closed at once because `max_connections` were open on their
    /// listener.
    pub stream_connections_refused: u64,
    /// Messages to a TCP or TLS client dropped because it did not read them fast enough.
    pub stream_dropped_packets: u64,
}

impl CounterSnapshot {
    pub fn rx_bytes(&self) -> u64 {
        self.client_rx_bytes + self.peer_rx_bytes
    }

    pub fn tx_bytes(&self) -> u64 {
        self.client_tx_bytes + self.peer_tx_bytes
    }

    /// `(rx, tx)` in kbit/s between an earlier snapshot and this one, `elapsed_ms` apart: what
    /// the embedded server reports to the ICE registry.
    pub fn rates_kbps(&self, earlier: &CounterSnapshot, elapsed_ms: u64) -> (u64, u64) {
        let rate = |now: u64, then: u64| {
            // bytes * 8 bits / ms = kbit/s.
            now.saturating_sub(then).saturating_mul(8) / elapsed_ms.max(1)
        };
        (
            rate(self.rx_bytes(), earlier.rx_bytes()),
            rate(self.tx_bytes(), earlier.tx_bytes()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        let a = CounterSnapshot::default();
        let b = CounterSnapshot {
            client_rx_bytes: 500_000,
            peer_rx_bytes: 125_000,
            client_tx_bytes: 250_000,
            peer_tx_bytes: 0,
            ..a
        };
        // 625 kB in 5 s = 1000 kbit/s; 250 kB = 400 kbit/s.
        assert_eq!(b.rates_kbps(&a, 5_000), (1000, 400));
        assert_eq!(a.rates_kbps(&b, 5_000), (0, 0), "counters never go back");
        assert_eq!(b.rates_kbps(&a, 0), (5_000_000, 2_000_000));
    }
}

//! The embedded TURN server's configuration, with defaults that work out of the box.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use crate::filter::PeerFilter;

/// An inclusive range of UDP ports for relay sockets, written `"49152-65535"` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

impl PortRange {
    pub fn new(min: u16, max: u16) -> Result<Self, ConfigError> {
        if min == 0 || max < min {
            return Err(ConfigError::PortRange(format!("{min}-{max}")));
        }
        Ok(Self { min, max })
    }

    pub fn len(&self) -> u32 {
        u32::from(self.max) - u32::from(self.min) + 1
    }

    /// Always false: [`PortRange::new`] refuses empty ranges.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl Default for PortRange {
    /// The IANA dynamic range, as coturn uses by default.
    fn default() -> Self {
        Self {
            min: 49152,
            max: 65535,
        }
    }
}

impl FromStr for PortRange {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ConfigError::PortRange(s.to_owned());
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let min = a.trim().parse().map_err(|_| bad())?;
        let max = b.trim().parse().map_err(|_| bad())?;
        Self::new(min, max)
    }
}

/// A configuration the server cannot start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("relay_ports must be \"MIN-MAX\" with 0 < MIN <= MAX, got {0:?}")]
    PortRange(String),
    #[error("secret must not be empty: it signs every TURN credential")]
    EmptySecret,
    #[error("public_ip is needed when listen ({0}) is a wildcard address")]
    NoPublicIp(SocketAddr),
    #[error("max_allocations must be at least 1")]
    NoAllocations,
    #[error("max_allocations_per_user must be at least 1")]
    NoAllocationsPerUser,
    #[error("max_credential_lifetime_secs must be at least 1")]
    NoCredentialLifetime,
    #[error("max_connections must be at least 1")]
    NoConnections,
}

/// A TLS listener: where it listens and the rustls configuration it serves (whose certificate
/// resolver may swap certificates while it runs).
#[derive(Debug, Clone)]
pub struct TlsListen {
    pub listen: SocketAddr,
    pub config: Arc<rustls::ServerConfig>,
}

impl PartialEq for TlsListen {
    fn eq(&self, other: &Self) -> bool {
        self.listen == other.listen && Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for TlsListen {}

/// `[turn]` of the server's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnConfig {
    /// Where the server listens for STUN/TURN over UDP (default `0.0.0.0:3478`). Relay sockets
    /// bind to the same IP.
    pub listen: SocketAddr,
    /// The address clients reach relays at, sent in XOR-RELAYED-ADDRESS. Defaults to the
    /// listening IP unless that is a wildcard.
    pub public_ip: Option<IpAddr>,
    pub relay_ports: PortRange,
    pub realm: String,
    /// The TURN REST shared secret (coturn's `--static-auth-secret`).
    pub secret: String,
    /// Allocate requests beyond this many live allocations get 508 Insufficient Capacity.
    pub max_allocations: usize,
    /// Which peers relays reach. Besides the filter's classes of addresses, the server's own
    /// addresses are refused unless `allow_loopback` is set (except relay ports: another
    /// client's relayed address). A CreatePermission or ChannelBind naming a refused peer gets
    /// 403 Forbidden.
    pub peers: PeerFilter,
    /// Allocate requests of a user (the uid of the REST username) who holds this many live
    /// allocations get 486 Allocation Quota Reached (default 16: a browser makes one or two
    /// per TURN URL and call).
    pub max_allocations_per_user: usize,
    /// Relayed bytes per second per allocation and direction (to peers, from peers); datagrams
    /// beyond it are dropped and counted. Default 1,000,000 (8 Mbit/s); 0 means no limit.
    pub allocation_bytes_per_sec: u64,
    /// Requests with a REST username that expires further ahead than this get 401
    /// Unauthorized (default 86,400 s, one day). The expiry is compared with this server's
    /// clock, so the clock of whoever mints the credentials must agree with it.
    pub max_credential_lifetime_secs: u64,
    /// SO_RCVBUF/SO_SNDBUF of the listening socket. Every client's datagrams arrive on that
    /// one socket, and clients send in bursts (one packet per client per audio frame); with the
    /// kernel's default of about 200 KiB a burst from 100 clients overflows it. The kernel caps
    /// the value at `net.core.rmem_max`/`wmem_max`.
    pub socket_buffer_bytes: usize,
    /// Where the server also listens for TURN over TCP (STUN messages and ChannelData framed
    /// over a stream as RFC 8656 has it); `None`: no TCP listener. Port 0 means the port the
    /// UDP listener got, so that one port number serves both. Relays still reach peers over
    /// UDP.
    pub tcp_listen: Option<SocketAddr>,
    /// Where the server also listens for TURN over TLS; `None`: no TLS listener.
    pub tls: Option<TlsListen>,
    /// Open connections per TCP or TLS listener (default 20,000); further ones are closed at
    /// once and counted. Each holds at most one allocation (its 5-tuple); one that sends
    /// nothing within 10 s of connecting is closed.
    pub max_connections: usize,
}

impl TurnConfig {
    /// The defaults around a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 3478)),
            public_ip: None,
            relay_ports: PortRange::default(),
            realm: "rtcroom".into(),
            secret: secret.into(),
            max_allocations: 10_000,
            peers: PeerFilter::default(),
            max_allocations_per_user: 16,
            allocation_bytes_per_sec: 1_000_000,
            max_credential_lifetime_secs: 86_400,
            socket_buffer_bytes: 4 << 20,
            tcp_listen: None,
            tls: None,
            max_connections: 20_000,
        }
    }

    /// The advertised relay IP, or why there is none.
    pub fn relay_ip(&self) -> Result<IpAddr, ConfigError> {
        match self.public_ip {
            Some(ip) => Ok(ip),
            None if self.listen.ip().is_unspecified() => Err(ConfigError::NoPublicIp(self.listen)),
            None => Ok(self.listen.ip()),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.secret.is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        if self.max_allocations == 0 {
            return Err(ConfigError::NoAllocations);
        }
        if self.max_allocations_per_user == 0 {
            return Err(ConfigError::NoAllocationsPerUser);
        }
        if self.max_credential_lifetime_secs == 0 {
            return Err(ConfigError::NoCredentialLifetime);
        }
        if self.max_connections == 0 {
            return Err(ConfigError::NoConnections);
        }
        self.relay_ip().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges() {
        assert_eq!(
            "49152-65535".parse(),
            Ok(PortRange {
                min: 49152,
                max: 65535
            })
        );
        assert_eq!(" 5000 - 5000 ".parse::<PortRange>().map(|r| r.len()), Ok(1));
        for bad in ["", "5000", "0-10", "10-9", "1-70000", "a-b"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn validation() {
        let mut c = TurnConfig::new("s");
        assert_eq!(c.validate(), Err(ConfigError::NoPublicIp(c.listen)));
        c.public_ip = Some(IpAddr::from([203, 0, 113, 7]));
        assert_eq!(c.validate(), Ok(()));
        c.public_ip = None;
        c.listen = "127.0.0.1:0".parse().expect("addr");
        assert_eq!(c.relay_ip(), Ok(IpAddr::from([127, 0, 0, 1])));
        c.max_allocations_per_user = 0;
        assert_eq!(c.validate(), Err(ConfigError::NoAllocationsPerUser));
        c.max_allocations_per_user = 16;
        c.max_credential_lifetime_secs = 0;
        assert_eq!(c.validate(), Err(ConfigError::NoCredentialLifetime));
        c.max_credential_lifetime_secs = 1;
        c.allocation_bytes_per_sec = 0;
        assert_eq!(c.validate(), Ok(()), "no bandwidth limit");
        c.max_connections = 0;
        assert_eq!(c.validate(), Err(ConfigError::NoConnections));
        c.max_connections = 1;
        c.max_allocations = 0;
        assert_eq!(c.validate(), Err(ConfigError::NoAllocations));
        assert_eq!(
            TurnConfig::new("").validate(),
            Err(ConfigError::EmptySecret)
        );
    }
}

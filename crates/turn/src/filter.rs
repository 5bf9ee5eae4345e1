//! Which peers a relay may talk to.
//!
//! A TURN server relays to any address its clients name, so without a filter it is a door
//! into the networks it sits on: a client could reach the host's loopback services or the
//! private network behind it. Like coturn (which refuses loopback peers unless
//! `--allow-loopback-peers`), relays refuse loopback, private, link-local and other special
//! addresses unless the config allows them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which peer addresses relays accept; the default accepts only public unicast addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerFilter {
    /// Allow 127.0.0.0/8 and ::1 (tests, and single-host setups).
    pub allow_loopback: bool,
    /// Allow RFC 1918, RFC 6598 (carrier-grade NAT) and IPv6 unique local addresses: for a
    /// server whose clients are on the same private network.
    pub allow_private: bool,
}

impl PeerFilter {
    pub fn allows(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.allows_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.allows_v4(v4),
                None => self.allows_v6(v6),
            },
        }
    }

    fn allows_v4(&self, ip: Ipv4Addr) -> bool {
        let [a, b, ..] = ip.octets();
        if ip.is_loopback() {
            return self.allow_loopback;
        }
        let carrier_nat = a == 100 && (64..128).contains(&b);
        if ip.is_private() || carrier_nat {
            return self.allow_private;
        }
        // "This network" (0/8), link-local, multicast, reserved (240/4) and broadcast are
        // never peers of a call.
        !(a == 0 || ip.is_link_local() || ip.is_multicast() || a >= 240)
    }

    fn allows_v6(&self, ip: Ipv6Addr) -> bool {
        let first = ip.segments()[0];
        if ip.is_loopback() {
            return self.allow_loopback;
        }
        if first & 0xfe00 == 0xfc00 {
            return self.allow_private;
        }
        let link_local = first & 0xffc0 == 0xfe80;
        !(ip.is_unspecified() || ip.is_multicast() || link_local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn default_allows_only_public_unicast() {
        let f = PeerFilter::default();
        for ok in [
            "203.0.113.7",
            "8.8.8.8",
            "100.63.0.1",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(f.allows(ip(ok)), "{ok}");
        }
        for no in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!f.allows(ip(no)), "{no}");
        }
    }

    #[test]
    fn switches() {
        let lo = PeerFilter {
            allow_loopback: true,
            allow_private: false,
        };
        assert!(lo.allows(ip("127.0.0.1")) && lo.allows(ip("::1")));
        assert!(!lo.allows(ip("10.0.0.1")));
        let private = PeerFilter {
            allow_loopback: false,
            allow_private: true,
        };
        assert!(private.allows(ip("10.0.0.1")) && private.allows(ip("fd00::1")));
        assert!(!private.allows(ip("127.0.0.1")));
        assert!(
            !private.allows(ip("169.254.169.254")),
            "metadata stays closed"
        );
    }
}

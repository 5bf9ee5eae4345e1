//! Where a request comes from: the client's address, and the host and scheme it asked for.
//!
//! The TCP peer is the client, unless it is one of `[server] trusted_proxies`: only then are
//! its forwarding headers believed. The client is the right-most address of
//! `X-Forwarded-For` that is not itself a trusted proxy (each proxy appends the address it
//! saw, so everything to the left of the first untrusted hop may be made up by the client);
//! without `X-Forwarded-For`, the `for=` parameters of `Forwarded` (RFC 7239) are read the
//! same way. `X-Forwarded-Host` and `X-Forwarded-Proto` count only from a trusted proxy too.
//!
//! [`client_ip`] is the one place that decides a client's address: records (`user_ip`),
//! logs and per-address limits all take it from here.

use axum::http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// An address block: `10.0.0.0/8`, `2001:db8::/32`, or one address (`127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Net {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or a CIDR block like 10.0.0.0/8"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Net { addr, prefix })
    }
}

/// `[server] trusted_proxies`: the peers whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Net>);

impl TrustedProxies {
    /// Parse the configured entries; an error names the entry that is wrong.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| e.parse())
            .collect::<Result<Vec<Net>, String>>()
            .map(TrustedProxies)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(ip))
    }
}

/// The headers through which a proxy says whom it forwards for; a request with any of them
/// did not come straight from its client.
const FORWARDING: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// A connection from this host itself that no proxy forwarded: the peer is a loopback
/// address and the request carries no forwarding header. What a local agent or a local
/// Prometheus sends; a same-host reverse proxy adds forwarding headers and so is not it.
pub fn direct_loopback(peer: SocketAddr, headers: &HeaderMap) -> bool {
    peer.ip().to_canonical().is_loopback() && !FORWARDING.iter().any(|h| headers.contains_key(*h))
}

/// One hop of `X-Forwarded-For` or a `for=` of `Forwarded`: `1.2.3.4`, `1.2.3.4:5678`,
/// `2001:db8::1`, `[2001:db8::1]:4711`, optionally quoted. `unknown` and obfuscated
/// identifiers (`_hidden`) are not addresses.
fn hop(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// Every value of header `name`, comma-separated lists flattened, in order.
fn list<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect()
}

/// The `for=` values of `Forwarded`, left to right.
fn forwarded_for(headers: &HeaderMap) -> Vec<&str> {
    list(headers, "forwarded")
        .into_iter()
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then_some(v)
            })
        })
        .collect()
}

/// The client's address: the peer's, or, from a trusted proxy, the right-most forwarded
/// hop that is not a trusted proxy. A hop that is not an address ends the walk at the last
/// address known (a proxy); when every hop is trusted, the left-most is the client.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.ip().to_canonical();
    if !trusted.contains(client) {
        return client;
    }
    let hops = if headers.contains_key("x-forwarded-for") {
        list(headers, "x-forwarded-for")
    } else {
        forwarded_for(headers)
    };
    for h in hops.iter().rev() {
        let Some(ip) = hop(h) else {
            return client;
        };
        client = ip.to_canonical();
        if !trusted.contains(client) {
            return client;
        }
    }
    client
}

/// `X-Forwarded-<name>` (`Host`, `Proto`) as a trusted proxy sent it; `None` from anyone else.
pub fn forwarded<'a>(
    peer: SocketAddr,
    headers: &'a HeaderMap,
    trusted: &TrustedProxies,
    name: &str,
) -> Option<&'a str> {
    if !trusted.contains(peer.ip()) {
        return None;
    }
    let value = headers.get(format!("x-forwarded-{name}"))?.to_str().ok()?;
    // A chain of proxies appends: the value nearest to us is the last.
    value
        .rsplit(',')
        .next()
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    #[test]
    fn blocks_hold_their_addresses() {
        let t = trusted(&["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"]);
        assert!(t.contains("10.200.1.2".parse().unwrap()));
        assert!(!t.contains("11.0.0.1".parse().unwrap()));
        assert!(t.contains("127.0.0.1".parse().unwrap()));
        assert!(!t.contains("127.0.0.2".parse().unwrap()));
        assert!(t.contains("::ffff:10.1.1.1".parse().unwrap()), "mapped v4");
        assert!(t.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!t.contains("2001:db9::5".parse().unwrap()));
        assert!(trusted(&["0.0.0.0/0"]).contains("8.8.8.8".parse().unwrap()));
        let e = TrustedProxies::parse(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(e.contains("0 to 32"), "{e}");
        let e = TrustedProxies::parse(&["nginx".into()]).unwrap_err();
        assert!(e.contains("\"nginx\""), "{e}");
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let t = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.1.2.3")]);
        assert_eq!(
            client_ip(peer("127.0.0.1"), &h, &t).to_string(),
            "203.0.113.7"
        );
        assert_eq!(
            client_ip(peer("198.51.100.1"), &h, &t).to_string(),
            "198.51.100.1"
        );
        assert_eq!(
            client_ip(peer("127.0.0.1"), &HeaderMap::new(), &t).to_string(),
            "127.0.0.1"
        );
        // Two header lines are one list; the last hop nearest to us is read first.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.9:5555"),
        ]);
        assert_eq!(
            client_ip(peer("127.0.0.1"), &h, &t).to_string(),
            "203.0.113.9"
        );
        // Not an address: the walk stops at the last proxy.
        let h = headers(&[("x-forwarded-for", "garbage, 10.0.0.5")]);
        assert_eq!(client_ip(peer("127.0.0.1"), &h, &t).to_string(), "10.0.0.5");
        let h = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https",
        )]);
        assert_eq!(
            client_ip(peer("127.0.0.1"), &h, &t).to_string(),
            "2001:db8::7"
        );
        let h = headers(&[
            ("x-forwarded-host", "a.example, rtc.example.com"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            forwarded(peer("127.0.0.1"), &h, &t, "host"),
            Some("rtc.example.com")
        );
        assert_eq!(forwarded(peer("127.0.0.1"), &h, &t, "proto"), Some("https"));
        assert_eq!(forwarded(peer("198.51.100.1"), &h, &t, "host"), None);
    }

    #[test]
    fn only_unforwarded_loopback_is_direct() {
        assert!(direct_loopback(peer("127.0.0.1"), &HeaderMap::new()));
        assert!(direct_loopback(peer("::1"), &HeaderMap::new()));
        assert!(!direct_loopback(peer("10.0.0.1"), &HeaderMap::new()));
        let h = headers(&[("x-forwarded-for", "10.9.9.9")]);
        assert!(!direct_loopback(peer("127.0.0.1"), &h));
        let h = headers(&[("x-real-ip", "10.9.9.9")]);
        assert!(!direct_loopback(peer("127.0.0.1"), &h));
    }
}

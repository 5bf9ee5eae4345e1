//! The limits of the embedded TURN server: which peers a client may name, how many allocations
//! one user may hold, how long a credential may live, and how fast one allocation may relay.
//!
//! The `turn` crate has no hooks for any of these, so they sit in front of it, on the
//! listening socket (see the `conn` module), where every request passes before the crate reads
//! it. A request the guard refuses never reaches the crate: the guard answers it itself.
//!
//! - **Peers.** A CreatePermission or ChannelBind that names a refused peer (see
//!   [`PeerPolicy`]) is answered 403 Forbidden; coturn does the same. Relay sockets apply the
//!   same policy to every datagram, so a Send indication to a refused peer goes nowhere either.
//! - **Allocations per user.** An Allocate from a user (the uid part of the REST username
//!   `"<expiry>:<uid>"`, so fresh credentials of one uid share the quota) who already holds
//!   `max_allocations_per_user` live allocations is answered 486 Allocation Quota Reached.
//! - **Credential lifetime.** A request whose REST username expires further in the future than
//!   `max_credential_lifetime_secs` is answered 401 Unauthorized: a credential minted with a
//!   long lifetime (or by someone who has the secret and wants a credential for good) is
//!   refused while its expiry is that far away.
//! - **Bandwidth.** Each allocation relays at most `allocation_bytes_per_sec` towards its peers
//!   and as much from them ([`TokenBucket`], one per direction, holding one second's worth);
//!   datagrams beyond that are dropped and counted, as a congested link would drop them.
//!
//! Only requests that carry valid MESSAGE-INTEGRITY for their REST username are judged: an
//! unauthenticated request learns nothing about the limits, and is left to the crate, which
//! challenges or refuses it as before. Refusals of authenticated requests are signed with the
//! request's key (RFC 5389 §10.2.4), except the 401, which like every 401 is not.
//!
//! Everything here is pure: time comes in as arguments, and [`Guard::screen`] returns the
//! bytes to send rather than sending them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rtcroom_ice::check_username;
use stun::attributes::{
    ATTR_CHANNEL_NUMBER, ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME,
    ATTR_XOR_PEER_ADDRESS,
};
use stun::error_code::{
    CODE_ALLOC_QUOTA_REACHED, CODE_FORBIDDEN, CODE_UNAUTHORIZED, ErrorCode, ErrorCodeAttribute,
};
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_REQUEST, METHOD_ALLOCATE, METHOD_CHANNEL_BIND,
    METHOD_CREATE_PERMISSION, METHOD_REFRESH, Message, MessageType, Method, Setter,
};
use stun::textattrs::TextAttribute;

use crate::auth::rest_key;
use crate::config::PortRange;
use crate::filter::PeerFilter;

/// Which peer transport addresses a relay may talk to: the [`PeerFilter`], plus the server's
/// own addresses. A peer at one of the server's own IPs is the host itself (its SSH, its
/// signaling port, its databases if they listen there), so it is refused unless loopback peers
/// are allowed, except on a port of the relay range: that is another client's relayed address,
/// and two relay-only clients of one server talk through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerPolicy {
    pub filter: PeerFilter,
    /// The IPs the server listens and relays on (the listen IP unless a wildcard, the public
    /// IP), as canonical addresses (no IPv4-mapped IPv6).
    pub own_ips: Vec<IpAddr>,
    pub relay_ports: PortRange,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl PeerPolicy {
    pub fn new(filter: PeerFilter, own_ips: &[IpAddr], relay_ports: PortRange) -> Self {
        let mut own: Vec<IpAddr> = own_ips
            .iter()
            .map(|ip| canonical(*ip))
            .filter(|ip| !ip.is_unspecified())
            .collect();
        own.sort_unstable();
        own.dedup();
        Self {
            filter,
            own_ips: own,
            relay_ports,
        }
    }

    pub fn allows(&self, peer: SocketAddr) -> bool {
        let ip = canonical(peer.ip());
        if peer.port() == 0 {
            return false;
        }
        if !self.filter.allow_loopback && self.own_ips.contains(&ip) {
            let relay = (self.relay_ports.min..=self.relay_ports.max).contains(&peer.port());
            if !relay {
                return false;
            }
        }
        self.filter.allows(ip)
    }
}

/// The configured limits the guard enforces on requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub max_allocations_per_user: usize,
    pub max_credential_lifetime_secs: u64,
}

/// Why the guard answered a request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 403: a CreatePermission or ChannelBind named a refused peer.
    Peer,
    /// 486: the user holds `max_allocations_per_user` live allocations.
    UserQuota,
    /// 401: the credential expires further ahead than `max_credential_lifetime_secs`.
    CredentialTooLong,
}

/// What to do with a datagram from a client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Screen {
    /// Hand it to the crate.
    Pass,
    /// Hand it to the crate: an Allocate, authenticated as this user (uid) or not
    /// authenticated (the crate refuses it). An allocation the crate makes for it counts
    /// against the user's quota.
    Allocate(Option<String>),
    /// Hand it to the crate: an authenticated ChannelBind for an allowed peer. When the crate
    /// answers it with success, the channel is bound.
    ChannelBind(Bind),
    /// Answer it with these bytes instead.
    Refuse(Refusal, Vec<u8>),
}

/// A ChannelBind request: its transaction ID, channel number and peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bind {
    pub transaction: [u8; 12],
    pub number: u16,
    pub peer: SocketAddr,
}

/// The uid of a REST username `"<expiry>:<uid>"` (the whole name if it has no colon).
pub(crate) fn uid_of(username: &str) -> &str {
    username.split_once(':').map_or(username, |(_, uid)| uid)
}

/// The guard's configuration: what it needs to authenticate and judge requests.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    pub secret: Vec<u8>,
    pub peers: PeerPolicy,
    pub limits: Limits,
}

/// An authenticated request: its message, key and username.
struct Authenticated {
    msg: Message,
    key: Vec<u8>,
    username: String,
    expiry: u64,
}

impl Guard {
    /// Judge a datagram from a client at `now_secs` (unix time), `live` being the live
    /// allocations per uid.
    pub fn screen(&self, datagram: &[u8], now_secs: u64, live: &HashMap<String, usize>) -> Screen {
        let Some(method) = auth_method(datagram) else {
            // Indications, Binding requests, responses: not for the guard, and not decoded.
            return Screen::Pass;
        };
        let Some(req) = self.authenticate(datagram, now_secs) else {
            return if method == METHOD_ALLOCATE {
                Screen::Allocate(None)
            } else {
                Screen::Pass
            };
        };
        if req.expiry.saturating_sub(now_secs) > self.limits.max_credential_lifetime_secs {
            return Screen::Refuse(Refusal::CredentialTooLong, unauthorized(&req.msg));
        }
        if method == METHOD_ALLOCATE {
            let uid = uid_of(&req.username);
            if live.get(uid).copied().unwrap_or(0) >= self.limits.max_allocations_per_user {
                return Screen::Refuse(
                    Refusal::UserQuota,
                    signed_error(&req, CODE_ALLOC_QUOTA_REACHED, "Allocation Quota Reached"),
                );
            }
            return Screen::Allocate(Some(uid.to_owned()));
        }
        if method == METHOD_CREATE_PERMISSION || method == METHOD_CHANNEL_BIND {
            let peers: Option<Vec<SocketAddr>> = req
                .msg
                .attributes
                .0
                .iter()
                .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
                .map(|a| xor_address(&a.value, &req.msg.transaction_id.0))
                .collect();
            // A malformed address is the crate's to answer (400).
            if peers
                .as_ref()
                .is_some_and(|p| p.iter().any(|a| !self.peers.allows(*a)))
            {
                return Screen::Refuse(
                    Refusal::Peer,
                    signed_error(&req, CODE_FORBIDDEN, "Forbidden"),
                );
            }
            // The crate binds the first peer address to the channel number.
            let number = req
                .msg
                .get(ATTR_CHANNEL_NUMBER)
                .ok()
                .and_then(|v| Some(u16::from_be_bytes([*v.first()?, *v.get(1)?])));
            if let (true, Some(number), Some(&[peer, ..])) =
                (method == METHOD_CHANNEL_BIND, number, peers.as_deref())
            {
                return Screen::ChannelBind(Bind {
                    transaction: req.msg.transaction_id.0,
                    number,
                    peer,
                });
            }
        }
        Screen::Pass
    }

    /// The request, if it is one that needs authentication and carries valid
    /// MESSAGE-INTEGRITY for an unexpired REST username.
    fn authenticate(&self, datagram: &[u8], now_secs: u64) -> Option<Authenticated> {
        let mut msg = Message::new();
        msg.unmarshal_binary(datagram).ok()?;
        if !msg.contains(ATTR_MESSAGE_INTEGRITY) {
            return None;
        }
        let text = |attr| TextAttribute::get_from_as(&msg, attr).ok().map(|t| t.text);
        let username = text(ATTR_USERNAME)?;
        let realm = text(ATTR_REALM)?;
        let expiry = check_username(&username, now_secs).ok()?;
        let key = rest_key(&self.secret, &username, &realm, now_secs).ok()?;
        MessageIntegrity(key.clone()).check(&mut msg).ok()?;
        Some(Authenticated {
            msg,
            key,
            username,
            expiry,
        })
    }
}

/// The method of a request that needs authentication (Allocate, Refresh, CreatePermission,
/// ChannelBind), read from the STUN header alone.
fn auth_method(b: &[u8]) -> Option<Method> {
    if b.len() < 20 || b[0] & 0xc0 != 0 {
        return None;
    }
    let typ = u16::from_be_bytes([b[0], b[1]]);
    let mut t = MessageType::default();
    t.read_value(typ);
    let needs_auth = [
        METHOD_ALLOCATE,
        METHOD_REFRESH,
        METHOD_CREATE_PERMISSION,
        METHOD_CHANNEL_BIND,
    ]
    .contains(&t.method);
    (t.class == CLASS_REQUEST && needs_auth).then_some(t.method)
}

/// An XOR-PEER-ADDRESS value (RFC 5389 §15.2), or None if it is malformed.
fn xor_address(v: &[u8], transaction: &[u8; 12]) -> Option<SocketAddr> {
    const COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    let port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]) ^ 0x2112;
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&COOKIE);
    mask[4..].copy_from_slice(transaction);
    let ip = match (v.get(1)?, v.len()) {
        (0x01, 8) => {
            let mut b = [0u8; 4];
            for (i, x) in b.iter_mut().enumerate() {
                *x = v[4 + i] ^ mask[i];
            }
            IpAddr::from(b)
        }
        (0x02, 20) => {
            let mut b = [0u8; 16];
            for (i, x) in b.iter_mut().enumerate() {
                *x = v[4 + i] ^ mask[i];
            }
            IpAddr::from(b)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

fn error_response(
    req: &Message,
    code: ErrorCode,
    reason: &str,
    extra: Vec<Box<dyn Setter>>,
) -> Message {
    let mut setters: Vec<Box<dyn Setter>> = vec![
        Box::new(Message {
            transaction_id: req.transaction_id,
            ..Default::default()
        }),
        Box::new(MessageType::new(req.typ.method, CLASS_ERROR_RESPONSE)),
        Box::new(ErrorCodeAttribute {
            code,
            reason: reason.as_bytes().to_vec(),
        }),
    ];
    setters.extend(extra);
    let mut out = Message::new();
    // Building from well-formed attributes into a fresh message cannot fail.
    let _ = out.build(&setters);
    out
}

fn signed_error(req: &Authenticated, code: ErrorCode, reason: &str) -> Vec<u8> {
    error_response(
        &req.msg,
        code,
        reason,
        vec![Box::new(MessageIntegrity(req.key.clone()))],
    )
    .raw
}

/// A 401 that sends the client back to its credential source, with the request's own (valid)
/// realm and nonce, as a challenge carries them.
fn unauthorized(req: &Message) -> Vec<u8> {
    let mut extra: Vec<Box<dyn Setter>> = Vec::new();
    for attr in [ATTR_NONCE, ATTR_REALM] {
        if let Ok(v) = req.get(attr) {
            extra.push(Box::new(TextAttribute::new(
                attr,
                String::from_utf8_lossy(&v).into_owned(),
            )));
        }
    }
    error_response(req, CODE_UNAUTHORIZED, "Unauthorized", extra).raw
}

/// A token bucket of `rate` bytes per second holding at most one second's worth: the bandwidth
/// limit of one direction of one allocation.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(bytes_per_sec: u64, now: Instant) -> Self {
        let rate = bytes_per_sec as f64;
        Self {
            rate,
            tokens: rate,
            last: now,
        }
    }

    /// Whether a datagram of `n` bytes may pass at `now`; if so, its bytes are taken.
    pub fn admit(&mut self, now: Instant, n: usize) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        let n = n as f64;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stun::error_code::ErrorCodeAttribute;
    use stun::message::Getter;

    use super::*;

    const SECRET: &[u8] = b"guard-secret";
    const NOW: u64 = 1_700_000_000;

    fn guard(filter: PeerFilter) -> Guard {
        Guard {
            secret: SECRET.to_vec(),
            peers: PeerPolicy::new(
                filter,
                &[
                    "127.0.0.1".parse().expect("ip"),
                    "203.0.113.7".parse().expect("ip"),
                ],
                PortRange::new(49152, 65535).expect("range"),
            ),
            limits: Limits {
                max_allocations_per_user: 2,
                max_credential_lifetime_secs: 86_400,
            },
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    fn xor_peer(a: SocketAddr, tid: &[u8; 12]) -> Vec<u8> {
        let mut v = vec![0, if a.is_ipv4() { 1 } else { 2 }];
        v.extend_from_slice(&(a.port() ^ 0x2112).to_be_bytes());
        let mut mask = vec![0x21, 0x12, 0xa4, 0x42];
        mask.extend_from_slice(tid);
        let ip = match a.ip() {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        v.extend(ip.iter().zip(mask).map(|(b, m)| b ^ m));
        v
    }

    /// A request signed with the REST key of `username` (or with a wrong key).
    fn request(
        method: stun::message::Method,
        username: &str,
        peers: &[SocketAddr],
        good_key: bool,
    ) -> Vec<u8> {
        let tid = [9u8; 12];
        let mut m = Message::new();
        m.transaction_id = stun::agent::TransactionId(tid);
        m.set_type(MessageType::new(method, CLASS_REQUEST));
        m.write_header();
        m.add(ATTR_USERNAME, username.as_bytes());
        m.add(ATTR_REALM, b"test");
        m.add(ATTR_NONCE, b"nonce");
        for p in peers {
            m.add(ATTR_XOR_PEER_ADDRESS, &xor_peer(*p, &tid));
        }
        let key = if good_key {
            rest_key(SECRET, username, "test", NOW).expect("valid username")
        } else {
            vec![0; 16]
        };
        MessageIntegrity(key).add_to(&mut m).expect("signed");
        m.raw
    }

    fn code_of(reply: &[u8]) -> u16 {
        let mut m = Message::new();
        m.unmarshal_binary(reply).expect("stun");
        let mut e = ErrorCodeAttribute::default();
        e.get_from(&m).expect("error code");
        e.code.0
    }

    #[test]
    fn peer_policy() {
        let g = guard(PeerFilter::default());
        for ok in ["8.8.8.8:53", "203.0.113.7:50000", "[2001:db8::1]:9"] {
            assert!(g.peers.allows(addr(ok)), "{ok}");
        }
        for no in [
            "127.0.0.1:9",
            "10.0.0.1:9",
            "169.254.169.254:80",
            "224.0.0.1:9",
            "0.0.0.0:9",
            "203.0.113.7:22",
            "203.0.113.7:3478",
            "[::ffff:203.0.113.7]:22",
            "8.8.8.8:0",
        ] {
            assert!(!g.peers.allows(addr(no)), "{no}");
        }
        let lo = guard(PeerFilter {
            allow_loopback: true,
            allow_private: false,
        });
        assert!(lo.peers.allows(addr("127.0.0.1:9")));
        assert!(
            lo.peers.allows(addr("203.0.113.7:22")),
            "own address allowed with loopback"
        );
        assert!(!lo.peers.allows(addr("10.0.0.1:9")));
    }

    #[test]
    fn refused_peers_get_403_signed() {
        let g = guard(PeerFilter::default());
        let live = HashMap::new();
        let user = "1700000600:alice";
        for method in [METHOD_CREATE_PERMISSION, METHOD_CHANNEL_BIND] {
            let ok = request(method, user, &[addr("8.8.8.8:53")], true);
            assert_eq!(g.screen(&ok, NOW, &live), Screen::Pass);
            // One refused address refuses the whole request.
            let bad = request(
                method,
                user,
                &[addr("8.8.8.8:53"), addr("10.0.0.1:5")],
                true,
            );
            let Screen::Refuse(Refusal::Peer, reply) = g.screen(&bad, NOW, &live) else {
                panic!("refused");
            };
            assert_eq!(code_of(&reply), 403);
            let mut m = Message::new();
            m.unmarshal_binary(&reply).expect("stun");
            assert_eq!(m.typ, MessageType::new(method, CLASS_ERROR_RESPONSE));
            let key = rest_key(SECRET, user, "test", NOW).expect("key");
            MessageIntegrity(key)
                .check(&mut m)
                .expect("signed with the request's key");
            // Unauthenticated: the crate's to answer.
            let forged = request(method, user, &[addr("10.0.0.1:5")], false);
            assert_eq!(g.screen(&forged, NOW, &live), Screen::Pass);
        }
    }

    #[test]
    fn only_requests_that_need_authentication_are_screened() {
        let alloc = request(METHOD_ALLOCATE, "1700000600:alice", &[], true);
        assert_eq!(auth_method(&alloc), Some(METHOD_ALLOCATE));
        let mut indication = request(METHOD_CREATE_PERMISSION, "1700000600:alice", &[], true);
        indication[1] |= 0x10; // the indication class bit
        assert_eq!(auth_method(&indication), None);
        let binding = request(stun::message::METHOD_BINDING, "1700000600:alice", &[], true);
        assert_eq!(auth_method(&binding), None);
        assert_eq!(
            auth_method(&[0x40, 0, 0, 4, 1, 2, 3, 4]),
            None,
            "ChannelData"
        );
        let g = guard(PeerFilter::default());
        assert_eq!(g.screen(&binding, NOW, &HashMap::new()), Screen::Pass);
    }

    #[test]
    fn user_quota_and_lifetime() {
        let g = guard(PeerFilter::default());
        let mut live = HashMap::new();
        let alloc = request(METHOD_ALLOCATE, "1700000600:alice", &[], true);
        assert_eq!(
            g.screen(&alloc, NOW, &live),
            Screen::Allocate(Some("alice".into()))
        );
        live.insert("alice".to_owned(), 2);
        let Screen::Refuse(Refusal::UserQuota, reply) = g.screen(&alloc, NOW, &live) else {
            panic!("refused");
        };
        assert_eq!(code_of(&reply), 486);
        // Another credential of the same uid shares the quota; another uid does not.
        let again = request(METHOD_ALLOCATE, "1700000900:alice", &[], true);
        assert!(matches!(
            g.screen(&again, NOW, &live),
            Screen::Refuse(Refusal::UserQuota, _)
        ));
        let bob = request(METHOD_ALLOCATE, "1700000600:bob", &[], true);
        assert_eq!(
            g.screen(&bob, NOW, &live),
            Screen::Allocate(Some("bob".into()))
        );
        let forged = request(METHOD_ALLOCATE, "1700000600:bob", &[], false);
        assert_eq!(g.screen(&forged, NOW, &live), Screen::Allocate(None));

        let limit = format!("{}:carol", NOW + 86_400);
        let ok = request(METHOD_REFRESH, &limit, &[], true);
        assert_eq!(g.screen(&ok, NOW, &live), Screen::Pass);
        let long = format!("{}:carol", NOW + 86_401);
        for method in [METHOD_ALLOCATE, METHOD_REFRESH, METHOD_CREATE_PERMISSION] {
            let req = request(method, &long, &[], true);
            let Screen::Refuse(Refusal::CredentialTooLong, reply) = g.screen(&req, NOW, &live)
            else {
                panic!("refused");
            };
            assert_eq!(code_of(&reply), 401);
        }
    }

    #[test]
    fn token_bucket() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, t0);
        assert!(b.admit(t0, 600));
        assert!(!b.admit(t0, 600), "only 400 left");
        assert!(b.admit(t0, 400));
        assert!(!b.admit(t0, 1));
        let half = t0 + Duration::from_millis(500);
        assert!(b.admit(half, 500));
        assert!(!b.admit(half, 1));
        // Idle time fills the bucket to one second's worth, no more.
        let later = t0 + Duration::from_secs(60);
        assert!(!b.admit(later, 1001));
        assert!(b.admit(later, 1000));
        // A clock that goes back takes nothing and gives nothing.
        assert!(!b.admit(t0, 1));
    }
}

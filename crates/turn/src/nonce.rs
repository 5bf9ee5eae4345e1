//! A gate in front of the `turn` crate's nonces.
//!
//! The crate stores every nonce it hands out (in the 401 to a request without
//! MESSAGE-INTEGRITY, and in the 438 to one with an unknown nonce) in a map that only shrinks
//! when a client presents a nonce that has gone stale. Anyone who can send UDP could grow that
//! map without bound, one entry per spoofable datagram. This gate answers those challenges
//! itself with a nonce the crate issued earlier, so the crate issues a new nonce only when the
//! gate rotates its current one: a handful per hour, whatever the traffic.
//!
//! How: the gate watches the crate's error responses for their NONCE and keeps the newest one
//! (`current`) and the one before it. A request that needs authentication (Allocate, Refresh,
//! CreatePermission, ChannelBind) passes to the crate only when it carries
//! MESSAGE-INTEGRITY and one of those two nonces; otherwise the gate answers 401 (no
//! integrity) or 438 (unknown or retired nonce) with `current`. Nonces retire well before the
//! crate's one-hour lifetime, so every nonce that reaches the crate is one it still knows.
//! When `current` is due for rotation, one unauthenticated request per second passes, and the
//! crate's answer to it carries the next nonce.
//!
//! Everything here is pure: time comes in as an `Instant`, and the gate returns bytes to send
//! rather than sending them.

use std::time::{Duration, Instant};

/// A nonce is replaced after this long...
const ROTATE_AFTER: Duration = Duration::from_secs(10 * 60);
/// ...and refused after this long, well inside the crate's `NONCE_LIFETIME` of one hour.
const RETIRE_AFTER: Duration = Duration::from_secs(30 * 60);
/// While a rotation is due, at most one unauthenticated request per this long reaches the crate.
const PASS_INTERVAL: Duration = Duration::from_secs(1);

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_ERROR_CODE: u16 = 0x0009;
const ATTR_REALM: u16 = 0x0014;
const ATTR_NONCE: u16 = 0x0015;
const METHOD_ALLOCATE: u16 = 0x003;
const METHOD_REFRESH: u16 = 0x004;
const METHOD_CREATE_PERMISSION: u16 = 0x008;
const METHOD_CHANNEL_BIND: u16 = 0x009;

/// What to do with a datagram from a client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Hand it to the crate.
    Pass,
    /// Answer it with these bytes instead.
    Answer(Vec<u8>),
    /// Drop it: a rotation is due and a request already passed this second. The client's
    /// STUN retransmission comes back within a second.
    Drop,
}

/// The STUN header and the attributes the gate reads.
struct Stun<'a> {
    method: u16,
    class: u8,
    transaction: &'a [u8],
    nonce: Option<&'a [u8]>,
    integrity: bool,
}

fn parse(b: &[u8]) -> Option<Stun<'_>> {
    // STUN: first two bits zero, magic cookie, length a multiple of 4 that covers the rest.
    if b.len() < 20 || b[0] & 0xc0 != 0 || b[4..8] != MAGIC_COOKIE {
        return None;
    }
    let typ = u16::from_be_bytes([b[0], b[1]]);
    let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
    if len % 4 != 0 || b.len() != 20 + len {
        return None;
    }
    let method = (typ & 0x000f) | ((typ & 0x00e0) >> 1) | ((typ & 0x3e00) >> 2);
    let class = (((typ >> 4) & 1) | ((typ >> 7) & 2)) as u8;
    let mut msg = Stun {
        method,
        class,
        transaction: &b[8..20],
        nonce: None,
        integrity: false,
    };
    let mut rest = &b[20..];
    while rest.len() >= 4 {
        let t = u16::from_be_bytes([rest[0], rest[1]]);
        let l = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = rest.get(4..4 + l)?;
        match t {
            ATTR_NONCE => msg.nonce = Some(value),
            ATTR_MESSAGE_INTEGRITY => msg.integrity = true,
            _ => {}
        }
        rest = rest.get((4 + l).next_multiple_of(4)..).unwrap_or(&[]);
    }
    Some(msg)
}

fn needs_auth(m: &Stun<'_>) -> bool {
    m.class == 0
        && matches!(
            m.method,
            METHOD_ALLOCATE | METHOD_REFRESH | METHOD_CREATE_PERMISSION | METHOD_CHANNEL_BIND
        )
}

fn push_attr(out: &mut Vec<u8>, typ: u16, value: &[u8]) {
    out.extend_from_slice(&typ.to_be_bytes());
    out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// An error response to `req` with ERROR-CODE, NONCE and REALM, as the crate would send it.
fn challenge(req: &Stun<'_>, code: u16, reason: &str, nonce: &[u8], realm: &str) -> Vec<u8> {
    let m = req.method;
    // The method's bits around the class bits, with class 0b11 (error response).
    let typ = (m & 0x000f) | ((m & 0x0070) << 1) | ((m & 0x0f80) << 2) | 0x0110;
    let mut out = Vec::with_capacity(64 + nonce.len() + realm.len());
    out.extend_from_slice(&typ.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&MAGIC_COOKIE);
    out.extend_from_slice(req.transaction);
    let mut error = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
    error.extend_from_slice(reason.as_bytes());
    push_attr(&mut out, ATTR_ERROR_CODE, &error);
    push_attr(&mut out, ATTR_NONCE, nonce);
    push_attr(&mut out, ATTR_REALM, realm.as_bytes());
    let len = u16::try_from(out.len() - 20).unwrap_or(u16::MAX);
    out[2..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// Whether a datagram could be a STUN message (ChannelData starts with 0b01): a cheap test
/// before taking the gate's lock.
pub(crate) fn maybe_stun(b: &[u8]) -> bool {
    b.first().is_some_and(|x| x & 0xc0 == 0)
}

#[derive(Debug, Default)]
pub(crate) struct NonceGate {
    current: Option<(Vec<u8>, Instant)>,
    previous: Option<(Vec<u8>, Instant)>,
    last_pass: Option<Instant>,
}

impl NonceGate {
    fn valid<'a>(&'a self, now: Instant) -> impl Iterator<Item = &'a [u8]> + 'a {
        [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .filter(move |(_, at)| now.saturating_duration_since(*at) < RETIRE_AFTER)
            .map(|(n, _)| n.as_slice())
    }

    /// Judge a datagram from a client.
    pub(crate) fn on_request(&mut self, now: Instant, datagram: &[u8], realm: &str) -> Verdict {
        let Some(req) = parse(datagram).filter(needs_auth) else {
            return Verdict::Pass;
        };
        let known = req.nonce.is_some_and(|n| self.valid(now).any(|v| v == n));
        if req.integrity && known {
            return Verdict::Pass;
        }
        let rotation_due = self
            .current
            .as_ref()
            .is_none_or(|(_, at)| now.saturating_duration_since(*at) >= ROTATE_AFTER);
        if rotation_due
            && self
                .last_pass
                .is_none_or(|at| now.saturating_duration_since(at) >= PASS_INTERVAL)
        {
            self.last_pass = Some(now);
            return Verdict::Pass;
        }
        let Some(nonce) = self.valid(now).next().map(<[u8]>::to_vec) else {
            return Verdict::Drop;
        };
        Verdict::Answer(if req.integrity {
            challenge(&req, 438, "Stale Nonce", &nonce, realm)
        } else {
            challenge(&req, 401, "Unauthorized", &nonce, realm)
        })
    }

    /// Watch a datagram the crate sends to a client; returns whether it carried a new nonce
    /// (the crate stored one more).
    pub(crate) fn on_response(&mut self, now: Instant, datagram: &[u8]) -> bool {
        let Some(resp) = parse(datagram).filter(|m| m.class == 3) else {
            return false;
        };
        let Some(nonce) = resp.nonce else {
            return false;
        };
        if self.current.as_ref().is_some_and(|(n, _)| n == nonce) {
            return false;
        }
        self.previous = self.current.replace((nonce.to_vec(), now));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: u16, nonce: Option<&[u8]>, integrity: bool) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&method.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(&[7; 12]);
        push_attr(&mut b, 0x0006, b"1700000600:42");
        if let Some(n) = nonce {
            push_attr(&mut b, ATTR_NONCE, n);
        }
        if integrity {
            push_attr(&mut b, ATTR_MESSAGE_INTEGRITY, &[0; 20]);
        }
        let len = u16::try_from(b.len() - 20).expect("small");
        b[2..4].copy_from_slice(&len.to_be_bytes());
        b
    }

    fn crate_challenge(nonce: &[u8]) -> Vec<u8> {
        let req = request(METHOD_ALLOCATE, None, false);
        challenge(&parse(&req).expect("stun"), 401, "", nonce, "test")
    }

    #[test]
    fn challenges_round_trip_through_the_parser() {
        let req = request(METHOD_ALLOCATE, None, false);
        let out = challenge(
            &parse(&req).expect("stun"),
            401,
            "Unauthorized",
            b"abc",
            "test",
        );
        // Allocate error response: 0x0113.
        assert_eq!(out[..2], [0x01, 0x13]);
        let p = parse(&out).expect("well formed");
        assert_eq!((p.method, p.class), (METHOD_ALLOCATE, 3));
        assert_eq!(p.transaction, &[7; 12]);
        assert_eq!(p.nonce, Some(&b"abc"[..]));
        let cb = request(METHOD_CHANNEL_BIND, None, false);
        let out = challenge(&parse(&cb).expect("stun"), 438, "Stale Nonce", b"n", "r");
        assert_eq!(out[..2], [0x01, 0x19]);
    }

    #[test]
    fn the_crate_issues_a_nonce_per_rotation_only() {
        let t0 = Instant::now();
        let mut g = NonceGate::default();
        let bare = request(METHOD_ALLOCATE, None, false);
        // Nothing known yet: the first request passes, the rest of that second are dropped.
        assert_eq!(g.on_request(t0, &bare, "test"), Verdict::Pass);
        assert_eq!(g.on_request(t0, &bare, "test"), Verdict::Drop);
        assert!(g.on_response(t0, &crate_challenge(b"n1")));
        assert!(!g.on_response(t0, &crate_challenge(b"n1")), "seen already");

        // From now on the gate answers the challenges itself, with the crate's nonce.
        let later = t0 + Duration::from_secs(5);
        for _ in 0..100 {
            let Verdict::Answer(a) = g.on_request(later, &bare, "test") else {
                panic!("the gate answers");
            };
            assert_eq!(parse(&a).expect("stun").nonce, Some(&b"n1"[..]));
        }
        // Integrity with the known nonce passes; with another nonce it gets 438.
        let signed = request(METHOD_ALLOCATE, Some(b"n1"), true);
        assert_eq!(g.on_request(later, &signed, "test"), Verdict::Pass);
        let forged = request(METHOD_ALLOCATE, Some(b"made-up"), true);
        let Verdict::Answer(a) = g.on_request(later, &forged, "test") else {
            panic!("the gate answers");
        };
        assert_eq!(
            a[2..4],
            (u16::try_from(a.len() - 20).expect("small")).to_be_bytes()
        );
        assert_eq!(a[20..22], ATTR_ERROR_CODE.to_be_bytes());
        assert_eq!((a[26], a[27]), (4, 38), "438 Stale Nonce");

        // Rotation: one request passes, the crate's answer brings n2, and n1 still works.
        let rotate = t0 + ROTATE_AFTER;
        assert_eq!(g.on_request(rotate, &bare, "test"), Verdict::Pass);
        assert!(matches!(
            g.on_request(rotate, &bare, "test"),
            Verdict::Answer(_)
        ));
        assert!(g.on_response(rotate, &crate_challenge(b"n2")));
        assert_eq!(g.on_request(rotate, &signed, "test"), Verdict::Pass);
        // n1 retires before the crate would call it stale. (The first request at that time
        // is the next rotation's pass.)
        let retire = t0 + RETIRE_AFTER;
        assert_eq!(g.on_request(retire, &bare, "test"), Verdict::Pass);
        let Verdict::Answer(a) = g.on_request(retire, &signed, "test") else {
            panic!("the gate answers");
        };
        assert_eq!(parse(&a).expect("stun").nonce, Some(&b"n2"[..]));
    }

    #[test]
    fn other_traffic_passes_untouched() {
        let t0 = Instant::now();
        let mut g = NonceGate::default();
        g.on_response(t0, &crate_challenge(b"n1"));
        let binding = request(0x001, None, false);
        assert_eq!(g.on_request(t0, &binding, "test"), Verdict::Pass);
        let send_indication = {
            let mut b = request(0x006, None, false);
            b[1] |= 0x10; // indication class
            b
        };
        assert_eq!(g.on_request(t0, &send_indication, "test"), Verdict::Pass);
        let channel_data = [0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4];
        assert!(!maybe_stun(&channel_data));
        assert_eq!(g.on_request(t0, &channel_data, "test"), Verdict::Pass);
        assert_eq!(g.on_request(t0, b"junk", "test"), Verdict::Pass);
        assert!(!g.on_response(t0, &binding), "a request is not a challenge");
    }
}

//! The embedded TURN server's handling of client datagrams (`rtcroom_turn::fuzzing`: the
//! nonce gate, then the guard, as the listening socket applies them) on sequences of
//! datagrams: raw bytes, requests that libFuzzer shapes and this harness signs with a valid
//! REST credential (so that the guard's authenticated paths are reached), error responses of
//! the crate that hand out nonces, and time passing.
//!
//! Checked: nothing panics; every answer is a well-formed STUN error response to the request
//! (same method and transaction); a challenge carries a nonce the crate issued; only a request
//! signed with a valid credential is refused by the guard, and a refusal other than 401 is
//! signed with the request's key; an allocation passed for a user never takes the user above
//! the quota.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use rtcroom_turn::fuzzing::{Listener, Outcome};
use stun::agent::TransactionId;
use stun::attributes::{
    ATTR_ERROR_CODE, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME, ATTR_XOR_PEER_ADDRESS, AttrType,
};
use stun::error_code::ErrorCodeAttribute;
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, Getter,
    METHOD_ALLOCATE, METHOD_BINDING, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_REFRESH,
    Message, MessageType, Setter,
};

const SECRET: &[u8] = b"fuzz-secret";
const REALM: &str = "rtcroom";
const START_SECS: u64 = 1_700_000_000;
const PER_USER: usize = 2;
const LIFETIME: u64 = 86_400;
const EVENTS: usize = 64;

struct Harness {
    listener: Listener,
    start: Instant,
    elapsed: u64,
    /// Nonces the crate handed out (what the gate may answer with).
    issued: Vec<Vec<u8>>,
}

/// A request this harness built: what it was, to judge the answer.
struct Built {
    bytes: Vec<u8>,
    method: stun::message::Method,
    /// The credential's uid and key, when it was signed with the right key.
    signed: Option<(String, Vec<u8>)>,
}

impl Harness {
    fn now(&self) -> (Instant, u64) {
        (
            self.start + Duration::from_secs(self.elapsed),
            START_SECS + self.elapsed,
        )
    }

    fn request(&self, u: &mut Unstructured<'_>) -> Result<Built> {
        let method = *u.choose(&[
            METHOD_ALLOCATE,
            METHOD_REFRESH,
            METHOD_CREATE_PERMISSION,
            METHOD_CHANNEL_BIND,
            METHOD_BINDING,
        ])?;
        let class = if u.ratio(7, 8)? {
            CLASS_REQUEST
        } else {
            *u.choose(&[
                CLASS_INDICATION,
                CLASS_SUCCESS_RESPONSE,
                CLASS_ERROR_RESPONSE,
            ])?
        };
        let tid: [u8; 12] = u.arbitrary()?;
        let mut m = Message::new();
        m.transaction_id = TransactionId(tid);
        m.set_type(MessageType::new(method, class));
        m.write_header();
        // "<expiry>:<uid>", expiring from a little in the past to well past the lifetime.
        let (_, now_secs) = self.now();
        let expiry = (now_secs + u.int_in_range(0..=2 * LIFETIME)?).saturating_sub(100);
        let uid = *u.choose(&["u0", "u1", "u2", "", ":", "u:0"])?;
        let username = if u.ratio(1, 8)? {
            u.arbitrary::<String>()?
        } else {
            format!("{expiry}:{uid}")
        };
        m.add(ATTR_USERNAME, username.as_bytes());
        m.add(ATTR_REALM, REALM.as_bytes());
        let nonce = match u.choose_index(self.issued.len() + 1)? {
            i if i < self.issued.len() => self.issued[i].clone(),
            _ => datagram(u)?.to_vec(),
        };
        m.add(ATTR_NONCE, &nonce);
        for _ in 0..u.int_in_range(0..=3u8)? {
            let v4 = u.arbitrary::<bool>()?;
            let mut value = vec![0, if v4 { 1 } else { 2 }];
            value.extend_from_slice(&u.arbitrary::<[u8; 2]>()?);
            let ip: Vec<u8> = if v4 {
                u.arbitrary::<[u8; 4]>()?.to_vec()
            } else {
                u.arbitrary::<[u8; 16]>()?.to_vec()
            };
            value.extend(ip);
            if u.ratio(1, 8)? {
                value.truncate(u.choose_index(value.len())?);
            }
            m.add(ATTR_XOR_PEER_ADDRESS, &value);
        }
        if u.ratio(1, 8)? {
            let typ = AttrType(u.arbitrary()?);
            m.add(typ, datagram(u)?);
        }
        let key = self.listener.key(&username, now_secs);
        let good = u.ratio(7, 8)?;
        let signed = match (key, good) {
            (Some(key), true) => {
                MessageIntegrity(key.clone())
                    .add_to(&mut m)
                    .expect("signing a built message");
                Some((rtcroom_uid(&username).to_owned(), key))
            }
            (_, _) => {
                MessageIntegrity(vec![7; 16])
                    .add_to(&mut m)
                    .expect("signing a built message");
                None
            }
        };
        Ok(Built {
            bytes: m.raw,
            method,
            signed,
        })
    }

    /// The crate's 401 to some request, carrying a nonce: what the gate learns nonces from.
    fn crate_challenge(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let mut m = Message::new();
        m.transaction_id = TransactionId(u.arbitrary()?);
        m.set_type(MessageType::new(METHOD_ALLOCATE, CLASS_ERROR_RESPONSE));
        m.write_header();
        let nonce = datagram(u)?.to_vec();
        m.add(ATTR_NONCE, &nonce);
        m.add(ATTR_REALM, REALM.as_bytes());
        let (now, _) = self.now();
        if self.listener.crate_sent(now, &m.raw) {
            self.issued.push(nonce);
        }
        Ok(())
    }

    fn judge(&mut self, sent: &[u8], built: Option<&Built>, outcome: Outcome) {
        match outcome {
            Outcome::Pass { allocate: None } | Outcome::Dropped => {}
            Outcome::Pass {
                allocate: Some(uid),
            } => {
                if let Some(b) = built {
                    assert_eq!(b.method, METHOD_ALLOCATE, "a non-Allocate counted as one");
                }
                if let Some(uid) = uid {
                    let b = built.expect("a raw datagram cannot be authenticated");
                    let (signed_uid, _) =
                        b.signed.as_ref().expect("only a signed request has a uid");
                    assert_eq!(&uid, signed_uid, "the allocation counted for another user");
                    self.listener.allocated(&uid);
                    assert!(
                        self.listener.live_of(&uid) <= PER_USER,
                        "a user above the allocation quota"
                    );
                }
            }
            Outcome::Challenged(reply) => {
                let (m, code) = error_response(sent, &reply);
                assert!(matches!(code, 401 | 438), "a challenge with code {code}");
                let nonce = m.get(ATTR_NONCE).expect("a challenge carries a nonce");
                assert!(
                    self.issued.contains(&nonce),
                    "a challenge with a nonce the crate never issued"
                );
            }
            Outcome::Refused(reply) => {
                let b = built.expect("a raw datagram cannot be authenticated");
                let (_, key) = b
                    .signed
                    .as_ref()
                    .expect("only an authenticated request is refused");
                let (mut m, code) = error_response(sent, &reply);
                assert!(
                    matches!(code, 401 | 403 | 486),
                    "a refusal with code {code}"
                );
                if code != 401 {
                    MessageIntegrity(key.clone())
                        .check(&mut m)
                        .expect("a refusal is signed with the request's key");
                }
            }
        }
    }
}

/// The uid of a REST username, as the guard should read it (written out here rather than
/// taken from the guard, so that the check does not share the code it checks).
fn rtcroom_uid(username: &str) -> &str {
    username.split_once(':').map_or(username, |(_, uid)| uid)
}

/// The reply, checked to be an error response to `request`; with its error code.
fn error_response(request: &[u8], reply: &[u8]) -> (Message, u16) {
    let mut m = Message::new();
    m.unmarshal_binary(reply)
        .expect("an answer is a STUN message");
    let mut req = Message::new();
    req.unmarshal_binary(request)
        .expect("only STUN requests are answered");
    assert_eq!(
        m.typ.class, CLASS_ERROR_RESPONSE,
        "an answer that is not an error response"
    );
    assert_eq!(m.typ.method, req.typ.method, "an answer to another method");
    assert_eq!(
        m.transaction_id, req.transaction_id,
        "an answer to another transaction"
    );
    assert!(m.contains(ATTR_ERROR_CODE));
    let mut e = ErrorCodeAttribute::default();
    e.get_from(&m).expect("a readable error code");
    (m, e.code.0)
}

/// Bytes with a two-byte big-endian length in front (a kept STUN message reads as itself).
fn datagram<'a>(u: &mut Unstructured<'a>) -> Result<&'a [u8]> {
    let len = usize::from(u16::from_be_bytes(u.arbitrary()?));
    u.bytes(len.min(u.len()))
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let mut h = Harness {
        listener: Listener::new(
            SECRET,
            REALM,
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
            (PER_USER, LIFETIME),
        ),
        start: Instant::now(),
        elapsed: 0,
        issued: Vec::new(),
    };
    for _ in 0..EVENTS {
        if u.is_empty() {
            break;
        }
        match u.arbitrary::<u8>()? % 6 {
            0 => {
                let raw = datagram(u)?.to_vec();
                let (now, secs) = h.now();
                let outcome = h.listener.client(now, secs, &raw);
                h.judge(&raw, None, outcome);
            }
            1 => h.crate_challenge(u)?,
            2 => h.elapsed += u64::from(u.int_in_range(0..=4000u16)?),
            _ => {
                let built = h.request(u)?;
                let (now, secs) = h.now();
                let outcome = h.listener.client(now, secs, &built.bytes);
                h.judge(&built.bytes, Some(&built), outcome);
            }
        }
    }
    Ok(())
}

pub fn check(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}

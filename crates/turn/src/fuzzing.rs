//! The listening socket's handling of client datagrams without its IO, for the fuzz targets
//! (fuzz/, feature `fuzzing`): the nonce gate, then the guard, in the order
//! `ClientConn::recv_from` applies them, and the gate's watch on what the crate sends
//! (`ClientConn::sent`). The server does not use this module.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use crate::auth::rest_key;
use crate::config::PortRange;
use crate::conn::may_carry_nonce;
use crate::filter::PeerFilter;
use crate::guard::{Guard, Limits, PeerPolicy, Screen};
use crate::nonce::{NonceGate, Verdict, maybe_stun};

/// What became of a client datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Handed to the crate; for an Allocate, with the uid it counts against (if authenticated).
    Pass { allocate: Option<Option<String>> },
    /// Answered by the nonce gate (401 or 438 with a nonce the crate issued).
    Challenged(Vec<u8>),
    /// Dropped by the nonce gate while a rotation is due.
    Dropped,
    /// Answered by the guard (403, 486, or 401 for a credential that lives too long).
    Refused(Vec<u8>),
}

/// The listening socket's state: the gate, the guard, and live allocations per uid.
#[derive(Debug)]
pub struct Listener {
    gate: NonceGate,
    guard: Guard,
    realm: String,
    live: HashMap<String, usize>,
}

impl Listener {
    /// A listener with the server's default policy, its own IP `own_ip`, relay ports
    /// 49152–65535.
    pub fn new(secret: &[u8], realm: &str, own_ip: IpAddr, limits: (usize, u64)) -> Self {
        let ports = PortRange::new(49152, 65535).expect("a valid range");
        Self {
            gate: NonceGate::default(),
            guard: Guard {
                secret: secret.to_vec(),
                peers: PeerPolicy::new(PeerFilter::default(), &[own_ip], ports),
                limits: Limits {
                    max_allocations_per_user: limits.0,
                    max_credential_lifetime_secs: limits.1,
                },
            },
            realm: realm.to_owned(),
            live: HashMap::new(),
        }
    }

    /// A datagram from a client at `now` (`now_secs`: the same moment in unix seconds).
    pub fn client(&mut self, now: Instant, now_secs: u64, datagram: &[u8]) -> Outcome {
        if !maybe_stun(datagram) {
            return Outcome::Pass { allocate: None };
        }
        match self.gate.on_request(now, datagram, &self.realm) {
            Verdict::Drop => Outcome::Dropped,
            Verdict::Answer(reply) => Outcome::Challenged(reply),
            Verdict::Pass => match self.guard.screen(datagram, now_secs, &self.live) {
                Screen::Pass | Screen::ChannelBind(_) => Outcome::Pass { allocate: None },
                Screen::Allocate(uid) => Outcome::Pass {
                    allocate: Some(uid),
                },
                Screen::Refuse(_, reply) => Outcome::Refused(reply),
            },
        }
    }

    /// The crate allocated for `uid` (what the relay allocator does after a passed Allocate).
    pub fn allocated(&mut self, uid: &str) {
        *self.live.entry(uid.to_owned()).or_default() += 1;
    }

    /// Live allocations of `uid`.
    pub fn live_of(&self, uid: &str) -> usize {
        self.live.get(uid).copied().unwrap_or(0)
    }

    /// A datagram the crate sends to a client; whether it carried a new nonce.
    pub fn crate_sent(&mut self, now: Instant, datagram: &[u8]) -> bool {
        may_carry_nonce(datagram) && self.gate.on_response(now, datagram)
    }

    /// The long-term key of a REST username, as the guard and the crate check it.
    pub fn key(&self, username: &str, now_secs: u64) -> Option<Vec<u8>> {
        rest_key(&self.guard.secret, username, &self.realm, now_secs).ok()
    }
}

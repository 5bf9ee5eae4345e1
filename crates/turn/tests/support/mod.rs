//! A small scripted TURN client over UDP, shared by the embedded TURN server's own tests
//! and the server binary's (`crates/server/tests/turn_limits.rs` includes this file):
//! long-term credentials minted by `rtcroom-ice`, messages built with the `stun` crate, a
//! 401/438 challenge answered by signing again.
#![allow(dead_code)] // each including test uses the part of the client it needs

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stun::agent::TransactionId;
use stun::attributes::{ATTR_DATA, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use stun::error_code::ErrorCodeAttribute;
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_INDICATION, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, Getter, METHOD_ALLOCATE,
    METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_DATA, METHOD_SEND, Message, MessageClass,
    MessageType, Method, Setter,
};
use stun::textattrs::TextAttribute;
use tokio::net::UdpSocket;
use turn::proto::channum::ChannelNumber;
use turn::proto::data::Data;
use turn::proto::peeraddr::PeerAddress;
use turn::proto::relayaddr::RelayedAddress;
use turn::proto::reqtrans::RequestedTransport;

/// How long a request waits for its answer.
pub const WAIT: Duration = Duration::from_secs(5);

/// The wall clock in Unix milliseconds (credentials expire on it).
pub fn now_ms() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(d.as_millis()).expect("fits")
}

/// A response: its class, error code (0 for success) and the message.
pub struct Response {
    pub class: MessageClass,
    pub code: u16,
    pub msg: Message,
}

/// A TURN client over one UDP socket, with a REST credential.
pub struct Client {
    socket: UdpSocket,
    server: SocketAddr,
    username: String,
    password: String,
    /// `(realm, nonce)` of the last challenge.
    challenge: Option<(String, String)>,
}

impl Client {
    /// A client of the TURN server at `server`, with a credential for `uid` minted from
    /// `secret`, valid for `ttl_secs`.
    pub async fn new(server: SocketAddr, secret: &str, uid: &str, ttl_secs: u64) -> Self {
        let cred = rtcroom_ice::mint(secret.as_bytes(), uid, now_ms(), ttl_secs);
        Self {
            socket: UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .expect("client socket"),
            server,
            username: cred.username,
            password: cred.credential,
            challenge: None,
        }
    }

    /// The long-term key of the credential, for checking signed answers.
    pub fn key(&self) -> MessageIntegrity {
        let realm = self.challenge.as_ref().map_or("", |(r, _)| r.as_str());
        MessageIntegrity::new_long_term_integrity(
            self.username.clone(),
            realm.to_owned(),
            self.password.clone(),
        )
    }

    pub async fn exchange(&self, msg: &Message) -> Response {
        self.socket
            .send_to(&msg.raw, self.server)
            .await
            .expect("sent");
        let mut buf = vec![0u8; 2048];
        loop {
            let (n, _) = tokio::time::timeout(WAIT, self.socket.recv_from(&mut buf))
                .await
                .expect("an answer")
                .expect("received");
            let mut m = Message::new();
            if m.unmarshal_binary(&buf[..n]).is_err() || m.transaction_id != msg.transaction_id {
                continue; // a Data indication or ChannelData
            }
            let mut e = ErrorCodeAttribute::default();
            let code = if e.get_from(&m).is_ok() { e.code.0 } else { 0 };
            return Response {
                class: m.typ.class,
                code,
                msg: m,
            };
        }
    }

    /// A request with `attrs`, signed; answers a 401/438 challenge once by signing again.
    pub async fn request(&mut self, method: Method, attrs: Vec<Box<dyn Setter>>) -> Response {
        let build = |me: &Self, attrs: &[Box<dyn Setter>]| {
            let mut m = Message::new();
            let mut setters: Vec<Box<dyn Setter>> = vec![
                Box::new(TransactionId::new()),
                Box::new(MessageType::new(method, CLASS_REQUEST)),
            ];
            m.build(&setters).expect("header");
            for a in attrs {
                a.add_to(&mut m).expect("attribute");
            }
            if let Some((realm, nonce)) = &me.challenge {
                setters = vec![
                    Box::new(TextAttribute::new(ATTR_USERNAME, me.username.clone())),
                    Box::new(TextAttribute::new(ATTR_REALM, realm.clone())),
                    Box::new(TextAttribute::new(ATTR_NONCE, nonce.clone())),
                    Box::new(me.key()),
                ];
                for s in &setters {
                    s.add_to(&mut m).expect("auth attribute");
                }
            }
            m
        };
        for _ in 0..3 {
            let resp = self.exchange(&build(self, &attrs)).await;
            let challenged = resp.code == 401 || resp.code == 438;
            let nonce = TextAttribute::get_from_as(&resp.msg, ATTR_NONCE);
            let realm = TextAttribute::get_from_as(&resp.msg, ATTR_REALM);
            match (challenged, nonce, realm) {
                (true, Ok(n), Ok(r))
                    if self.challenge.as_ref() != Some(&(r.text.clone(), n.text.clone())) =>
                {
                    self.challenge = Some((r.text, n.text));
                }
                _ => return resp,
            }
        }
        panic!("challenged again and again");
    }

    pub async fn allocate(&mut self) -> Response {
        let udp = RequestedTransport {
            protocol: turn::proto::PROTO_UDP,
        };
        self.request(METHOD_ALLOCATE, vec![Box::new(udp)]).await
    }

    pub async fn permit(&mut self, peer: SocketAddr) -> Response {
        let peer = PeerAddress {
            ip: peer.ip(),
            port: peer.port(),
        };
        self.request(METHOD_CREATE_PERMISSION, vec![Box::new(peer)])
            .await
    }

    pub async fn bind_channel(&mut self, number: u16, peer: SocketAddr) -> Response {
        let peer = PeerAddress {
            ip: peer.ip(),
            port: peer.port(),
        };
        self.request(
            METHOD_CHANNEL_BIND,
            vec![Box::new(ChannelNumber(number)), Box::new(peer)],
        )
        .await
    }

    /// A Send indication: `data` to `peer`, through the allocation.
    pub async fn send(&self, peer: SocketAddr, data: &[u8]) {
        let mut m = Message::new();
        let setters: Vec<Box<dyn Setter>> = vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_SEND, CLASS_INDICATION)),
            Box::new(PeerAddress {
                ip: peer.ip(),
                port: peer.port(),
            }),
            Box::new(Data(data.to_vec())),
        ];
        m.build(&setters).expect("indication");
        self.socket
            .send_to(&m.raw, self.server)
            .await
            .expect("sent");
    }

    /// Data indications received until none comes for a second: their count.
    pub async fn drain_data(&self) -> usize {
        let mut buf = vec![0u8; 2048];
        let mut count = 0;
        while let Ok(r) =
            tokio::time::timeout(Duration::from_secs(1), self.socket.recv_from(&mut buf)).await
        {
            let (n, _) = r.expect("received");
            let mut m = Message::new();
            if m.unmarshal_binary(&buf[..n]).is_ok()
                && m.typ == MessageType::new(METHOD_DATA, CLASS_INDICATION)
                && m.contains(ATTR_DATA)
            {
                count += 1;
            }
        }
        count
    }
}

pub fn ok(resp: &Response) -> bool {
    resp.class == CLASS_SUCCESS_RESPONSE
}

pub fn relayed_address(resp: &Response) -> SocketAddr {
    let mut a = RelayedAddress::default();
    a.get_from(&resp.msg).expect("XOR-RELAYED-ADDRESS");
    SocketAddr::new(a.ip, a.port)
}

//! A small scripted TURN client over UDP or TCP, shared by the embedded TURN server's own tests
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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
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

/// How a client reaches the server.
enum Wire {
    Udp(UdpSocket),
    /// One connection, messages framed as RFC 8656 has it over a stream.
    Tcp(tokio::sync::Mutex<TcpStream>),
}

/// The next message on a stream: a STUN message or padded ChannelData.
async fn read_framed(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.ok()?;
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let total = if head[0] & 0xc0 == 0 {
        20 + len
    } else {
        4 + len.div_ceil(4) * 4
    };
    let mut msg = head.to_vec();
    msg.resize(total, 0);
    s.read_exact(&mut msg[4..]).await.ok()?;
    Some(msg)
}

/// A TURN client over one UDP socket or one TCP connection, with a REST credential.
pub struct Client {
    wire: Wire,
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
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("client socket");
        Self::on(Wire::Udp(socket), server, secret, uid, ttl_secs)
    }

    /// The same over a TCP connection to the server's TCP listener at `server`.
    pub async fn new_tcp(server: SocketAddr, secret: &str, uid: &str, ttl_secs: u64) -> Self {
        let stream = TcpStream::connect(server).await.expect("connected");
        let wire = Wire::Tcp(tokio::sync::Mutex::new(stream));
        Self::on(wire, server, secret, uid, ttl_secs)
    }

    fn on(wire: Wire, server: SocketAddr, secret: &str, uid: &str, ttl_secs: u64) -> Self {
        let cred = rtcroom_ice::mint(secret.as_bytes(), uid, now_ms(), ttl_secs);
        Self {
            wire,
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

    /// Send one message (a datagram, or framed on the connection).
    pub async fn send_raw(&self, bytes: &[u8]) {
        match &self.wire {
            Wire::Udp(s) => {
                s.send_to(bytes, self.server).await.expect("sent");
            }
            Wire::Tcp(s) => s.lock().await.write_all(bytes).await.expect("sent"),
        }
    }

    /// The next message from the server, or `None` if none comes within `wait`.
    pub async fn recv_raw(&self, wait: Duration) -> Option<Vec<u8>> {
        match &self.wire {
            Wire::Udp(s) => {
                let mut buf = vec![0u8; 2048];
                let (n, _) = tokio::time::timeout(wait, s.recv_from(&mut buf))
                    .await
                    .ok()?
                    .expect("received");
                buf.truncate(n);
                Some(buf)
            }
            Wire::Tcp(s) => {
                let mut s = s.lock().await;
                tokio::time::timeout(wait, read_framed(&mut s)).await.ok()?
            }
        }
    }

    /// ChannelData on channel `number` (padded to 4 bytes, as a stream requires).
    pub async fn send_channel(&self, number: u16, data: &[u8]) {
        let mut m = number.to_be_bytes().to_vec();
        m.extend_from_slice(&u16::try_from(data.len()).expect("short").to_be_bytes());
        m.extend_from_slice(data);
        m.resize(4 + data.len().div_ceil(4) * 4, 0);
        self.send_raw(&m).await;
    }

    pub async fn exchange(&self, msg: &Message) -> Response {
        self.send_raw(&msg.raw).await;
        loop {
            let buf = self.recv_raw(WAIT).await.expect("an answer");
            let mut m = Message::new();
            if m.unmarshal_binary(&buf).is_err() || m.transaction_id != msg.transaction_id {
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
        self.send_raw(&m.raw).await;
    }

    /// Data indications received until none comes for a second: their count.
    pub async fn drain_data(&self) -> usize {
        let mut count = 0;
        while let Some(buf) = self.recv_raw(Duration::from_secs(1)).await {
            let mut m = Message::new();
            if m.unmarshal_binary(&buf).is_ok()
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

//! The bus: what nodes say to each other over Redis pub/sub, and the one task per node that
//! publishes it.
//!
//! Each node listens on one channel, `<prefix>:bus:<node id>`. Envelopes are postcard (serde,
//! a compact binary format): they carry a client's frame and the owner's messages as their
//! text, which a binary format copies as it is, where JSON would escape every quote and
//! `\r\n` of an SDP on one node and unescape it on the other (about 15 µs of CPU per relayed
//! offer, measured with JSON envelopes; docs/benchmarks.md). The envelope around the text is
//! a few bytes.
//!
//! The publisher takes what is queued (after letting the tasks that are ready run, so that
//! what they queue joins the batch), writes it as one pipeline of PUBLISH commands on its own
//! Redis connection ([`super::resp`]) and reads the answers. A PUBLISH that reached no
//! subscriber names a node that does not listen; an edge's envelope among those comes back
//! to the edge ([`Bounce`]), which holds it for the room's next owner ([`super::edge`]).
//!
//! **Invariant:** per connection, what one node sends another arrives in the order it was
//! sent: every envelope goes through this node's single publisher task, in queue order, on
//! one Redis connection, and Redis delivers a channel's messages in the order published.
//! An envelope that bounced is sent again only ahead of everything its connection sent
//! after it (the edge numbers a connection's envelopes and holds the later ones).

use super::link::Link;
use super::resp::{Conn, Reply};
use crate::ops::metrics;
use rtcroom_core::{CloseReason, Grant};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One message between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Envelope {
    /// Edge → owner: a socket on `edge` joins a room of the owner.
    Open {
        edge: String,
        conn: u64,
        ip: String,
        /// Where GeoIP placed the client: latitude, longitude.
        at: Option<(f64, f64)>,
    },
    /// Edge → owner: a frame of a bound socket, as its text, with the edge's token check.
    Frame {
        edge: String,
        conn: u64,
        text: String,
        grant: Grant,
        /// A binary message of this many bytes instead of `text` (refused by the owner).
        binary: Option<usize>,
    },
    /// Edge → owner: a bound socket closed.
    Closed {
        edge: String,
        conn: u64,
        clean: bool,
    },
    /// Owner → edge: what to write to a socket, in order.
    Deliver {
        owner: String,
        conn: u64,
        items: Vec<Item>,
    },
    /// New owner → edge: these sockets of yours are served by `owner` from now on.
    Moved { owner: String, conns: Vec<u64> },
    /// After an outage: the sender keeps this room (the lower node id); end your copy.
    End { app: String, room: String },
    /// A question to every node (admin views); answered with `Answer` on the asker's channel.
    Ask {
        from: String,
        id: u64,
        question: Question,
    },
    Answer {
        id: u64,
        /// The answer, as JSON text.
        body: String,
    },
    /// Edge → owner: a bound socket's `join` names a room another node serves; let the
    /// socket go if its member is in no room here (it left, or its join was refused).
    LetGo { edge: String, conn: u64 },
    /// Owner → edge: the answer to `LetGo`, sent after everything the owner sent the socket.
    LetGone {
        owner: String,
        conn: u64,
        released: bool,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Question {
    Rooms,
    Stats,
    Kick {
        app: String,
        room: String,
        uid: String,
        why: String,
    },
    /// Draining owner → target: adopt this room from its state in Redis (the owner key
    /// names the target already); answered once the room is in the target's engine, so that
    /// the draining node tells its own sockets to reconnect only when they can resume there.
    Adopt {
        from: String,
        app: String,
        room: String,
    },
}

/// One thing for an edge to do with a socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Item {
    /// A text message, serialized by the owner: its UTF-8 bytes, carried as bytes so that
    /// neither node checks them again (postcard writes bytes exactly as it writes a string,
    /// length and content, so nodes before and after this choice read each other).
    Text(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A close frame.
    Close(CloseReason),
    /// The owner cut the socket off (its queue there was full).
    Cut,
}

#[cfg(test)]
impl Outgoing {
    /// The node it goes to (none for a channel or a fence).
    pub fn node(&self) -> Option<&str> {
        match &self.to {
            Target::Node(n) => Some(n),
            _ => None,
        }
    }

    /// The connection whose fence this is.
    pub fn fence(&self) -> Option<u64> {
        match self.to {
            Target::Fence(c) => Some(c),
            _ => None,
        }
    }

    /// An edge's envelope: its connection and number.
    pub fn held(&self) -> Option<(u64, u64)> {
        self.held
    }

    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// Where an envelope goes: a node's channel, or a channel every node listens to; or
/// nowhere: a fence of a connection, which comes back to the edge ([`Back::Passed`]) once
/// everything queued before it has been published and its bounces are back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Node(Arc<str>),
    Channel(String),
    Fence(u64),
}

/// One envelope on its way.
#[derive(Debug)]
pub struct Outgoing {
    to: Target,
    payload: Vec<u8>,
    /// An edge's envelope for its connection's owner (`Open`, `Frame`, `Closed`): the
    /// connection and the envelope's number in its sequence. When it reaches no subscriber
    /// (the owner died) it comes back to the edge as a [`Bounce`], to be held for the room's
    /// next owner.
    held: Option<(u64, u64)>,
}

/// What the publisher hands back to the edges, in publishing order.
#[derive(Debug)]
pub enum Back {
    /// An edge's envelope that reached no subscriber.
    Bounce(Bounce),
    /// A connection's fence ([`Bus::fence`]): every envelope queued before it was answered,
    /// and those that reached no subscriber were handed back before this.
    Passed(u64),
}

/// An edge's envelope that reached no subscriber: its owner `node` does not listen.
#[derive(Debug)]
pub struct Bounce {
    pub node: String,
    pub conn: u64,
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// A word for every other node's ICE registry (`<prefix>:ice`), one of: an ICE API command
/// one node took (`body`, the request as the agent sent it, and where the taker's GeoIP
/// placed the server), a command about the sender's embedded TURN server (`embedded`), or
/// reservations the sender's selections made (`reserved`). Nodes of an earlier version read
/// only `body`, which is empty in the last two.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IceNote {
    pub from: String,
    #[serde(default)]
    pub body: String,
    pub at: Option<(f64, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded: Option<EmbeddedNote>,
    /// `(server, kbps)`, the server named `ADDRESS:TURN_PORT` (a bare address from a node of
    /// an earlier version): held by every registry until that server's next report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reserved: Vec<(String, u64)>,
}

/// A command about the sender's embedded TURN server, and which `[turn] secret` it checks
/// credentials with (a fingerprint, see `ice::secret_id`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddedNote {
    pub body: String,
    pub secret_id: String,
}

/// The publishing side of the bus: a bounded queue into the node's publisher task.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: mpsc::Sender<Outgoing>,
}

/// How many envelopes may wait for the publisher (beyond that, senders wait).
const QUEUE: usize = 8192;

/// At most this many envelopes in one pipelined write.
const BATCH: usize = 256;

/// How long one pipelined PUBLISH may take before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1000);

impl Bus {
    /// Start the publisher task. A PUBLISH that reached no subscriber names its node on
    /// `dead`: that node does not listen, so it is treated as dead at once; an edge's
    /// envelope among them comes back on `bounced`, as do fences.
    pub fn start(
        link: Arc<Link>,
        dead: mpsc::UnboundedSender<String>,
        bounced: mpsc::UnboundedSender<Back>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(publish_loop(link, rx, dead, bounced));
        Self { tx }
    }

    /// Queue `envelope` for node `to`, in order with everything queued before it.
    pub async fn send(&self, to: &str, envelope: &Envelope) {
        self.queue(Target::Node(to.into()), encode(envelope), None)
            .await;
    }

    /// Queue an edge's encoded envelope of connection `conn` (number `seq` of its sequence)
    /// for its owner `to`; it comes back as a [`Bounce`] if `to` does not listen.
    pub async fn send_held(&self, to: &str, conn: u64, seq: u64, payload: Vec<u8>) {
        self.queue(Target::Node(to.into()), payload, Some((conn, seq)))
            .await;
    }

    /// Queue a fence for connection `conn`: it comes back as [`Back::Passed`] after every
    /// envelope queued before it has been answered by Redis (and handed back if it bounced).
    pub async fn fence(&self, conn: u64) {
        self.queue(Target::Fence(conn), Vec::new(), None).await;
    }

    /// Queue `payload` for every subscriber of `channel`.
    pub async fn publish(&self, channel: String, payload: String) {
        self.queue(Target::Channel(channel), payload.into_bytes(), None)
            .await;
    }

    /// A bus whose envelopes are read from the returned queue instead of published (the
    /// edge's unit tests play the publisher).
    #[cfg(test)]
    pub fn unpublished() -> (Self, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Self { tx }, rx)
    }

    async fn queue(&self, to: Target, payload: Vec<u8>, held: Option<(u64, u64)>) {
        let _ = self.tx.send(Outgoing { to, payload, held }).await;
    }
}

/// An envelope as it goes over Redis.
pub fn encode(envelope: &Envelope) -> Vec<u8> {
    postcard::to_stdvec(envelope).expect("envelopes serialize")
}

/// An envelope as it came over Redis.
pub fn decode(payload: &[u8]) -> Result<Envelope, postcard::Error> {
    postcard::from_bytes(payload)
}

/// `PUBLISH <channel> <payload>` in RESP, appended to `out`; a node's channel is written in
/// place, without a string of its own.
fn push_publish(out: &mut Vec<u8>, prefix: &str, to: &Target, payload: &[u8]) {
    use std::io::Write as _;
    out.extend_from_slice(b"*3\r\n$7\r\nPUBLISH\r\n");
    match to {
        Target::Node(node) => {
            let len = prefix.len() + ":bus:".len() + node.len();
            let _ = write!(out, "${len}\r\n{prefix}:bus:{node}\r\n");
        }
        Target::Channel(c) => {
            let _ = write!(out, "${}\r\n{c}\r\n", c.len());
        }
        Target::Fence(_) => unreachable!("fences are not published"),
    }
    let _ = write!(out, "${}\r\n", payload.len());
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// Write one batch of PUBLISH commands on `conn` (connecting first if there is none) and
/// read their answers: how many subscribers each reached, `None` for one Redis refused.
async fn publish_batch(
    conn: &mut Option<Conn>,
    info: &redis::ConnectionInfo,
    commands: &[u8],
    n: usize,
) -> std::io::Result<Vec<Option<i64>>> {
    let reused = conn.is_some();
    match exchange(conn, info, commands, n).await {
        // A connection kept from before closes with no answer at all when Redis restarted
        // meanwhile: the new Redis never saw the batch, so it goes again on a new connection
        // (once) rather than being lost.
        Err((e, 0)) if reused && e.kind() != std::io::ErrorKind::TimedOut => {
            tracing::debug!(error = %e, "cluster: the bus's Redis connection was stale; publishing again on a new one");
            *conn = None;
            exchange(conn, info, commands, n).await.map_err(|(e, _)| e)
        }
        other => other.map_err(|(e, _)| e),
    }
}

/// One write of `commands` and the `n` answers; on failure, the error and how many answers
/// had come.
async fn exchange(
    conn: &mut Option<Conn>,
    info: &redis::ConnectionInfo,
    commands: &[u8],
    n: usize,
) -> Result<Vec<Option<i64>>, (std::io::Error, usize)> {
    if conn.is_none() {
        *conn = Some(Conn::connect(info).await.map_err(|e| (e, 0))?);
    }
    let c = conn.as_mut().expect("connected above");
    let mut counts = Vec::with_capacity(n);
    let exchange = async {
        c.write(commands).await?;
        for _ in 0..n {
            counts.push(match c.reply().await? {
                Reply::Int(k) => Some(k),
                _ => None,
            });
        }
        Ok::<(), std::io::Error>(())
    };
    let result = tokio::time::timeout(RESPONSE_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "redis: no answer to PUBLISH",
            ))
        });
    match result {
        Ok(()) => Ok(counts),
        Err(e) => {
            *conn = None;
            Err((e, counts.len()))
        }
    }
}

async fn publish_loop(
    link: Arc<Link>,
    mut rx: mpsc::Receiver<Outgoing>,
    dead: mpsc::UnboundedSender<String>,
    bounced: mpsc::UnboundedSender<Back>,
) {
    let info = link.client.get_connection_info().clone();
    let mut conn: Option<Conn> = None;
    let mut batch = Vec::with_capacity(BATCH);
    let mut commands = Vec::with_capacity(64 * 1024);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        // The tasks ready to run go first: what they queue meanwhile joins this batch (one
        // write here, one read and one write in Redis, one read on the receiving node).
        tokio::task::yield_now().await;
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(out) => batch.push(out),
                Err(_) => break,
            }
        }
        commands.clear();
        let mut bytes = 0u64;
        let mut n = 0;
        for out in batch.iter().filter(|o| !matches!(o.to, Target::Fence(_))) {
            bytes += out.payload.len() as u64;
            n += 1;
            push_publish(&mut commands, &link.prefix, &out.to, &out.payload);
        }
        let m = metrics::cluster();
        let answer = if n == 0 {
            Ok(Vec::new())
        } else {
            let started = Instant::now();
            let answer = publish_batch(&mut conn, &info, &commands, n).await;
            if answer.is_ok() {
                m.bus_publish.observe(started.elapsed().as_secs_f64());
                m.bus_messages_out.inc_by(n as u64);
                m.bus_bytes_out.inc_by(bytes);
            }
            answer
        };
        let counts = match answer {
            Ok(counts) => counts,
            Err(e) => {
                conn = None;
                m.bus_dropped.inc_by(n as u64);
                link.trouble(&e);
                // Dropped, not bounced: only the fences come back.
                Vec::new()
            }
        };
        let mut counts = counts.into_iter();
        let mut told = std::collections::BTreeSet::new();
        for out in batch.drain(..) {
            let node = match out.to {
                Target::Fence(c) => {
                    let _ = bounced.send(Back::Passed(c));
                    continue;
                }
                Target::Node(node) => node,
                Target::Channel(_) => {
                    counts.next();
                    continue;
                }
            };
            match counts.next() {
                Some(Some(0)) => {}
                Some(Some(_)) | None => continue,
                Some(None) => {
                    m.bus_dropped.inc();
                    continue;
                }
            }
            if let Some((conn, seq)) = out.held {
                let _ = bounced.send(Back::Bounce(Bounce {
                    node: node.to_string(),
                    conn,
                    seq,
                    payload: out.payload,
                }));
            }
            if told.insert(node.clone()) {
                let _ = dead.send(node.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message's text as the bus carried it before it went as bytes: a node of either
    /// build reads what the other writes during a rolling upgrade.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    enum TextItem {
        Text(String),
    }

    #[test]
    fn a_message_as_bytes_is_written_as_its_text_was() {
        let text = "{\"cmd\":\"relayOffer\",\"msg\":{\"sdp\":\"v=0\\r\\n\u{e9}\"}}";
        let ours = postcard::to_allocvec(&Item::Text(text.as_bytes().to_vec())).unwrap();
        let before = postcard::to_allocvec(&TextItem::Text(text.to_owned())).unwrap();
        assert_eq!(ours, before);
        assert_eq!(
            postcard::from_bytes::<TextItem>(&ours).unwrap(),
            TextItem::Text(text.to_owned())
        );
        match postcard::from_bytes::<Item>(&before).unwrap() {
            Item::Text(bytes) => assert_eq!(bytes, text.as_bytes()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn close_reasons_and_grants_cross_the_bus_unchanged() {
        for reason in [
            CloseReason::Replaced,
            CloseReason::HeartbeatTimeout,
            CloseReason::JoinTimeout,
            CloseReason::TokenExpired,
            CloseReason::Kicked("bye".into()),
            CloseReason::Shutdown,
            CloseReason::ServiceRestart,
        ] {
            let bytes = postcard::to_stdvec(&reason).unwrap();
            let back: CloseReason = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back, reason);
        }
        for grant in [
            Grant::Unchecked,
            Grant::Valid {
                app_id: "10000".into(),
                uid: Some("alice".into()),
                expires_at: rtcroom_core::Millis(1_700_000_000_000),
            },
            Grant::Invalid("expired".into()),
        ] {
            let bytes = postcard::to_stdvec(&grant).unwrap();
            let back: Grant = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back, grant);
        }
    }

    #[test]
    fn a_frame_s_text_crosses_the_bus_byte_for_byte() {
        let text = "{\"cmd\":\"offer\",\"msg\":\"v=0\\r\\n\\u0000 \u{1f600}\"}".to_owned();
        let envelope = Envelope::Frame {
            edge: "a:1".into(),
            conn: 7,
            text: text.clone(),
            grant: Grant::Unchecked,
            binary: None,
        };
        let bytes = encode(&envelope);
        assert!(
            bytes.len() < text.len() + 16,
            "the text is carried as it is"
        );
        match decode(&bytes).unwrap() {
            Envelope::Frame { text: back, .. } => assert_eq!(back, text),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_envelope_decodes_as_it_was_encoded() {
        let question = |q: Question| Envelope::Ask {
            from: "b:2".into(),
            id: 9,
            question: q,
        };
        let all = [
            Envelope::Open {
                edge: "a:1".into(),
                conn: 1,
                ip: "203.0.113.9".into(),
                at: Some((52.5, 13.4)),
            },
            Envelope::Frame {
                edge: "a:1".into(),
                conn: 1,
                text: String::new(),
                grant: Grant::Invalid("expired".into()),
                binary: Some(3),
            },
            Envelope::Closed {
                edge: "a:1".into(),
                conn: 1,
                clean: false,
            },
            Envelope::Deliver {
                owner: "b:2".into(),
                conn: 1,
                items: vec![
                    Item::Text(b"{}".to_vec()),
                    Item::Close(CloseReason::Kicked("x".into())),
                    Item::Cut,
                ],
            },
            Envelope::Moved {
                owner: "b:2".into(),
                conns: vec![1, 2],
            },
            Envelope::End {
                app: "10000".into(),
                room: "r".into(),
            },
            question(Question::Rooms),
            question(Question::Stats),
            question(Question::Kick {
                app: "10000".into(),
                room: "r".into(),
                uid: "u".into(),
                why: "w".into(),
            }),
            question(Question::Adopt {
                from: "a:1".into(),
                app: "10000".into(),
                room: "r".into(),
            }),
            Envelope::Answer {
                id: 9,
                body: "{\"rooms\":[]}".into(),
            },
            Envelope::LetGo {
                edge: "a:1".into(),
                conn: 1,
            },
            Envelope::LetGone {
                owner: "b:2".into(),
                conn: 1,
                released: true,
            },
        ];
        for envelope in all {
            let back = decode(&encode(&envelope)).unwrap();
            assert_eq!(format!("{back:?}"), format!("{envelope:?}"));
        }
        assert!(
            decode(b"\xff\xff\xff").is_err(),
            "garbage is refused, not misread"
        );
    }
}

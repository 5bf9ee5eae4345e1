//! The bus: what nodes say to each other over Redis pub/sub, and the one task per node that
//! publishes it.
//!
//! Each node listens on one channel, `<prefix>:bus:<node id>`. Envelopes are JSON (serde):
//! they carry a client's frame as its text, which JSON keeps readable in `redis-cli
//! SUBSCRIBE` when an operator looks, and serde_json is already in the binary; the envelope
//! around the text is a few dozen bytes.
//!
//! **Invariant:** per connection, what one node sends another arrives in the order it was
//! sent: every envelope goes through this node's single publisher task, in queue order, on
//! one Redis connection, and Redis delivers a channel's messages in the order published.

use super::link::Link;
use crate::ops::metrics;
use rtcroom_core::{CloseReason, Grant, Millis};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// One message between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "camelCase")]
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
        grant: WireGrant,
        /// A binary message of this many bytes instead of `text` (refused by the owner).
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
    Moved {
        owner: String,
        conns: Vec<u64>,
    },
    /// After an outage: the sender keeps this room (the lower node id); end your copy.
    End {
        app: String,
        room: String,
    },
    /// A question to every node (admin views); answered with `Answer` on the asker's channel.
    Ask {
        from: String,
        id: u64,
        question: Question,
    },
    Answer {
        id: u64,
        body: serde_json::Value,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "q", rename_all = "camelCase")]
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
    /// A text message, serialized by the owner.
    Text(String),
    /// A close frame.
    Close(WireClose),
    /// The owner cut the socket off (its queue there was full).
    Cut,
}

/// [`CloseReason`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WireClose {
    Replaced,
    HeartbeatTimeout,
    JoinTimeout,
    TokenExpired,
    Kicked(String),
    Shutdown,
    ServiceRestart,
}

impl From<CloseReason> for WireClose {
    fn from(r: CloseReason) -> Self {
        match r {
            CloseReason::Replaced => Self::Replaced,
            CloseReason::HeartbeatTimeout => Self::HeartbeatTimeout,
            CloseReason::JoinTimeout => Self::JoinTimeout,
            CloseReason::TokenExpired => Self::TokenExpired,
            CloseReason::Kicked(why) => Self::Kicked(why),
            CloseReason::Shutdown => Self::Shutdown,
            CloseReason::ServiceRestart => Self::ServiceRestart,
        }
    }
}

impl From<WireClose> for CloseReason {
    fn from(r: WireClose) -> Self {
        match r {
            WireClose::Replaced => Self::Replaced,
            WireClose::HeartbeatTimeout => Self::HeartbeatTimeout,
            WireClose::JoinTimeout => Self::JoinTimeout,
            WireClose::TokenExpired => Self::TokenExpired,
            WireClose::Kicked(why) => Self::Kicked(why),
            WireClose::Shutdown => Self::Shutdown,
            WireClose::ServiceRestart => Self::ServiceRestart,
        }
    }
}

/// [`Grant`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WireGrant {
    Unchecked,
    Valid {
        app_id: String,
        uid: Option<String>,
        expires_at: u64,
    },
    Invalid(String),
}

impl From<Grant> for WireGrant {
    fn from(g: Grant) -> Self {
        match g {
            Grant::Unchecked => Self::Unchecked,
            Grant::Valid {
                app_id,
                uid,
                expires_at,
            } => Self::Valid {
                app_id,
                uid,
                expires_at: expires_at.0,
            },
            Grant::Invalid(why) => Self::Invalid(why),
        }
    }
}

impl From<WireGrant> for Grant {
    fn from(g: WireGrant) -> Self {
        match g {
            WireGrant::Unchecked => Self::Unchecked,
            WireGrant::Valid {
                app_id,
                uid,
                expires_at,
            } => Self::Valid {
                app_id,
                uid,
                expires_at: Millis(expires_at),
            },
            WireGrant::Invalid(why) => Self::Invalid(why),
        }
    }
}

/// Where an envelope goes: a node's channel, or a channel every node listens to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Node(Arc<str>),
    Channel(String),
}

/// One envelope on its way.
#[derive(Debug)]
struct Outgoing {
    to: Target,
    payload: String,
}

/// An ICE API command one node took, for every other node (`<prefix>:ice`): the request's
/// body as the agent sent it, and where the taker's GeoIP placed the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IceNote {
    pub from: String,
    pub body: String,
    pub at: Option<(f64, f64)>,
}

/// The publishing side of the bus: a bounded queue into the node's publisher task.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: mpsc::Sender<Outgoing>,
}

/// How many envelopes may wait for the publisher (beyond that, senders wait).
const QUEUE: usize = 8192;

impl Bus {
    /// Start the publisher task. A PUBLISH that reached no subscriber names its node on
    /// `dead`: that node does not listen, so it is treated as dead at once.
    pub fn start(link: Arc<Link>, dead: mpsc::UnboundedSender<String>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(publish_loop(link, rx, dead));
        Self { tx }
    }

    /// Queue `envelope` for node `to`, in order with everything queued before it.
    pub async fn send(&self, to: &str, envelope: &Envelope) {
        let payload = serde_json::to_string(envelope).expect("envelopes serialize");
        let to = Target::Node(to.into());
        let _ = self.tx.send(Outgoing { to, payload }).await;
    }

    /// Queue `payload` for every subscriber of `channel`.
    pub async fn publish(&self, channel: String, payload: String) {
        let to = Target::Channel(channel);
        let _ = self.tx.send(Outgoing { to, payload }).await;
    }
}

async fn publish_loop(
    link: Arc<Link>,
    mut rx: mpsc::Receiver<Outgoing>,
    dead: mpsc::UnboundedSender<String>,
) {
    let mut batch = Vec::with_capacity(256);
    let mut conn = link.conn.clone();
    while rx.recv_many(&mut batch, 256).await > 0 {
        let mut pipe = redis::pipe();
        let mut bytes = 0u64;
        for out in &batch {
            bytes += out.payload.len() as u64;
            let channel = match &out.to {
                Target::Node(node) => link.bus_channel(node),
                Target::Channel(c) => c.clone(),
            };
            pipe.cmd("PUBLISH").arg(channel).arg(&out.payload);
        }
        let started = Instant::now();
        let answer: redis::RedisResult<Vec<i64>> = pipe.query_async(&mut conn).await;
        let m = metrics::cluster();
        match answer {
            Ok(counts) => {
                m.bus_publish.observe(started.elapsed().as_secs_f64());
                m.bus_messages_out.inc_by(batch.len() as u64);
                m.bus_bytes_out.inc_by(bytes);
                let mut told = std::collections::BTreeSet::new();
                for (out, n) in batch.iter().zip(counts) {
                    if let Target::Node(node) = &out.to
                        && n == 0
                        && told.insert(node.clone())
                    {
                        let _ = dead.send(node.to_string());
                    }
                }
            }
            Err(e) => {
                m.bus_dropped.inc_by(batch.len() as u64);
                link.trouble(&e);
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let json = serde_json::to_string(&WireClose::from(reason.clone())).unwrap();
            let back: WireClose = serde_json::from_str(&json).unwrap();
            assert_eq!(CloseReason::from(back), reason);
        }
        for grant in [
            Grant::Unchecked,
            Grant::Valid {
                app_id: "10000".into(),
                uid: Some("alice".into()),
                expires_at: Millis(1_700_000_000_000),
            },
            Grant::Invalid("expired".into()),
        ] {
            let json = serde_json::to_string(&WireGrant::from(grant.clone())).unwrap();
            let back: WireGrant = serde_json::from_str(&json).unwrap();
            assert_eq!(Grant::from(back), grant);
        }
    }

    #[test]
    fn a_frame_s_text_crosses_the_bus_byte_for_byte() {
        let text = "{\"cmd\":\"offer\",\"msg\":\"v=0\\r\\n\\u0000 \u{1f600}\"}".to_owned();
        let envelope = Envelope::Frame {
            edge: "a:1".into(),
            conn: 7,
            text: text.clone(),
            grant: WireGrant::Unchecked,
            binary: None,
        };
        let json = serde_json::to_string(&envelope).unwrap();
        match serde_json::from_str::<Envelope>(&json).unwrap() {
            Envelope::Frame { text: back, .. } => assert_eq!(back, text),
            other => panic!("{other:?}"),
        }
    }
}

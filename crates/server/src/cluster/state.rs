//! Each owned room's copy in Redis, `<prefix>:state:<app>\x1f<room>`: its engine snapshot
//! and where each member sits (node id and that node's connection number), written by the
//! owner at most every 100 ms per room (the hub hands changed rooms over in batches), and
//! read by the node that takes the room over. An empty room's owner key and state go
//! together (only while this node still owns it).

use super::link::Link;
use super::owner;
use super::remote::{REMOTE_BASE, Remotes};
use crate::signaling::hub::RoomState;
use rtcroom_core::{ConnId, RoomRef, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A room as kept in Redis.
#[derive(Debug, Serialize, Deserialize)]
pub struct Stored {
    pub snapshot: Snapshot,
    /// uid (key text) → (node id, connection number on that node).
    pub seats: BTreeMap<String, (String, u64)>,
}

/// Where each member sits, as the cluster names it: placeholders (numbers from 2^63) sit
/// nowhere; remote connections are named by their edge's node and number.
pub fn seats(
    me: &str,
    remotes: &Remotes,
    conns: &[(String, ConnId)],
) -> BTreeMap<String, (String, u64)> {
    conns
        .iter()
        .filter_map(|(uid, conn)| {
            let seat = match remotes.edge_of(*conn) {
                Some(edge) => edge,
                None if conn.0 < REMOTE_BASE => (me.to_owned(), conn.0),
                None => return None,
            };
            Some((uid.clone(), seat))
        })
        .collect()
}

/// Write a room's state only while this node owns it (after an outage the node that lost a
/// room may still hold a copy for a moment): then the claim lasts, and the room is in this
/// node's set.
const WRITE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PERSIST', KEYS[1])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
";

/// Write a batch of changed rooms (one pipeline; gone rooms released one by one).
pub async fn write(
    link: &Link,
    remotes: &Remotes,
    states: Vec<RoomState>,
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    let mut gone = Vec::new();
    for s in states {
        match s.snapshot {
            Some(snapshot) => {
                let stored = Stored {
                    seats: seats(&link.me, remotes, &s.conns),
                    snapshot,
                };
                let json = serde_json::to_string(&stored).expect("room states serialize");
                pipe.cmd("EVAL")
                    .arg(WRITE)
                    .arg(3)
                    .arg(link.room_key(&s.room.app_id, &s.room.room_id))
                    .arg(link.state_key(&s.room.app_id, &s.room.room_id))
                    .arg(link.owned_key(&link.me))
                    .arg(&link.me)
                    .arg(json)
                    .arg(member(&s.room))
                    .ignore();
            }
            None => gone.push(s.room),
        }
    }
    pipe.query_async::<()>(&mut link.conn()).await?;
    for room in gone {
        owner::release(link, &room.app_id, &room.room_id).await?;
        disown(link, &room).await?;
    }
    Ok(())
}

/// A room in a node's set of owned rooms.
fn member(room: &RoomRef) -> String {
    format!("{}\u{1f}{}", room.app_id, room.room_id)
}

/// The room is no longer this node's (gone, or handed over).
pub async fn disown(link: &Link, room: &RoomRef) -> redis::RedisResult<()> {
    redis::cmd("SREM")
        .arg(link.owned_key(&link.me))
        .arg(member(room))
        .query_async(&mut link.conn())
        .await
}

/// The rooms node `node` owned (by its set; a room may have moved on since).
pub async fn owned_by(link: &Link, node: &str) -> redis::RedisResult<Vec<RoomRef>> {
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(link.owned_key(node))
        .query_async(&mut link.conn())
        .await?;
    Ok(members
        .into_iter()
        .filter_map(|m| {
            let (app, room) = m.split_once('\u{1f}')?;
            Some(RoomRef {
                app_id: app.to_owned(),
                room_id: room.to_owned(),
            })
        })
        .collect())
}

/// Forget a dead node's set once its rooms are taken over.
pub async fn forget_owner(link: &Link, node: &str) -> redis::RedisResult<()> {
    redis::cmd("DEL")
        .arg(link.owned_key(node))
        .query_async(&mut link.conn())
        .await
}

/// Keep one room's state now (a drain hands it over).
pub async fn put(link: &Link, room: &RoomRef, stored: &Stored) -> redis::RedisResult<()> {
    let json = serde_json::to_string(stored).expect("room states serialize");
    redis::cmd("SET")
        .arg(link.state_key(&room.app_id, &room.room_id))
        .arg(json)
        .query_async(&mut link.conn())
        .await
}

/// A room's state, if it is kept and readable.
pub async fn get(link: &Link, room: &RoomRef) -> redis::RedisResult<Option<Stored>> {
    let json: Option<String> = redis::cmd("GET")
        .arg(link.state_key(&room.app_id, &room.room_id))
        .query_async(&mut link.conn())
        .await?;
    Ok(json.and_then(|j| match serde_json::from_str(&j) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(app = %room.app_id, room = %room.room_id, error = %e, "cluster: a room's state in Redis does not parse; it is not adopted");
            None
        }
    }))
}

//! Taking a room over: from a dead owner (failover) or from a draining one (it asked).
//!
//! The taker reads the room's state from Redis and has its engine `adopt` it: members whose
//! socket is on a live node (not the old owner) are seated on their connection as they are,
//! this node's own sockets attached to its hub, other nodes' through remote links, and those
//! nodes are told (`Moved`) to send the sockets' frames here from now on. Nobody's client
//! gets a message. Members who sat on the old owner wait on placeholders for their resume.

use super::bus::{Bus, Envelope};
use super::edge::Edges;
use super::link::Link;
use super::owner;
use super::remote::Remotes;
use super::state;
use crate::signaling::hub::{Hub, Seat};
use rtcroom_core::{ConnId, RoomRef};
use std::collections::{BTreeMap, BTreeSet};

/// What a take-over needs of the node.
#[derive(Debug)]
pub struct Taker<'a> {
    pub link: &'a Link,
    pub edges: &'a Edges,
    pub remotes: &'a Remotes,
    pub hub: &'a Hub,
    pub bus: &'a Bus,
    /// The live nodes.
    pub alive: BTreeSet<String>,
}

/// How a take-over ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This node holds the room now.
    Adopted { seated: usize, waiting: usize },
    /// This node owns the room now, but no state was kept: it starts empty.
    Empty,
    /// Another node was faster, or the room was not the old owner's any more.
    Lost,
}

impl Taker<'_> {
    /// Take `room` from dead node `from` (compare and set), then adopt its state.
    pub async fn take_from_dead(&self, room: &RoomRef, from: &str) -> redis::RedisResult<Outcome> {
        let me = &self.link.me;
        if !owner::take(self.link, &room.app_id, &room.room_id, from, me).await? {
            return Ok(Outcome::Lost);
        }
        self.adopt(room, from).await
    }

    /// Adopt `room`, whose owner key names this node already (a drain set it), from `from`.
    pub async fn adopt(&self, room: &RoomRef, from: &str) -> redis::RedisResult<Outcome> {
        let Some(stored) = state::get(self.link, room).await? else {
            return Ok(Outcome::Empty);
        };
        let me = self.link.me.as_str();
        let mut seats = Vec::new();
        let mut moved: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut attached = Vec::new();
        for (uid, (node, conn)) in stored.seats {
            if node == from || !self.alive.contains(&node) && node != me {
                continue;
            }
            if node == me {
                if let Some((out, kill)) = self.edges.attach_here(ConnId(conn)) {
                    attached.push(ConnId(conn));
                    seats.push(Seat {
                        room: room.clone(),
                        uid,
                        conn: ConnId(conn),
                        out,
                        kill,
                    });
                }
                continue;
            }
            if let Some((local, out, kill)) = self.remotes.link(&(node.clone(), conn)) {
                seats.push(Seat {
                    room: room.clone(),
                    uid,
                    conn: local,
                    out,
                    kill,
                });
                moved.entry(node).or_default().push(conn);
            }
        }
        let adopted = self.hub.adopt(stored.snapshot, seats).await;
        // What this node's sockets sent while the room had no owner, to the hub now.
        self.edges.attached(&attached).await;
        let Some(adopted) = adopted else {
            return Ok(Outcome::Lost);
        };
        for (node, conns) in moved {
            let owner = me.to_owned();
            self.bus
                .send(&node, &Envelope::Moved { owner, conns })
                .await;
        }
        match adopted {
            Ok(a) => {
                tracing::info!(app = %room.app_id, room = %room.room_id, from, seated = a.seated, waiting = a.waiting, "cluster: adopted a room");
                Ok(Outcome::Adopted {
                    seated: a.seated,
                    waiting: a.waiting,
                })
            }
            Err(e) => {
                tracing::warn!(app = %room.app_id, room = %room.room_id, error = %e, "cluster: a room's state was refused; it starts empty here");
                Ok(Outcome::Empty)
            }
        }
    }
}

//! Rooms moved on purpose: a drain hands this node's rooms to live nodes, and after a Redis
//! outage the reconcile leaves every room one owner (the lower node id keeps a room two
//! nodes both held).

use super::Cluster;
use super::bus::{Envelope, Question};
use super::owner::{self, Reconciled};
use super::registry::{self, NodeInfo};
use super::{remote, state};
use rtcroom_core::RoomRef;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Cluster {
    /// Redis is back after an outage: every room this node holds gets one owner.
    pub(super) async fn reconcile(self: Arc<Self>) {
        // Every node re-registers within a heartbeat or two of Redis coming back: wait for
        // them, so that "another live node" means what it says.
        tokio::time::sleep(self.heartbeat_every() * 2).await;
        let rooms = self.hub.rooms().await.unwrap_or_default();
        let mut lost = Vec::new();
        for r in rooms {
            let room = RoomRef {
                app_id: r.app_id,
                room_id: r.room_id,
            };
            match owner::reconcile(&self.link, &room.app_id, &room.room_id).await {
                Ok(Reconciled::Kept { beaten: None }) => {}
                Ok(Reconciled::Kept {
                    beaten: Some(other),
                }) => {
                    let end = Envelope::End {
                        app: room.app_id.clone(),
                        room: room.room_id.clone(),
                    };
                    self.bus.send(&other, &end).await;
                }
                Ok(Reconciled::Lost(other)) => {
                    tracing::warn!(
                        app = %room.app_id,
                        room = %room.room_id,
                        owner = %other,
                        "cluster: after the outage another node keeps this room; ending our copy (its members reconnect and join there)"
                    );
                    lost.push(room);
                }
                Err(e) => {
                    self.link.trouble(&e);
                    return;
                }
            }
        }
        if !lost.is_empty() {
            self.hub.end_rooms(lost).await;
        }
        // Redis may have lost what it held: every room's state is written again.
        self.hub.resync().await;
    }

    /// SIGTERM: stop taking members (the registry says so), and tell the sockets bound to
    /// other nodes to reconnect (close 1012); they resume through the load balancer on a
    /// live node. The hub's restart then does the same for this node's own sockets.
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::Release);
        if self.degraded_since().is_none() {
            let rooms = self.hub.rooms().await.unwrap_or_default();
            for r in rooms {
                let room = RoomRef {
                    app_id: r.app_id,
                    room_id: r.room_id,
                };
                if let Err(e) = self.hand_over(room).await {
                    self.link.trouble(&e);
                    break;
                }
            }
        }
        self.edges.close_all();
        // Its embedded TURN server leaves every node's ICE registry with it.
        self.forget_own_embedded().await;
        // Out of the registry for good: the heartbeat stops, so that a restart under the
        // same id finds no previous run to wait for.
        self.left.store(true, Ordering::Release);
        if let Err(e) = registry::leave(&self.link).await {
            self.link.trouble(&e);
        }
    }

    /// Hand one room to a live node: the one holding most of its members' sockets, else the
    /// least loaded. Its state goes to Redis, the owner key to the target, and the target is
    /// asked to adopt it; this node's own sockets of the room are told to reconnect.
    async fn hand_over(&self, room: RoomRef) -> redis::RedisResult<()> {
        let nodes: Vec<NodeInfo> = self
            .nodes()
            .into_iter()
            .filter(|n| n.id != self.me() && !n.draining)
            .collect();
        let Some(fallback) = registry::least_loaded(&nodes).map(|n| n.id.clone()) else {
            return Ok(()); // the last node: its rooms end with it at the restart
        };
        let Some(released) = self.hub.release(room.clone()).await else {
            return Ok(());
        };
        let seats = state::seats(self.me(), &self.remotes, &released.conns);
        let mut count: HashMap<&str, usize> = HashMap::new();
        for (node, _) in seats.values() {
            if nodes.iter().any(|n| &n.id == node) {
                *count.entry(node.as_str()).or_default() += 1;
            }
        }
        let target = count
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(n, _)| n.to_owned())
            .unwrap_or(fallback);
        for (_, conn) in &released.conns {
            self.remotes.drop_link(*conn);
        }
        let stored = state::Stored {
            snapshot: released.snapshot,
            seats,
        };
        state::put(&self.link, &room, &stored).await?;
        owner::take(&self.link, &room.app_id, &room.room_id, self.me(), &target).await?;
        state::disown(&self.link, &room).await?;
        let adopt = Question::Adopt {
            from: self.me().to_owned(),
            app: room.app_id.clone(),
            room: room.room_id.clone(),
        };
        // Wait (at most the question's 1 s) until the room is in the target's engine: a
        // socket told to reconnect before that could find no member to resume there.
        if self.ask_one(&target, adopt).await != Some(serde_json::Value::Bool(true)) {
            tracing::warn!(app = %room.app_id, room = %room.room_id, %target, "cluster: the new owner did not confirm the adoption within 1 s; this node's members reconnect anyway");
        }
        // This node's own sockets of the room reconnect (and resume on the new owner); those
        // on other nodes stay as they are, moved by the new owner.
        for (conn, out) in released.handed {
            if conn.0 < remote::REMOTE_BASE {
                let _ = out.try_send(crate::signaling::hub::Outbound::Close(
                    rtcroom_core::CloseReason::ServiceRestart,
                ));
            }
        }
        tracing::info!(app = %room.app_id, room = %room.room_id, %target, "cluster: room handed over");
        Ok(())
    }
}

//! Cluster-wide views: questions every live node answers over the bus (the operator API's
//! rooms and stats), a kick sent to the room's owner, and the ICE API's commands shared.

use super::Cluster;
use super::bus::{Envelope, Question};
use super::owner;
use super::registry::NodeInfo;
use rtcroom_core::RoomRef;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

impl Cluster {
    /// This node's answer to a cluster-wide question.
    pub(super) async fn answer(&self, question: Question) -> serde_json::Value {
        match question {
            Question::Rooms => {
                serde_json::to_value(rooms_view(self.hub.rooms().await.unwrap_or_default()))
                    .unwrap_or_default()
            }
            Question::Stats => {
                let s = self.hub.stats().await.unwrap_or_default();
                serde_json::json!({"connections": s.connections, "rooms": s.rooms, "members": s.members})
            }
            Question::Kick {
                app,
                room,
                uid,
                why,
            } => serde_json::Value::Bool(self.hub.kick(app, room, uid, why).await),
            Question::Adopt { from, app, room } => {
                let room = RoomRef {
                    app_id: app,
                    room_id: room,
                };
                let adopted = self.taker().adopt(&room, &from).await;
                if let Err(e) = &adopted {
                    self.link.trouble(e);
                }
                serde_json::Value::Bool(adopted.is_ok())
            }
        }
    }

    /// An ICE API command this node took (the request's body, and where GeoIP placed the
    /// server): every other node applies it too, and a node that starts later finds it.
    pub async fn share_ice(&self, body: &[u8], at: Option<(f64, f64)>) {
        if let Err(e) = self.share_agent_command(body, at).await {
            self.link.trouble(&e);
        }
    }

    /// Ask every live node (this one included) and gather the answers that come within 1 s.
    pub async fn ask_all(&self, question: Question) -> Vec<serde_json::Value> {
        let nodes = self.nodes();
        let mut answers = vec![self.answer(question.clone()).await];
        let others: Vec<&NodeInfo> = nodes.iter().filter(|n| n.id != self.me()).collect();
        if others.is_empty() {
            return answers;
        }
        let id = self.next_ask.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.asks.lock().expect("asks lock").insert(id, tx);
        let from = self.me().to_owned();
        for n in &others {
            let ask = Envelope::Ask {
                from: from.clone(),
                id,
                question: question.clone(),
            };
            self.bus.send(&n.id, &ask).await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while answers.len() < others.len() + 1 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(body)) => answers.push(body),
                _ => break,
            }
        }
        self.asks.lock().expect("asks lock").remove(&id);
        answers
    }

    /// Kick a member wherever its room lives: here, or at its owner.
    pub async fn kick(&self, app: String, room: String, uid: String, why: String) -> bool {
        let owner = owner::owner(&self.link, &app, &room).await.ok().flatten();
        match owner {
            Some(o) if o != self.me() => {
                let question = Question::Kick {
                    app,
                    room,
                    uid,
                    why,
                };
                self.ask_one(&o, question).await == Some(serde_json::Value::Bool(true))
            }
            _ => self.hub.kick(app, room, uid, why).await,
        }
    }

    pub(super) async fn ask_one(
        &self,
        node: &str,
        question: Question,
    ) -> Option<serde_json::Value> {
        let id = self.next_ask.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.asks.lock().expect("asks lock").insert(id, tx);
        let from = self.me().to_owned();
        self.bus
            .send(node, &Envelope::Ask { from, id, question })
            .await;
        let answer = tokio::time::timeout(Duration::from_secs(1), rx.recv())
            .await
            .ok()
            .flatten();
        self.asks.lock().expect("asks lock").remove(&id);
        answer
    }
}

/// The operator's view of rooms, as `/api/rooms` shows them.
pub fn rooms_view(rooms: Vec<rtcroom_core::RoomInfo>) -> Vec<serde_json::Value> {
    rooms
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "appId": r.app_id,
                "roomId": r.room_id,
                "roomName": r.room_name,
                "members": r.members.into_iter().map(|m| serde_json::json!({
                    "uid": m.uid,
                    "uname": m.uname,
                    "sessionId": m.session_id.to_string(),
                    "joinedAt": m.joined_at.as_secs(),
                    "connected": m.connected,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

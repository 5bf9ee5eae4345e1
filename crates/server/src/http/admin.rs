//! The operator API: rooms, members, kicks and counters, behind a bearer token.

use crate::auth::Denied;
use crate::ops::metrics::metrics;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/rooms", get(rooms))
        .route("/api/rooms/{app_id}/{room_id}/kick", post(kick))
        .route("/api/stats", get(stats))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MemberView {
    uid: String,
    uname: String,
    session_id: String,
    joined_at: u64,
    connected: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoomView {
    app_id: String,
    room_id: String,
    room_name: String,
    members: Vec<MemberView>,
}

async fn rooms(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Denied> {
    state.authorize(&headers)?;
    if let Some(cluster) = &state.cluster {
        // Every live node's rooms: each room is held by exactly one of them, its owner.
        let answers = cluster.ask_all(crate::cluster::bus::Question::Rooms).await;
        let rooms: Vec<serde_json::Value> = answers
            .into_iter()
            .filter_map(|a| match a {
                serde_json::Value::Array(rooms) => Some(rooms),
                _ => None,
            })
            .flatten()
            .collect();
        return Ok(Json(rooms).into_response());
    }
    let rooms = state.signaling.hub.rooms().await.unwrap_or_default();
    let view: Vec<RoomView> = rooms
        .into_iter()
        .map(|r| RoomView {
            app_id: r.app_id,
            room_id: r.room_id,
            room_name: r.room_name,
            members: r
                .members
                .into_iter()
                .map(|m| MemberView {
                    uid: m.uid,
                    uname: m.uname,
                    session_id: m.session_id.to_string(),
                    joined_at: m.joined_at.as_secs(),
                    connected: m.connected,
                })
                .collect(),
        })
        .collect();
    Ok(Json(view).into_response())
}

#[derive(Deserialize)]
struct KickBody {
    uid: String,
    #[serde(default)]
    reason: Option<String>,
}

async fn kick(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((app_id, room_id)): Path<(String, String)>,
    Json(body): Json<KickBody>,
) -> Result<Response, Denied> {
    state.authorize(&headers)?;
    let why = body
        .reason
        .unwrap_or_else(|| "removed by an operator".into());
    let kicked = match &state.cluster {
        Some(cluster) => cluster.kick(app_id, room_id, body.uid, why).await,
        None => {
            state
                .signaling
                .hub
                .kick(app_id, room_id, body.uid, why)
                .await
        }
    };
    Ok(if kicked {
        Json(json!({"kicked": true})).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"kicked": false, "error": "no such member in that room"})),
        )
            .into_response()
    })
}

async fn stats(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Denied> {
    state.authorize(&headers)?;
    let s = state.signaling.hub.stats().await.unwrap_or_default();
    let m = metrics();
    let cluster = match &state.cluster {
        Some(c) => Some(cluster_stats(c).await),
        None => None,
    };
    Ok(Json(json!({
        "cluster": cluster,
        "connections": s.connections,
        "rooms": s.rooms,
        "members": s.members,
        "connectionsOpened": m.connections_opened.get(),
        "joins": m.joins.get(),
        "rejoins": m.rejoins.get(),
        "slowClients": m.slow_clients.get(),
        "recordsEmitted": m.records_emitted.get(),
        "records": state.writer.as_ref().map(|w| {
            let s = w.stats();
            json!({"queueDepth": s.queue_depth, "spooled": s.spooled, "written": s.written,
                   "writeErrors": s.write_errors, "dropped": s.dropped, "databaseUp": s.db_up})
        }),
    }))
    .into_response())
}

/// The whole cluster's counts: every live node's answer summed, and the nodes themselves.
async fn cluster_stats(cluster: &crate::cluster::Cluster) -> serde_json::Value {
    let answers = cluster.ask_all(crate::cluster::bus::Question::Stats).await;
    let sum = |key: &str| -> u64 {
        answers
            .iter()
            .filter_map(|a| a.get(key).and_then(serde_json::Value::as_u64))
            .sum()
    };
    json!({
        "node": cluster.me(),
        "nodesAnswered": answers.len(),
        "connections": sum("connections"),
        "rooms": sum("rooms"),
        "members": sum("members"),
        "nodes": cluster.nodes(),
        "degraded": cluster.degraded_since().is_some(),
    })
}

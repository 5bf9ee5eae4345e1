//! The operator API: rooms, members, kicks and counters, behind a bearer token.

use crate::http::AppState;
use crate::telemetry::metrics;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
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

/// Why an operator request was refused.
#[derive(Debug)]
pub struct Denied(StatusCode, &'static str);

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

/// Check the `Authorization: Bearer <token>` header against `[admin] token`.
pub fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), Denied> {
    let expected: &str = &state.admin_token;
    if expected.is_empty() {
        return Err(Denied(
            StatusCode::FORBIDDEN,
            "the operator API is disabled: set [admin] token (or RTCROOM_ADMIN_TOKEN)",
        ));
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare without an early exit so that the time taken does not tell a prefix.
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(Denied(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ))
    }
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
    authorize(&state, &headers)?;
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
    authorize(&state, &headers)?;
    let why = body
        .reason
        .unwrap_or_else(|| "removed by an operator".into());
    let kicked = state
        .signaling
        .hub
        .kick(app_id, room_id, body.uid, why)
        .await;
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
    authorize(&state, &headers)?;
    let s = state.signaling.hub.stats().await.unwrap_or_default();
    let m = metrics();
    Ok(Json(json!({
        "connections": s.connections,
        "rooms": s.rooms,
        "members": s.members,
        "connectionsOpened": m.connections_opened.get(),
        "joins": m.joins.get(),
        "rejoins": m.rejoins.get(),
        "slowClients": m.slow_clients.get(),
        "recordsEmitted": m.records_emitted.get(),
        "recordsDropped": state.records.dropped(),
    }))
    .into_response())
}

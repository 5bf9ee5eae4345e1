//! `GET /api/records/...`: call records for operators, behind the admin token.

use super::OFF_MESSAGE;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<u32>,
}

/// The answer of `/api/records/...` without a store, which only happens with records off:
/// 404, since this server has no records to find (a 5xx would look like an outage).
fn no_store() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"error": OFF_MESSAGE})),
    )
        .into_response()
}

fn failed(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"error": e.to_string()})),
    )
        .into_response()
}

/// Why an operator's read found no store.
enum NoReader {
    Denied(crate::auth::Denied),
    Off,
}

impl IntoResponse for NoReader {
    fn into_response(self) -> Response {
        match self {
            NoReader::Denied(d) => d.into_response(),
            NoReader::Off => no_store(),
        }
    }
}

/// The store for an operator's read: refused without the admin token, 404 with records off.
fn reader<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
) -> Result<&'a rtcroom_store::Store, NoReader> {
    state.authorize(headers).map_err(NoReader::Denied)?;
    state.store.as_ref().ok_or(NoReader::Off)
}

/// `GET /api/records/member/{appId}/{uid}?limit=N`: a member's sessions with their
/// sub-sessions and quality summary, newest first.
pub async fn member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((app_id, uid)): Path<(String, String)>,
    Query(q): Query<Limit>,
) -> Response {
    let store = match reader(&state, &headers) {
        Ok(store) => store,
        Err(refused) => return refused.into_response(),
    };
    match store
        .member_sessions(&app_id, &uid, q.limit.unwrap_or(50))
        .await
    {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => failed(e),
    }
}

/// `GET /api/records/session/{sessionId}`.
pub async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let store = match reader(&state, &headers) {
        Ok(store) => store,
        Err(refused) => return refused.into_response(),
    };
    match store.session(&id).await {
        Ok(Some(s)) => Json(s).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "no such session"})),
        )
            .into_response(),
        Err(e) => failed(e),
    }
}

/// `GET /api/records/day/{YYYY-MM-DD}`: the day's sub-sessions (UTC) with their sessions and
/// quality summaries.
pub async fn day(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(date): Path<String>,
) -> Response {
    let store = match reader(&state, &headers) {
        Ok(store) => store,
        Err(refused) => return refused.into_response(),
    };
    let Ok(day) = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d") else {
        return (StatusCode::BAD_REQUEST, "the date must be YYYY-MM-DD").into_response();
    };
    match store.day_sub_sessions(day).collect().await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => failed(e),
    }
}

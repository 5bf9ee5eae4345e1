//! `POST /icebandwidthload`: the ICE HTTP API that coturn agents (and `rtcroom ice-agent`)
//! register and report through.

use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// `POST /icebandwidthload`: the ICE HTTP API of the document, with its plain-text replies.
pub async fn http_api(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Response {
    let reply = match rtcroom_ice::parse(&body) {
        Err(e) => e.reply(),
        Ok(req) => {
            let secret =
                (!state.ice_register_secret.is_empty()).then_some(&*state.ice_register_secret);
            if req.authorized(secret, peer.ip().is_loopback()) {
                match state.signaling.hub.ice(req.command).await {
                    Some(reply) => reply,
                    None => {
                        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
                            .into_response();
                    }
                }
            } else {
                return (
                    StatusCode::FORBIDDEN,
                    "forbidden: registering from another host needs the [ice] register_secret as \"secret\"\n",
                )
                    .into_response();
            }
        }
    };
    let status = StatusCode::from_u16(reply.http_status()).unwrap_or(StatusCode::OK);
    (status, reply.as_str().to_owned()).into_response()
}

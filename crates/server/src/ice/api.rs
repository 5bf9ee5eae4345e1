//! `POST /icebandwidthload`: the ICE HTTP API that coturn agents (and `rtcroom ice-agent`)
//! register and report through.

use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// `POST /icebandwidthload`: the ICE HTTP API of the document, with its plain-text replies.
/// With `[ice] register_secret` set, every request must carry it, loopback included; without
/// it only direct loopback connections (no forwarding headers: not through a same-host
/// proxy) may act.
pub async fn http_api(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let reply = match rtcroom_ice::parse(&body) {
        Err(e) => e.reply(),
        Ok(req) => {
            let secret =
                (!state.ice_register_secret.is_empty()).then_some(&*state.ice_register_secret);
            if req.authorized(secret, crate::peer::direct_loopback(peer, &headers)) {
                let mut command = req.command;
                if let (rtcroom_ice::IceCommand::Register(r), Some(geo)) =
                    (&mut command, &state.geoip)
                {
                    place(r, geo);
                }
                let at = match &command {
                    rtcroom_ice::IceCommand::Register(r) => r.location.map(|p| (p.lat(), p.lon())),
                    _ => None,
                };
                match state.signaling.hub.ice(command).await {
                    Some(reply) => {
                        // In a cluster every node's registry takes the command too.
                        if let Some(cluster) = &state.cluster {
                            cluster.share_ice(&body, at).await;
                        }
                        reply
                    }
                    None => {
                        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
                            .into_response();
                    }
                }
            } else {
                let msg = if secret.is_some() {
                    "forbidden: send the [ice] register_secret as \"secret\" (required from every host, this one included)\n"
                } else {
                    "forbidden: without an [ice] register_secret only direct loopback connections (no proxy, no forwarding headers) may register; set one and send it as \"secret\"\n"
                };
                return (StatusCode::FORBIDDEN, msg).into_response();
            }
        }
    };
    let status = StatusCode::from_u16(reply.http_status()).unwrap_or(StatusCode::OK);
    (status, reply.as_str().to_owned()).into_response()
}

/// A registration without `latitude`/`longitude` is placed where GeoIP puts its address
/// (when it is an IP address the database knows); one that names its place keeps it.
fn place(r: &mut rtcroom_ice::Register, geo: &crate::geoip::GeoIp) {
    if r.location.is_none()
        && let Ok(ip) = r.ip.parse::<std::net::IpAddr>()
    {
        r.location = geo.lookup(ip).at;
    }
}

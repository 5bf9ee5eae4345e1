//! Building the browser's `RTCConfiguration` (`rtcConfig`) for one member from a registered
//! server.

use rtcroom_protocol::{IceServer, RtcConfig};

use crate::api::{IceType, Register};
use crate::credential::mint;

/// The host part of a `turn:`/`stun:` URL: IPv6 addresses go in brackets (RFC 7065).
fn host(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_owned()
    }
}

/// The `rtcConfig` of member `uid`: a TURN entry (unless the server is STUN-only) with the
/// URLs of the transports it serves — UDP, TCP when it has a TCP port, TLS (`turns:`) when it
/// has a TLS port — with the member's own ephemeral credentials when `secret` is set and the
/// registration's static ones otherwise, then a STUN entry with empty credentials, inside the
/// registration's policies.
pub(crate) fn rtc_config(
    reg: &Register,
    secret: Option<&[u8]>,
    uid: &str,
    now_ms: u64,
    ttl_secs: u64,
) -> RtcConfig {
    let h = host(&reg.ip);
    let mut ice_servers = Vec::with_capacity(2);
    if reg.ice_type == IceType::Turn {
        let (username, credential) = match secret {
            Some(secret) => {
                let c = mint(secret, uid, now_ms, ttl_secs);
                (c.username, c.credential)
            }
            None => (reg.username.clone(), reg.credential.clone()),
        };
        let mut urls = vec![format!("turn:{h}:{}?transport=udp", reg.turn_port)];
        if let Some(port) = reg.turn_tcp_port {
            urls.push(format!("turn:{h}:{port}?transport=tcp"));
        }
        if let Some(turns) = &reg.turns {
            urls.push(format!(
                "turns:{}:{}?transport=tcp",
                host(&turns.host),
                turns.port
            ));
        }
        ice_servers.push(IceServer {
            credential,
            urls,
            username,
        });
    }
    ice_servers.push(IceServer {
        credential: String::new(),
        urls: vec![format!("stun:{h}:{}", reg.stun_port)],
        username: String::new(),
    });
    RtcConfig {
        bundle_policy: reg.bundle_policy.clone(),
        ice_servers,
        ice_transport_policy: reg.ice_transport_policy.clone(),
        rtcp_mux_policy: reg.rtcp_mux_policy.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documents_shape_with_minted_credentials() {
        let mut reg = Register::new("203.0.113.7", 1);
        reg.ice_transport_policy = "relay".into();
        reg.stun_port = 3479;
        reg.turn_tcp_port = Some(3478);
        let got = rtc_config(&reg, Some(b"north-secret"), "42", 1_700_000_000_000, 600);
        let json = serde_json::to_string(&got).expect("serializes");
        assert_eq!(
            json,
            r#"{"bundlePolicy":"max-bundle","iceServers":[{"credential":"IJqLNx10NKZjt+Umu/9xSgStSaA=","urls":["turn:203.0.113.7:3478?transport=udp","turn:203.0.113.7:3478?transport=tcp"],"username":"1700000600:42"},{"credential":"","urls":["stun:203.0.113.7:3479"],"username":""}],"iceTransportPolicy":"relay","rtcpMuxPolicy":"require"}"#
        );
    }

    #[test]
    fn ipv6_in_brackets_and_static_credentials() {
        let mut reg = Register::new("2001:db8::1", 1);
        reg.turn_tcp_port = Some(3478);
        reg.username = "u".into();
        reg.credential = "p".into();
        let got = rtc_config(&reg, None, "42", 0, 600);
        assert_eq!(
            got.ice_servers[0],
            IceServer {
                credential: "p".into(),
                urls: vec![
                    "turn:[2001:db8::1]:3478?transport=udp".into(),
                    "turn:[2001:db8::1]:3478?transport=tcp".into()
                ],
                username: "u".into(),
            }
        );
        assert_eq!(got.ice_servers[1].urls, ["stun:[2001:db8::1]:3478"]);
    }

    #[test]
    fn only_the_transports_served_are_handed_out() {
        let mut reg = Register::new("203.0.113.7", 1);
        let urls = |reg: &Register| {
            rtc_config(reg, Some(b"s"), "42", 0, 600).ice_servers[0]
                .urls
                .clone()
        };
        assert_eq!(urls(&reg), ["turn:203.0.113.7:3478?transport=udp"]);
        reg.turn_tcp_port = Some(3478);
        reg.turns = Some(crate::api::Turns {
            host: "turn.example.com".into(),
            port: 5349,
        });
        assert_eq!(
            urls(&reg),
            [
                "turn:203.0.113.7:3478?transport=udp",
                "turn:203.0.113.7:3478?transport=tcp",
                "turns:turn.example.com:5349?transport=tcp"
            ]
        );
        reg.turn_tcp_port = None;
        assert_eq!(
            urls(&reg),
            [
                "turn:203.0.113.7:3478?transport=udp",
                "turns:turn.example.com:5349?transport=tcp"
            ]
        );
    }
}

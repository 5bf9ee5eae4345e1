//! `rtcConfig`: exactly the browser's `RTCConfiguration`, and the connect types of a pair.

use serde::{Deserialize, Serialize};

/// The browser's `RTCConfiguration`, as the original SDK passes it to `new RTCPeerConnection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtcConfig {
    pub bundle_policy: String,
    pub ice_servers: Vec<IceServer>,
    pub ice_transport_policy: String,
    pub rtcp_mux_policy: String,
}

/// One entry of `iceServers`. A STUN entry has empty `username` and `credential`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    #[serde(default)]
    pub credential: String,
    pub urls: Vec<String>,
    #[serde(default)]
    pub username: String,
}

impl RtcConfig {
    /// The document's policies (`max-bundle`, `all`, `require`) around the given servers.
    pub fn with_servers(ice_servers: Vec<IceServer>) -> Self {
        Self {
            bundle_policy: "max-bundle".into(),
            ice_servers,
            ice_transport_policy: "all".into(),
            rtcp_mux_policy: "require".into(),
        }
    }
}

/// How a pair's media flows, as reported by `peerConnected`. TURN is relayed; STUN means
/// P2P or LAN (host, srflx or prflx candidates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectType {
    Turn,
    Stun,
    Unknown,
}

impl ConnectType {
    /// Liberal reading of a client's `connectType`.
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        let is = |w: &str| s.eq_ignore_ascii_case(w);
        if is("TURN") || is("relay") {
            Self::Turn
        } else if is("STUN") || is("P2P") || is("host") || is("srflx") || is("prflx") {
            Self::Stun
        } else {
            Self::Unknown
        }
    }

    /// The value stored in `connect_type` and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Turn => "TURN",
            Self::Stun => "STUN",
            Self::Unknown => "Unknown",
        }
    }
}

/// Stored as the text of [`ConnectType::as_str`], read back with [`ConnectType::parse`].
#[cfg(feature = "serde")]
impl Serialize for ConnectType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> Deserialize<'de> for ConnectType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

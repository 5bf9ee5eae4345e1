//! The ICE HTTP API (`POST /icebandwidthload`, document 6.25–6.27): the request bodies an ICE
//! server or its agent sends, and the plain-text replies it gets back.
//!
//! Parsing is liberal the way the rest of the protocol is: numbers may arrive as JSON numbers
//! or as strings holding numbers, empty strings and `null` count as absent, unknown fields are
//! ignored. What ends up in a browser's `RTCConfiguration` (the address and the policies) is
//! checked strictly, because a browser throws on an unknown policy or a malformed URL and the
//! call would fail far away from the registration that caused it.

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::geo::GeoPoint;

/// The port of a STUN/TURN server when a registration names none (RFC 5766's default).
pub const DEFAULT_ICE_PORT: u16 = 3478;

/// One request to `/icebandwidthload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceRequest {
    pub command: IceCommand,
    /// The registration secret (**ours**): needed unless the request comes from loopback.
    pub secret: Option<String>,
}

/// What the request asks for, by its `cmd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceCommand {
    Register(Register),
    /// `turn_port` (**ours**, `turnPort`): the one server at `ip` with that TURN port; absent,
    /// every server registered at `ip` (a coturn agent alone at its address).
    Deregister {
        ip: String,
        turn_port: Option<u16>,
    },
    Report(Report),
}

/// Whether a server relays (TURN, which also answers STUN) or only answers STUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceType {
    Turn,
    Stun,
}

/// `iceRegister`: an ICE server announces itself and its capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// The public address clients reach the server at: an IP address or a host name.
    pub ip: String,
    pub ice_type: IceType,
    pub bundle_policy: String,
    pub rtcp_mux_policy: String,
    pub ice_transport_policy: String,
    /// The port of TURN over UDP (`turn:HOST:PORT?transport=udp`).
    pub turn_port: u16,
    /// The port of TURN over TCP (`turn:HOST:PORT?transport=tcp`); `None`: not served, and
    /// no such URL is handed out.
    pub turn_tcp_port: Option<u16>,
    /// TURN over TLS (`turns:HOST:PORT?transport=tcp`); `None`: not served.
    pub turns: Option<Turns>,
    pub stun_port: u16,
    /// kbit/s the server may send in total.
    pub max_bandwidth_kbps: u64,
    /// Static TURN credentials, used only when no shared secret is configured for the server.
    pub username: String,
    pub credential: String,
    /// The server's region (**ours**): sent by the agent, or filled in by the shell from GeoIP.
    pub region: Option<String>,
    /// Where the server is (**ours**): `latitude` and `longitude` in the registration, or
    /// filled in by the shell from GeoIP; selection prefers the server nearest to a pair.
    pub location: Option<GeoPoint>,
}

/// Where a server serves TURN over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turns {
    /// The host name (or address) its certificate names: browsers check it.
    pub host: String,
    pub port: u16,
}

impl Register {
    /// A TURN server at `ip` on the default UDP ports (no TCP, no TLS) with the document's
    /// policies and no static credentials: what the embedded TURN server registers as, before
    /// it adds its TCP and TLS listeners.
    pub fn new(ip: impl Into<String>, max_bandwidth_kbps: u64) -> Self {
        Self {
            ip: ip.into(),
            ice_type: IceType::Turn,
            bundle_policy: "max-bundle".into(),
            rtcp_mux_policy: "require".into(),
            ice_transport_policy: "all".into(),
            turn_port: DEFAULT_ICE_PORT,
            turn_tcp_port: None,
            turns: None,
            stun_port: DEFAULT_ICE_PORT,
            max_bandwidth_kbps,
            username: String::new(),
            credential: String::new(),
            region: None,
            location: None,
        }
    }
}

impl IceCommand {
    /// The body of the `POST /icebandwidthload` request that [`parse`] reads back as this
    /// command (no `secret`): how a room server passes a command it made itself (its embedded
    /// TURN server's registration and reports) to the other nodes of a cluster.
    pub fn to_body(&self) -> String {
        let value = match self {
            IceCommand::Register(r) => {
                let mut v = serde_json::json!({
                    "cmd": "iceRegister", "ip": r.ip,
                    "iceType": match r.ice_type { IceType::Turn => "turn", IceType::Stun => "stun" },
                    "bundlePolicy": r.bundle_policy, "rtcpMuxPolicy": r.rtcp_mux_policy,
                    "iceTransportPolicy": r.ice_transport_policy, "turnPort": r.turn_port,
                    "turnTcpPort": r.turn_tcp_port.unwrap_or(0), "stunPort": r.stun_port,
                    "maxBandwidth": r.max_bandwidth_kbps, "username": r.username,
                    "credential": r.credential,
                });
                if let Some(t) = &r.turns {
                    v["turnsPort"] = t.port.into();
                    v["turnsHost"] = t.host.clone().into();
                }
                if let Some(region) = &r.region {
                    v["region"] = region.clone().into();
                }
                if let Some(at) = r.location {
                    v["latitude"] = at.lat().into();
                    v["longitude"] = at.lon().into();
                }
                v
            }
            IceCommand::Report(r) => {
                let mut v = serde_json::json!({
                    "cmd": "iceReportRxTxRate", "ip": r.ip, "rxRate": r.rx_kbps, "txRate": r.tx_kbps,
                });
                if let Some(p) = r.turn_port {
                    v["turnPort"] = p.into();
                }
                v
            }
            IceCommand::Deregister { ip, turn_port } => {
                let mut v = serde_json::json!({"cmd": "iceDeregister", "ip": ip});
                if let Some(p) = turn_port {
                    v["turnPort"] = (*p).into();
                }
                v
            }
        };
        value.to_string()
    }
}

/// `iceReportRxTxRate`: the server's current NIC rates in kbit/s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub ip: String,
    /// (**ours**, `turnPort`) The one server at `ip` with this TURN port; absent, every
    /// server registered at `ip` (a coturn agent alone at its address).
    pub turn_port: Option<u16>,
    pub rx_kbps: u64,
    pub tx_kbps: u64,
}

/// The plain-text body of every answer to `/icebandwidthload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Successful,
    /// A report or deregistration for an ip the registry does not know; the agent registers
    /// again.
    NotFound,
    /// The registry holds as many servers as it is configured to.
    FullLoading,
    /// The body is not a request this API understands.
    JsonParseFailed,
    /// A registration for an ip that was already registered; the registration was updated.
    HaveRegistered,
    /// (**ours**) The registration secret is missing or wrong.
    Forbidden,
}

impl Reply {
    /// The exact reply text, including the original's spelling of `falied`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Successful => "successful",
            Self::NotFound => "ice_no_found",
            Self::FullLoading => "ice_full_loading",
            Self::JsonParseFailed => "ice_json_parse_falied",
            Self::HaveRegistered => "ice_have_registered",
            Self::Forbidden => "ice_forbidden",
        }
    }

    /// The HTTP status to send with the text. The original answered every outcome with 200 and
    /// its agents read only the text, so only the new `Forbidden` gets a status of its own.
    pub fn http_status(self) -> u16 {
        match self {
            Self::Forbidden => 403,
            _ => 200,
        }
    }
}

/// Why a body was refused. Every variant is answered with [`Reply::JsonParseFailed`]; the
/// detail is for the server's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body is not a JSON object")]
    NotObject,
    #[error("missing cmd")]
    MissingCmd,
    #[error("unknown cmd {0:?}")]
    UnknownCmd(String),
    #[error("missing field {0}")]
    Missing(&'static str),
    #[error("field {field} {why}")]
    Invalid { field: &'static str, why: String },
}

impl ParseError {
    pub fn reply(&self) -> Reply {
        Reply::JsonParseFailed
    }
}

impl IceRequest {
    /// Whether the request may act on the registry. With a secret `configured`, the request's
    /// `secret` must match it, wherever it comes from (a same-host proxy makes every remote
    /// request look local). Without one, only a direct local connection may (an agent on the
    /// same host, not forwarded by a proxy), so a room server with no secret configured only
    /// accepts local ICE servers.
    pub fn authorized(&self, configured: Option<&str>, direct_local: bool) -> bool {
        match (configured, self.secret.as_deref()) {
            (Some(want), Some(got)) => constant_time_eq(want.as_bytes(), got.as_bytes()),
            (Some(_), None) => false,
            (None, _) => direct_local,
        }
    }
}

/// Compares without an early exit, so the time taken does not say how much of a guess was
/// right. (The length is not secret.)
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parse the body of a `POST /icebandwidthload`.
pub fn parse(body: &[u8]) -> Result<IceRequest, ParseError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(ParseError::NotObject);
    };
    let cmd = text(&obj, "cmd")?.ok_or(ParseError::MissingCmd)?;
    let secret = text(&obj, "secret")?;
    let command = match cmd.as_str() {
        "iceRegister" => IceCommand::Register(register(&obj)?),
        "iceDeregister" => IceCommand::Deregister {
            ip: address(&obj, "ip")?,
            turn_port: which_port(&obj)?,
        },
        "iceReportRxTxRate" => IceCommand::Report(Report {
            ip: address(&obj, "ip")?,
            turn_port: which_port(&obj)?,
            rx_kbps: number(&obj, "rxRate")?.ok_or(ParseError::Missing("rxRate"))?,
            tx_kbps: number(&obj, "txRate")?.ok_or(ParseError::Missing("txRate"))?,
        }),
        _ => return Err(ParseError::UnknownCmd(cmd)),
    };
    Ok(IceRequest { command, secret })
}

fn register(obj: &Map<String, Value>) -> Result<Register, ParseError> {
    let ice_type = match text(obj, "iceType")? {
        Some(t) if t.eq_ignore_ascii_case("stun") => IceType::Stun,
        // The original wrote "turn" (or nothing); a TURN server answers STUN too, so anything
        // else is read as TURN.
        _ => IceType::Turn,
    };
    let ip = address(obj, "ip")?;
    let turn_port = port(obj, "turnPort")?;
    // coturn serves TCP on its listening port unless told `--no-tcp`: absent means that port,
    // 0 means not served.
    let turn_tcp_port = match number(obj, "turnTcpPort")? {
        None => Some(turn_port),
        Some(0) => None,
        Some(_) => Some(port(obj, "turnTcpPort")?),
    };
    let turns = match number(obj, "turnsPort")? {
        None | Some(0) => None,
        Some(_) => Some(Turns {
            host: match text(obj, "turnsHost")? {
                Some(_) => address(obj, "turnsHost")?,
                None => ip.clone(),
            },
            port: port(obj, "turnsPort")?,
        }),
    };
    Ok(Register {
        ip,
        ice_type,
        bundle_policy: policy(
            obj,
            "bundlePolicy",
            &["balanced", "max-compat", "max-bundle"],
            "max-bundle",
        )?,
        rtcp_mux_policy: policy(obj, "rtcpMuxPolicy", &["negotiate", "require"], "require")?,
        ice_transport_policy: policy(obj, "iceTransportPolicy", &["all", "relay"], "all")?,
        turn_port,
        turn_tcp_port,
        turns,
        stun_port: port(obj, "stunPort")?,
        max_bandwidth_kbps: number(obj, "maxBandwidth")?
            .ok_or(ParseError::Missing("maxBandwidth"))?,
        username: text(obj, "username")?.unwrap_or_default(),
        credential: text(obj, "credential")?.unwrap_or_default(),
        region: text(obj, "region")?,
        location: location(obj)?,
    })
}

/// `latitude` and `longitude` in degrees (numbers or strings holding numbers), both or
/// neither.
fn location(obj: &Map<String, Value>) -> Result<Option<GeoPoint>, ParseError> {
    let degrees = |field: &'static str| -> Result<Option<f64>, ParseError> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => {
                s.trim()
                    .parse::<f64>()
                    .map(Some)
                    .map_err(|_| ParseError::Invalid {
                        field,
                        why: format!("must be a number of degrees, got {s:?}"),
                    })
            }
            Some(v) => Err(ParseError::Invalid {
                field,
                why: format!("must be a number of degrees, got {v}"),
            }),
        }
    };
    match (degrees("latitude")?, degrees("longitude")?) {
        (None, None) => Ok(None),
        (Some(lat), Some(lon)) => GeoPoint::new(lat, lon)
            .map(Some)
            .ok_or(ParseError::Invalid {
                field: "latitude",
                why: format!("{lat}, {lon} is not a place: latitude −90..90, longitude −180..180"),
            }),
        (Some(_), None) => Err(ParseError::Missing("longitude")),
        (None, Some(_)) => Err(ParseError::Missing("latitude")),
    }
}

/// A string, or a number taken as its text. Empty and `null` are absent.
fn text(obj: &Map<String, Value>, field: &'static str) -> Result<Option<String>, ParseError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok((!s.is_empty()).then(|| s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(ParseError::Invalid {
            field,
            why: "must be a string".into(),
        }),
    }
}

/// A non-negative integer: a number, or a string holding one. Empty and `null` are absent.
fn number(obj: &Map<String, Value>, field: &'static str) -> Result<Option<u64>, ParseError> {
    let bad = |v: &dyn std::fmt::Display| ParseError::Invalid {
        field,
        why: format!("must be a non-negative integer, got {v}"),
    };
    let from_f64 =
        |f: f64| (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 9.0e15).then_some(f as u64);
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().and_then(from_f64))
            .map(Some)
            .ok_or_else(|| bad(n)),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            t.parse::<u64>()
                .ok()
                .or_else(|| t.parse::<f64>().ok().and_then(from_f64))
                .map(Some)
                .ok_or_else(|| bad(&format!("{s:?}")))
        }
        Some(v) => Err(bad(v)),
    }
}

/// The `turnPort` a report or deregistration names its server by, if any.
fn which_port(obj: &Map<String, Value>) -> Result<Option<u16>, ParseError> {
    match number(obj, "turnPort")? {
        None => Ok(None),
        Some(_) => port(obj, "turnPort").map(Some),
    }
}

fn port(obj: &Map<String, Value>, field: &'static str) -> Result<u16, ParseError> {
    match number(obj, field)? {
        None | Some(0) => Ok(DEFAULT_ICE_PORT),
        Some(p) => u16::try_from(p).map_err(|_| ParseError::Invalid {
            field,
            why: format!("is not a port: {p}"),
        }),
    }
}

/// A policy of `RTCConfiguration`: one of `allowed` (any case), or `default` when absent.
fn policy(
    obj: &Map<String, Value>,
    field: &'static str,
    allowed: &[&'static str],
    default: &'static str,
) -> Result<String, ParseError> {
    let Some(v) = text(obj, field)? else {
        return Ok(default.into());
    };
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(v.trim()))
        .map(|a| (*a).to_owned())
        .ok_or_else(|| ParseError::Invalid {
            field,
            why: format!("must be one of {allowed:?}, got {v:?}"),
        })
}

/// The server's public address: an IP address or a DNS name, nothing that could break out of
/// the `turn:` URL it is written into.
fn address(obj: &Map<String, Value>, field: &'static str) -> Result<String, ParseError> {
    let s = text(obj, field)?.ok_or(ParseError::Missing(field))?;
    let s = s.trim();
    let host_like = s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if s.parse::<IpAddr>().is_ok() || host_like {
        Ok(s.to_owned())
    } else {
        Err(ParseError::Invalid {
            field,
            why: format!("is not an IP address or host name: {s:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_command_s_body_parses_back_to_it() {
        let mut full = super::Register::new("10.0.0.1", 5_000);
        full.turn_port = 3480;
        full.stun_port = 3481;
        full.turn_tcp_port = Some(3482);
        full.turns = Some(super::Turns {
            host: "turn.example.com".into(),
            port: 5349,
        });
        full.ice_transport_policy = "relay".into();
        full.region = Some("eu".into());
        full.location = crate::GeoPoint::new(50.11, 8.68);
        let mut bare = super::Register::new("turn.example.com", 7);
        bare.ice_type = super::IceType::Stun;
        for c in [
            super::IceCommand::Register(full),
            super::IceCommand::Register(bare),
            super::IceCommand::Report(super::Report {
                ip: "10.0.0.1".into(),
                turn_port: None,
                rx_kbps: 12,
                tx_kbps: 34,
            }),
            super::IceCommand::Report(super::Report {
                ip: "10.0.0.1".into(),
                turn_port: Some(3480),
                rx_kbps: 12,
                tx_kbps: 34,
            }),
            super::IceCommand::Deregister {
                ip: "10.0.0.1".into(),
                turn_port: None,
            },
            super::IceCommand::Deregister {
                ip: "10.0.0.1".into(),
                turn_port: Some(3480),
            },
        ] {
            let back = super::parse(c.to_body().as_bytes())
                .expect("parses")
                .command;
            assert_eq!(back, c);
        }
    }

    use super::*;

    fn cmd(body: &str) -> IceCommand {
        parse(body.as_bytes()).expect("parses").command
    }

    #[test]
    fn register_says_which_transports_are_served() {
        let reg = |extra: &str| {
            let IceCommand::Register(r) = cmd(&format!(
                r#"{{"cmd":"iceRegister","ip":"203.0.113.7","turnPort":3478,"maxBandwidth":1{extra}}}"#
            )) else {
                panic!("not a registration");
            };
            (r.turn_tcp_port, r.turns)
        };
        assert_eq!(
            reg(""),
            (Some(3478), None),
            "coturn's default: TCP on its port"
        );
        assert_eq!(reg(r#","turnTcpPort":0"#), (None, None));
        assert_eq!(reg(r#","turnTcpPort":"3479""#), (Some(3479), None));
        assert_eq!(
            reg(r#","turnsPort":5349"#).1,
            Some(Turns {
                host: "203.0.113.7".into(),
                port: 5349
            })
        );
        assert_eq!(
            reg(r#","turnsPort":443,"turnsHost":"turn.example.com""#).1,
            Some(Turns {
                host: "turn.example.com".into(),
                port: 443
            })
        );
        assert!(
            parse(br#"{"cmd":"iceRegister","ip":"1.2.3.4","maxBandwidth":1,"turnsPort":5349,"turnsHost":"a b"}"#)
                .is_err()
        );
        assert!(
            parse(br#"{"cmd":"iceRegister","ip":"1.2.3.4","maxBandwidth":1,"turnTcpPort":70000}"#)
                .is_err()
        );
    }

    #[test]
    fn a_registration_may_say_where_the_server_is() {
        let IceCommand::Register(r) = cmd(
            r#"{"cmd":"iceRegister","ip":"10.0.0.1","maxBandwidth":1,"latitude":50.11,"longitude":"8.68"}"#,
        ) else {
            panic!("a registration");
        };
        assert_eq!(r.location, GeoPoint::new(50.11, 8.68));
        for body in [
            r#"{"cmd":"iceRegister","ip":"10.0.0.1","maxBandwidth":1,"latitude":50}"#,
            r#"{"cmd":"iceRegister","ip":"10.0.0.1","maxBandwidth":1,"longitude":8}"#,
            r#"{"cmd":"iceRegister","ip":"10.0.0.1","maxBandwidth":1,"latitude":95,"longitude":8}"#,
            r#"{"cmd":"iceRegister","ip":"10.0.0.1","maxBandwidth":1,"latitude":"north","longitude":8}"#,
        ] {
            assert!(parse(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[test]
    fn register_with_numbers_as_strings_and_defaults() {
        let got = cmd(r#"{"cmd":"iceRegister","ip":"203.0.113.7","iceType":"turn",
            "bundlePolicy":"max-bundle","rtcpMuxPolicy":"require","iceTransportPolicy":"RELAY",
            "turnPort":"3478","stunPort":3479,"maxBandwidth":"100000","username":"u",
            "credential":"p","extra":1}"#);
        assert_eq!(
            got,
            IceCommand::Register(Register {
                ip: "203.0.113.7".into(),
                ice_type: IceType::Turn,
                bundle_policy: "max-bundle".into(),
                rtcp_mux_policy: "require".into(),
                ice_transport_policy: "relay".into(),
                turn_port: 3478,
                turn_tcp_port: Some(3478),
                turns: None,
                stun_port: 3479,
                max_bandwidth_kbps: 100_000,
                username: "u".into(),
                credential: "p".into(),
                region: None,
                location: None,
            })
        );
        let IceCommand::Register(r) = cmd(
            r#"{"cmd":"iceRegister","ip":"turn.example.com","maxBandwidth":5e3,
                "turnPort":0,"bundlePolicy":"","region":"eu","iceType":"stun"}"#,
        ) else {
            panic!("not a registration");
        };
        assert_eq!(
            (r.turn_port, r.stun_port, r.max_bandwidth_kbps),
            (3478, 3478, 5000)
        );
        assert_eq!(
            (
                r.bundle_policy.as_str(),
                r.rtcp_mux_policy.as_str(),
                r.ice_transport_policy.as_str()
            ),
            ("max-bundle", "require", "all")
        );
        assert_eq!(r.region.as_deref(), Some("eu"));
        assert_eq!(r.ice_type, IceType::Stun);
    }

    #[test]
    fn report_and_deregister() {
        assert_eq!(
            cmd(r#"{"cmd":"iceReportRxTxRate","ip":"::1","rxRate":"12","txRate":34.0}"#),
            IceCommand::Report(Report {
                ip: "::1".into(),
                turn_port: None,
                rx_kbps: 12,
                tx_kbps: 34
            })
        );
        assert_eq!(
            cmd(r#"{"cmd":"iceDeregister","ip":"10.0.0.1"}"#),
            IceCommand::Deregister {
                ip: "10.0.0.1".into(),
                turn_port: None,
            }
        );
        // Ours: the one server of several at an address.
        assert_eq!(
            cmd(r#"{"cmd":"iceDeregister","ip":"10.0.0.1","turnPort":3479}"#),
            IceCommand::Deregister {
                ip: "10.0.0.1".into(),
                turn_port: Some(3479),
            }
        );
        let req =
            parse(br#"{"cmd":"iceDeregister","ip":"10.0.0.1","secret":"s3"}"#).expect("parses");
        assert_eq!(req.secret.as_deref(), Some("s3"));
    }

    #[test]
    fn refusals() {
        let err = |b: &str| parse(b.as_bytes()).expect_err(b);
        assert!(matches!(err("{"), ParseError::NotJson(_)));
        assert_eq!(err("[1]"), ParseError::NotObject);
        assert_eq!(err(r#"{"ip":"1.2.3.4"}"#), ParseError::MissingCmd);
        assert_eq!(
            err(r#"{"cmd":"iceHello"}"#),
            ParseError::UnknownCmd("iceHello".into())
        );
        assert_eq!(
            err(r#"{"cmd":"iceRegister","ip":"1.2.3.4"}"#),
            ParseError::Missing("maxBandwidth")
        );
        assert_eq!(
            err(r#"{"cmd":"iceReportRxTxRate","ip":"1.2.3.4","rxRate":1}"#),
            ParseError::Missing("txRate")
        );
        for bad in [
            r#"{"cmd":"iceReportRxTxRate","ip":"1.2.3.4","rxRate":-1,"txRate":1}"#,
            r#"{"cmd":"iceReportRxTxRate","ip":"1.2.3.4","rxRate":"x","txRate":1}"#,
            r#"{"cmd":"iceRegister","ip":"1.2.3.4?transport=tcp","maxBandwidth":1}"#,
            r#"{"cmd":"iceRegister","ip":"1.2.3.4","maxBandwidth":1,"turnPort":70000}"#,
            r#"{"cmd":"iceRegister","ip":"1.2.3.4","maxBandwidth":1,"bundlePolicy":"all"}"#,
            r#"{"cmd":"iceRegister","ip":["1.2.3.4"],"maxBandwidth":1}"#,
        ] {
            assert!(matches!(err(bad), ParseError::Invalid { .. }), "{bad}");
        }
        assert_eq!(err("{").reply().as_str(), "ice_json_parse_falied");
    }

    #[test]
    fn reply_texts() {
        let all = [
            (Reply::Successful, "successful", 200),
            (Reply::NotFound, "ice_no_found", 200),
            (Reply::FullLoading, "ice_full_loading", 200),
            (Reply::JsonParseFailed, "ice_json_parse_falied", 200),
            (Reply::HaveRegistered, "ice_have_registered", 200),
            (Reply::Forbidden, "ice_forbidden", 403),
        ];
        for (r, text, status) in all {
            assert_eq!((r.as_str(), r.http_status()), (text, status));
        }
    }

    #[test]
    fn authorization() {
        let with = |s: Option<&str>| IceRequest {
            command: IceCommand::Deregister {
                ip: "1.2.3.4".into(),
                turn_port: None,
            },
            secret: s.map(Into::into),
        };
        assert!(with(None).authorized(None, true));
        assert!(
            !with(None).authorized(Some("k"), true),
            "the secret binds loopback too"
        );
        assert!(!with(Some("x")).authorized(Some("k"), true));
        assert!(with(Some("k")).authorized(Some("k"), true));
        assert!(!with(None).authorized(None, false));
        assert!(!with(Some("k")).authorized(None, false));
        assert!(!with(None).authorized(Some("k"), false));
        assert!(!with(Some("K")).authorized(Some("k"), false));
        assert!(!with(Some("kk")).authorized(Some("k"), false));
        assert!(with(Some("k")).authorized(Some("k"), false));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse(&body);
        }

        #[test]
        fn numbers_read_the_same_as_strings(n in 0u64..1_000_000_000) {
            let a = parse(format!(
                r#"{{"cmd":"iceReportRxTxRate","ip":"1.2.3.4","rxRate":{n},"txRate":"{n}"}}"#
            ).as_bytes()).expect("parses");
            proptest::prop_assert_eq!(a.command, IceCommand::Report(Report {
                ip: "1.2.3.4".into(), turn_port: None, rx_kbps: n, tx_kbps: n
            }));
        }
    }
}

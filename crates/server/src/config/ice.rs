//! The ICE sections: `[ice]` (how pairs get ICE servers) and `[turn]` (the embedded
//! STUN/TURN server).

use rtcroom_ice::RegistryConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[ice]`: how pairs get ICE servers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IceSection {
    /// `registry`: each pair gets the registered server with the most headroom (the embedded
    /// TURN server and coturn agents). `static`: every pair gets `[rtc] ice_servers`.
    pub mode: String,
    /// The secret an agent sends to register from another host; empty: only loopback may.
    pub register_secret: String,
    /// coturn's `--static-auth-secret`, shared by the registered coturn servers, for minting
    /// per-member credentials. Empty: coturn servers hand out their registered credentials.
    pub turn_secret: String,
    /// A server that has not reported for this long leaves rotation (and an alert is sent).
    pub report_timeout_secs: u64,
    /// Lifetime of minted TURN credentials; a relayed call cannot outlast it.
    pub credential_ttl_secs: u64,
    pub audio_reserve_kbps: u64,
    pub video_reserve_kbps: u64,
    pub max_servers: usize,
}

impl Default for IceSection {
    fn default() -> Self {
        let r = RegistryConfig::default();
        Self {
            mode: "registry".into(),
            register_secret: String::new(),
            turn_secret: String::new(),
            report_timeout_secs: r.report_timeout_ms / 1000,
            credential_ttl_secs: r.credential_ttl_secs,
            audio_reserve_kbps: r.audio_reserve_kbps,
            video_reserve_kbps: r.video_reserve_kbps,
            max_servers: r.max_servers,
        }
    }
}

/// `[turn]`: the embedded STUN/TURN server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnSection {
    pub enabled: bool,
    /// UDP address of the server; relay sockets bind to the same IP.
    pub listen: SocketAddr,
    /// TURN over TCP on the address and port of `listen` (`turn:HOST:PORT?transport=tcp`).
    pub tcp: bool,
    /// Address of the TURN-over-TLS listener (`turns:`), e.g. `"0.0.0.0:5349"` or port 443;
    /// empty: no TLS listener.
    pub tls_listen: String,
    /// PEM certificate chain and private key of the TLS listener, reloaded when they change;
    /// empty: those of `[server]`.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// The host name in `turns:` URLs, which the certificate must name (browsers check it);
    /// empty: `public_ip`.
    pub tls_host: String,
    /// Open connections per TCP or TLS listener; further ones are closed at once.
    pub max_connections: usize,
    /// The address clients reach it at (in URLs and relayed addresses); empty: the listen IP.
    pub public_ip: String,
    /// Relay ports, `"MIN-MAX"`.
    pub relay_ports: String,
    /// The REST shared secret of its credentials; empty: generated once into data_dir.
    pub secret: String,
    /// Allocate requests beyond this many live allocations get 508 Insufficient Capacity, and
    /// `/readyz` reports not ready while this many are live.
    pub max_allocations: usize,
    /// Allocate requests of a user (the uid of the credential) who holds this many live
    /// allocations get 486 Allocation Quota Reached.
    pub max_allocations_per_user: usize,
    /// Relayed bytes per second per allocation and direction; datagrams beyond it are dropped
    /// and counted. 0: no limit.
    pub allocation_bytes_per_sec: u64,
    /// Credentials that expire further ahead than this are refused (401). `[ice]
    /// credential_ttl_secs` must not exceed it.
    pub max_credential_lifetime_secs: u64,
    /// Relay to loopback peers; empty (unset) means yes when `listen` is a loopback address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_loopback_peers: Option<bool>,
    /// Relay to private networks (10/8, 172.16/12, 192.168/16, fc00::/7).
    pub allow_private_peers: bool,
    /// The bandwidth it may use, for selection (kbit/s). Each new pair reserves its need
    /// (40 kbit/s per audio member, 200 per video member) until the next report, so this also
    /// bounds how many pairs may start within one report interval: size it to the NIC.
    pub max_bandwidth_kbps: u64,
    /// How often it reports its own load to the registry.
    pub report_interval_secs: u64,
    /// The `iceTransportPolicy` pairs on this server get: `all`, or `relay` to force every
    /// call through TURN (for testing relays, or to hide members' addresses from each other).
    pub ice_transport_policy: String,
}

impl Default for TurnSection {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 3478)),
            tcp: true,
            tls_listen: String::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            tls_host: String::new(),
            max_connections: 20_000,
            public_ip: String::new(),
            relay_ports: "49152-65535".into(),
            secret: String::new(),
            max_allocations: 10_000,
            max_allocations_per_user: 16,
            allocation_bytes_per_sec: 1_000_000,
            max_credential_lifetime_secs: 86_400,
            allow_loopback_peers: None,
            allow_private_peers: false,
            max_bandwidth_kbps: 1_000_000,
            report_interval_secs: 5,
            ice_transport_policy: "all".into(),
        }
    }
}

impl TurnSection {
    /// The limits the embedded server cannot start with, and a credential lifetime of `[ice]`
    /// that it would refuse. Checked only when it runs (enabled, `[ice] mode = "registry"`).
    pub fn validate(&self, ice: &IceSection) -> anyhow::Result<()> {
        if !self.enabled || ice.mode != "registry" {
            return Ok(());
        }
        anyhow::ensure!(
            self.max_allocations >= 1,
            "[turn] max_allocations must be at least 1"
        );
        anyhow::ensure!(
            self.max_allocations_per_user >= 1,
            "[turn] max_allocations_per_user must be at least 1"
        );
        anyhow::ensure!(
            self.max_connections >= 1,
            "[turn] max_connections must be at least 1"
        );
        anyhow::ensure!(
            self.tls_cert.as_os_str().is_empty() == self.tls_key.as_os_str().is_empty(),
            "[turn] tls_cert and tls_key go together: set both (PEM files of the certificate chain and its private key) or neither (the TLS listener then uses those of [server])"
        );
        anyhow::ensure!(
            self.max_credential_lifetime_secs >= 1,
            "[turn] max_credential_lifetime_secs must be at least 1"
        );
        anyhow::ensure!(
            ice.credential_ttl_secs <= self.max_credential_lifetime_secs,
            "[ice] credential_ttl_secs ({}) is longer than [turn] max_credential_lifetime_secs ({}): \
             the embedded TURN server would refuse every credential it is handed; lower \
             `credential_ttl_secs` under [ice] to at most {} (or raise \
             `max_credential_lifetime_secs` under [turn])",
            ice.credential_ttl_secs,
            self.max_credential_lifetime_secs,
            self.max_credential_lifetime_secs
        );
        Ok(())
    }
}

/// The registry configuration of `[ice]` (and the embedded server's secret; in a cluster,
/// the `[turn] secret` the other nodes' embedded servers share, when it is set).
pub fn registry_config(
    ice: &IceSection,
    embedded: Option<(&str, &str)>,
    peer_secret: Option<&str>,
) -> RegistryConfig {
    let mut server_secrets = BTreeMap::new();
    if let Some((ip, secret)) = embedded {
        server_secrets.insert(ip.to_owned(), secret.to_owned());
    }
    RegistryConfig {
        report_timeout_ms: ice.report_timeout_secs.saturating_mul(1000),
        audio_reserve_kbps: ice.audio_reserve_kbps,
        video_reserve_kbps: ice.video_reserve_kbps,
        max_servers: ice.max_servers,
        shared_secret: (!ice.turn_secret.is_empty()).then(|| ice.turn_secret.clone()),
        server_secrets,
        credential_ttl_secs: ice.credential_ttl_secs,
        peer_secret: peer_secret.map(str::to_owned),
    }
}

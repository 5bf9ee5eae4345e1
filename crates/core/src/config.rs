//! What the engine is told at construction; the shell maps its configuration file onto it.

use rtcroom_protocol::{ConnectType, RtcConfig, SharedJson};

/// Prices in cents (分) per started minute of a connected pair, by connect type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prices {
    pub turn: u64,
    pub stun: u64,
    pub unknown: u64,
}

impl Default for Prices {
    /// Relayed minutes cost the operator bandwidth; P2P minutes cost nothing.
    fn default() -> Self {
        Self {
            turn: 1,
            stun: 0,
            unknown: 0,
        }
    }
}

impl Prices {
    /// The price of a minute of a pair connected this way.
    pub fn per_minute(&self, connect_type: ConnectType) -> u64 {
        match connect_type {
            ConnectType::Turn => self.turn,
            ConnectType::Stun => self.stun,
            ConnectType::Unknown => self.unknown,
        }
    }

    /// What `duration_secs` of a pair connected this way cost: started minutes × the price.
    pub fn cost_cents(&self, connect_type: ConnectType, duration_secs: u64) -> u64 {
        duration_secs.div_ceil(60) * self.per_minute(connect_type)
    }
}

/// Where a pair's ICE servers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceMode {
    /// Every pair gets `EngineConfig::rtc_config` as it is.
    Static,
    /// Each pair gets the registered ICE server with the most headroom, chosen once when the
    /// two meet, with credentials minted per member (`result: 8` when none has room).
    Registry(rtcroom_ice::RegistryConfig),
}

/// Whether `join` and `updateToken` need a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Tokens are checked by the shell and the engine enforces the result (result 12),
    /// prompts before expiry and kicks at expiry.
    Required {
        /// How long before expiry `systemPromptToken` is sent.
        prompt_secs: u64,
    },
    /// Tokens are not checked (the original clients send a fixed token).
    Open,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Members per room, the document's example being 3.
    pub max_capacity: usize,
    /// A member silent for longer than this is removed.
    pub heartbeat_timeout_secs: u64,
    /// A connection in no room for this long (it never joined, or it left) is closed, even
    /// while it sends `keepLive`: otherwise sockets that never join hold connection slots.
    pub join_timeout_secs: u64,
    /// Joins per second one client address may make on average, and the burst above it
    /// (0: no limit). Beyond, a join is refused with result 14.
    pub joins_per_ip_per_sec: u32,
    pub joins_per_ip_burst: u32,
    /// Sent in `respJoin`; how often clients send `reportStats`.
    pub report_stats_interval_secs: u64,
    /// The `rtcConfig` handed to each pair in [`IceMode::Static`].
    pub rtc_config: SharedJson,
    pub ice: IceMode,
    pub prices: Prices,
    pub auth: AuthMode,
    /// Messages per second a connection may send on average, and the burst above it.
    pub rate_per_sec: u32,
    pub rate_burst: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_capacity: 3,
            heartbeat_timeout_secs: 40,
            join_timeout_secs: 10,
            joins_per_ip_per_sec: 20,
            joins_per_ip_burst: 100,
            report_stats_interval_secs: 15,
            rtc_config: SharedJson::rtc_config(&RtcConfig::with_servers(Vec::new())),
            ice: IceMode::Static,
            prices: Prices::default(),
            auth: AuthMode::Open,
            rate_per_sec: 50,
            rate_burst: 200,
        }
    }
}

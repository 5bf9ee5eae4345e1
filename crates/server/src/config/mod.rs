//! Configuration: a TOML file, every key overridable by an environment variable, and
//! defaults that make `rtcroom serve` work with no file at all.
//!
//! An environment variable `RTCROOM_<SECTION>_<KEY>` overrides `[section] key`, e.g.
//! `RTCROOM_SERVER_LISTEN=0.0.0.0:8080` or `RTCROOM_ROOM_MAX_CAPACITY=4`. Its value is read
//! as TOML when it parses as a TOML value (numbers, booleans, arrays) and as a plain string
//! otherwise. Arrays of tables (`[[...]]`) are only set in the file.
//!
//! This is done by hand over `toml::Table` (about forty lines) rather than with a layered
//! configuration crate: section names have no underscores, so the mapping is one split,
//! and the crates that do it pull in more than they save.

//!
//! Every section is plain data defined in this folder, so that `config` imports no feature
//! module (only `auth` for the apps): the features import their sections from here.

mod ice;
mod ops;
mod records;
mod sections;

pub use ice::{IceSection, TurnSection, registry_config};
pub use ops::{AlertsSection, MonitorSection, SmtpSection, Target};
pub use records::{DatabaseSection, ReportSection};
pub use sections::{
    AdminSection, AuthSection, BillingSection, LogSection, RoomSection, RtcSection, ServerSection,
};

use anyhow::{Context, bail};
use rtcroom_core::{AuthMode, EngineConfig, Prices};
use rtcroom_protocol::{IceServer, RtcConfig, SharedJson};
use serde::Deserialize;
use std::path::Path;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSection,
    pub room: RoomSection,
    pub auth: AuthSection,
    pub rtc: RtcSection,
    pub billing: BillingSection,
    pub log: LogSection,
    pub admin: AdminSection,
    /// The apps allowed to use this server (`[[apps]]`). Empty: one demo app `10000` for
    /// `localhost` and `127.0.0.1`, with a secret generated on first start in `data_dir`.
    pub apps: Vec<crate::auth::App>,
    pub smtp: SmtpSection,
    pub database: DatabaseSection,
    pub report: ReportSection,
    pub ice: IceSection,
    pub turn: TurnSection,
    pub alerts: AlertsSection,
    pub monitor: MonitorSection,
}

const ENV_PREFIX: &str = "RTCROOM_";

impl Config {
    /// Read the file (if any), apply the environment, check the result.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_with_env(file, std::env::vars())
    }

    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the configuration file {}", path.display())
                })?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("{} is not valid TOML", path.display()))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let Some((section, key)) = rest.split_once('_') else {
                continue;
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            if !KNOWN_SECTIONS.contains(&section.as_str()) {
                continue; // RTCROOM_BIN and the like belong to scripts, not to us
            }
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(section_table) = entry.as_table_mut() else {
                bail!("[{section}] in the configuration file must be a table");
            };
            section_table.insert(key, parsed);
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .context("invalid configuration (see config.example.toml for every key)")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.room.max_capacity < 2 {
            bail!("[room] max_capacity must be at least 2 (a call needs two people)");
        }
        if self.room.heartbeat_timeout_secs < 5 {
            bail!(
                "[room] heartbeat_timeout_secs must be at least 5 (clients send keepLive every 5 s)"
            );
        }
        if self.server.outbound_queue < 8 {
            bail!("[server] outbound_queue must be at least 8");
        }
        if self.server.max_frame_bytes < 1024 {
            bail!("[server] max_frame_bytes must be at least 1024");
        }
        if self.auth.token_ttl_secs <= self.auth.token_prompt_secs {
            bail!("[auth] token_ttl_secs must be longer than token_prompt_secs");
        }
        crate::peer::TrustedProxies::parse(&self.server.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("[server] trusted_proxies: {e}"))?;
        for app in &self.apps {
            if app.id.is_empty() {
                bail!("an [[apps]] entry has an empty id");
            }
            if app.all_keys().is_empty() {
                bail!(
                    "app {} has no secret: give it `secret = \"...\"` or [[apps.keys]]",
                    app.id
                );
            }
        }
        if !["registry", "static"].contains(&self.ice.mode.as_str()) {
            bail!("[ice] mode must be \"registry\" or \"static\"");
        }
        if !["human", "json"].contains(&self.log.format.as_str()) {
            bail!("[log] format must be \"human\" or \"json\"");
        }
        self.turn.validate(&self.ice)?;
        self.database.validate()?;
        self.report.validate_presentation()?;
        Ok(())
    }

    /// The `rtcConfig` of the configuration file.
    pub fn rtc_config(&self) -> RtcConfig {
        RtcConfig {
            bundle_policy: self.rtc.bundle_policy.clone(),
            ice_servers: self
                .rtc
                .ice_servers
                .iter()
                .map(|s| IceServer {
                    credential: s.credential.clone(),
                    urls: s.urls.clone(),
                    username: s.username.clone(),
                })
                .collect(),
            ice_transport_policy: self.rtc.ice_transport_policy.clone(),
            rtcp_mux_policy: self.rtc.rtcp_mux_policy.clone(),
        }
    }

    /// What the room engine is told; `embedded` is the embedded TURN server's public IP and
    /// secret when it runs.
    pub fn engine(&self, embedded: Option<(&str, &str)>) -> EngineConfig {
        EngineConfig {
            max_capacity: self.room.max_capacity,
            heartbeat_timeout_secs: self.room.heartbeat_timeout_secs,
            report_stats_interval_secs: self.room.report_stats_interval_secs,
            rtc_config: SharedJson::rtc_config(&self.rtc_config()),
            ice: if self.ice.mode == "registry" {
                rtcroom_core::IceMode::Registry(registry_config(&self.ice, embedded))
            } else {
                rtcroom_core::IceMode::Static
            },
            prices: Prices {
                turn: self.billing.turn_cents_per_minute,
                stun: self.billing.stun_cents_per_minute,
                unknown: self.billing.unknown_cents_per_minute,
            },
            auth: if self.auth.required {
                AuthMode::Required {
                    prompt_secs: self.auth.token_prompt_secs,
                }
            } else {
                AuthMode::Open
            },
            rate_per_sec: self.room.rate_per_sec,
            rate_burst: self.room.rate_burst,
        }
    }
}

/// A secret generated once (32 random bytes, hex) and kept in `data_dir/name`.
pub fn persistent_secret(data_dir: &Path, name: &str) -> anyhow::Result<String> {
    let path = data_dir.join(name);
    if let Ok(s) = std::fs::read_to_string(&path)
        && !s.trim().is_empty()
    {
        return Ok(s.trim().to_owned());
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create [server] data_dir {}", data_dir.display()))?;
    std::fs::write(&path, &secret).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(secret)
}

const KNOWN_SECTIONS: &[&str] = &[
    "server", "room", "auth", "rtc", "billing", "log", "admin", "smtp", "alerts", "monitor", "ice",
    "turn", "database", "report",
];

impl Config {
    /// The apps of the configuration, or the demo app when none is configured. The demo
    /// app's secret is generated once and kept in `data_dir/demo-app.secret`.
    pub fn apps(&self) -> anyhow::Result<Vec<crate::auth::App>> {
        if !self.apps.is_empty() {
            return Ok(self.apps.clone());
        }
        let secret = persistent_secret(&self.server.data_dir, "demo-app.secret")?;
        Ok(vec![crate::auth::App {
            id: "10000".into(),
            secret: Some(secret),
            keys: Vec::new(),
            domains: vec!["localhost".into(), "127.0.0.1".into()],
            mode: crate::auth::AppMode::Public,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_work_without_a_file() {
        let c = Config::load_with_env(None, env(&[])).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.room.max_capacity, 3);
        assert_eq!(c.room.heartbeat_timeout_secs, 40);
        assert_eq!(c.room.report_stats_interval_secs, 15);
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("rtcroom-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "[room]\nmax_capacity = 5\n[auth]\nrequired = true\n").unwrap();
        let c = Config::load_with_env(
            Some(&file),
            env(&[
                ("RTCROOM_ROOM_MAX_CAPACITY", "4"),
                ("RTCROOM_SERVER_LISTEN", "127.0.0.1:0"),
                ("RTCROOM_AUTH_REQUIRED", "false"),
                ("RTCROOM_BIN", "/somewhere"),
            ]),
        )
        .unwrap();
        assert_eq!(c.room.max_capacity, 4);
        assert_eq!(c.server.listen.port(), 0);
        assert!(!c.auth.required);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn records_are_turned_off_in_the_file_or_the_environment() {
        let dir = std::env::temp_dir().join(format!("rtcroom-cfg-off-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "[database]\nurl = \"off\"\n").unwrap();
        assert!(
            Config::load_with_env(Some(&file), env(&[]))
                .unwrap()
                .database
                .is_off()
        );
        std::fs::remove_dir_all(dir).unwrap();
        let c = Config::load_with_env(None, env(&[("RTCROOM_DATABASE_URL", "off")])).unwrap();
        assert!(c.database.is_off());
        assert!(
            !Config::load_with_env(None, env(&[]))
                .unwrap()
                .database
                .is_off(),
            "records are on by default"
        );
        let e = Config::load_with_env(None, env(&[("RTCROOM_DATABASE_URL", "OFF")])).unwrap_err();
        assert!(format!("{e:#}").contains("write \"off\""), "{e:#}");
    }

    #[test]
    fn mistakes_are_explained() {
        let e =
            Config::load_with_env(None, env(&[("RTCROOM_ROOM_MAX_CAPACITY", "1")])).unwrap_err();
        assert!(format!("{e:#}").contains("max_capacity"));
        let e =
            Config::load_with_env(None, env(&[("RTCROOM_ROOM_MAX_CAPACITTY", "4")])).unwrap_err();
        assert!(format!("{e:#}").contains("max_capacitty"), "{e:#}");
    }
}

#[cfg(test)]
mod example {
    use super::*;

    /// The documented example holds every key with its default: it parses (unknown keys are
    /// errors) and gives the same configuration as no file at all.
    #[test]
    fn the_example_file_is_the_defaults() {
        let path = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config.example.toml"
        ));
        let from_file = Config::load_with_env(Some(path), Vec::new()).unwrap();
        let defaults = Config::load_with_env(None, Vec::new()).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
    }
}

#[cfg(test)]
mod deploy_files {
    use super::*;

    #[test]
    fn the_deploy_configurations_are_valid() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/");
        for file in ["rtcroom.production.toml", "monitor.example.toml"] {
            let path = std::path::PathBuf::from(root).join(file);
            let cfg = Config::load_with_env(Some(&path), Vec::new())
                .unwrap_or_else(|e| panic!("{file}: {e:#}"));
            if file == "monitor.example.toml" {
                assert_eq!(cfg.monitor.targets.len(), 3);
            } else {
                assert!(cfg.auth.required && cfg.database.url.starts_with("mysql://"));
            }
        }
    }
}

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

mod check;
mod cluster;
mod ice;
mod ops;
mod records;
mod sections;
mod show;

pub use cluster::ClusterSection;
pub use ice::{IceSection, TurnSection, registry_config};
pub use ops::{AlertsSection, MonitorSection, SmtpSection, Target};
pub use records::{DatabaseSection, ReportSection};
pub use sections::{
    AdminSection, AuthSection, BillingSection, GeoipSection, LogSection, RoomSection, RtcSection,
    ServerSection,
};
pub use show::{redact_url, to_redacted_toml};

use anyhow::{Context, bail};
use rtcroom_core::{AuthMode, EngineConfig, Prices};
use rtcroom_protocol::{IceServer, RtcConfig, SharedJson};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
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
    pub geoip: GeoipSection,
    pub cluster: ClusterSection,
}

const ENV_PREFIX: &str = "RTCROOM_";

/// The largest `[server] max_frame_bytes` accepted.
const MAX_FRAME_LIMIT: usize = 16 * 1024 * 1024;
/// The most `[server] worker_threads` may be: more threads than this only cost memory.
const MAX_WORKER_THREADS: usize = 1024;

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
        let defaults = toml::Table::try_from(Config::default())
            .context("the default configuration does not serialize")?;
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
            let default = defaults.get(&section).and_then(|s| s.get(&key)).cloned();
            let parsed = env_value(value, default.as_ref());
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(section_table) = entry.as_table_mut() else {
                bail!("[{section}] in the configuration file must be a table");
            };
            section_table.insert(key, parsed);
        }
        check::no_placeholders(&table)?;
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .context("invalid configuration (see config.example.toml for every key)")?;
        let base = match file {
            Some(path) => std::path::absolute(path)
                .with_context(|| format!("cannot resolve {}", path.display()))?
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            None => std::env::current_dir()
                .context("cannot read the working directory (needed for [server] data_dir)")?,
        };
        config.resolve_paths(&base);
        config.validate()?;
        Ok(config)
    }

    /// Relative paths (`[server] data_dir`, the default `data` included, `tls_cert`,
    /// `tls_key`, `[turn] tls_cert`, `tls_key`, and a SQLite `[database] url`) are taken relative to `base`: the configuration file's folder, or
    /// the working directory when there is no file. Every command of one server then finds
    /// the same files wherever it is run from.
    fn resolve_paths(&mut self, base: &Path) {
        for path in [
            &mut self.server.data_dir,
            &mut self.server.tls_cert,
            &mut self.server.tls_key,
            &mut self.turn.tls_cert,
            &mut self.turn.tls_key,
            &mut self.geoip.database,
        ] {
            if path.is_relative() && !path.as_os_str().is_empty() {
                *path = base.join(&*path);
            }
        }
        self.database.resolve_sqlite_path(base);
    }

    /// Every check a configuration must pass before `serve` starts with it; `check-config`
    /// runs the same (and `commands::preflight` adds the ones that need a feature module).
    fn validate(&self) -> anyhow::Result<()> {
        if self.room.max_capacity < 2 {
            bail!("[room] max_capacity must be at least 2 (a call needs two people)");
        }
        if self.room.heartbeat_timeout_secs < 5 {
            bail!(
                "[room] heartbeat_timeout_secs must be at least 5 (clients send keepLive every 5 s)"
            );
        }
        for (key, v) in [
            ("join_timeout_secs", self.server.join_timeout_secs),
            ("write_timeout_secs", self.server.write_timeout_secs),
            (
                "header_read_timeout_secs",
                self.server.header_read_timeout_secs,
            ),
        ] {
            if v == 0 {
                bail!("[server] {key} must be at least 1 (seconds)");
            }
        }
        if self.room.joins_per_ip_per_sec > 0 && self.room.joins_per_ip_burst == 0 {
            bail!(
                "[room] joins_per_ip_burst must be at least 1 while joins_per_ip_per_sec is set (0 turns the limit off)"
            );
        }
        if self.server.tls_cert.as_os_str().is_empty() != self.server.tls_key.as_os_str().is_empty()
        {
            bail!(
                "[server] tls_cert and tls_key go together: set both (PEM files of the certificate chain and its private key) or neither (plain HTTP)"
            );
        }
        if self.server.worker_threads > MAX_WORKER_THREADS {
            bail!(
                "[server] worker_threads must be at most {MAX_WORKER_THREADS} (0: one per CPU core)"
            );
        }
        if self.server.outbound_queue < 8 {
            bail!("[server] outbound_queue must be at least 8");
        }
        if self.server.max_frame_bytes < 1024 {
            bail!("[server] max_frame_bytes must be at least 1024");
        }
        // A connection may buffer up to four frames' worth before it is closed (1009): the
        // limit is what one client may make the server hold.
        if self.server.max_frame_bytes > MAX_FRAME_LIMIT {
            bail!(
                "[server] max_frame_bytes must be at most {MAX_FRAME_LIMIT} (16 MiB; a real SDP is 3-12 KB, and each connection may hold four times the limit)"
            );
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
        let sqlite = !self.database.is_off()
            && self
                .database
                .url(&self.server.data_dir)
                .starts_with("sqlite:");
        self.cluster.validate(sqlite)?;
        self.cluster
            .validate_apps(self.apps.is_empty() && self.auth.required)?;
        self.report.tz()?;
        self.report.at()?;
        self.report.validate_presentation()?;
        check::can_serve_a_call(&self.ice, &self.turn)?;
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

    /// In a cluster, the `[turn] secret` every node's embedded TURN server shares (the same
    /// file on every node): with it each node hands out the others' embedded servers. `None`
    /// without `[cluster]` or with the secret left empty (generated per data directory).
    pub fn cluster_turn_secret(&self) -> Option<&str> {
        (self.cluster.enabled() && !self.turn.secret.is_empty())
            .then_some(self.turn.secret.as_str())
    }

    /// What the room engine is told; `embedded` is the embedded TURN server's public IP and
    /// secret when it runs.
    pub fn engine(&self, embedded: Option<(&str, &str)>) -> EngineConfig {
        EngineConfig {
            max_capacity: self.room.max_capacity,
            heartbeat_timeout_secs: self.room.heartbeat_timeout_secs,
            join_timeout_secs: self.server.join_timeout_secs,
            joins_per_ip_per_sec: self.room.joins_per_ip_per_sec,
            joins_per_ip_burst: self.room.joins_per_ip_burst,
            report_stats_interval_secs: self.room.report_stats_interval_secs,
            rtc_config: SharedJson::rtc_config(&self.rtc_config()),
            ice: if self.ice.mode == "registry" {
                rtcroom_core::IceMode::Registry(registry_config(
                    &self.ice,
                    embedded,
                    self.cluster_turn_secret(),
                ))
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

/// An environment variable's value: a TOML value when it parses as one of the key's type,
/// else the plain string. So `RTCROOM_ADMIN_TOKEN=123456` is the string "123456" (a key
/// that holds a string takes any value as a string), and a single address for a key that
/// holds a list of strings (`RTCROOM_ALERTS_RECIPIENTS=ops@example.com`) is a list of one.
fn env_value(raw: String, default: Option<&toml::Value>) -> toml::Value {
    use toml::Value;
    let parsed = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"));
    match (default, parsed) {
        (Some(Value::String(_)), Some(v @ Value::String(_))) => v,
        (Some(Value::String(_)), _) => Value::String(raw),
        (Some(Value::Array(_)), Some(v @ Value::Array(_))) => v,
        (Some(Value::Array(_)), Some(v @ Value::String(_))) => Value::Array(vec![v]),
        (Some(Value::Array(_)), _) => Value::Array(vec![Value::String(raw)]),
        (_, Some(v)) => v,
        (_, None) => Value::String(raw),
    }
}

/// Create `data_dir` (and its parents) when missing, readable by its owner only: it holds
/// secrets, the rooms snapshot, the SQLite records and their spool.
pub fn create_data_dir(data_dir: &Path) -> anyhow::Result<()> {
    if data_dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(data_dir)
        .with_context(|| format!("cannot create [server] data_dir {}", data_dir.display()))
}

/// Write a new file that only its owner may read (mode 0600), failing when it exists.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// A secret kept in `data_dir/name`, when it is there. A file others may read (written by
/// an older version) is made private first.
pub fn existing_secret(data_dir: &Path, name: &str) -> anyhow::Result<Option<String>> {
    let path = data_dir.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot make {} private (chmod 600)", path.display()))?;
        }
    }
    let secret = text.trim();
    Ok((!secret.is_empty()).then(|| secret.to_owned()))
}

/// A secret generated once (32 random bytes, hex) and kept in `data_dir/name`, readable by
/// its owner only.
pub fn persistent_secret(data_dir: &Path, name: &str) -> anyhow::Result<String> {
    if let Some(secret) = existing_secret(data_dir, name)? {
        return Ok(secret);
    }
    let path = data_dir.join(name);
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    create_data_dir(data_dir)?;
    // An empty file left by an interrupted write is replaced.
    let _ = std::fs::remove_file(&path);
    write_private(&path, secret.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(secret)
}

const KNOWN_SECTIONS: &[&str] = &[
    "server", "room", "auth", "rtc", "billing", "log", "admin", "smtp", "alerts", "monitor", "ice",
    "turn", "database", "report", "geoip", "cluster",
];

impl Config {
    /// The apps of the configuration, or the demo app when none is configured. The demo
    /// app's secret is generated on the server's first start and kept in
    /// `data_dir/demo-app.secret`.
    pub fn apps(&self) -> anyhow::Result<Vec<crate::auth::App>> {
        if !self.apps.is_empty() {
            return Ok(self.apps.clone());
        }
        let secret = persistent_secret(&self.server.data_dir, DEMO_SECRET)?;
        Ok(vec![demo_app(secret)])
    }

    /// The apps as the server that owns `data_dir` has them, for the commands beside it
    /// (`token`, `apps list`): the demo app's secret is read, never made up, so that a
    /// command run against the wrong directory says so instead of minting tokens the server
    /// refuses.
    pub fn server_apps(&self) -> anyhow::Result<Vec<crate::auth::App>> {
        if !self.apps.is_empty() {
            return Ok(self.apps.clone());
        }
        let path = self.server.data_dir.join(DEMO_SECRET);
        match existing_secret(&self.server.data_dir, DEMO_SECRET)? {
            Some(secret) => Ok(vec![demo_app(secret)]),
            None => bail!(
                "{} does not exist: no [[apps]] are configured, and the demo app's secret is made by \
                 the server's first start in its data_dir. Pass the server's configuration \
                 (--config FILE, or RTCROOM_CONFIG=FILE), or start the server once first",
                path.display()
            ),
        }
    }
}

/// The file of the demo app's secret in `data_dir`.
const DEMO_SECRET: &str = "demo-app.secret";

fn demo_app(secret: String) -> crate::auth::App {
    crate::auth::App {
        id: "10000".into(),
        secret: Some(secret),
        keys: Vec::new(),
        domains: vec!["localhost".into(), "127.0.0.1".into()],
        mode: crate::auth::AppMode::Public,
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
    fn digits_are_a_string_for_a_key_that_holds_a_string() {
        let c = Config::load_with_env(
            None,
            env(&[
                ("RTCROOM_ADMIN_TOKEN", "123456"),
                ("RTCROOM_TURN_SECRET", "true"),
                ("RTCROOM_ALERTS_RECIPIENTS", "ops@example.com"),
                ("RTCROOM_ROOM_MAX_CAPACITY", "4"),
            ]),
        )
        .unwrap();
        assert_eq!(c.admin.token, "123456");
        assert_eq!(c.turn.secret, "true");
        assert_eq!(c.alerts.recipients, ["ops@example.com"]);
        assert_eq!(c.room.max_capacity, 4);
    }

    /// `[server] KEY` set to `max + 1` through the environment is refused with a message
    /// that names the bound; set to `max` it is taken.
    fn bounded_server_key(var: &str, key: &str, max: usize) -> Config {
        let over = (max + 1).to_string();
        let e = Config::load_with_env(None, env(&[(var, &over)])).unwrap_err();
        assert!(
            format!("{e:#}").contains(&format!("{key} must be at most")),
            "{e:#}"
        );
        Config::load_with_env(None, env(&[(var, &max.to_string())])).unwrap()
    }

    #[test]
    fn the_frame_limit_and_the_worker_threads_are_bounded() {
        let frames = bounded_server_key(
            "RTCROOM_SERVER_MAX_FRAME_BYTES",
            "max_frame_bytes",
            MAX_FRAME_LIMIT,
        );
        assert_eq!(frames.server.max_frame_bytes, MAX_FRAME_LIMIT);
        let threads = bounded_server_key(
            "RTCROOM_SERVER_WORKER_THREADS",
            "worker_threads",
            MAX_WORKER_THREADS,
        );
        assert_eq!(threads.server.worker_threads, MAX_WORKER_THREADS);
    }

    #[test]
    fn relative_paths_are_taken_from_the_file_s_folder() {
        let dir = std::env::temp_dir().join(format!("rtcroom-cfg-rel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[server]\ndata_dir = \"state\"\n[database]\nurl = \"sqlite://db/r.db\"\n",
        )
        .unwrap();
        let c = Config::load_with_env(Some(&file), env(&[])).unwrap();
        assert_eq!(c.server.data_dir, dir.join("state"));
        assert_eq!(
            c.database.url,
            format!("sqlite://{}", dir.join("db/r.db").display())
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_configuration_that_cannot_serve_a_call_is_refused() {
        let e = Config::load_with_env(None, env(&[("RTCROOM_TURN_ENABLED", "false")])).unwrap_err();
        assert!(
            format!("{e:#}").contains("`enabled = true` under [turn]"),
            "{e:#}"
        );
        for (key, value) in [
            ("RTCROOM_ICE_MODE", "static"),
            ("RTCROOM_ICE_TURN_SECRET", "coturn"),
            ("RTCROOM_ICE_REGISTER_SECRET", "agents"),
        ] {
            Config::load_with_env(
                None,
                env(&[("RTCROOM_TURN_ENABLED", "false"), (key, value)]),
            )
            .unwrap_or_else(|e| panic!("{key}: {e:#}"));
        }
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
        let mut from_file = Config::load_with_env(Some(path), Vec::new()).unwrap();
        let defaults = Config::load_with_env(None, Vec::new()).unwrap();
        // `data_dir = "data"` is the folder next to the file; without a file, next to the
        // working directory.
        let root = std::path::absolute(path.parent().unwrap()).unwrap();
        assert_eq!(from_file.server.data_dir, root.join("data"));
        assert_eq!(
            defaults.server.data_dir,
            std::env::current_dir().unwrap().join("data")
        );
        from_file.server.data_dir = defaults.server.data_dir.clone();
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
    }
}

#[cfg(test)]
mod deploy_files {
    use super::*;

    /// The templates are refused as they are (their `REPLACE` placeholders name what the
    /// operator must write), and valid once every placeholder is replaced.
    #[test]
    fn the_deploy_configurations_are_valid_once_filled_in() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/");
        let dir = std::env::temp_dir().join(format!("rtcroom-deploy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["rtcroom.production.toml", "monitor.example.toml"] {
            let path = std::path::PathBuf::from(root).join(file);
            let e = Config::load_with_env(Some(&path), Vec::new()).unwrap_err();
            assert!(
                format!("{e:#}").contains("placeholder REPLACE"),
                "{file}: {e:#}"
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let filled: String = text
                .lines()
                .map(|l| match l.find("\"REPLACE") {
                    Some(at) => format!("{}\"0123456789abcdef\"", &l[..at]),
                    None => l.replace(":REPLACE@", ":s3cret@"),
                })
                .collect::<Vec<_>>()
                .join("\n");
            let filled_path = dir.join(file);
            std::fs::write(&filled_path, filled).unwrap();
            let cfg = Config::load_with_env(Some(&filled_path), Vec::new())
                .unwrap_or_else(|e| panic!("{file} filled in: {e:#}"));
            if file == "monitor.example.toml" {
                assert_eq!(cfg.monitor.targets.len(), 3);
            } else {
                assert!(cfg.auth.required && cfg.database.url.starts_with("mysql://"));
                assert_eq!(
                    cfg.server.data_dir,
                    std::path::Path::new("/var/lib/rtcroom")
                );
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

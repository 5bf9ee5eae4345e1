//! `[cluster]`: several `rtcroom serve` nodes on one Redis. Empty `redis`: one node, exactly
//! as without the section, and no Redis is ever touched.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// `redis://HOST:PORT/DB`; empty: single node.
    pub redis: String,
    /// This node's name in the cluster; empty: the host name and the listen port.
    pub node_id: String,
    /// How often the node says it is alive (and refreshes its load) in Redis.
    pub heartbeat_ms: u64,
    /// A node not heard for this long is dead: its rooms get a new owner.
    pub dead_after_ms: u64,
    /// Every Redis key and channel of the cluster starts with this (several clusters, or
    /// tests, may share one Redis).
    pub key_prefix: String,
    /// The signaling URL login hands out (`wss://rtc.example.com/ws`, the load balancer's);
    /// empty: the least-loaded live node's own `/ws`.
    pub signaling_url: String,
}

impl Default for ClusterSection {
    fn default() -> Self {
        Self {
            redis: String::new(),
            node_id: String::new(),
            heartbeat_ms: 1000,
            dead_after_ms: 3000,
            key_prefix: "rtcroom".into(),
            signaling_url: String::new(),
        }
    }
}

impl ClusterSection {
    /// Whether this node is part of a cluster.
    pub fn enabled(&self) -> bool {
        !self.redis.trim().is_empty()
    }

    /// The checks of the section on its own; `sqlite` says whether call records go to a
    /// SQLite file.
    pub fn validate(&self, sqlite: bool) -> anyhow::Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        if !self.redis.starts_with("redis://") && !self.redis.starts_with("rediss://") {
            anyhow::bail!(
                "[cluster] redis must be a redis://HOST:PORT/DB URL (or empty for a single node)"
            );
        }
        if self.heartbeat_ms < 50 {
            anyhow::bail!("[cluster] heartbeat_ms must be at least 50");
        }
        if self.dead_after_ms < 2 * self.heartbeat_ms {
            anyhow::bail!(
                "[cluster] dead_after_ms must be at least twice heartbeat_ms (a node must miss two heartbeats before it counts as dead)"
            );
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            anyhow::bail!("[cluster] key_prefix must be a non-empty word without spaces");
        }
        if self.node_id.contains(char::is_whitespace) {
            anyhow::bail!("[cluster] node_id must not hold spaces");
        }
        if sqlite {
            anyhow::bail!(
                "[cluster] needs a shared call-record database: SQLite is a file of one node, so each node would write its own records and a call that moves between nodes would be split across files. Set [database] url to a MariaDB/MySQL or PostgreSQL URL shared by every node (or \"off\")"
            );
        }
        Ok(())
    }

    /// In a cluster, tokens checked at join must verify on every node: the demo app's secret
    /// is generated per data directory, so `demo_app_checked` (no `[[apps]]`, tokens
    /// required) is refused.
    pub fn validate_apps(&self, demo_app_checked: bool) -> anyhow::Result<()> {
        if self.enabled() && demo_app_checked {
            anyhow::bail!(
                "[cluster] with [auth] required = true needs [[apps]] configured, with the same secret on every node: without them each node generates its own demo app secret, and a token one node minted at login would be refused by the node the member joins through. Add an [[apps]] section (id, secret, domains) to the configuration every node reads"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_cluster_is_off_by_default_and_set_from_the_environment() {
        let cfg = Config::load_with_env(None, env(&[])).unwrap();
        assert!(!cfg.cluster.enabled());
        let cfg = Config::load_with_env(
            None,
            env(&[
                ("RTCROOM_CLUSTER_REDIS", "redis://10.0.0.5:6379/0"),
                ("RTCROOM_CLUSTER_NODE_ID", "web1"),
                ("RTCROOM_CLUSTER_HEARTBEAT_MS", "500"),
                ("RTCROOM_DATABASE_URL", "mysql://root@127.0.0.1/rtc"),
                ("RTCROOM_AUTH_REQUIRED", "false"),
            ]),
        )
        .unwrap();
        assert!(cfg.cluster.enabled());
        assert_eq!(cfg.cluster.node_id, "web1");
        assert_eq!(cfg.cluster.heartbeat_ms, 500);
        assert_eq!(cfg.cluster.dead_after_ms, 3000);
        assert_eq!(cfg.cluster.key_prefix, "rtcroom");
    }

    #[test]
    fn sqlite_is_refused_in_a_cluster_with_the_reason() {
        let err = Config::load_with_env(
            None,
            env(&[("RTCROOM_CLUSTER_REDIS", "redis://127.0.0.1:6379/0")]),
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("SQLite is a file of one node"), "{text}");
        let off = Config::load_with_env(
            None,
            env(&[
                ("RTCROOM_CLUSTER_REDIS", "redis://127.0.0.1:6379/0"),
                ("RTCROOM_DATABASE_URL", "off"),
                ("RTCROOM_AUTH_REQUIRED", "false"),
            ]),
        );
        assert!(off.is_ok(), "{off:?}");
    }

    #[test]
    fn checked_tokens_need_apps_shared_by_every_node() {
        let base = [
            ("RTCROOM_CLUSTER_REDIS", "redis://127.0.0.1:6379/0"),
            ("RTCROOM_DATABASE_URL", "off"),
        ];
        let err = Config::load_with_env(None, env(&base)).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("needs [[apps]] configured"), "{text}");
        let file =
            std::env::temp_dir().join(format!("rtcroom-cluster-apps-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            "[[apps]]\nid = \"10000\"\nsecret = \"shared-secret-of-the-cluster\"\ndomains = [\"example.com\"]\n",
        )
        .unwrap();
        let with_apps = Config::load_with_env(Some(&file), env(&base));
        std::fs::remove_file(&file).unwrap();
        assert!(with_apps.is_ok(), "{with_apps:?}");
    }

    #[test]
    fn a_node_must_miss_two_heartbeats_before_it_is_dead() {
        let err = Config::load_with_env(
            None,
            env(&[
                ("RTCROOM_CLUSTER_REDIS", "redis://127.0.0.1:6379/0"),
                ("RTCROOM_DATABASE_URL", "off"),
                ("RTCROOM_CLUSTER_DEAD_AFTER_MS", "1500"),
            ]),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("dead_after_ms"), "{err:#}");
    }
}

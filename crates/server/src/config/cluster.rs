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
}

//! The node's link to Redis: one multiplexed connection (commands pipelined, reconnected
//! by `redis`'s `ConnectionManager`), the names of keys and channels, and the node's health
//! as Redis decides it: `degraded` from the first failed command until a heartbeat gets
//! through again.

use crate::ops::alerts::{Alert, Alerts};
use crate::ops::metrics;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Mutex;
use std::time::Duration;

/// A node's connection to Redis and the names it uses there.
pub struct Link {
    pub client: redis::Client,
    pub conn: ConnectionManager,
    pub prefix: String,
    pub me: String,
    alerts: Alerts,
    /// Since when (Unix ms) Redis has not answered; `None` while it does.
    degraded_since: Mutex<Option<u64>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("prefix", &self.prefix)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

/// How long one Redis command may take before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1000);

impl Link {
    /// Open the link; Redis need not answer yet (the node starts degraded then).
    pub fn open(url: &str, prefix: &str, me: &str, alerts: Alerts) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("[cluster] redis {url:?}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| anyhow::anyhow!("[cluster] redis {url:?}: {e}"))?;
        Ok(Self {
            client,
            conn,
            prefix: prefix.to_owned(),
            me: me.to_owned(),
            alerts,
            degraded_since: Mutex::new(None),
        })
    }

    pub fn bus_channel(&self, node: &str) -> String {
        format!("{}:bus:{node}", self.prefix)
    }

    pub fn node_key(&self, node: &str) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    /// The prefix of node keys, for Lua scripts that check whether an owner lives.
    pub fn node_key_prefix(&self) -> String {
        format!("{}:node:", self.prefix)
    }

    pub fn nodes_key(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    /// The owner key of a room: `<prefix>:room:<app>\x1f<room>` (the unit separator cannot be
    /// in an identifier: the decoder refuses control characters).
    pub fn room_key(&self, app: &str, room: &str) -> String {
        format!("{}:room:{app}\u{1f}{room}", self.prefix)
    }

    pub fn state_key(&self, app: &str, room: &str) -> String {
        format!("{}:state:{app}\u{1f}{room}", self.prefix)
    }

    /// The set of rooms node `node` owns (`<app>\x1f<room>`): who takes them over when it dies.
    pub fn owned_key(&self, node: &str) -> String {
        format!("{}:owned:{node}", self.prefix)
    }

    pub fn ice_channel(&self) -> String {
        format!("{}:ice", self.prefix)
    }

    pub fn ice_hash(&self) -> String {
        format!("{}:ice:servers", self.prefix)
    }

    /// A multiplexed connection (cheap to clone).
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Since when Redis has not answered (Unix ms), if it has not.
    pub fn degraded_since(&self) -> Option<u64> {
        *self.degraded_since.lock().expect("health lock")
    }

    /// A command other than the heartbeat failed. Only the heartbeat decides that the node
    /// is degraded (and mails it once): a command on a connection being re-made after an
    /// outage may fail once more, and must not raise a second alert.
    pub fn trouble(&self, e: &dyn std::fmt::Display) {
        tracing::debug!(error = %e, "cluster: a Redis command failed");
    }

    /// The heartbeat failed: the node is degraded from now (an alert the first time).
    pub fn failed(&self, e: &redis::RedisError) {
        let mut since = self.degraded_since.lock().expect("health lock");
        if since.is_some() {
            return;
        }
        let now = crate::clock::now().0;
        *since = Some(now);
        metrics::cluster().degraded.set(1);
        tracing::error!(
            critical = true,
            error = %e,
            "cluster degraded: Redis does not answer; rooms go on, new rooms are served on the node their first member reached"
        );
        self.alerts.raise(Alert {
            subject: format!("rtcroom cluster degraded on {}: Redis unreachable", self.me),
            body: format!(
                "Node {} cannot reach Redis ({e}).\n\nCalls already running go on; new rooms are served on the node their first member reached. /healthz stays ok, /readyz answers 503 until Redis is back. When it is, the nodes reconcile (one owner per room) and a resolution mail follows.\n",
                self.me
            ),
        });
    }

    /// A heartbeat got through: `Some(since)` when the node was degraded until now.
    pub fn answered(&self) -> Option<u64> {
        let since = self.degraded_since.lock().expect("health lock").take()?;
        metrics::cluster().degraded.set(0);
        let secs = crate::clock::now().0.saturating_sub(since) / 1000;
        tracing::info!(secs, "cluster: Redis answers again; reconciling");
        self.alerts.raise(Alert {
            subject: format!("rtcroom cluster resolved on {}: Redis is back", self.me),
            body: format!(
                "Node {} reaches Redis again after about {secs} s. The rooms it owns are reconciled with the other nodes' (one owner per room).\n",
                self.me
            ),
        });
        Some(since)
    }
}

//! The node registry: `<prefix>:node:<id>` holds a node's [`NodeInfo`] for `dead_after_ms`
//! and is refreshed every `heartbeat_ms`; the set `<prefix>:nodes` lists the ids (those whose
//! key is gone are pruned). A node is dead when its key is gone.

use super::link::Link;
use serde::{Deserialize, Serialize};

/// What a node says of itself in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub id: String,
    /// The signaling URL of the node itself (`ws://host:port/ws`).
    pub public_url: String,
    pub members: u64,
    pub rooms: u64,
    /// Unix ms.
    pub started_at: u64,
    pub draining: bool,
}

/// Say this node is alive, and read every live node (this one included).
pub async fn beat(link: &Link, me: &NodeInfo, ttl_ms: u64) -> redis::RedisResult<Vec<NodeInfo>> {
    let mut conn = link.conn();
    let json = serde_json::to_string(me).expect("node info serializes");
    let (ids,): (Vec<String>,) = redis::pipe()
        .cmd("SET")
        .arg(link.node_key(&me.id))
        .arg(json)
        .arg("PX")
        .arg(ttl_ms)
        .ignore()
        .cmd("SADD")
        .arg(link.nodes_key())
        .arg(&me.id)
        .ignore()
        .cmd("SMEMBERS")
        .arg(link.nodes_key())
        .query_async(&mut conn)
        .await?;
    let keys: Vec<String> = ids.iter().map(|id| link.node_key(id)).collect();
    let values: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
    let mut live = Vec::new();
    let mut gone = Vec::new();
    for (id, value) in ids.into_iter().zip(values) {
        match value.and_then(|v| serde_json::from_str::<NodeInfo>(&v).ok()) {
            Some(info) => live.push(info),
            None => gone.push(id),
        }
    }
    if !gone.is_empty() {
        let _: i64 = redis::cmd("SREM")
            .arg(link.nodes_key())
            .arg(&gone)
            .query_async(&mut conn)
            .await?;
    }
    Ok(live)
}

/// Before a node registers: when its id is still in the registry (a `kill -9` and a quick
/// restart), wait until the key is gone and the others have had two heartbeats to see it
/// gone, so that they take over its rooms. A key still refreshed after twice `dead_after` is
/// another live node with this id: an error. Redis away: nothing to wait for.
pub async fn wait_for_previous_run(
    link: &Link,
    heartbeat: std::time::Duration,
    dead_after: std::time::Duration,
) -> anyhow::Result<()> {
    let exists = || async {
        redis::cmd("EXISTS")
            .arg(link.node_key(&link.me))
            .query_async::<i64>(&mut link.conn())
            .await
            .unwrap_or(0)
            == 1
    };
    if !exists().await {
        return Ok(());
    }
    tracing::info!(node = %link.me, "cluster: the previous run of this node is still in the registry; waiting until the others see it gone");
    let until = tokio::time::Instant::now() + dead_after * 2;
    while exists().await {
        anyhow::ensure!(
            tokio::time::Instant::now() < until,
            "[cluster] node_id {:?} is in use by a live node: give every node its own node_id",
            link.me
        );
        tokio::time::sleep(heartbeat).await;
    }
    tokio::time::sleep(heartbeat * 2).await;
    Ok(())
}

/// Take this node out of the registry at once (a drain that is done).
pub async fn leave(link: &Link) -> redis::RedisResult<()> {
    redis::pipe()
        .cmd("DEL")
        .arg(link.node_key(&link.me))
        .ignore()
        .cmd("SREM")
        .arg(link.nodes_key())
        .arg(&link.me)
        .ignore()
        .query_async(&mut link.conn())
        .await
}

/// The live node with the fewest members, not draining (ties: the lower id).
pub fn least_loaded(nodes: &[NodeInfo]) -> Option<&NodeInfo> {
    nodes
        .iter()
        .filter(|n| !n.draining)
        .min_by(|a, b| a.members.cmp(&b.members).then_with(|| a.id.cmp(&b.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, members: u64, draining: bool) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            public_url: format!("ws://{id}/ws"),
            members,
            rooms: 0,
            started_at: 0,
            draining,
        }
    }

    #[test]
    fn the_least_loaded_node_is_one_that_is_not_draining() {
        let nodes = [
            node("a", 5, false),
            node("b", 1, true),
            node("c", 2, false),
            node("d", 2, false),
        ];
        assert_eq!(least_loaded(&nodes).unwrap().id, "c");
        assert!(least_loaded(&[node("b", 1, true)]).is_none());
    }
}

//! The monitoring files in `deploy/` only name metrics the server really exports.

mod common;

use common::{Server, http};
use std::collections::HashSet;

fn referenced_metrics(text: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("rtcroom_") {
        let start = i + pos;
        let end = start
            + text[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(text.len() - start);
        if start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            names.insert(text[start..end].to_owned());
        }
        i = end;
    }
    names
}

#[tokio::test]
async fn dashboards_and_alerts_name_real_metrics() {
    let server = Server::start(&[("RTCROOM_AUTH_REQUIRED", "false")]);
    // Labelled families appear once used: walk a small call that touches each of them.
    let mut a = server.client().await;
    a.send(common::join("d", "alice", "A")).await;
    a.expect("respJoin").await;
    a.send_text("garbage").await;
    a.expect("generalMsgResp").await;
    a.send(serde_json::json!({"cmd":"reportInfo","result":9,"desc":"ice server invalid"}))
        .await;
    a.send(serde_json::json!({"cmd":"leave"})).await;
    a.expect("respLeave").await;
    let (_, exposition) = http(
        "GET",
        &format!("http://{}/metrics", server.addr),
        None,
        None,
    )
    .await;
    let exported: HashSet<String> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert!(exported.contains("rtcroom_joins"), "{exported:?}");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");
    for file in [
        "prometheus/rtcroom-alerts.yml",
        "grafana/rtcroom-dashboard.json",
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        for name in referenced_metrics(&text) {
            let family = ["_total", "_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                exported.contains(family),
                "{file} names {name}, which /metrics does not export"
            );
        }
    }
}

/// The shipped nginx never passes `/metrics` on (docs/operations.md says so), and every
/// location it proxies tells the room server the client's address, which the room server
/// believes because the production configuration trusts loopback.
#[test]
fn the_shipped_nginx_hides_metrics_and_forwards_client_addresses() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/");
    let conf = std::fs::read_to_string(format!("{root}nginx/rtcroom.conf")).unwrap();
    let blocks: Vec<&str> = conf.split("location ").skip(1).collect();
    let metrics = blocks
        .iter()
        .find(|b| b.starts_with("= /metrics"))
        .expect("a location for /metrics");
    let body = metrics.split('}').next().unwrap();
    assert!(
        body.contains("deny all;") && !body.contains("proxy_pass"),
        "{body}"
    );
    for b in blocks.iter().filter(|b| b.contains("proxy_pass")) {
        let body = b.split('}').next().unwrap();
        assert!(
            body.contains("proxy_set_header X-Forwarded-For $remote_addr;"),
            "{body}"
        );
    }
    let prod = std::fs::read_to_string(format!("{root}rtcroom.production.toml")).unwrap();
    assert!(
        prod.lines()
            .any(|l| l.starts_with("trusted_proxies = [\"127.0.0.1\"")),
        "the production configuration trusts the local nginx"
    );
}

/// `deploy/cluster/`: the nodes of the compose file are exactly the servers HAProxy balances,
/// each with a node id of its own; HAProxy balances round robin without stickiness, keeps
/// WebSockets open as tunnels and takes a node out on its `/readyz`; `haproxy -c` accepts
/// its file; `rtcroom check-config` accepts the nodes' shared configuration, with `[cluster]`
/// on and records in a shared database.
#[test]
fn the_cluster_deployment_is_consistent() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/cluster");
    let compose = std::fs::read_to_string(root.join("compose.yaml")).unwrap();
    let haproxy = std::fs::read_to_string(root.join("haproxy.cfg")).unwrap();
    let mut ids: Vec<&str> = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("RTCROOM_CLUSTER_NODE_ID:"))
        .map(str::trim)
        .collect();
    ids.sort();
    let mut services: Vec<&str> = compose
        .lines()
        .filter_map(|l| l.strip_prefix("  node")?.strip_suffix(':'))
        .collect();
    services.sort();
    assert_eq!(ids, ["node1", "node2", "node3"], "{compose}");
    assert_eq!(services, ["1", "2", "3"], "{compose}");
    let mut servers: Vec<&str> = haproxy
        .lines()
        .filter_map(|l| l.trim().strip_prefix("server "))
        .collect();
    servers.sort();
    assert_eq!(
        servers,
        [
            "node1 node1:8080 check",
            "node2 node2:8080 check",
            "node3 node3:8080 check"
        ]
    );
    let directives: Vec<&str> = haproxy
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    for needed in [
        "balance roundrobin",
        "option httpchk GET /readyz",
        "option redispatch",
        "timeout tunnel 1h",
    ] {
        assert!(directives.contains(&needed), "haproxy.cfg lacks {needed:?}");
    }
    for sticky in ["cookie", "stick", "balance source", "hash-type"] {
        assert!(
            !directives.iter().any(|l| l.starts_with(sticky)),
            "haproxy.cfg pins clients to nodes ({sticky})"
        );
    }
    let out = std::process::Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(root.join("haproxy.cfg"))
        .output()
        .expect("haproxy runs (scripts/deps/cluster.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // As shipped, its secrets are placeholders that the server refuses; filled in, as an
    // operator does, the file is a configuration the server accepts.
    let scratch = common::Scratch::new("deploy-cluster");
    let template = std::fs::read_to_string(root.join("rtcroom.toml")).unwrap();
    assert!(template.contains("\"REPLACE"), "{template}");
    let filled: String = template
        .lines()
        .map(|l| match l.find("\"REPLACE") {
            Some(at) => format!("{}\"{:x}\"\n", &l[..at], 0x5eed_0000_u64 + l.len() as u64),
            None => format!("{l}\n"),
        })
        .collect();
    let file = scratch.0.join("rtcroom.toml");
    std::fs::write(&file, filled).unwrap();
    let check = |file: &std::path::Path| {
        common::rtcroom_command(&scratch.0)
            .arg("check-config")
            .arg("--config")
            .arg(file)
            .env("RTCROOM_CLUSTER_NODE_ID", "node1")
            .output()
            .unwrap()
    };
    let refused = check(&root.join("rtcroom.toml"));
    assert!(!refused.status.success(), "the placeholders were accepted");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("REPLACE"));
    let out = check(&file);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        shown.contains("redis = \"redis://redis:6379/0\"") && shown.contains("node_id = \"node1\""),
        "{shown}"
    );
}

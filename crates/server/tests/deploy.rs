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

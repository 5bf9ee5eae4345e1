//! TLS in the binary (`[server] tls_cert`, `tls_key`): the page, the APIs and `/ws` over
//! TLS with the configured certificate; a renewed certificate is served without a restart;
//! a broken renewal keeps the certificate in use; a key that does not match refuses the
//! start with a message that says so. Certificates are made by the `openssl` command.

mod common;

use common::{Scratch, Server, connector, der, join, served_cert, tls};
use futures_util::{SinkExt, StreamExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for something it expects (not a performance bound).
const WAIT: Duration = Duration::from_secs(20);

/// `dir/<stem>.crt` and `dir/<stem>.key`: a self-signed certificate with common name `cn`.
fn make_cert(dir: &Path, stem: &str, cn: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    );
    common::self_signed_cert(&cert, &key, cn);
    (cert, key)
}

/// `GET path` over TLS: the response header (status line first) and the body.
async fn get(addr: &str, connector: &TlsConnector, path: &str) -> (String, String) {
    let mut s = tls(addr, connector).await.expect("TLS handshake");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_the_apis_and_signaling_are_served_over_tls() {
    let scratch = Scratch::new("tls-serve");
    let dir = scratch.0.clone();
    let (cert, key) = make_cert(&dir, "server", "rtcroom-test");
    let server = Server::start(&[
        ("RTCROOM_SERVER_TLS_CERT", cert.to_str().unwrap()),
        ("RTCROOM_SERVER_TLS_KEY", key.to_str().unwrap()),
        ("RTCROOM_AUTH_REQUIRED", "false"),
    ]);
    let connector = connector(&[&cert]);

    assert_eq!(
        served_cert(&server.addr, &connector).await,
        Some(der(&cert))
    );
    let (head, body) = get(&server.addr, &connector, "/healthz").await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(body.trim(), "ok");
    let (head, body) = get(&server.addr, &connector, "/").await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(body.contains("<html"), "the page: {body}");
    // The page may open the signaling WebSocket on wss:// (the URL its login hands out).
    let wss = format!("connect-src 'self' wss://{}", server.addr);
    assert!(
        head.contains(&wss),
        "the page's policy allows no {wss}: {head}"
    );

    // Plain HTTP on the TLS port is not served.
    let mut plain = TcpStream::connect(&server.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP answered: {answer:?}"
    );

    // A join over wss:// is answered.
    let stream = tls(&server.addr, &connector).await.unwrap();
    let url = format!("wss://{}/ws", server.addr);
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("WebSocket upgrade over TLS");
    ws.send(Message::Text(
        join("tls", "alice", "Alice").to_string().into(),
    ))
    .await
    .unwrap();
    let answer = loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an answer")
        {
            Some(Ok(Message::Text(t))) => {
                break serde_json::from_str::<serde_json::Value>(&t).unwrap();
            }
            Some(Ok(_)) => continue,
            other => panic!("no answer to join: {other:?}"),
        }
    };
    assert_eq!(answer["cmd"], "respJoin", "{answer}");
    assert_eq!(answer["result"], 0, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_not() {
    let scratch = Scratch::new("tls-reload");
    let dir = scratch.0.clone();
    let (cert, key) = make_cert(&dir, "live", "first");
    let log = dir.join("server.log");
    let server = Server::start_logging_to(
        &[
            ("RTCROOM_SERVER_TLS_CERT", cert.to_str().unwrap()),
            ("RTCROOM_SERVER_TLS_KEY", key.to_str().unwrap()),
            ("RTCROOM_LOG_LEVEL", "info"),
        ],
        &log,
    );
    let (next_cert, next_key) = make_cert(&dir, "next", "second");
    let connector = connector(&[&cert, &next_cert]);
    assert_eq!(
        served_cert(&server.addr, &connector).await,
        Some(der(&cert))
    );

    // Renewal as an ACME client does it: the new files replace the old ones.
    std::fs::rename(&next_key, &key).unwrap();
    std::fs::rename(&next_cert, &cert).unwrap();
    let renewed = der(&cert);
    let until = Instant::now() + WAIT;
    while served_cert(&server.addr, &connector).await.as_ref() != Some(&renewed) {
        assert!(
            Instant::now() < until,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A broken renewal (a truncated certificate) is logged, and the certificate in use stays.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    let until = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("the certificate loaded before stays in use") {
            break;
        }
        assert!(
            Instant::now() < until,
            "no log line about the broken certificate: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(served_cert(&server.addr, &connector).await, Some(renewed));
}

#[test]
fn a_key_that_does_not_match_the_certificate_refuses_the_start_and_check_config() {
    let scratch = Scratch::new("tls-mismatch");
    let dir = scratch.0.clone();
    let (cert, _) = make_cert(&dir, "a", "a");
    let (_, other_key) = make_cert(&dir, "b", "b");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtcroom"))
        .arg("serve")
        .env("RTCROOM_SERVER_LISTEN", "127.0.0.1:0")
        .env("RTCROOM_SERVER_DATA_DIR", dir.join("data"))
        .env("RTCROOM_TURN_LISTEN", "127.0.0.1:0")
        .env("RTCROOM_SERVER_TLS_CERT", &cert)
        .env("RTCROOM_SERVER_TLS_KEY", &other_key)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("serve started with a key that does not match its certificate");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains("does not belong to the certificate"),
        "{stderr}"
    );
    // check-config makes the same check.
    let out = Command::new(env!("CARGO_BIN_EXE_rtcroom"))
        .arg("check-config")
        .env("RTCROOM_SERVER_DATA_DIR", dir.join("data"))
        .env("RTCROOM_SERVER_TLS_CERT", &cert)
        .env("RTCROOM_SERVER_TLS_KEY", &other_key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "check-config accepted a key of another certificate"
    );
    assert!(
        stderr.contains("does not belong to the certificate"),
        "{stderr}"
    );
}

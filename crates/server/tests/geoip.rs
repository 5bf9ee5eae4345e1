//! GeoIP with a real database (DB-IP's city lite file, installed by scripts/deps/geoip.sh):
//! members whose public addresses come through a trusted proxy's X-Forwarded-For are counted
//! in their countries in the daily report, and a pair is given the TURN server of its
//! region among two registered far apart.

mod common;

use common::{
    Client, Scratch, Server, connect_and_report, geoip_database, http, join, rtcroom_command,
    wait_until,
};
use serde_json::{Value, json};

/// A WebSocket connection through the (trusted, loopback) proxy for a client at `ip`.
async fn from(server: &Server, ip: &str) -> Client {
    Client::connect_with(
        &format!("ws://{}/ws", server.addr),
        &[("X-Forwarded-For", ip)],
    )
    .await
    .expect("the upgrade is accepted")
}

/// `a` and `b` meet in `room`; `a`'s `rtcConfig` for the pair.
async fn meet(a: &mut Client, b: &mut Client, room: &str, uids: (&str, &str)) -> Value {
    a.send(join(room, uids.0, uids.0)).await;
    assert_eq!(a.expect("respJoin").await["result"], 0);
    b.send(join(room, uids.1, uids.1)).await;
    let r = b.expect("respJoin").await;
    assert_eq!(r["result"], 0, "{r}");
    a.expect("notifyNewPeer").await["rtcConfig"].clone()
}

/// Both connect (as `how`) and report quality with this video loss; then both leave.
async fn call(a: &mut Client, b: &mut Client, uids: (&str, &str), how: &str, loss: f64) {
    connect_and_report(a, b, uids, how, (json!(loss), json!(loss))).await;
    a.send(json!({"cmd":"leave"})).await;
    a.expect("respLeave").await;
    b.expect("relayLeave").await;
    b.send(json!({"cmd":"leave"})).await;
    b.expect("respLeave").await;
}

fn geo_env(db: &str) -> Vec<(&'static str, String)> {
    vec![
        ("RTCROOM_AUTH_REQUIRED", "false".into()),
        ("RTCROOM_ADMIN_TOKEN", "adm".into()),
        ("RTCROOM_REPORT_ENABLED", "false".into()),
        ("RTCROOM_SERVER_TRUSTED_PROXIES", r#"["127.0.0.1"]"#.into()),
        ("RTCROOM_GEOIP_DATABASE", db.into()),
    ]
}

fn start(env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start(&env)
}

#[tokio::test]
async fn forwarded_public_addresses_are_counted_in_their_countries() {
    let db = geoip_database();
    let server = start(&geo_env(db.to_str().unwrap()));
    // Frankfurt and Paris, relayed; Bavaria and Mountain View, peer to peer; one member
    // whose proxy forwards a private address.
    let (mut de, mut fr) = (
        from(&server, "198.51.100.1, 194.25.2.129").await,
        from(&server, "82.64.1.1").await,
    );
    meet(&mut de, &mut fr, "eu", ("de1", "fr1")).await;
    call(&mut de, &mut fr, ("de1", "fr1"), "TURN", 2.0).await;
    let (mut de2, mut us) = (
        from(&server, "80.130.1.1").await,
        from(&server, "8.8.8.8").await,
    );
    meet(&mut de2, &mut us, "atlantic", ("de2", "us1")).await;
    call(&mut de2, &mut us, ("de2", "us1"), "STUN", 0.0).await;
    let mut lan = from(&server, "10.1.2.3").await;
    lan.send(join("alone", "lan1", "lan1")).await;
    lan.expect("respJoin").await;
    lan.send(json!({"cmd":"leave"})).await;
    lan.expect("respLeave").await;

    let base = format!("http://{}", server.addr);
    wait_until("the records of every member", || async {
        let mut done = true;
        for uid in ["de1", "fr1", "de2", "us1", "lan1"] {
            let url = format!("{base}/api/records/member/10000/{uid}");
            let (_, body) = http("GET", &url, Some("adm"), None).await;
            done &= body.contains("\"leave_time\":\"");
        }
        done
    })
    .await;

    let today = chrono::Utc::now().date_naive().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rtcroom"))
        .args(["report", "--json", "--date", &today])
        .env("RTCROOM_SERVER_DATA_DIR", &server.data_dir)
        .env("RTCROOM_GEOIP_DATABASE", &db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let members = v["report"]["countries"]["members"]
        .as_array()
        .unwrap_or_else(|| panic!("countries in {}", v["report"]))
        .clone();
    let row = |c: Option<&str>| {
        members
            .iter()
            .find(|r| r["country"].as_str() == c)
            .unwrap_or_else(|| panic!("no {c:?} in {members:#?}"))
            .clone()
    };
    let (de_row, fr_row, us_row, unknown) =
        (row(Some("DE")), row(Some("FR")), row(Some("US")), row(None));
    assert_eq!(members.len(), 4, "{members:#?}");
    assert_eq!(
        (de_row["sessions"].as_u64(), de_row["connected"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(de_row["relayed"], 1, "{de_row}");
    assert_eq!(
        (fr_row["sessions"].as_u64(), fr_row["relayed"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        (fr_row["avg_video_loss"].as_f64().unwrap() - 2.0).abs() < 1e-9,
        "{fr_row}"
    );
    assert_eq!(
        (us_row["sessions"].as_u64(), us_row["relayed"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(unknown["sessions"], 1, "the private address is not placed");
    // The embedded TURN server is on loopback: a relay of unknown country.
    assert_eq!(
        v["report"]["countries"]["relays"][0]["country"],
        Value::Null
    );
    // Rows carry their members' countries too.
    let rows = v["rows"].as_array().unwrap();
    let fr_pair = rows
        .iter()
        .find(|r| r["user_id"] == "fr1")
        .unwrap_or_else(|| panic!("fr1's row in {rows:#?}"));
    assert_eq!(fr_pair["user_country"], "FR", "{fr_pair}");

    // The operators' web view shows the table.
    let (status, page) = http(
        "GET",
        &format!("{base}/admin/reports/{today}?token=adm"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Calls by country") && page.contains("<td>FR</td>"),
        "{page}"
    );
}

/// Register a TURN server through the ICE API (from loopback, as a same-host agent does).
async fn register(server: &Server, body: Value) {
    let (status, reply) = http(
        "POST",
        &format!("http://{}/icebandwidthload", server.addr),
        None,
        Some(&body.to_string()),
    )
    .await;
    assert_eq!((status, reply.trim()), (200, "successful"));
}

fn turn_host(rtc_config: &Value) -> String {
    let url = rtc_config["iceServers"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| s["urls"][0].as_str().filter(|u| u.starts_with("turn:")))
        .unwrap_or_else(|| panic!("a TURN entry in {rtc_config}"));
    url["turn:".len()..].split(':').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_pair_is_given_the_turn_server_of_its_region() {
    let db = geoip_database();
    let mut env = geo_env(db.to_str().unwrap());
    env.push(("RTCROOM_TURN_ENABLED", "false".into()));
    env.push(("RTCROOM_ICE_TURN_SECRET", "geo-secret".into()));
    let server = start(&env);
    // Frankfurt, placed by GeoIP from its address, with little headroom; and a server whose
    // name says nothing, in Virginia by its registration, with far more headroom (without
    // distance it would get every pair).
    register(
        &server,
        json!({"cmd":"iceRegister","ip":"3.120.0.1","iceType":"turn","maxBandwidth":2000}),
    )
    .await;
    register(
        &server,
        json!({"cmd":"iceRegister","ip":"turn-us.example.com","iceType":"turn",
            "maxBandwidth":1000000,"region":"us-east","latitude":39.04,"longitude":-77.49}),
    )
    .await;

    let (mut a, mut b) = (
        from(&server, "194.25.2.129").await,
        from(&server, "82.64.1.1").await,
    );
    let eu = meet(&mut a, &mut b, "eu", ("de1", "fr1")).await;
    assert_eq!(turn_host(&eu), "3.120.0.1", "{eu}");
    let (mut c, mut d) = (
        from(&server, "18.204.0.1").await,
        from(&server, "52.95.110.1").await,
    );
    let us = meet(&mut c, &mut d, "us", ("va1", "ny1")).await;
    assert_eq!(turn_host(&us), "turn-us.example.com", "{us}");
    // A pair nobody can place gets the most headroom, as without GeoIP.
    let (mut e, mut f) = (
        from(&server, "10.0.0.7").await,
        from(&server, "10.0.0.8").await,
    );
    let lan = meet(&mut e, &mut f, "lan", ("l1", "l2")).await;
    assert_eq!(turn_host(&lan), "turn-us.example.com", "{lan}");
}

/// `[geoip] database` is found relative to the configuration file's folder, and a file that
/// cannot be read refuses check-config (and so the start) with a message that says what to
/// do.
#[test]
fn check_config_reads_the_database_and_names_a_bad_one() {
    let dir = Scratch::new("geoip-config");
    let conf = dir.0.join("etc");
    std::fs::create_dir_all(&conf).unwrap();
    std::os::unix::fs::symlink(geoip_database(), conf.join("city.mmdb")).unwrap();
    std::fs::write(conf.join("broken.mmdb"), b"not a database").unwrap();
    let check = |db: &str| {
        let file = conf.join("rtcroom.toml");
        std::fs::write(&file, format!("[geoip]\ndatabase = \"{db}\"\n")).unwrap();
        let out = rtcroom_command(&dir.0)
            .arg("check-config")
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = check("city.mmdb");
    assert!(ok, "{err}");
    for bad in ["broken.mmdb", "missing.mmdb"] {
        let (ok, err) = check(bad);
        assert!(!ok, "{bad} accepted");
        assert!(
            err.contains("[geoip] database") && err.contains("MaxMind DB") && err.contains(bad),
            "{err}"
        );
    }
}

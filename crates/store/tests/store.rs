//! The store suite: every test runs against SQLite (a temp file), MariaDB and PostgreSQL
//! (the machine's servers), each on a database of its own.

mod common;

use common::*;
use rtcroom_core::{Millis, Record, SubStatus};
use rtcroom_protocol::ConnectType;
use rtcroom_store::{RecordWriter, Recovered, Schema, Store, StoreOptions, WriterConfig};
use std::time::Duration;

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod mariadb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::MySql).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

suite!(
    every_record_kind_lands_in_its_columns,
    reapplying_records_changes_nothing,
    restart_recovery_closes_what_a_crash_left_open,
    member_history_is_newest_first_and_limited,
    a_day_streams_by_create_time_across_midnight_and_pages,
    long_and_odd_values_fit_every_backend,
    the_writer_batches_records_in_order,
    the_schema_is_read_without_changing_anything,
    a_long_run_of_quality_reports_lands_once_and_in_order,
);

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-4
}

async fn every_record_kind_lands_in_its_columns(b: Backend) {
    let db = TestDb::new(b).await;
    let store = db.store().await;
    let mut ids = Ids::new();
    let t0 = at("2024-05-01 10:00:00");
    let (c, mut recs) = call(&mut ids, "app1", "room1", "alice", "bob", t0, 95);
    recs.push(info(
        &mut ids,
        &c.a,
        t0.plus_secs(50),
        9,
        "ice server invalid",
    ));
    store.apply(&recs).await.unwrap();

    let s = session_of(&store, &c.a).await;
    let row = &s.session;
    assert_eq!(row.app_id, "app1");
    assert_eq!(row.room_id, "room1");
    assert_eq!(row.user_id, "alice");
    assert_eq!(row.user_name, "name of alice");
    assert_eq!((row.user_type, row.talk_type), (1, 2));
    assert_eq!(row.user_ip, "203.0.113.7");
    assert_eq!(
        (
            row.os_name.as_str(),
            row.browser.as_str(),
            row.sdk_info.as_str()
        ),
        ("Linux", "Chrome 120", "web 1.0")
    );
    assert_eq!(row.join_time, Some(utc("2024-05-01 10:00:00")));
    assert_eq!(row.create_time, row.join_time);
    // b leaves at connect (t0+3) + 95 s, a one second later.
    assert_eq!(row.leave_time, Some(utc("2024-05-01 10:01:39")));
    assert_eq!(row.duration, 99);
    assert!(!row.time_out);
    assert_eq!(s.sub_session_ids, vec![c.ab.to_string()]);
    assert_eq!(s.sub_sessions.len(), 1);

    let sub = &s.sub_sessions[0].sub_session;
    assert_eq!(sub.sub_session_id, c.ab.to_string());
    assert_eq!(sub.session_id, c.a.session_id.to_string());
    assert_eq!(
        (
            sub.app_id.as_str(),
            sub.room_id.as_str(),
            sub.user_id.as_str()
        ),
        ("app1", "room1", "alice")
    );
    assert_eq!(sub.remote_user_id, "bob");
    assert_eq!(sub.remote_user_name, "name of bob");
    assert_eq!(sub.remote_user_ip, "198.51.100.9");
    assert_eq!(sub.ice_ip, "192.0.2.1");
    assert_eq!(sub.create_time, Some(utc("2024-05-01 10:00:01")));
    assert_eq!(sub.begin_time, Some(utc("2024-05-01 10:00:02")));
    assert_eq!(sub.connect_time, Some(utc("2024-05-01 10:00:03")));
    assert_eq!(sub.finish_time, Some(utc("2024-05-01 10:01:38")));
    assert_eq!(sub.connect_type, "TURN");
    assert_eq!((sub.status, sub.duration, sub.cost), (0, 95, 2));
    let bob = session_of(&store, &c.b).await;
    let back = &bob.sub_sessions[0].sub_session;
    // Milliseconds are kept: the answer's begin half a second after the offer's.
    assert_eq!(back.begin_time, Some(utc("2024-05-01 10:00:02.500")));
    assert_eq!(back.connect_time, Some(utc("2024-05-01 10:00:03.100")));

    // Six reports per direction: audio receive 30..80 kbit/s, loss 0.0..2.5.
    let q = &s.sub_sessions[0].quality;
    assert_eq!(q.reports, 6);
    let a = q.aud_rcv_bitrate;
    assert!(
        close(a.avg.unwrap(), 55.0) && a.min == Some(30.0) && a.max == Some(80.0),
        "{a:?}"
    );
    let l = q.aud_rcv_lost_rate;
    assert!(
        close(l.avg.unwrap(), 1.25) && l.min == Some(0.0) && l.max == Some(2.5),
        "{l:?}"
    );
    let v = q.vid_rcv_bitrate;
    assert!(
        close(v.avg.unwrap(), 550.0) && v.min == Some(300.0) && v.max == Some(800.0),
        "{v:?}"
    );
    assert!(close(q.vid_rcv_lost_rate.max.unwrap(), 5.0));

    let reports = store.quality_reports(&c.ab.to_string()).await.unwrap();
    assert_eq!(reports.len(), 6);
    let r = &reports[1];
    assert_eq!(
        (r.user_id.as_str(), r.remote_user_id.as_str()),
        ("alice", "bob")
    );
    assert_eq!(r.session_id, c.a.session_id.to_string());
    assert_eq!(r.create_time, Some(utc("2024-05-01 10:00:33")));
    assert!(close(r.aud_send_lost_rate, 0.5) && close(r.vid_send_lost_rate, 1.25));
    assert_eq!(
        (
            r.aud_send_bitrate,
            r.aud_rcv_bitrate,
            r.vid_send_bitrate,
            r.vid_rcv_bitrate
        ),
        (40, 40, 600, 400)
    );
    assert_eq!(
        (r.send_width, r.send_height, r.send_framerate_sent),
        (640, 480, 30)
    );
    assert_eq!(
        (r.recv_width, r.recv_height, r.recv_framerate_recv),
        (320, 240, 25)
    );
    assert_eq!(
        (r.send_codec.as_str(), r.recv_codec.as_str()),
        ("VP8", "H264")
    );
    assert!(close(r.aud_rcv_lost_rate, 0.5) && close(r.vid_rcv_lost_rate, 1.0));

    let infos = store
        .day_client_infos(at_day("2024-05-01"))
        .collect()
        .await
        .unwrap();
    assert_eq!(infos.len(), 1);
    let i = &infos[0];
    assert_eq!((i.result, i.desc.as_str()), (9, "ice server invalid"));
    assert_eq!(i.data1.as_deref(), Some(r#"{"ice":"turn:192.0.2.1"}"#));
    assert_eq!(i.data2, None);
    assert_eq!((i.user_id.as_str(), i.room_id.as_str()), ("alice", "room1"));
    assert_eq!(i.create_time, Some(utc("2024-05-01 10:00:50")));

    let n = store.table_counts().await.unwrap();
    assert_eq!(
        (
            n.sessions,
            n.sub_sessions,
            n.quality_reports,
            n.client_infos
        ),
        (2, 2, 12, 1)
    );
}

fn at_day(s: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// What the read side shows about the sessions of `c`.
async fn call_rows(store: &Store, c: &Call) -> String {
    let a = store.session(&c.a.session_id.to_string()).await.unwrap();
    let b = store.session(&c.b.session_id.to_string()).await.unwrap();
    let q = store.quality_reports(&c.ab.to_string()).await.unwrap();
    serde_json::to_string(&(a, b, q)).unwrap()
}

/// Everything the read side shows about `c` and its day.
async fn snapshot(store: &Store, c: &Call) -> String {
    let a = store.session(&c.a.session_id.to_string()).await.unwrap();
    let b = store.session(&c.b.session_id.to_string()).await.unwrap();
    let q = store.quality_reports(&c.ab.to_string()).await.unwrap();
    let day = store
        .day_sub_sessions(at_day("2024-05-01"))
        .collect()
        .await
        .unwrap();
    let infos = store
        .day_client_infos(at_day("2024-05-01"))
        .collect()
        .await
        .unwrap();
    let n = store.table_counts().await.unwrap();
    serde_json::to_string(&(a, b, q, day, infos, n)).unwrap()
}

/// 178 quality reports in a row are inserted many rows per statement (64, 16, 4, 1); each
/// lands once, also when the batch is applied again.
async fn a_long_run_of_quality_reports_lands_once_and_in_order(b: Backend) {
    let db = TestDb::new(b).await;
    let store = db.store().await;
    let mut ids = Ids::new();
    let (c, recs) = alice_and_bob(&mut ids, 1350);
    let reports = quality_reports(&recs);
    assert_eq!(reports, 178);
    store.apply(&recs).await.unwrap();
    let once = store.quality_reports(&c.ab.to_string()).await.unwrap();
    assert_eq!(once.len(), 89);
    store.apply(&recs).await.unwrap();
    let twice = store.quality_reports(&c.ab.to_string()).await.unwrap();
    assert_eq!(
        serde_json::to_string(&once).unwrap(),
        serde_json::to_string(&twice).unwrap()
    );
    assert_eq!(
        store
            .quality_reports(&c.ba.to_string())
            .await
            .unwrap()
            .len(),
        89
    );
}

async fn reapplying_records_changes_nothing(b: Backend) {
    let db = TestDb::new(b).await;
    let store = db.store().await;
    let mut ids = Ids::new();
    let (c, mut recs) = alice_and_bob(&mut ids, 70);
    recs.push(info(
        &mut ids,
        &c.b,
        at("2024-05-01 10:00:20"),
        11,
        "client exception",
    ));
    store.apply(&recs).await.unwrap();
    let once = snapshot(&store, &c).await;
    // The whole batch again (a retry after a lost commit acknowledgement) ...
    store.apply(&recs).await.unwrap();
    // ... and the start of it again, up to the connects, after the finish.
    store.apply(&recs[..8]).await.unwrap();
    let again = snapshot(&store, &c).await;
    assert_eq!(once, again);
    let s = session_of(&store, &c.a).await;
    assert_eq!(s.sub_session_ids.len(), 1, "the id is appended once");
}

async fn restart_recovery_closes_what_a_crash_left_open(b: Backend) {
    let db = TestDb::new(b).await;
    let store = db.store().await;
    let mut ids = Ids::new();
    // A finished call: recovery must not touch it.
    let (done, recs) = call(
        &mut ids,
        "app1",
        "room1",
        "carol",
        "dave",
        at("2024-05-01 09:00:00"),
        30,
    );
    store.apply(&recs).await.unwrap();
    let before = call_rows(&store, &done).await;

    // A call the crash interrupted: a→b connected, b→a never did.
    let t0 = at("2024-05-01 10:00:00");
    let (a, r1) = join(&mut ids, "app1", "room2", "alice", t0);
    let (bm, r2) = join(&mut ids, "app1", "room2", "bob", t0.plus_secs(1));
    let (ab, r3) = open_sub(&mut ids, &a, &bm, t0.plus_secs(1));
    let (ba, r4) = open_sub(&mut ids, &bm, &a, t0.plus_secs(1));
    let now = t0.plus_secs(100);
    // A member who joined after the restart instant belongs to the new run.
    let (late, r5) = join(&mut ids, "app1", "room3", "erin", now.plus_secs(5));
    let recs = vec![
        r1,
        r2,
        r3,
        r4,
        begin(ab, t0.plus_secs(2)),
        begin(ba, t0.plus_secs(2)),
        connect(ab, t0.plus_secs(3), ConnectType::Stun),
        r5,
    ];
    store.apply(&recs).await.unwrap();

    let closed = store.close_open_sessions(now).await.unwrap();
    assert_eq!(
        closed,
        Recovered {
            sessions: 2,
            sub_sessions: 2
        }
    );
    let sa = session_of(&store, &a).await;
    assert_eq!(sa.session.leave_time, Some(utc("2024-05-01 10:01:40")));
    assert!(sa.session.time_out);
    assert_eq!(sa.session.duration, 100);
    let sub = &sa.sub_sessions[0].sub_session;
    assert_eq!(
        (sub.status, sub.duration, sub.cost),
        (SubStatus::ConnectedTimedOut as i64, 0, 0)
    );
    assert_eq!(sub.finish_time, Some(utc("2024-05-01 10:01:40")));
    assert_eq!(sub.connect_type, "STUN");
    let sb = session_of(&store, &bm).await;
    assert_eq!(sb.session.duration, 99);
    let sub = &sb.sub_sessions[0].sub_session;
    assert_eq!(
        (sub.status, sub.duration, sub.cost),
        (SubStatus::NeverConnectedTimedOut as i64, 0, 0)
    );
    let sl = session_of(&store, &late).await;
    assert_eq!(
        sl.session.leave_time, None,
        "a session of the new run stays open"
    );

    assert_eq!(
        call_rows(&store, &done).await,
        before,
        "finished calls are untouched"
    );
    assert_eq!(
        store.close_open_sessions(now).await.unwrap(),
        Recovered::default()
    );
}

async fn member_history_is_newest_first_and_limited(b: Backend) {
    let db = TestDb::new(b).await;
    let store = db.store().await;
    let mut ids = Ids::new();
    let mut all = Vec::new();
    let mut calls = Vec::new();
    for (i, day) in ["2024-05-01", "2024-05-03", "2024-05-02"]
        .iter()
        .enumerate()
    {
        let (c, recs) = call(
            &mut ids,
            "app1",
            &format!("room{i}"),
            "alice",
            &format!("peer{i}"),
            at(&format!("{day} 08:00:00")),
            40 + 30 * i as u64,
        );
        all.extend(recs);
        calls.push(c);
    }
    // The same uid in another app is another member.
    let (_, recs) = call(
        &mut ids,
        "app2",
        "room9",
        "alice",
        "zed",
        at("2024-05-04 08:00:00"),
        20,
    );
    all.extend(recs);
    store.apply(&all).await.unwrap();

    let h = store.member_sessions("app1", "alice", 2).await.unwrap();
    let got: Vec<_> = h.iter().map(|s| s.session.session_id.clone()).collect();
    assert_eq!(
        got,
        vec![
            calls[1].a.session_id.to_string(),
            calls[2].a.session_id.to_string()
        ]
    );
    let d = &h[0];
    assert_eq!(d.sub_sessions.len(), 1);
    assert_eq!(d.sub_sessions[0].sub_session.remote_user_id, "peer1");
    assert_eq!(d.sub_sessions[0].sub_session.duration, 70);
    assert_eq!(d.sub_sessions[0].quality.reports, 4);
    assert_eq!(d.sub_sessions[0].quality.aud_rcv_bitrate.max, Some(60.0));

    let h = store.member_sessions("app1", "alice", 10).await.unwrap();
    assert_eq!(h.len(), 3);
    assert!(h.iter().all(|s| s.session.app_id == "app1"));
    let bob = store.member_sessions("app1", "peer0", 10).await.unwrap();
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].sub_sessions[0].sub_session.remote_user_id, "alice");
    assert!(
        store
            .member_sessions("app1", "nobody", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .session("01HZZZZZZZZZZZZZZZZZZZZZZZ")
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_day_streams_by_create_time_across_midnight_and_pages(b: Backend) {
    let db = TestDb::new(b).await;
    let store = db.store().await;
    let mut ids = Ids::new();
    let mut recs = Vec::new();
    // 1,200 sub-sessions in three groups of 400 that share their create_time exactly, so
    // pages (500 rows) end inside a group of equal times.
    let mut expected = std::collections::BTreeSet::new();
    for g in 0..3u64 {
        let t = at("2024-05-01 12:00:00").plus_secs(g);
        for i in 0..200 {
            let (a, r1) = join(&mut ids, "app1", &format!("r{g}-{i}"), "u1", t);
            let (bm, r2) = join(&mut ids, "app1", &format!("r{g}-{i}"), "u2", t);
            let (ab, r3) = open_sub(&mut ids, &a, &bm, t);
            let (ba, r4) = open_sub(&mut ids, &bm, &a, t);
            expected.insert(ab.to_string());
            expected.insert(ba.to_string());
            recs.extend([r1, r2, r3, r4]);
        }
    }
    // A call that starts before midnight and ends after it belongs to the day it started,
    // reports after midnight included.
    let (late, r) = call(
        &mut ids,
        "app1",
        "night",
        "owl",
        "bat",
        at("2024-05-01 23:59:00"),
        600,
    );
    recs.extend(r);
    expected.insert(late.ab.to_string());
    expected.insert(late.ba.to_string());
    // The last millisecond of the day, and the first of the next.
    let (a, r1) = join(&mut ids, "app1", "edge", "x", at("2024-05-01 23:59:59.999"));
    let (bm, r2) = join(&mut ids, "app1", "edge", "y", at("2024-05-01 23:59:59.999"));
    let (last, r3) = open_sub(&mut ids, &a, &bm, at("2024-05-01 23:59:59.999"));
    expected.insert(last.to_string());
    let (c, r4) = join(&mut ids, "app1", "edge2", "z", at("2024-05-02 00:00:00"));
    let (first_next, r5) = open_sub(&mut ids, &c, &a, at("2024-05-02 00:00:00"));
    recs.extend([r1, r2, r3, r4, r5]);
    store.apply(&recs).await.unwrap();

    let day = store
        .day_sub_sessions(at_day("2024-05-01"))
        .collect()
        .await
        .unwrap();
    assert_eq!(day.len(), expected.len());
    let got: std::collections::BTreeSet<_> = day
        .iter()
        .map(|d| d.sub_session.sub_session_id.clone())
        .collect();
    assert_eq!(got, expected, "every sub-session of the day exactly once");
    assert!(
        day.windows(2)
            .all(|w| w[0].sub_session.create_time <= w[1].sub_session.create_time)
    );
    for d in &day {
        let s = d.session.as_ref().expect("joined session");
        assert_eq!(s.session_id, d.sub_session.session_id);
        assert_eq!(s.user_id, d.sub_session.user_id);
    }
    let night = day
        .iter()
        .find(|d| d.sub_session.sub_session_id == late.ab.to_string())
        .unwrap();
    // 600 s of talk: 39 reports, 15 s apart, most of them after midnight.
    assert_eq!(night.quality.reports, 39);
    assert_eq!(
        night.sub_session.finish_time,
        Some(utc("2024-05-02 00:09:03"))
    );
    assert_eq!(night.session.as_ref().unwrap().user_id, "owl");

    let next = store
        .day_sub_sessions(at_day("2024-05-02"))
        .collect()
        .await
        .unwrap();
    let ids_next: Vec<_> = next
        .iter()
        .map(|d| d.sub_session.sub_session_id.clone())
        .collect();
    assert_eq!(ids_next, vec![first_next.to_string()]);

    // A reader that stops early releases the stream.
    let mut s = store.day_sub_sessions(at_day("2024-05-01"));
    for _ in 0..3 {
        s.next().await.unwrap().unwrap();
    }
    drop(s);
    let between = store
        .sub_sessions_between(utc("2024-05-01 12:00:01"), utc("2024-05-01 12:00:02"))
        .collect()
        .await
        .unwrap();
    assert_eq!(between.len(), 400);

    // Sessions by join time, paged through runs of equal times: 1,200 + owl, bat, x, y.
    let day_start = utc("2024-05-01 00:00:00");
    let day_end = utc("2024-05-02 00:00:00");
    let sessions = store
        .sessions_between(day_start, day_end)
        .collect()
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1204);
    let distinct: std::collections::BTreeSet<_> = sessions.iter().map(|s| &s.session_id).collect();
    assert_eq!(distinct.len(), 1204, "every session exactly once");
    assert!(
        sessions
            .windows(2)
            .all(|w| w[0].join_time <= w[1].join_time)
    );
    let next_day = store
        .sessions_between(day_end, utc("2024-05-03 00:00:00"))
        .collect()
        .await
        .unwrap();
    assert_eq!(
        next_day
            .iter()
            .map(|s| s.user_id.as_str())
            .collect::<Vec<_>>(),
        ["z"]
    );
}

async fn long_and_odd_values_fit_every_backend(b: Backend) {
    let db = TestDb::new(b).await;
    let store = db.store().await;
    let mut ids = Ids::new();
    let t0 = at("2024-05-01 10:00:00");
    let uid: String = "用".repeat(64);
    let (a, r) = join(&mut ids, &"a".repeat(64), "房间", &uid, t0);
    let Record::SessionOpen(mut open) = r else {
        unreachable!()
    };
    open.user_name = format!("{}\0😀{}", "名".repeat(10), "x".repeat(300)).into();
    open.os_name = "o".repeat(500);
    open.user_ip =
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334%enp0s31f6-a-long-zone-identifier".into();
    open.user_type = 1000;
    open.talk_type = -7;
    let (bm, r2) = join(&mut ids, "a", "b", "c", t0);
    let (ab, r3) = open_sub(&mut ids, &a, &bm, t0);
    let Record::Quality(mut q) = report(&mut ids, ab, &a, &bm, t0.plus_secs(5), 40, 0.0) else {
        unreachable!()
    };
    q.stats.aud_rcv_bitrate = 1_000_000_000_000;
    q.stats.vid_rcv_lost_rate = f32::NAN;
    q.stats.send_codec = "c".repeat(100);
    let Record::ClientInfo(mut i) = info(&mut ids, &a, t0.plus_secs(6), 11, "") else {
        unreachable!()
    };
    i.desc = "d".repeat(20_000);
    i.data1 = Some(format!("\"{}\"", "j".repeat(70_000)));
    let far = Record::SessionClose(rtcroom_core::SessionClose {
        session_id: bm.session_id,
        leave_time: Millis(u64::MAX),
        duration_secs: u64::MAX,
        timed_out: true,
    });
    let recs = vec![
        Record::SessionOpen(open),
        r2,
        r3,
        Record::Quality(q),
        Record::ClientInfo(i),
        far,
    ];
    store.apply(&recs).await.unwrap();

    let s = store
        .member_sessions(&"a".repeat(64), &uid, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(s.session.user_name.chars().count(), 64);
    assert!(
        s.session.user_name.starts_with("名名名名名名名名名名😀x"),
        "{}",
        s.session.user_name
    );
    assert_eq!(s.session.os_name.len(), 64);
    assert_eq!(s.session.user_ip.chars().count(), 64);
    assert_eq!((s.session.user_type, s.session.talk_type), (127, -7));
    let r = store
        .quality_reports(&ab.to_string())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(r.aud_rcv_bitrate, i64::from(i32::MAX));
    assert_eq!(r.vid_rcv_lost_rate, 0.0);
    assert_eq!(r.send_codec.len(), 32);
    let i = store
        .day_client_infos(at_day("2024-05-01"))
        .collect()
        .await
        .unwrap()
        .remove(0);
    assert_eq!(i.desc.len(), 16_000);
    assert_eq!(i.data1.unwrap().len(), 65_536);
    let sb = session_of(&store, &bm).await;
    assert_eq!(
        sb.session.leave_time.unwrap().format("%Y").to_string(),
        "9999"
    );
    assert_eq!(sb.session.duration, i64::MAX);
}

async fn the_writer_batches_records_in_order(b: Backend) {
    let db = TestDb::new(b).await;
    let store = db.store().await;
    let spool = tempfile::tempdir().unwrap();
    let cfg = WriterConfig {
        batch_size: 7,
        memory_limit: 50,
        spool_dir: spool.path().to_owned(),
        ..WriterConfig::default()
    };
    let (writer, sink) = RecordWriter::start(store.clone(), cfg).unwrap();
    let mut ids = Ids::new();
    let mut n = 0;
    let mut calls = Vec::new();
    for i in 0..20u64 {
        let (c, recs) = call(
            &mut ids,
            "app1",
            &format!("room{i}"),
            "alice",
            "bob",
            at("2024-05-01 10:00:00").plus_secs(i * 100),
            61,
        );
        for r in recs {
            sink.try_send(r).unwrap();
            n += 1;
        }
        calls.push(c);
    }
    let stats = writer.shutdown(Duration::from_secs(60)).await;
    assert_eq!(stats.written, n);
    assert_eq!(
        (
            stats.queue_depth,
            stats.spooled,
            stats.dropped,
            stats.rejected
        ),
        (0, 0, 0, 0)
    );
    assert!(stats.db_up);
    let counts = store.table_counts().await.unwrap();
    assert_eq!(
        (counts.sessions, counts.sub_sessions, counts.quality_reports),
        (40, 40, 160)
    );
    // Order held: every pair finished after it connected, every session closed.
    for c in &calls {
        let s = session_of(&store, &c.a).await;
        let sub = &s.sub_sessions[0].sub_session;
        assert_eq!(
            (
                sub.status,
                sub.duration,
                sub.cost,
                sub.connect_type.as_str()
            ),
            (0, 61, 2, "TURN")
        );
        assert!(s.session.leave_time.is_some());
    }
}

/// `Store::schema` tells a database nothing migrated from a migrated one, on every backend,
/// and a reader that may not create finds no SQLite file made for it.
async fn the_schema_is_read_without_changing_anything(b: Backend) {
    let db = TestDb::new(b).await;
    let reader = StoreOptions {
        create_if_missing: false,
        ..StoreOptions::default()
    };
    if b == Backend::Sqlite {
        let file = std::path::PathBuf::from(db.url.trim_start_matches("sqlite://"));
        let missing = file.with_file_name("missing.db");
        let url = format!("sqlite://{}", missing.display());
        assert!(Store::connect(&url, &reader).await.is_err());
        assert!(!missing.exists(), "{} was created", missing.display());
        // An empty file is an SQLite database with nothing in it.
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"").unwrap();
    }
    let plain = Store::connect(&db.url, &reader).await.unwrap();
    assert_eq!(plain.schema().await.unwrap(), Schema::Missing);
    plain.close().await;
    let migrated = db.store().await;
    assert_eq!(migrated.schema().await.unwrap(), Schema::Current);
    migrated.close().await;
}

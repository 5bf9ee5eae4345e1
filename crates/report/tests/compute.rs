//! The figures of the report, computed from crafted rows.

mod common;

use common::*;
use rtcroom_report::{ConnectType, DayReport, ReportConfig, SessionRow, SubSessionRow, SubStatus};

#[test]
fn a_call_across_midnight_belongs_wholly_to_the_day_it_began() {
    let a = session("s1", "alice", "2026-11-22T23:40:00Z");
    let across = SubSessionRow {
        finish_time: Some(t("2026-11-23T00:20:02Z")),
        duration_secs: 1800,
        ..sub("x1", &a, "bob", "2026-11-22T23:50:00Z")
    };

    let mut d = day();
    d.add_session(&a);
    d.add_sub_session(&a, &across);
    let r = d.finish(None);
    assert_eq!(r.totals.connected, 1);
    assert_eq!(r.totals.connected_seconds, 1800);
    assert_eq!(r.hourly[23].sub_sessions, 1);
    assert_eq!(r.hourly[23].sessions, 1);

    let mut next = DayReport::new(ReportConfig::new(
        date("2026-11-23"),
        chrono_tz::Tz::UTC,
        t("2026-11-24T00:05:00Z"),
    ));
    next.add_session(&a);
    next.add_sub_session(&a, &across);
    let r = next.finish(None);
    assert_eq!(r.totals.sub_sessions, 0);
    assert_eq!(r.totals.connected_seconds, 0);
    assert_eq!(r.totals.rows_outside_day, 2);
    assert!(r.totals.no_calls());
}

#[test]
fn a_pair_that_never_began_is_placed_by_its_creation_then_its_owner() {
    let a = session("s1", "alice", "2026-11-22T23:59:00Z");
    let created_next_day = SubSessionRow {
        begin_time: None,
        created: Some(t("2026-11-23T00:00:30Z")),
        ..never_connected("x1", &a, "bob", "2026-11-23T00:00:30Z")
    };
    let no_times = SubSessionRow {
        begin_time: None,
        created: None,
        ..never_connected("x2", &a, "carol", "2026-11-23T00:00:30Z")
    };
    let mut d = day();
    d.add_sub_session(&a, &created_next_day);
    d.add_sub_session(&a, &no_times);
    let r = d.finish(None);
    assert_eq!(
        r.totals.sub_sessions, 1,
        "the one without times falls back to the join"
    );
    assert_eq!(r.totals.rows_outside_day, 1);
    assert_eq!(r.detail.rows[0].sub_session_id, "x2");
    assert_eq!(r.detail.rows[0].begin_time, a.join_time);
}

#[test]
fn a_pair_that_never_connected_is_counted_apart_and_costs_nothing() {
    let a = session("s1", "alice", "2026-11-22T08:00:00Z");
    let mut d = day();
    d.add_session(&a);
    d.add_sub_session(&a, &sub("x1", &a, "bob", "2026-11-22T08:00:10Z"));
    d.add_sub_session(
        &a,
        &never_connected("x2", &a, "carol", "2026-11-22T08:01:00Z"),
    );
    let r = d.finish(None);
    assert_eq!(r.totals.sub_sessions, 2);
    assert_eq!(r.totals.connected, 1);
    assert_eq!(r.totals.never_connected, 1);
    assert_eq!(r.totals.connected_seconds, 600);
    assert_eq!(r.connect_types.total().pairs, 1);
    assert_eq!(r.hourly[8].sub_sessions, 2);
    assert_eq!(r.hourly[8].connected, 1);
    let x2 = r.detail.rows.iter().find(|d| d.sub_session_id == "x2");
    assert_eq!(
        x2.map(|d| (d.status, d.duration_secs)),
        Some((SubStatus::NeverConnectedLeft, 0))
    );
    // A pair that never connected has no quality to count.
    assert_eq!(r.quality.pairs_with_reports, 1);
    assert_eq!(r.quality.pairs_without_reports, 0);
}

#[test]
fn a_timed_out_member_counts_as_a_timed_out_session_and_pairs() {
    let a = SessionRow {
        time_out: true,
        ..session("s1", "alice", "2026-11-22T09:00:00Z")
    };
    let mut d = day();
    d.add_session(&a);
    d.add_sub_session(
        &a,
        &SubSessionRow {
            status: SubStatus::ConnectedTimedOut,
            ..sub("x1", &a, "bob", "2026-11-22T09:00:00Z")
        },
    );
    d.add_sub_session(
        &a,
        &SubSessionRow {
            status: SubStatus::NeverConnectedTimedOut,
            ..never_connected("x2", &a, "carol", "2026-11-22T09:00:00Z")
        },
    );
    let r = d.finish(None);
    assert_eq!(r.totals.sessions_timed_out, 1);
    assert_eq!(r.totals.sub_sessions_timed_out, 2);
    assert_eq!(r.totals.connected, 1);
    assert_eq!(r.totals.never_connected, 1);
}

#[test]
fn a_day_without_calls_still_reports() {
    let r = day().finish(None);
    assert!(r.totals.no_calls());
    assert_eq!(r.totals, Default::default());
    assert_eq!(r.hourly.len(), 24);
    assert!(r.detail.rows.is_empty());
    assert_eq!(r.quality.audio_bitrate.total(), 0);
    assert_eq!(r.totals.avg_connected_seconds(), 0.0);
    assert_eq!(r.connect_types.relay_pair_percent(), 0.0);
}

#[test]
fn relayed_calls_give_the_relay_share_and_the_cost() {
    let a = session("s1", "alice", "2026-11-22T10:00:00Z");
    let relayed = SubSessionRow {
        connect_type: ConnectType::Turn,
        duration_secs: 300,
        cost_cents: 30,
        ..sub("x1", &a, "bob", "2026-11-22T10:00:05Z")
    };
    let direct = SubSessionRow {
        duration_secs: 600,
        ..sub("x2", &a, "carol", "2026-11-22T10:00:05Z")
    };
    let unknown = SubSessionRow {
        connect_type: ConnectType::Unknown,
        duration_secs: 60,
        cost_cents: 2,
        ..sub("x3", &a, "dave", "2026-11-22T10:00:05Z")
    };
    let mut d = day();
    for s in [&relayed, &direct, &unknown] {
        d.add_sub_session(&a, s);
    }
    let r = d.finish(None);
    let c = &r.connect_types;
    assert_eq!(
        (c.relay.pairs, c.relay.seconds, c.relay.cost_cents),
        (1, 300, 30)
    );
    assert_eq!((c.p2p.pairs, c.p2p.seconds, c.p2p.cost_cents), (1, 600, 0));
    assert_eq!((c.unknown.pairs, c.unknown.seconds), (1, 60));
    assert_eq!(r.totals.cost_cents, 32);
    assert!((c.relay_pair_percent() - 100.0 / 3.0).abs() < 1e-9);
    assert!((c.relay_minute_percent() - 100.0 * 300.0 / 960.0).abs() < 1e-9);
    assert_eq!(r.totals.avg_connected_seconds(), 320.0);
}

#[test]
fn a_connected_pair_without_reports_is_counted_and_stays_out_of_the_distributions() {
    let a = session("s1", "alice", "2026-11-22T10:00:00Z");
    let mut d = day();
    d.add_sub_session(
        &a,
        &SubSessionRow {
            quality: None,
            ..sub("x1", &a, "bob", "2026-11-22T10:00:05Z")
        },
    );
    let r = d.finish(None);
    assert_eq!(r.quality.pairs_without_reports, 1);
    assert_eq!(r.quality.pairs_with_reports, 0);
    assert_eq!(r.quality.audio_bitrate.total(), 0);
    assert!(r.worst_video_loss.is_empty());
    assert!(r.lowest_video_bitrate.is_empty());
    assert_eq!(r.detail.rows[0].quality, None);
}

#[test]
fn participants_are_distinct_users_per_app() {
    let mut d = day();
    d.add_session(&session("s1", "alice", "2026-11-22T10:00:00Z"));
    d.add_session(&session("s2", "alice", "2026-11-22T11:00:00Z"));
    d.add_session(&SessionRow {
        app_id: "app2".to_owned(),
        ..session("s3", "alice", "2026-11-22T12:00:00Z")
    });
    d.add_session(&session("s4", "bob", "2026-11-22T12:00:00Z"));
    let r = d.finish(None);
    assert_eq!(r.totals.sessions, 4);
    assert_eq!(r.totals.participants, 3);
}

#[test]
fn hours_and_the_day_follow_the_time_zone() {
    let berlin = chrono_tz::Europe::Berlin;
    let mut d = DayReport::new(ReportConfig::new(
        date("2026-11-22"),
        berlin,
        t("2026-11-22T23:05:00Z"),
    ));
    assert_eq!(
        d.window(),
        (t("2026-11-21T23:00:00Z"), t("2026-11-22T23:00:00Z"))
    );
    // 23:30 UTC on the 21st is 00:30 on the 22nd in Berlin; 23:30 UTC on the 22nd is the 23rd.
    d.add_session(&session("s1", "alice", "2026-11-21T23:30:00Z"));
    d.add_session(&session("s2", "bob", "2026-11-22T07:30:00Z"));
    d.add_session(&session("s3", "carol", "2026-11-22T23:30:00Z"));
    let r = d.finish(None);
    assert_eq!(r.totals.sessions, 2);
    assert_eq!(r.hourly[0].sessions, 1);
    assert_eq!(r.hourly[8].sessions, 1);
    assert_eq!(r.totals.rows_outside_day, 1);
    assert_eq!(r.timezone, "Europe/Berlin");
}

#[test]
fn a_pair_still_open_counts_its_minutes_up_to_the_report() {
    let a = session("s1", "alice", "2026-11-22T23:00:00Z");
    let open = SubSessionRow {
        status: SubStatus::InProgress,
        finish_time: None,
        duration_secs: 0,
        ..sub("x1", &a, "bob", "2026-11-22T23:59:00Z")
    };
    let mut d = day();
    d.add_sub_session(&a, &open);
    let r = d.finish(None);
    assert_eq!(r.totals.in_progress, 1);
    assert_eq!(r.totals.connected, 1);
    // Connected at 23:59:02; the report reads at 00:05:00.
    assert_eq!(r.totals.connected_seconds, 5 * 60 + 58);
    assert_eq!(r.detail.rows[0].duration_secs, 358);
}

#[test]
fn the_email_keeps_the_worst_rows_in_begin_order_and_says_how_many_were_left_out() {
    let a = session("s1", "alice", "2026-11-22T10:00:00Z");
    let mut d = DayReport::new(ReportConfig {
        max_detail_rows: 3,
        ..config()
    });
    for i in 0..10 {
        let begin = format!("2026-11-22T10:{i:02}:00Z");
        d.add_sub_session(&a, &sub(&format!("ok{i}"), &a, "bob", &begin));
    }
    let lossy = SubSessionRow {
        quality: Some(quality(40.0, 0.1, 800.0, 7.5)),
        ..sub("lossy", &a, "bob", "2026-11-22T11:00:00Z")
    };
    let failed = never_connected("failed", &a, "carol", "2026-11-22T12:00:00Z");
    let timed_out = SubSessionRow {
        status: SubStatus::NeverConnectedTimedOut,
        ..never_connected("timedout", &a, "dave", "2026-11-22T09:00:00Z")
    };
    d.add_sub_session(&a, &lossy);
    d.add_sub_session(&a, &failed);
    d.add_sub_session(&a, &timed_out);
    let r = d.finish(None);
    let ids: Vec<&str> = r
        .detail
        .rows
        .iter()
        .map(|r| r.sub_session_id.as_str())
        .collect();
    assert_eq!(ids, ["timedout", "lossy", "failed"]);
    assert_eq!(r.detail.total, 13);
    assert_eq!(r.detail.omitted(), 10);
}

#[test]
fn with_room_for_all_rows_the_email_keeps_them_all_in_begin_order() {
    let a = session("s1", "alice", "2026-11-22T10:00:00Z");
    let mut d = day();
    for (id, begin) in [
        ("b", "2026-11-22T10:05:00Z"),
        ("a", "2026-11-22T10:01:00Z"),
        ("c", "2026-11-22T10:09:00Z"),
    ] {
        d.add_sub_session(&a, &sub(id, &a, "bob", begin));
    }
    let r = d.finish(None);
    let ids: Vec<&str> = r
        .detail
        .rows
        .iter()
        .map(|r| r.sub_session_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(r.detail.omitted(), 0);
}

#[test]
fn worst_calls_are_video_calls_ranked_by_loss_and_by_bitrate() {
    let video = session("s1", "alice", "2026-11-22T10:00:00Z");
    let audio_only = SessionRow {
        talk_type: 0,
        ..session("s2", "bob", "2026-11-22T10:00:00Z")
    };
    let mut d = DayReport::new(ReportConfig {
        worst_calls: 2,
        ..config()
    });
    let with = |id: &str, owner, q| SubSessionRow {
        quality: Some(q),
        ..sub(id, owner, "x", "2026-11-22T10:01:00Z")
    };
    d.add_sub_session(&video, &with("v1", &video, quality(40.0, 0.0, 900.0, 1.0)));
    d.add_sub_session(&video, &with("v2", &video, quality(40.0, 0.0, 150.0, 9.0)));
    d.add_sub_session(&video, &with("v3", &video, quality(40.0, 0.0, 300.0, 4.0)));
    d.add_sub_session(&video, &with("v4", &video, quality(40.0, 0.0, 1200.0, 0.0)));
    // Audio only: no video arrives, so it is in neither list however bad its numbers.
    let silent = quality(40.0, 0.0, 0.0, 0.0);
    d.add_sub_session(&audio_only, &with("a1", &audio_only, silent));
    let r = d.finish(None);
    let ids = |rows: &[rtcroom_report::DetailRow]| {
        rows.iter()
            .map(|r| r.sub_session_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&r.worst_video_loss), ["v2", "v3"]);
    assert_eq!(ids(&r.lowest_video_bitrate), ["v2", "v3"]);
    // The audio-only pair counts in the audio distribution only.
    assert_eq!(r.quality.audio_bitrate.total(), 5);
    assert_eq!(r.quality.video_bitrate.total(), 4);
}

#[test]
fn distributions_put_values_on_an_edge_into_the_bucket_above() {
    let a = session("s1", "alice", "2026-11-22T10:00:00Z");
    let mut d = day();
    for (i, (abr, vloss)) in [(7.9, 0.0), (8.0, 0.5), (64.0, 10.0), (100.0, 42.0)]
        .into_iter()
        .enumerate()
    {
        d.add_sub_session(
            &a,
            &SubSessionRow {
                quality: Some(quality(abr, 0.0, 500.0, vloss)),
                ..sub(&format!("x{i}"), &a, "bob", "2026-11-22T10:01:00Z")
            },
        );
    }
    let r = d.finish(None);
    let counts = |h: &rtcroom_report::Histogram| {
        h.buckets
            .iter()
            .map(|b| (b.label.clone(), b.count))
            .collect::<Vec<_>>()
    };
    let audio = counts(&r.quality.audio_bitrate);
    assert_eq!(audio[0], ("<8".to_owned(), 1));
    assert_eq!(audio[1], ("8\u{2013}16".to_owned(), 1));
    assert_eq!(audio[6], ("\u{2265}64".to_owned(), 2));
    let loss = counts(&r.quality.video_loss);
    assert_eq!(
        loss.iter().map(|l| l.1).collect::<Vec<_>>(),
        [1, 1, 0, 0, 0, 2]
    );
    // Weighted averages: every pair has 40 reports.
    assert!((r.quality.audio_bitrate_avg - (7.9 + 8.0 + 64.0 + 100.0) / 4.0).abs() < 1e-9);
    assert_eq!(r.quality.reports, 160);
}

#[test]
fn browsers_are_counted_by_family_and_labels_are_bounded() {
    let mut d = DayReport::new(ReportConfig {
        max_labels: 2,
        ..config()
    });
    for (i, (browser, os)) in [
        ("chrome58.0", "Win32"),
        ("chrome120.0.1", "Win32"),
        ("Firefox/120.0", "Linux x86_64"),
        ("Safari 17", "MacIntel"),
        ("", "MacIntel"),
    ]
    .into_iter()
    .enumerate()
    {
        d.add_session(&SessionRow {
            browser: browser.to_owned(),
            os_name: os.to_owned(),
            ..session(&format!("s{i}"), &format!("u{i}"), "2026-11-22T10:00:00Z")
        });
    }
    let r = d.finish(None);
    let b: Vec<(&str, u64)> = r
        .browsers
        .items
        .iter()
        .map(|l| (l.label.as_str(), l.count))
        .collect();
    assert_eq!(b, [("chrome", 2), ("Firefox", 1)]);
    assert_eq!(r.browsers.other, 2);
    let o: Vec<(&str, u64)> = r
        .operating_systems
        .items
        .iter()
        .map(|l| (l.label.as_str(), l.count))
        .collect();
    assert_eq!(o, [("Win32", 2), ("Linux x86_64", 1)]);
    assert_eq!(r.operating_systems.other, 2);
}

#[test]
fn client_errors_are_grouped_by_code_and_description() {
    let mut d = day();
    d.add_client_info(&info(0, "ok", "2026-11-22T10:00:00Z"));
    d.add_client_info(&info(
        9,
        "ice server invalid, please report",
        "2026-11-22T10:00:00Z",
    ));
    d.add_client_info(&info(
        9,
        "ice server invalid, please report",
        "2026-11-22T11:00:00Z",
    ));
    d.add_client_info(&info(10, "no microphone", "2026-11-22T12:00:00Z"));
    d.add_client_info(&info(10, "NotAllowedError", "2026-11-22T12:00:00Z"));
    d.add_client_info(&info(10, "no microphone", "2026-11-23T12:00:00Z"));
    let r = d.finish(None);
    let e = &r.client_events;
    assert_eq!((e.rows, e.errors), (5, 4));
    let codes: Vec<(i64, &str, u64)> = e
        .by_code
        .iter()
        .map(|c| (c.code, c.meaning.as_str(), c.count))
        .collect();
    assert_eq!(
        codes,
        [(9, "ICE server invalid", 2), (10, "no microphone", 2)]
    );
    let descs: Vec<(i64, &str, u64)> = e
        .by_desc
        .iter()
        .map(|c| (c.code, c.desc.as_str(), c.count))
        .collect();
    assert_eq!(
        descs,
        [
            (9, "ice server invalid, please report", 2),
            (10, "NotAllowedError", 1),
            (10, "no microphone", 1)
        ]
    );
    assert_eq!(r.totals.rows_outside_day, 1);
}

#[test]
fn countries_come_from_the_lookup_when_one_is_given() {
    let a = SessionRow {
        user_ip: "203.0.113.7:50000".to_owned(),
        ..session("s1", "alice", "2026-11-22T10:00:00Z")
    };
    let mut d = day();
    d.add_sub_session(&a, &sub("x1", &a, "bob", "2026-11-22T10:00:05Z"));
    let geo = |ip: std::net::IpAddr| {
        Some(
            if ip.to_string().starts_with("203.") {
                "DE"
            } else {
                "NL"
            }
            .to_owned(),
        )
    };
    let r = d.finish(Some(&geo));
    let row = &r.detail.rows[0];
    assert_eq!(row.user_country.as_deref(), Some("DE"));
    assert_eq!(row.ice_country.as_deref(), Some("NL"));
}

#[test]
fn sessions_count_their_length_only_once_finished() {
    let mut d = day();
    d.add_session(&session("s1", "alice", "2026-11-22T10:00:00Z"));
    d.add_session(&SessionRow {
        leave_time: None,
        duration_secs: 0,
        ..session("s2", "bob", "2026-11-22T23:50:00Z")
    });
    let r = d.finish(None);
    assert_eq!(r.totals.session_seconds, 3600);
    assert_eq!(r.hourly[10].sessions + r.hourly[23].sessions, 2);
}

#[test]
fn countries_count_calls_relay_share_quality_and_relays() {
    let at = |user: &str, ip: &str, join: &str| SessionRow {
        user_ip: ip.to_owned(),
        ..session(&format!("s-{user}"), user, join)
    };
    let de1 = at("alice", "203.0.113.7", "2026-11-22T10:00:00Z");
    let de2 = at("bob", "203.0.113.8:4000", "2026-11-22T11:00:00Z");
    let fr = at("carol", "198.51.100.3", "2026-11-22T12:00:00Z");
    let lan = at("dave", "10.0.0.5", "2026-11-22T12:00:00Z");
    let relayed = |id: &str, owner: &SessionRow, ice: &str, loss: f64| SubSessionRow {
        connect_type: ConnectType::Turn,
        ice_ip: ice.to_owned(),
        quality: Some(quality(40.0, loss, 900.0, loss)),
        ..sub(id, owner, "x", "2026-11-22T12:30:00Z")
    };
    let mut d = day();
    for s in [&de1, &de2, &fr, &lan] {
        d.add_session(s);
    }
    d.add_sub_session(&de1, &relayed("p1", &de1, "192.0.2.10", 2.0));
    d.add_sub_session(&de2, &relayed("p2", &de2, "192.0.2.10", 4.0));
    d.add_sub_session(&fr, &relayed("p3", &fr, "192.0.2.20", 0.0));
    d.add_sub_session(&fr, &sub("p4", &fr, "y", "2026-11-22T12:40:00Z"));
    d.add_sub_session(
        &lan,
        &never_connected("p5", &lan, "z", "2026-11-22T12:40:00Z"),
    );
    let geo = |ip: std::net::IpAddr| match ip.to_string().as_str() {
        s if s.starts_with("203.") => Some("DE".to_owned()),
        s if s.starts_with("198.") => Some("FR".to_owned()),
        "192.0.2.10" => Some("DE".to_owned()),
        "192.0.2.20" => Some("NL".to_owned()),
        _ => None,
    };
    let c = d
        .finish(Some(&geo))
        .countries
        .expect("a lookup gives countries");
    let rows: Vec<_> = c
        .members
        .iter()
        .map(|r| (r.country.as_deref(), r.sessions, r.connected, r.relayed))
        .collect();
    assert_eq!(
        rows,
        [
            (Some("DE"), 2, 2, 2),
            (Some("FR"), 1, 2, 1),
            (None, 1, 0, 0)
        ]
    );
    assert!((c.members[0].relay_percent() - 100.0).abs() < 1e-9);
    assert!((c.members[1].relay_percent() - 50.0).abs() < 1e-9);
    assert!((c.members[0].avg_video_loss - 3.0).abs() < 1e-9);
    let relays: Vec<_> = c
        .relays
        .iter()
        .map(|r| (r.country.as_deref(), r.servers, r.relayed))
        .collect();
    assert_eq!(relays, [(Some("DE"), 1, 2), (Some("NL"), 1, 1)]);

    let mut plain = day();
    plain.add_session(&de1);
    assert!(
        plain.finish(None).countries.is_none(),
        "no lookup, no countries"
    );
}

//! Records share the engine's text: a record lives until the writer has committed it and is
//! freed on another thread, so every string copied into one was a short-lived allocation
//! among the members' long-lived ones (the allocator's pages stay resident for the members'
//! sake). These tests hold that the text of a join's and a report's records is the text the
//! engine keeps for the member and its room, not a copy of it.

mod harness;

use harness::join;
use rtcroom_core::{
    ConnId, Effect, Engine, EngineConfig, Grant, Input, Millis, Record, SplitMix64,
};
use rtcroom_protocol::decode;

const NOW: Millis = Millis(1_700_000_000_000);

/// Opens a connection from `ip` and sends `frame` on it; the records that came out.
fn send(e: &mut Engine<SplitMix64>, conn: u64, ip: Option<&str>, frame: &str) -> Vec<Record> {
    let conn = ConnId(conn);
    if let Some(ip) = ip {
        e.handle(
            NOW,
            Input::Open {
                conn,
                ip: ip.to_owned(),
                at: None,
            },
        );
    }
    let frame = decode(frame, rtcroom_protocol::DEFAULT_MAX_FRAME);
    e.handle(
        NOW,
        Input::Frame {
            conn,
            frame,
            grant: Grant::Unchecked,
        },
    );
    let mut records = Vec::new();
    while let Some(effect) = e.poll_effect() {
        if let Effect::Record(r) = effect {
            records.push(r);
        }
    }
    records
}

/// The same bytes, not equal bytes elsewhere.
fn same(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b)
}

#[test]
fn the_records_of_a_join_share_the_members_and_the_rooms_text() {
    let mut e = Engine::new(EngineConfig::default(), SplitMix64(42));
    let first = send(&mut e, 1, Some("192.0.2.1"), &join("r1", "alice"));
    let [Record::SessionOpen(alice)] = first.as_slice() else {
        panic!("one session opened: {first:?}")
    };
    let second = send(&mut e, 2, Some("192.0.2.2"), &join("r1", "bob"));
    let [
        Record::SessionOpen(bob),
        Record::SubSessionOpen(to_bob),
        Record::SubSessionOpen(to_alice),
    ] = second.as_slice()
    else {
        panic!("a session and two sub-sessions opened: {second:?}")
    };
    assert_eq!(
        (to_bob.user_id.as_str(), to_bob.remote_user_id.as_str()),
        ("alice", "bob")
    );
    assert_eq!(to_alice.remote_user_name.as_str(), "alice_name");
    assert_eq!(to_alice.remote_user_ip.as_str(), "192.0.2.1");
    // Alice's text as her session recorded it is what her sub-sessions carry, a join later.
    assert!(same(&alice.user_id, &to_bob.user_id));
    assert!(same(&alice.user_id, &to_alice.remote_user_id));
    assert!(same(&alice.user_name, &to_alice.remote_user_name));
    assert!(same(&alice.user_ip, &to_alice.remote_user_ip));
    assert!(same(&bob.user_id, &to_bob.remote_user_id));
    assert!(same(&bob.user_name, &to_bob.remote_user_name));
    assert!(same(&bob.user_ip, &to_bob.remote_user_ip));
    // The room's: one app id and room id for every record of the room.
    for (app_id, room_id) in [
        (&bob.app_id, &bob.room_id),
        (&to_bob.app_id, &to_bob.room_id),
        (&to_alice.app_id, &to_alice.room_id),
    ] {
        assert!(same(&alice.app_id, app_id));
        assert!(same(&alice.room_id, room_id));
    }
    // The pair's ICE server (none here: one empty text, no allocation).
    assert_eq!(to_bob.ice_ip, to_alice.ice_ip);

    // A quality report carries the member's and its remote's uid as the engine holds them.
    let report = r#"{"cmd":"reportStats","appId":"10000","roomId":"r1","uid":"alice","remoteId":"bob","video":{"send":{"codecName":"VP8"}},"time":"1"}"#;
    let reported = send(&mut e, 1, None, report);
    let [Record::Quality(q)] = reported.as_slice() else {
        panic!("one quality row: {reported:?}")
    };
    assert!(same(&alice.user_id, &q.user_id));
    assert!(same(&bob.user_id, &q.remote_user_id));
    assert_eq!(q.stats.send_codec, "VP8");
}

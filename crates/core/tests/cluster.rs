//! Rooms handed between the engines of a cluster: a room released by one engine and
//! adopted by another goes on as if it had not moved, and nobody hears of the move; members
//! adopted without a connection resume with their key or time out with their records closed
//! when last heard; `take_changed_rooms` names the rooms whose snapshot changed; `end_rooms`
//! closes every record once and tells nobody. Every engine here has its own monotonic clock,
//! as the processes of two nodes do; they share the wall clock.

mod harness;

use harness::{START, join, join_with_key};
use rtcroom_core::*;
use rtcroom_ice::{IceCommand, Register, RegistryConfig};
use rtcroom_protocol::{ServerMsg, decode};
use std::collections::{BTreeMap, HashMap, HashSet};
use ulid::Ulid;

/// One engine and what the test knows of it: its clock and who each connection is.
struct Node {
    engine: Engine<SplitMix64>,
    /// Its monotonic clock is the wall clock minus this.
    behind: u64,
    /// The uid each connection is (or was) for.
    uids: HashMap<ConnId, String>,
    /// The connection each uid is on now.
    conns: BTreeMap<String, ConnId>,
    next_conn: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The defaults: tokens not checked, a static `rtcConfig`.
    Open,
    /// Tokens required, a static `rtcConfig`.
    Tokens,
    /// ICE servers from a registry, tokens not checked.
    Registry,
}

const ICE_IP: &str = "198.51.100.7";

fn config(mode: Mode) -> EngineConfig {
    match mode {
        Mode::Open => EngineConfig::default(),
        Mode::Tokens => EngineConfig {
            auth: AuthMode::Required { prompt_secs: 5 },
            ..EngineConfig::default()
        },
        Mode::Registry => EngineConfig {
            ice: IceMode::Registry(RegistryConfig {
                shared_secret: Some("secret".into()),
                report_timeout_ms: u64::MAX / 4,
                ..RegistryConfig::default()
            }),
            ..EngineConfig::default()
        },
    }
}

impl Node {
    fn new(mode: Mode, seed: u64, behind: u64, first_conn: u64) -> Self {
        let mut engine = Engine::new(config(mode), SplitMix64(seed));
        if mode == Mode::Registry {
            let now = Now {
                wall: START,
                mono: Millis(START.0 - behind),
            };
            engine.ice_command(now, IceCommand::Register(Register::new(ICE_IP, 100_000)));
        }
        Self {
            engine,
            behind,
            uids: HashMap::new(),
            conns: BTreeMap::new(),
            next_conn: first_conn,
        }
    }

    fn at(&self, secs: u64) -> Now {
        let wall = START.plus_secs(secs);
        Now {
            wall,
            mono: Millis(wall.0 - self.behind),
        }
    }

    fn effects(&mut self) -> Vec<Effect> {
        std::iter::from_fn(|| self.engine.poll_effect()).collect()
    }

    /// A new connection for `uid`.
    fn open(&mut self, secs: u64, uid: &str) -> Vec<Effect> {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        self.uids.insert(conn, uid.to_owned());
        self.conns.insert(uid.to_owned(), conn);
        let ip = "192.0.2.1".into();
        self.engine
            .handle(self.at(secs), Input::Open { conn, ip, at: None });
        self.effects()
    }

    /// A frame from `uid`'s connection; joins and token refreshes carry a grant valid until
    /// `token_until` seconds.
    fn frame(&mut self, secs: u64, uid: &str, text: &str, token_until: u64) -> Vec<Effect> {
        let conn = self.conns[uid];
        let frame = decode(text, rtcroom_protocol::DEFAULT_MAX_FRAME);
        let grant = if text.contains(r#""cmd":"join""#) || text.contains("updateToken") {
            Grant::Valid {
                app_id: "10000".into(),
                uid: None,
                expires_at: START.plus_secs(token_until),
            }
        } else {
            Grant::Unchecked
        };
        self.engine
            .handle(self.at(secs), Input::Frame { conn, frame, grant });
        self.effects()
    }

    fn close(&mut self, secs: u64, uid: &str, clean: bool) -> Vec<Effect> {
        let conn = self.conns[uid];
        self.engine
            .handle(self.at(secs), Input::Closed { conn, clean });
        self.effects()
    }

    fn tick(&mut self, secs: u64) -> Vec<Effect> {
        self.engine.handle_timeout(self.at(secs));
        self.effects()
    }

    /// Effects as the clients and the record writer see them: messages and closes by uid,
    /// records with the ids of new quality and client-info rows (drawn from each engine's
    /// own entropy) left out.
    fn seen(&self, effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { conn, msg } => {
                    Some(format!("{}< {}", self.uids[conn], msg.to_json()))
                }
                Effect::Close { conn, reason } => {
                    Some(format!("{} closed {}", self.uids[conn], reason.code()))
                }
                Effect::Record(r) => Some(format!("rec {:?}", without_new_ids(r.clone()))),
                Effect::Event(_) => None,
            })
            .collect()
    }
}

fn without_new_ids(r: Record) -> Record {
    match r {
        Record::Quality(q) => Record::Quality(Quality {
            id: Ulid::nil(),
            ..q
        }),
        Record::ClientInfo(i) => Record::ClientInfo(ClientInfo {
            id: Ulid::nil(),
            ..i
        }),
        r => r,
    }
}

/// The resume keys handed out in `effects`, by uid.
fn keys(effects: &[Effect]) -> HashMap<String, String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                msg: ServerMsg::RespJoin(r),
                ..
            } if !r.resume_key.is_empty() => {
                Some((r.uid.key().to_owned(), r.resume_key.expose().to_owned()))
            }
            _ => None,
        })
        .collect()
}

/// Every session and sub-session opened is closed exactly once, none closed unopened.
#[derive(Default, Debug)]
struct Ledger {
    open: HashSet<Ulid>,
    closed: HashSet<Ulid>,
}

impl Ledger {
    fn apply(&mut self, effects: &[Effect]) {
        for e in effects {
            let Effect::Record(r) = e else { continue };
            match r {
                Record::SessionOpen(s) => assert!(self.open.insert(s.session_id), "opened twice"),
                Record::SubSessionOpen(s) => {
                    assert!(self.open.insert(s.sub_session_id), "opened twice")
                }
                Record::SessionClose(s) => self.close(s.session_id),
                Record::SubSessionFinish(s) => self.close(s.sub_session_id),
                _ => {}
            }
        }
    }

    fn close(&mut self, id: Ulid) {
        assert!(self.open.contains(&id), "{id} closed but never opened");
        assert!(self.closed.insert(id), "{id} closed twice");
    }

    fn all_closed(&self) {
        assert!(!self.open.is_empty());
        assert_eq!(self.open, self.closed, "every record opened is closed");
    }
}

fn room(id: &str) -> RoomRef {
    RoomRef {
        app_id: "10000".into(),
        room_id: id.into(),
    }
}

const TOKEN: u64 = 50;

/// Alice, Bob and Carol in room `r` (Alice–Bob connected, the pairs with Carol not begun),
/// Dave alone in room `stay`; all heard at 20 s.
fn call(node: &mut Node) -> Vec<Effect> {
    let mut out = Vec::new();
    for (secs, uid, r) in [
        (0, "alice", "r"),
        (1, "bob", "r"),
        (2, "carol", "r"),
        (2, "dave", "stay"),
    ] {
        out.extend(node.open(secs, uid));
        out.extend(node.frame(secs, uid, &join(r, uid), TOKEN));
    }
    for (uid, text) in [
        ("alice", r#"{"cmd":"offer","remoteUid":"bob","msg":"o"}"#),
        ("bob", r#"{"cmd":"answer","remoteUid":"alice","msg":"a"}"#),
        (
            "alice",
            r#"{"cmd":"peerConnected","remoteUid":"bob","connectType":"TURN"}"#,
        ),
        (
            "bob",
            r#"{"cmd":"peerConnected","remoteUid":"alice","connectType":"STUN"}"#,
        ),
        ("bob", r#"{"cmd":"turnTalkType","index":1,"enable":false}"#),
    ] {
        out.extend(node.frame(3, uid, text, TOKEN));
    }
    for uid in ["alice", "bob", "carol", "dave"] {
        out.extend(node.frame(20, uid, r#"{"cmd":"keepLive"}"#, TOKEN));
    }
    out
}

/// What the members of `r` do after the move at 25 s: the pairs with Carol begin and
/// connect, reports, a device change, Carol drops and resumes, token prompts, a refresh,
/// expiries (with tokens), leaves, and a shutdown at the end.
fn after_move(node: &mut Node, keys: &HashMap<String, String>) -> Vec<Effect> {
    let mut seen = Vec::new();
    let mut step = |_: &mut Node, effects: Vec<Effect>| seen.extend(effects);
    let frames = [
        (
            25,
            "alice",
            r#"{"cmd":"offer","remoteUid":"carol","msg":"o2"}"#,
        ),
        (
            25,
            "carol",
            r#"{"cmd":"answer","remoteUid":"alice","msg":"a2"}"#,
        ),
        (
            25,
            "alice",
            r#"{"cmd":"candidate","remoteUid":"carol","msg":"c1"}"#,
        ),
        (
            25,
            "carol",
            r#"{"cmd":"candidate","remoteUid":"alice","msg":"c2"}"#,
        ),
        (
            26,
            "carol",
            r#"{"cmd":"offer","remoteUid":"bob","msg":"o3"}"#,
        ),
        (
            26,
            "bob",
            r#"{"cmd":"answer","remoteUid":"carol","msg":"a3"}"#,
        ),
        (
            27,
            "alice",
            r#"{"cmd":"peerConnected","remoteUid":"carol","connectType":"TURN"}"#,
        ),
        (
            27,
            "carol",
            r#"{"cmd":"peerConnected","remoteUid":"alice","connectType":"TURN"}"#,
        ),
        (
            28,
            "bob",
            r#"{"cmd":"reportStats","remoteId":"alice","audio":{"recv":{"bitRate":39,"packetsLostRate":"0.00"}},"video":{"recv":{"bitRate":607,"packetsLostRate":0.5}}}"#,
        ),
        (
            28,
            "alice",
            r#"{"cmd":"reportInfo","result":9,"desc":"ice server invalid"}"#,
        ),
        (
            29,
            "carol",
            r#"{"cmd":"turnTalkType","index":0,"enable":false}"#,
        ),
        (
            30,
            "alice",
            r#"{"cmd":"offer","remoteUid":"bob","msg":"o4","isIceReset":true}"#,
        ),
    ];
    for (secs, uid, text) in frames {
        let e = node.frame(secs, uid, text, TOKEN);
        step(node, e);
    }
    for secs in 31..=33 {
        let e = node.tick(secs);
        step(node, e);
    }
    let e = node.close(33, "carol", false);
    step(node, e);
    let e = node.open(35, "carol");
    step(node, e);
    let e = node.frame(
        35,
        "carol",
        &join_with_key("r", "carol", &keys["carol"]),
        TOKEN,
    );
    step(node, e);
    for secs in 36..=47 {
        if secs % 5 == 0 {
            for uid in ["alice", "bob", "carol"] {
                let e = node.frame(secs, uid, r#"{"cmd":"keepLive"}"#, TOKEN);
                step(node, e);
            }
        }
        let e = node.tick(secs);
        step(node, e);
    }
    let e = node.frame(47, "bob", r#"{"cmd":"updateToken","token":"new"}"#, 200);
    step(node, e);
    for secs in 48..=55 {
        let e = node.tick(secs);
        step(node, e);
        if secs % 5 == 0 {
            let e = node.frame(secs, "bob", r#"{"cmd":"keepLive"}"#, TOKEN);
            step(node, e);
        }
    }
    let e = node.frame(56, "carol", r#"{"cmd":"leave"}"#, TOKEN);
    step(node, e);
    let e = node.close(57, "alice", true);
    step(node, e);
    node.engine.shutdown(node.at(58));
    let e = node.effects();
    step(node, e);
    seen
}

#[test]
fn a_released_and_adopted_room_goes_on_as_if_it_had_not_moved() {
    for mode in [Mode::Tokens, Mode::Registry] {
        // X and its twin T are the same engine fed the same inputs; T never moves.
        let mut x = Node::new(mode, 42, 5_000_000, 0);
        let mut twin = Node::new(mode, 42, 5_000_000, 0);
        let before = call(&mut x);
        assert_eq!(before, call(&mut twin));
        let keys = keys(&before);
        let mut ledger = Ledger::default();
        ledger.apply(&before);

        // X hands room r to Y (another process: its own clock, entropy, connection numbers).
        let (snapshot, handed) = x.engine.release_rooms(x.at(25), &[room("r")]);
        assert_eq!(x.effects(), [], "a release says nothing ({mode:?})");
        let expected: Vec<ConnId> = ["alice", "bob", "carol"].map(|u| x.conns[u]).into();
        assert_eq!(handed, expected);
        assert_eq!(snapshot.room_refs(), [room("r")]);
        let json = serde_json::to_string(&snapshot).expect("serializes");
        let snapshot: Snapshot = serde_json::from_str(&json).expect("reads back");
        let mut y = Node::new(mode, 7, 123_456_789, 1 << 62);
        let mut seat = HashMap::new();
        for uid in ["alice", "bob", "carol"] {
            y.next_conn += 1;
            let conn = ConnId(y.next_conn);
            seat.insert(uid.to_owned(), conn);
            y.uids.insert(conn, uid.to_owned());
            y.conns.insert(uid.to_owned(), conn);
        }
        let adopted = y
            .engine
            .adopt(y.at(25), snapshot, |r, uid| {
                assert_eq!(r, &room("r"));
                seat.get(uid).copied()
            })
            .expect("adopts");
        assert_eq!(
            adopted,
            Adopted {
                rooms: vec![room("r")],
                skipped: vec![],
                seated: 3,
                waiting: 0
            }
        );
        assert_eq!(y.effects(), [], "an adoption says nothing ({mode:?})");
        assert_eq!(y.engine.room_of(seat["bob"]), Some(room("r")));
        let mut sitting = y.engine.room_conns(&room("r"));
        sitting.sort();
        let mut expected: Vec<(String, ConnId)> = seat.clone().into_iter().collect();
        expected.sort();
        assert_eq!(sitting, expected);

        // X forgot the room and its connections; its other room goes on.
        assert_eq!(x.engine.room_of(x.conns["alice"]), None);
        assert_eq!(x.close(25, "alice", false), []);
        assert_eq!(x.frame(25, "bob", r#"{"cmd":"keepLive"}"#, TOKEN), []);
        let stay = x.frame(25, "dave", r#"{"cmd":"keepLive"}"#, TOKEN);
        assert_eq!(
            x.seen(&stay),
            [r#"dave< {"cmd":"respKeepLive","result":0,"desc":"ok"}"#]
        );
        assert_eq!(x.engine.stats().rooms, 1);

        let on_y = after_move(&mut y, &keys);
        let on_twin = after_move(&mut twin, &keys);
        // Dave stays on the twin: what concerns him is not room r's.
        let dave = before
            .iter()
            .find_map(|e| match e {
                Effect::Record(Record::SessionOpen(s)) if s.user_id == "dave" => {
                    Some(format!("{:?}", s.session_id))
                }
                _ => None,
            })
            .expect("dave joined");
        let seen_twin: Vec<String> = twin
            .seen(&on_twin)
            .into_iter()
            .filter(|l| !l.starts_with("dave") && !l.contains(&dave))
            .collect();
        let seen_y = y.seen(&on_y);
        assert_eq!(seen_y, seen_twin, "{mode:?}");
        let on_y_text = seen_y;
        assert!(
            on_y_text.iter().any(|l| l.contains("SubSessionBegin")),
            "{on_y_text:#?}"
        );
        assert!(
            on_y_text.iter().any(|l| l.contains(r#""resumed":true"#)),
            "{on_y_text:#?}"
        );
        if mode == Mode::Tokens {
            assert!(
                on_y_text.iter().any(|l| l.contains("systemPromptToken")),
                "{on_y_text:#?}"
            );
            assert!(
                on_y_text.iter().any(|l| l.contains("closed 4003")),
                "{on_y_text:#?}"
            );
        } else {
            assert!(
                on_y_text.iter().any(|l| l.contains(ICE_IP)),
                "{on_y_text:#?}"
            );
        }
        // Every record of room r, opened on X, is closed exactly once, on Y; Dave's on X.
        ledger.apply(&on_y);
        x.engine.shutdown(x.at(58));
        ledger.apply(&x.effects());
        ledger.all_closed();
        let mut twin_ledger = Ledger::default();
        twin_ledger.apply(&before);
        twin_ledger.apply(&on_twin);
        twin.engine.shutdown(twin.at(58));
        twin_ledger.apply(&twin.effects());
        twin_ledger.all_closed();
    }
}

/// Alice and Bob in room `r` on `node`, their pair connected at 2 s, both heard at 2 s.
fn pair(node: &mut Node) -> Vec<Effect> {
    let mut out = Vec::new();
    for (secs, uid) in [(0, "alice"), (1, "bob")] {
        out.extend(node.open(secs, uid));
        out.extend(node.frame(secs, uid, &join("r", uid), TOKEN));
    }
    for (uid, text) in [
        ("alice", r#"{"cmd":"offer","remoteUid":"bob","msg":"o"}"#),
        ("bob", r#"{"cmd":"answer","remoteUid":"alice","msg":"a"}"#),
        (
            "alice",
            r#"{"cmd":"peerConnected","remoteUid":"bob","connectType":"TURN"}"#,
        ),
        (
            "bob",
            r#"{"cmd":"peerConnected","remoteUid":"alice","connectType":"TURN"}"#,
        ),
    ] {
        out.extend(node.frame(2, uid, text, TOKEN));
    }
    out
}

/// X holds the pair of [`pair`]; the state the shell wrote for room r is X's snapshot of
/// 2 s (Alice's keepLive at 20 s changed nothing, so nothing newer was written); X is then
/// gone, and Y adopts the room at 30 s with Alice on a live connection and Bob on none.
fn adopt_with_bob_unseated() -> (Node, Ledger, Vec<Effect>) {
    let mut x = Node::new(Mode::Open, 42, 5_000_000, 0);
    let before = pair(&mut x);
    assert_eq!(x.engine.take_changed_rooms(), [room("r")]);
    let written = x.engine.snapshot_rooms(x.at(2), &[room("r")]);
    x.frame(20, "alice", r#"{"cmd":"keepLive"}"#, TOKEN);
    assert_eq!(x.engine.take_changed_rooms(), [], "a keepLive is no change");
    let mut ledger = Ledger::default();
    ledger.apply(&before);

    let mut y = Node::new(Mode::Open, 7, 123_456_789, 1 << 62);
    let alice = ConnId((1 << 62) + 1);
    y.next_conn = alice.0;
    y.uids.insert(alice, "alice".into());
    y.conns.insert("alice".into(), alice);
    let adopted = y
        .engine
        .adopt(y.at(30), written, |_, uid| {
            (uid == "alice").then_some(alice)
        })
        .expect("adopts");
    assert_eq!((adopted.seated, adopted.waiting), (1, 1));
    assert_eq!(y.effects(), [], "an adoption says nothing");
    let bob = y
        .engine
        .room_conns(&room("r"))
        .into_iter()
        .find(|(uid, _)| uid == "bob")
        .map(|(_, conn)| conn)
        .expect("bob is in the room");
    assert!(bob.0 >= 1 << 63, "bob waits on a placeholder: {bob:?}");
    assert_eq!(y.engine.room_of(bob), Some(room("r")));
    (y, ledger, before)
}

#[test]
fn members_adopted_without_a_connection_time_out_from_the_adoption_with_records_closed_when_last_heard()
 {
    let (mut y, mut ledger, _) = adopt_with_bob_unseated();
    // A snapshot of the adopted room still says Bob was last heard at 2 s.
    let json = serde_json::to_value(y.engine.snapshot_rooms(y.at(31), &[room("r")])).unwrap();
    let heard: Vec<u64> = json["rooms"][0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["last_seen"].as_u64().unwrap())
        .collect();
    assert_eq!(heard, [START.plus_secs(30).0, START.plus_secs(2).0]);
    let mut seen = Vec::new();
    for secs in 31..=69 {
        if secs % 10 == 0 {
            seen.extend(y.frame(secs, "alice", r#"{"cmd":"keepLive"}"#, TOKEN));
        }
        seen.extend(y.tick(secs));
    }
    assert!(
        seen.iter().all(|e| matches!(
            e,
            Effect::Send {
                msg: ServerMsg::RespKeepLive(_),
                ..
            }
        )),
        "bob waits the heartbeat timeout from the adoption (70 s): {seen:?}"
    );
    let gone = y.tick(70);
    let lines = y.seen(&gone);
    assert_eq!(
        lines[0],
        r#"alice< {"cmd":"relayLeave","uid":"bob","uname":"bob_name","userType":0}"#
    );
    let closes: Vec<&SessionClose> = gone
        .iter()
        .filter_map(|e| match e {
            Effect::Record(Record::SessionClose(c)) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(closes.len(), 1, "{lines:#?}");
    assert_eq!(
        closes[0].leave_time,
        START.plus_secs(2),
        "closed when last heard"
    );
    assert_eq!((closes[0].duration_secs, closes[0].timed_out), (1, true));
    for e in &gone {
        if let Effect::Record(Record::SubSessionFinish(f)) = e {
            assert_eq!(f.finish_time, START.plus_secs(2));
            assert_eq!(f.status, SubStatus::ConnectedTimedOut);
        }
    }
    ledger.apply(&seen);
    ledger.apply(&gone);
    ledger.apply(&y.frame(71, "alice", r#"{"cmd":"leave"}"#, TOKEN));
    ledger.all_closed();
}

#[test]
fn a_member_adopted_without_a_connection_resumes_with_its_key_and_nobody_else_is_told() {
    let (mut y, mut ledger, before) = adopt_with_bob_unseated();
    let keys = keys(&before);
    y.open(35, "bob");
    let resumed = y.frame(35, "bob", &join_with_key("r", "bob", &keys["bob"]), TOKEN);
    let bob = y.conns["bob"];
    assert_eq!(resumed.len(), 2, "{resumed:?}"); // respJoin, and the Joined event
    let Effect::Send {
        conn,
        msg: ServerMsg::RespJoin(r),
    } = &resumed[0]
    else {
        panic!("{resumed:?}")
    };
    assert_eq!(*conn, bob);
    assert!(r.resumed);
    let session = before.iter().find_map(|e| match e {
        Effect::Record(Record::SessionOpen(s)) if s.user_id == "bob" => Some(s.session_id),
        _ => None,
    });
    assert_eq!(r.session_id, session, "the same session goes on");
    assert!(matches!(
        resumed[1],
        Effect::Event(Event::Joined { rejoin: true, .. })
    ));
    // The pair goes on on its sub-sessions: an ICE restart reaches Alice on her seat.
    let offer = y.frame(
        36,
        "bob",
        r#"{"cmd":"offer","remoteUid":"alice","msg":"o2","isIceReset":true}"#,
        TOKEN,
    );
    let alice_sub = before.iter().find_map(|e| match e {
        Effect::Record(Record::SubSessionOpen(s)) if s.user_id == "alice" => Some(s.sub_session_id),
        _ => None,
    });
    match &offer[0] {
        Effect::Send {
            conn,
            msg: ServerMsg::RelayOffer(o),
        } => {
            assert_eq!(*conn, y.conns["alice"]);
            assert_eq!(Some(o.sub_session_id), alice_sub);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        offer.iter().all(|e| !matches!(e, Effect::Record(_))),
        "begun before the move"
    );
    // Nobody times out: Bob was heard at 36 s, Alice at her seating (30 s) and 60 s.
    let mut later = y.frame(60, "alice", r#"{"cmd":"keepLive"}"#, TOKEN);
    later.extend(y.frame(60, "bob", r#"{"cmd":"keepLive"}"#, TOKEN));
    for secs in 61..=75 {
        later.extend(y.tick(secs));
    }
    assert_eq!(later.len(), 2, "{later:?}");
    ledger.apply(&y.frame(76, "bob", r#"{"cmd":"leave"}"#, TOKEN));
    ledger.apply(&y.close(77, "alice", true));
    ledger.all_closed();
}

#[test]
fn take_changed_rooms_names_the_rooms_whose_snapshot_changed() {
    let mut n = Node::new(Mode::Tokens, 1, 0, 0);
    let changed = |n: &mut Node| n.engine.take_changed_rooms();
    assert_eq!(
        changed(&mut n),
        [],
        "nothing yet; changes are kept from now on"
    );
    n.open(0, "alice");
    n.frame(0, "alice", &join("r", "alice"), TOKEN);
    assert_eq!(changed(&mut n), [room("r")], "created");
    assert_eq!(changed(&mut n), [], "taken");
    n.frame(1, "alice", r#"{"cmd":"keepLive"}"#, TOKEN);
    assert_eq!(changed(&mut n), [], "a keepLive alone");
    n.open(1, "bob");
    n.frame(1, "bob", &join("r", "bob"), TOKEN);
    assert_eq!(changed(&mut n), [room("r")], "a join");
    let steps: [(&str, &str, bool); 10] = [
        (
            "alice",
            r#"{"cmd":"candidate","remoteUid":"bob","msg":"c"}"#,
            false,
        ),
        (
            "alice",
            r#"{"cmd":"offer","remoteUid":"bob","msg":"o"}"#,
            true,
        ),
        (
            "alice",
            r#"{"cmd":"offer","remoteUid":"bob","msg":"o"}"#,
            false,
        ),
        (
            "bob",
            r#"{"cmd":"answer","remoteUid":"alice","msg":"a"}"#,
            true,
        ),
        (
            "bob",
            r#"{"cmd":"answer","remoteUid":"alice","msg":"a"}"#,
            false,
        ),
        (
            "alice",
            r#"{"cmd":"peerConnected","remoteUid":"bob","connectType":"TURN"}"#,
            true,
        ),
        (
            "bob",
            r#"{"cmd":"turnTalkType","index":0,"enable":false}"#,
            true,
        ),
        ("bob", r#"{"cmd":"reportStats","remoteId":"alice"}"#, false),
        (
            "bob",
            r#"{"cmd":"reportInfo","result":0,"desc":"ok"}"#,
            false,
        ),
        ("bob", r#"{"cmd":"updateToken","token":"new"}"#, true),
    ];
    for (uid, text, changes) in steps {
        let effects = n.frame(2, uid, text, 100);
        assert!(
            effects
                .iter()
                .all(|e| !matches!(e, Effect::Event(Event::Refused { .. }))),
            "{text}: {effects:?}"
        );
        let expected = if changes { vec![room("r")] } else { vec![] };
        assert_eq!(changed(&mut n), expected, "{text}");
    }
    // A token prompt is kept in the snapshot (alice's token ends at 50 s, prompted at 45 s).
    n.frame(30, "alice", r#"{"cmd":"keepLive"}"#, TOKEN);
    n.frame(30, "bob", r#"{"cmd":"keepLive"}"#, TOKEN);
    n.tick(44);
    assert_eq!(changed(&mut n), []);
    n.tick(45);
    assert_eq!(changed(&mut n), [room("r")], "prompted");
    n.open(45, "carol");
    n.frame(45, "carol", &join("r2", "carol"), 200);
    n.close(45, "carol", false);
    assert_eq!(
        changed(&mut n),
        [room("r2")],
        "created, and its member's connection dropped"
    );
    n.frame(46, "alice", r#"{"cmd":"leave"}"#, TOKEN);
    assert_eq!(changed(&mut n), [room("r")], "a leave");
    n.frame(46, "bob", r#"{"cmd":"leave"}"#, TOKEN);
    assert_eq!(changed(&mut n), [room("r")], "removed");
    assert_eq!(n.engine.snapshot_rooms(n.at(46), &[room("r")]).rooms(), 0);
    n.open(46, "dave");
    n.frame(46, "dave", &join("r3", "dave"), 200);
    n.frame(46, "dave", r#"{"cmd":"leave"}"#, TOKEN);
    assert_eq!(changed(&mut n), [room("r3")], "created and removed since");
    n.tick(84);
    assert_eq!(changed(&mut n), [], "carol's place is kept until 85 s");
    n.tick(85);
    assert_eq!(changed(&mut n), [room("r2")], "timed out, removed");
    // Handed away: not a change here; adopted: a change.
    n.open(90, "erin");
    n.frame(90, "erin", &join("r4", "erin"), 200);
    assert_eq!(changed(&mut n), [room("r4")]);
    let (snapshot, _) = n.engine.release_rooms(n.at(91), &[room("r4")]);
    assert_eq!(changed(&mut n), [], "released");
    n.engine
        .adopt(n.at(91), snapshot, |_, _| None)
        .expect("adopts");
    assert_eq!(changed(&mut n), [room("r4")], "adopted");
    // The first call names every room held.
    let mut fresh = Node::new(Mode::Open, 2, 0, 0);
    for (uid, r) in [("a", "r9"), ("b", "r8")] {
        fresh.open(0, uid);
        fresh.frame(0, uid, &join(r, uid), TOKEN);
    }
    assert_eq!(changed(&mut fresh), [room("r8"), room("r9")]);
    assert_eq!(changed(&mut fresh), []);
}

/// Puts `uid` on a new live connection of `node` that the engine has not seen.
fn seat_for(node: &mut Node, uid: &str) -> ConnId {
    node.next_conn += 1;
    let conn = ConnId(node.next_conn);
    node.uids.insert(conn, uid.into());
    node.conns.insert(uid.into(), conn);
    conn
}

#[test]
fn an_adoption_skips_rooms_held_here_and_leaves_the_others_alone() {
    let mut x = Node::new(Mode::Open, 42, 5_000_000, 0);
    for (uid, r) in [("alice", "r"), ("bob", "r"), ("carol", "t"), ("gina", "u")] {
        x.open(0, uid);
        x.frame(0, uid, &join(r, uid), TOKEN);
    }
    let mut y = Node::new(Mode::Open, 7, 123_456_789, 1 << 62);
    for (uid, r) in [("eve", "r"), ("frank", "s")] {
        y.open(0, uid);
        y.frame(0, uid, &join(r, uid), TOKEN);
    }
    let (snapshot, _) = x
        .engine
        .release_rooms(x.at(5), &[room("r"), room("t"), room("u"), room("nowhere")]);
    assert_eq!(snapshot.room_refs(), [room("r"), room("t"), room("u")]);
    let held = y.engine.rooms();
    let carol = seat_for(&mut y, "carol");
    let eve = y.conns["eve"];
    let mut asked = Vec::new();
    let adopted = y
        .engine
        .adopt(y.at(5), snapshot, |r, uid| {
            asked.push((r.room_id.clone(), uid.to_owned()));
            // Gina's seat is Eve's connection, which is a member here: she waits instead.
            match uid {
                "carol" => Some(carol),
                "gina" => Some(eve),
                _ => None,
            }
        })
        .expect("adopts");
    assert_eq!(
        adopted,
        Adopted {
            rooms: vec![room("t"), room("u")],
            skipped: vec![room("r")],
            seated: 1,
            waiting: 1,
        }
    );
    assert_eq!(
        asked,
        [("t".into(), "carol".into()), ("u".into(), "gina".into())]
    );
    assert_eq!(y.effects(), []);
    let now_held = y.engine.rooms();
    assert_eq!(now_held.len(), 4);
    for room in &held {
        assert!(now_held.contains(room), "{room:?} is as it was");
    }
    assert_eq!(y.engine.room_of(eve), Some(room("r")));
    assert_eq!(y.engine.room_of(carol), Some(room("t")));
    assert_eq!(y.engine.room_conns(&room("r")), [("eve".to_owned(), eve)]);
    // Eve's call goes on; Carol is heard on her seat.
    let e = y.frame(6, "eve", r#"{"cmd":"keepLive"}"#, TOKEN);
    assert_eq!(
        y.seen(&e),
        [r#"eve< {"cmd":"respKeepLive","result":0,"desc":"ok"}"#]
    );
    let e = y.frame(6, "carol", r#"{"cmd":"keepLive"}"#, TOKEN);
    assert_eq!(
        y.seen(&e),
        [r#"carol< {"cmd":"respKeepLive","result":0,"desc":"ok"}"#]
    );
}

#[test]
fn placeholders_never_collide_across_restores_and_adoptions() {
    let snapshot_of = |r: &str, uids: [&str; 2], seed: u64| {
        let mut x = Node::new(Mode::Open, seed, 0, 0);
        let mut effects = Vec::new();
        for uid in uids {
            effects.extend(x.open(0, uid));
            effects.extend(x.frame(0, uid, &join(r, uid), TOKEN));
        }
        let keys = keys(&effects);
        (x.engine.snapshot_rooms(x.at(1), &[room(r)]), keys)
    };
    let (a, _) = snapshot_of("a", ["alice", "bob"], 1);
    let (b, b_keys) = snapshot_of("b", ["carol", "dave"], 2);
    let mut y = Node::new(Mode::Open, 7, 0, 0);
    y.engine.restore(y.at(2), a).expect("restores");
    let mut seen = HashSet::new();
    let mut placeholders = |y: &Node, r: &str| {
        for (_, conn) in y.engine.room_conns(&room(r)) {
            assert!(conn.0 >= 1 << 63);
            assert!(seen.insert(conn), "{conn:?} handed out twice");
        }
    };
    placeholders(&y, "a");
    y.engine.adopt(y.at(3), b, |_, _| None).expect("adopts");
    placeholders(&y, "b");
    for secs in 4..8 {
        let (again, conns) = y.engine.release_rooms(y.at(secs), &[room("b")]);
        assert_eq!(conns, [], "placeholders are not handed on");
        let adopted = y
            .engine
            .adopt(y.at(secs), again, |_, _| None)
            .expect("adopts");
        assert_eq!((adopted.seated, adopted.waiting), (0, 2));
        placeholders(&y, "b");
    }
    assert_eq!(y.effects(), []);
    // Each member resumes into its own place.
    y.open(9, "carol");
    let e = y.frame(
        9,
        "carol",
        &join_with_key("b", "carol", &b_keys["carol"]),
        TOKEN,
    );
    assert!(y.seen(&e)[0].contains(r#""resumed":true"#), "{e:?}");
    assert_eq!(y.engine.room_of(y.conns["carol"]), Some(room("b")));
    // A room whose members all wait is ended without a connection to close.
    let ended = y.engine.end_rooms(y.at(10), &[room("a")]);
    assert_eq!(ended, []);
    let effects = y.effects();
    assert_eq!(
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Record(Record::SessionClose(_))))
            .count(),
        2
    );
    assert!(
        effects
            .iter()
            .all(|e| !matches!(e, Effect::Send { .. } | Effect::Close { .. }))
    );
}

#[test]
fn ending_rooms_closes_every_record_once_with_1012_and_tells_nobody() {
    let mut y = Node::new(Mode::Open, 7, 0, 0);
    let mut before = pair(&mut y);
    before.extend(y.open(3, "carol"));
    before.extend(y.frame(3, "carol", &join("r", "carol"), TOKEN));
    before.extend(y.close(4, "carol", false));
    before.extend(y.open(4, "dave"));
    before.extend(y.frame(4, "dave", &join("s", "dave"), TOKEN));
    let mut ledger = Ledger::default();
    ledger.apply(&before);
    y.engine.take_changed_rooms();
    let closed = y.engine.end_rooms(y.at(30), &[room("r"), room("nowhere")]);
    let (alice, bob) = (y.conns["alice"], y.conns["bob"]);
    assert_eq!(closed, [alice, bob], "carol's connection had dropped");
    let ended = y.effects();
    ledger.apply(&ended);
    let mut closes = Vec::new();
    let mut left = 0;
    for e in &ended {
        match e {
            Effect::Send { .. } => panic!("nobody is told: {e:?}"),
            Effect::Close { conn, reason } => closes.push((*conn, reason.code())),
            Effect::Record(Record::SessionClose(c)) => {
                assert_eq!(c.leave_time, START.plus_secs(30));
                assert!(!c.timed_out);
            }
            Effect::Record(Record::SubSessionFinish(f)) => {
                assert_eq!(f.finish_time, START.plus_secs(30));
                if f.status == SubStatus::ConnectedLeft {
                    // Connected over TURN at 2 s: 28 s, one started minute at 1 cent.
                    assert_eq!((f.duration_secs, f.cost_cents), (28, 1));
                } else {
                    assert_eq!(f.status, SubStatus::NeverConnectedLeft);
                }
            }
            Effect::Record(r) => panic!("{r:?}"),
            Effect::Event(Event::Left { cause, .. }) => {
                assert_eq!(*cause, LeaveCause::Kicked);
                left += 1;
            }
            Effect::Event(_) => {}
        }
    }
    assert_eq!(closes, [(alice, 1012), (bob, 1012)]);
    assert_eq!(left, 3);
    assert_eq!(y.engine.take_changed_rooms(), [room("r")], "removed");
    assert_eq!(y.engine.stats().rooms, 1);
    // The sockets then close; nothing more happens.
    assert_eq!(y.close(31, "alice", true), []);
    assert_eq!(y.close(31, "bob", false), []);
    ledger.apply(&y.frame(32, "dave", r#"{"cmd":"leave"}"#, TOKEN));
    ledger.all_closed();
}

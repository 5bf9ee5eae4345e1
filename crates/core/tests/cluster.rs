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
    /// Tokens required, a static `rtcConfig`.
    Tokens,
    /// ICE servers from a registry, tokens not checked.
    Registry,
}

const ICE_IP: &str = "198.51.100.7";

fn config(mode: Mode) -> EngineConfig {
    match mode {
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

//! Properties of the engine under arbitrary sequences of inputs: it never panics, it answers
//! every bad frame with a non-zero result, rooms never exceed their capacity, a uid is in a
//! room at most once, nothing is sent to a closed connection, and after a shutdown every
//! session and sub-session record that was opened has been closed exactly once.

use proptest::prelude::*;
use rtcroom_core::*;
use rtcroom_protocol::{ServerMsg, decode};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone)]
enum Op {
    Open(u8),
    Close(u8, bool),
    Frame(u8, Frame),
    Advance(u16),
    Kick(u8, u8),
}

#[derive(Debug, Clone)]
enum Frame {
    Join(u8, u8),
    Leave,
    Offer(u8, bool),
    Answer(u8),
    Candidate(u8),
    KeepLive,
    TurnTalkType(u8, bool),
    PeerConnected(u8, u8),
    ReportStats(u8),
    ReportInfo,
    UpdateToken,
    Spoof(u8),
    Garbage(String),
}

const CONNS: u8 = 5;
const ROOMS: [&str; 2] = ["r1", "r2"];
const UIDS: [&str; 4] = ["u0", "u1", "u2", "u3"];

fn uid(i: u8) -> &'static str {
    UIDS[usize::from(i) % UIDS.len()]
}

fn frame_strategy() -> impl Strategy<Value = Frame> {
    prop_oneof![
        3 => (any::<u8>(), any::<u8>()).prop_map(|(r, u)| Frame::Join(r, u)),
        1 => Just(Frame::Leave),
        3 => (any::<u8>(), any::<bool>()).prop_map(|(u, reset)| Frame::Offer(u, reset)),
        2 => any::<u8>().prop_map(Frame::Answer),
        2 => any::<u8>().prop_map(Frame::Candidate),
        2 => Just(Frame::KeepLive),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(i, e)| Frame::TurnTalkType(i, e)),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(u, t)| Frame::PeerConnected(u, t)),
        1 => any::<u8>().prop_map(Frame::ReportStats),
        1 => Just(Frame::ReportInfo),
        1 => Just(Frame::UpdateToken),
        1 => any::<u8>().prop_map(Frame::Spoof),
        1 => "[ -~]{0,40}".prop_map(Frame::Garbage),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..CONNS).prop_map(Op::Open),
        1 => (0..CONNS, any::<bool>()).prop_map(|(c, clean)| Op::Close(c, clean)),
        12 => (0..CONNS, frame_strategy()).prop_map(|(c, f)| Op::Frame(c, f)),
        2 => (0u16..50_000).prop_map(Op::Advance),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(r, u)| Op::Kick(r, u)),
    ]
}

fn text(f: &Frame) -> String {
    match f {
        Frame::Join(r, u) => format!(
            r#"{{"cmd":"join","appId":"10000","roomId":"{}","uid":"{}","talkType":1}}"#,
            ROOMS[usize::from(*r) % 2],
            uid(*u)
        ),
        Frame::Leave => r#"{"cmd":"leave"}"#.into(),
        Frame::Offer(u, reset) => format!(
            r#"{{"cmd":"offer","remoteUid":"{}","msg":"{{\"sdp\":1}}","isIceReset":{reset}}}"#,
            uid(*u)
        ),
        Frame::Answer(u) => format!(
            r#"{{"cmd":"answer","remoteUid":"{}","msg":{{"sdp":2}}}}"#,
            uid(*u)
        ),
        Frame::Candidate(u) => format!(
            r#"{{"cmd":"candidate","remoteUid":"{}","msg":"c"}}"#,
            uid(*u)
        ),
        Frame::KeepLive => r#"{"cmd":"keepLive"}"#.into(),
        Frame::TurnTalkType(i, e) => {
            format!(r#"{{"cmd":"turnTalkType","index":{},"enable":{e}}}"#, i % 5)
        }
        Frame::PeerConnected(u, t) => format!(
            r#"{{"cmd":"peerConnected","remoteUid":"{}","connectType":"{}"}}"#,
            uid(*u),
            ["TURN", "STUN", "x"][usize::from(*t) % 3]
        ),
        Frame::ReportStats(u) => format!(
            r#"{{"cmd":"reportStats","remoteId":"{}","audio":{{"recv":{{"bitRate":"40","packetsLostRate":"0.5"}}}}}}"#,
            uid(*u)
        ),
        Frame::ReportInfo => r#"{"cmd":"reportInfo","result":9,"desc":"x","data1":{"a":1}}"#.into(),
        Frame::UpdateToken => r#"{"cmd":"updateToken","token":"t"}"#.into(),
        Frame::Spoof(u) => format!(r#"{{"cmd":"keepLive","uid":"{}","roomId":"r9"}}"#, uid(*u)),
        Frame::Garbage(s) => s.clone(),
    }
}

#[derive(Default)]
struct Ledger {
    sessions_open: HashSet<String>,
    sessions_closed: HashSet<String>,
    subs_open: HashSet<String>,
    subs_closed: HashSet<String>,
    /// session id → (room, uid) of the session's member.
    members: HashMap<String, (String, String)>,
    /// sub-session id → (owner session, remote session).
    pairs: HashMap<String, (String, String)>,
}

impl Ledger {
    fn apply(&mut self, r: &Record) {
        match r {
            Record::SessionOpen(s) => {
                let id = s.session_id.to_string();
                self.members
                    .insert(id.clone(), (s.room_id.clone(), s.user_id.clone()));
                assert!(self.sessions_open.insert(id), "session opened twice");
            }
            Record::SessionClose(s) => {
                let id = s.session_id.to_string();
                assert!(
                    self.sessions_open.contains(&id),
                    "closing an unknown session"
                );
                // A member's departure finishes every pair it was part of, at once.
                for (sub, (owner, remote)) in &self.pairs {
                    if *owner == id || *remote == id {
                        assert!(
                            self.subs_closed.contains(sub),
                            "sub-session {sub} outlives its member"
                        );
                    }
                }
                assert!(self.sessions_closed.insert(id), "session closed twice");
            }
            Record::SubSessionOpen(s) => {
                let id = s.sub_session_id.to_string();
                let owner = s.session_id.to_string();
                assert!(self.sessions_open.contains(&owner));
                assert!(!self.sessions_closed.contains(&owner));
                let remote = self
                    .members
                    .iter()
                    .find(|(sid, (room, uid))| {
                        *room == s.room_id
                            && *uid == s.remote_user_id
                            && !self.sessions_closed.contains(*sid)
                    })
                    .map(|(sid, _)| sid.clone())
                    .expect("the remote member has an open session");
                self.pairs.insert(id.clone(), (owner, remote));
                assert!(self.subs_open.insert(id), "sub-session opened twice");
            }
            Record::SubSessionFinish(s) => {
                let id = s.sub_session_id.to_string();
                assert!(
                    self.subs_open.contains(&id),
                    "finishing an unknown sub-session"
                );
                assert!(self.subs_closed.insert(id), "sub-session finished twice");
            }
            Record::SubSessionBegin(s) => {
                assert!(self.subs_open.contains(&s.sub_session_id.to_string()));
            }
            Record::SubSessionConnect(s) => {
                let id = s.sub_session_id.to_string();
                assert!(self.subs_open.contains(&id) && !self.subs_closed.contains(&id));
            }
            Record::Quality(q) => assert!(self.subs_open.contains(&q.sub_session_id.to_string())),
            Record::ClientInfo(i) => {
                assert!(self.sessions_open.contains(&i.session_id.to_string()))
            }
        }
    }
}

fn run(ops: Vec<Op>, auth: bool) {
    let cfg = EngineConfig {
        auth: if auth {
            AuthMode::Required { prompt_secs: 5 }
        } else {
            AuthMode::Open
        },
        ..EngineConfig::default()
    };
    let cap = cfg.max_capacity;
    let mut engine = Engine::new(cfg, SplitMix64(1));
    let mut now = Millis(1_700_000_000_000);
    let mut ledger = Ledger::default();
    let mut live: HashSet<ConnId> = HashSet::new();
    let mut generation: HashMap<u8, u64> = HashMap::new();
    let mut next = 100u64;
    let conn_of = |gen_: &HashMap<u8, u64>, c: u8| ConnId(*gen_.get(&c).unwrap_or(&u64::from(c)));

    let mut step = |engine: &mut Engine<SplitMix64>,
                    live: &mut HashSet<ConnId>,
                    sender: Option<(ConnId, bool)>| {
        let mut answers = 0;
        while let Some(e) = engine.poll_effect() {
            match e {
                Effect::Send { conn, msg } => {
                    assert!(live.contains(&conn), "sent to a closed connection: {msg:?}");
                    if let Some((s, bad)) = sender
                        && s == conn
                        && bad
                    {
                        answers += 1;
                        let result = msg.result().expect("a bad frame gets a response");
                        assert_ne!(result.code(), 0, "a bad frame got result 0: {msg:?}");
                        assert!(
                            msg.name().starts_with("resp")
                                || matches!(msg, ServerMsg::GeneralMsgResp(_)),
                            "{msg:?}"
                        );
                    }
                }
                Effect::Close { conn, .. } => {
                    assert!(live.remove(&conn), "closing a connection twice");
                }
                Effect::Record(r) => ledger.apply(&r),
                Effect::Event(_) => {}
            }
        }
        if let Some((_, true)) = sender {
            assert_eq!(answers, 1, "a bad frame gets exactly one answer");
        }
        for room in engine.rooms() {
            assert!(room.members.len() <= cap, "room above capacity");
            let uids: HashSet<&str> = room.members.iter().map(|m| m.uid.as_str()).collect();
            assert_eq!(uids.len(), room.members.len(), "a uid twice in a room");
        }
    };

    for op in ops {
        match op {
            Op::Open(c) => {
                next += 1;
                generation.insert(c, next);
                let conn = ConnId(next);
                live.insert(conn);
                engine.handle(
                    now,
                    Input::Open {
                        conn,
                        ip: "192.0.2.9".into(),
                    },
                );
                step(&mut engine, &mut live, None);
            }
            Op::Close(c, clean) => {
                let conn = conn_of(&generation, c);
                live.remove(&conn);
                engine.handle(now, Input::Closed { conn, clean });
                step(&mut engine, &mut live, None);
            }
            Op::Frame(c, f) => {
                let conn = conn_of(&generation, c);
                let decoded = decode(&text(&f), rtcroom_protocol::DEFAULT_MAX_FRAME);
                let bad = decoded.is_err() && live.contains(&conn);
                let grant = match &f {
                    Frame::Join(..) | Frame::UpdateToken => Grant::Valid {
                        app_id: "10000".into(),
                        uid: None,
                        expires_at: now.plus_secs(30),
                    },
                    _ => Grant::Unchecked,
                };
                engine.handle(
                    now,
                    Input::Frame {
                        conn,
                        frame: decoded,
                        grant,
                    },
                );
                step(&mut engine, &mut live, Some((conn, bad)));
            }
            Op::Advance(ms) => {
                now = Millis(now.0 + u64::from(ms));
                engine.handle_timeout(now);
                step(&mut engine, &mut live, None);
            }
            Op::Kick(r, u) => {
                engine.kick(now, "10000", ROOMS[usize::from(r) % 2], uid(u), "test");
                step(&mut engine, &mut live, None);
            }
        }
    }
    // Sockets that were dropped wait for their timeout; a long silence then a shutdown
    // must close every record.
    now = now.plus_secs(100);
    engine.handle_timeout(now);
    step(&mut engine, &mut live, None);
    engine.shutdown(now);
    step(&mut engine, &mut live, None);
    assert_eq!(engine.stats().members, 0);
    assert_eq!(
        ledger.sessions_open, ledger.sessions_closed,
        "every session closed"
    );
    assert_eq!(
        ledger.subs_open, ledger.subs_closed,
        "every sub-session finished"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn no_sequence_breaks_the_engine(ops in proptest::collection::vec(op_strategy(), 0..120)) {
        run(ops, false);
    }

    #[test]
    fn no_sequence_breaks_the_engine_with_tokens(ops in proptest::collection::vec(op_strategy(), 0..120)) {
        run(ops, true);
    }
}

//! The model the engine is checked against under arbitrary sequences of inputs: the
//! operations a test or a fuzz target generates ([`Op`]), a [`World`] that feeds them to an
//! engine and checks every effect against what it knows (see the properties listed in
//! properties.rs), and [`effects_of`] for determinism.
//!
//! Shared by `tests/properties.rs` (operations from proptest strategies) and the `engine`
//! fuzz target (fuzz/, operations decoded from libFuzzer's bytes), which compiles this file as
//! it is: it depends on nothing but the engine's crates, serde_json and ulid.

use rtcroom_core::*;
use rtcroom_ice::{IceCommand, Register, RegistryConfig};
use rtcroom_protocol::{Command, Request, ResultCode, RtcConfig, ServerMsg, SharedJson, decode};
use std::collections::{HashMap, HashSet};
use ulid::Ulid;

#[derive(Debug, Clone)]
pub enum Op {
    Open(u8),
    Close(u8, bool),
    /// A frame from a connection, with the `uid` it claims to speak as, if any.
    Frame(u8, Frame, Option<u8>),
    Advance(u16),
    Kick(u8, u8),
    /// The server restarts: `restart`, then a new engine restored from the snapshot.
    Restart,
    /// The node hands every room to another node: `release_rooms`, the snapshot through
    /// serde, `adopt` into a new engine with each member on its connection if that is open
    /// (else on a placeholder); the connections in no room are opened there anew.
    Move,
}

#[derive(Debug, Clone)]
pub enum Frame {
    Join(u8, u8),
    /// A join with one of the resume keys handed out so far, as its own member (`true`) or
    /// with a wrong key.
    Resume(u8, bool),
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

pub const CONNS: u8 = 5;
pub const ROOMS: [&str; 2] = ["r1", "r2"];
pub const UIDS: [&str; 4] = ["u0", "u1", "u2", "u3"];
/// The ICE servers registered in [`Mode::Registry`].
const ICE_IPS: [&str; 2] = ["198.51.100.1", "198.51.100.2"];

pub fn uid(i: u8) -> &'static str {
    UIDS[usize::from(i) % UIDS.len()]
}

/// The resume keys handed out, by room and uid.
type Keys = HashMap<(String, String), String>;

/// The frame's text; `claim` adds a `uid` to frames that do not name one already.
fn text(f: &Frame, claim: Option<u8>, keys: &Keys) -> String {
    let body = match f {
        Frame::Resume(pick, right) => {
            // One of the keys handed out so far (its member may have left since).
            let mut known: Vec<_> = keys.iter().collect();
            known.sort();
            let ((room, uid), key) = match known.get(usize::from(*pick) % known.len().max(1)) {
                Some(((room, uid), key)) => ((room.as_str(), uid.as_str()), key.as_str()),
                None => (("r1", "u0"), ""),
            };
            let key = if *right {
                key
            } else {
                "0123456789abcdef0123456789abcdef"
            };
            return format!(
                r#"{{"cmd":"join","appId":"10000","roomId":"{room}","uid":"{uid}","talkType":1,"resumeKey":"{key}"}}"#
            );
        }
        Frame::Join(r, u) => {
            return format!(
                r#"{{"cmd":"join","appId":"10000","roomId":"{}","uid":"{}","talkType":1}}"#,
                ROOMS[usize::from(*r) % 2],
                uid(*u)
            );
        }
        Frame::Spoof(u) => {
            return format!(r#"{{"cmd":"keepLive","uid":"{}","roomId":"r9"}}"#, uid(*u));
        }
        Frame::Garbage(s) => return s.clone(),
        Frame::Leave => r#""cmd":"leave""#.into(),
        Frame::Offer(u, reset) => format!(
            r#""cmd":"offer","remoteUid":"{}","msg":"{{\"sdp\":1}}","isIceReset":{reset}"#,
            uid(*u)
        ),
        Frame::Answer(u) => format!(
            r#""cmd":"answer","remoteUid":"{}","msg":{{"sdp":2}}"#,
            uid(*u)
        ),
        Frame::Candidate(u) => format!(r#""cmd":"candidate","remoteUid":"{}","msg":"c""#, uid(*u)),
        Frame::KeepLive => r#""cmd":"keepLive""#.into(),
        Frame::TurnTalkType(i, e) => {
            format!(r#""cmd":"turnTalkType","index":{},"enable":{e}"#, i % 5)
        }
        Frame::PeerConnected(u, t) => format!(
            r#""cmd":"peerConnected","remoteUid":"{}","connectType":"{}""#,
            uid(*u),
            ["TURN", "STUN", "x"][usize::from(*t) % 3]
        ),
        Frame::ReportStats(u) => format!(
            r#""cmd":"reportStats","remoteId":"{}","audio":{{"recv":{{"bitRate":"40","packetsLostRate":"0.5"}}}}"#,
            uid(*u)
        ),
        Frame::ReportInfo => r#""cmd":"reportInfo","result":9,"desc":"x","data1":{"a":1}"#.into(),
        Frame::UpdateToken => r#""cmd":"updateToken","token":"t""#.into(),
    };
    match claim {
        Some(u) => format!(r#"{{{body},"uid":"{}"}}"#, uid(u)),
        None => format!("{{{body}}}"),
    }
}

/// The uid a request claims to speak as.
fn claimed_uid(req: &Request) -> Option<String> {
    let uid = match req {
        Request::Join(j) => &j.uid,
        Request::Leave(r) => &r.id.uid,
        Request::Offer(r) => &r.id.uid,
        Request::Answer(r) => &r.id.uid,
        Request::Candidate(r) => &r.id.uid,
        Request::KeepLive(r) => &r.id.uid,
        Request::TurnTalkType(r) => &r.id.uid,
        Request::PeerConnected(r) => &r.id.uid,
        Request::ReportInfo(r) => &r.id.uid,
        Request::ReportStats(r) => &r.id.uid,
        Request::UpdateToken(r) => &r.id.uid,
    };
    uid.as_ref().map(|u| u.key().to_owned())
}

/// The response that answers each command (protocol.md), written out independently of the
/// protocol crate so that a change there is caught here.
fn response_name(cmd: Command) -> &'static str {
    match cmd {
        Command::Join => "respJoin",
        Command::Leave => "respLeave",
        Command::Offer => "respOffer",
        Command::Answer => "respAnswer",
        Command::Candidate => "respCandidate",
        Command::KeepLive => "respKeepLive",
        Command::TurnTalkType => "respTurnTalkType",
        Command::PeerConnected => "respPeerConnected",
        Command::ReportInfo | Command::ReportStats => "generalMsgResp",
        Command::UpdateToken => "respUpdateToken",
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
    /// The `ice_ip` recorded for each pair of sessions (the lower id first).
    pair_ice: HashMap<(String, String), String>,
}

fn pair_key(a: &str, b: &str) -> (String, String) {
    if a < b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

impl Ledger {
    fn apply(&mut self, r: &Record) {
        match r {
            Record::SessionOpen(s) => {
                let id = s.session_id.to_string();
                self.members.insert(
                    id.clone(),
                    (s.room_id.as_str().to_owned(), s.user_id.as_str().to_owned()),
                );
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
                // Both legs of a pair are on the same ICE server.
                let ice = self
                    .pair_ice
                    .entry(pair_key(&owner, &remote))
                    .or_insert_with(|| s.ice_ip.as_str().to_owned());
                assert_eq!(
                    *ice, s.ice_ip,
                    "the two legs of a pair on different servers"
                );
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Tokens unchecked, one static `rtcConfig`.
    Open,
    /// Tokens required (valid grants, prompts and expiries).
    Tokens,
    /// ICE servers from the registry, two of them registered.
    Registry,
}

fn config(mode: Mode) -> EngineConfig {
    let static_rtc = RtcConfig::with_servers(vec![rtcroom_protocol::IceServer {
        credential: String::new(),
        urls: vec!["stun:192.0.2.200:3478".into()],
        username: String::new(),
    }]);
    EngineConfig {
        auth: match mode {
            Mode::Tokens => AuthMode::Required { prompt_secs: 5 },
            Mode::Open | Mode::Registry => AuthMode::Open,
        },
        ice: match mode {
            Mode::Registry => IceMode::Registry(RegistryConfig {
                shared_secret: Some("secret".into()),
                // The servers never report in these runs; they stay in rotation.
                report_timeout_ms: u64::MAX / 4,
                ..RegistryConfig::default()
            }),
            Mode::Open | Mode::Tokens => IceMode::Static,
        },
        rtc_config: SharedJson::rtc_config(&static_rtc),
        ..EngineConfig::default()
    }
}

const START: Millis = Millis(1_700_000_000_000);

/// An engine, configured for `mode`, with its ICE servers registered.
fn engine(mode: Mode) -> Engine<SplitMix64> {
    engine_at(mode, START, 1)
}

/// An engine started at `now` with entropy `seed` (a restarted server draws new randomness).
fn engine_at(mode: Mode, now: Millis, seed: u64) -> Engine<SplitMix64> {
    let mut engine = Engine::new(config(mode), SplitMix64(seed));
    if mode == Mode::Registry {
        for ip in ICE_IPS {
            // Room for a few pairs each, so that some joins are refused with result 8.
            engine.ice_command(now, IceCommand::Register(Register::new(ip, 3_000)));
        }
    }
    engine
}

/// A server restart: every client told to reconnect, the state kept in a snapshot that
/// goes through its serialized form, and a new engine restored from it.
fn restart(engine: &mut Engine<SplitMix64>, mode: Mode, now: Millis, seed: u64) -> Vec<Effect> {
    engine.restart(now);
    let effects: Vec<Effect> = std::iter::from_fn(|| engine.poll_effect()).collect();
    let json = serde_json::to_string(&engine.snapshot(now)).expect("a snapshot serializes");
    let snapshot: Snapshot = serde_json::from_str(&json).expect("a snapshot reads back");
    *engine = engine_at(mode, now, seed);
    engine
        .restore(now, snapshot)
        .expect("a new engine takes a snapshot");
    effects
}

/// A node hands every room of `engine` to a new node's engine (which then takes its place):
/// each member seated on its connection if that is open, through the snapshot's serialized
/// form. Neither engine says anything. Returns the connections seated.
fn move_rooms(engine: &mut Engine<SplitMix64>, mode: Mode, now: Millis, seed: u64) -> Vec<ConnId> {
    let rooms: Vec<RoomRef> = engine
        .rooms()
        .into_iter()
        .map(|r| RoomRef {
            app_id: r.app_id,
            room_id: r.room_id,
        })
        .collect();
    let mut sitting: HashMap<(RoomRef, String), ConnId> = HashMap::new();
    for r in &rooms {
        for (uid, conn) in engine.room_conns(r) {
            sitting.insert((r.clone(), uid), conn);
        }
    }
    let (snapshot, handed) = engine.release_rooms(now, &rooms);
    assert!(engine.poll_effect().is_none(), "a release says nothing");
    let left = engine.stats();
    assert_eq!(
        (left.rooms, left.members),
        (0, 0),
        "every room was released"
    );
    let json = serde_json::to_string(&snapshot).expect("a snapshot serializes");
    let snapshot: Snapshot = serde_json::from_str(&json).expect("a snapshot reads back");
    assert_eq!(snapshot.room_refs(), rooms);
    let mut next = engine_at(mode, now, seed);
    let seat = |r: &RoomRef, uid: &str| {
        let conn = sitting.get(&(r.clone(), uid.to_owned())).copied()?;
        handed.contains(&conn).then_some(conn)
    };
    let adopted = next
        .adopt(now, snapshot, seat)
        .expect("a new engine adopts every room");
    assert!(adopted.skipped.is_empty());
    assert_eq!(
        adopted.seated,
        handed.len(),
        "every open connection is seated"
    );
    assert!(next.poll_effect().is_none(), "an adoption says nothing");
    *engine = next;
    handed
}

/// Keep the resume keys handed out in `msg`.
fn keep_key(keys: &mut Keys, msg: &ServerMsg) {
    if let ServerMsg::RespJoin(r) = msg
        && r.result == ResultCode::Ok
    {
        let at = (r.room_id.key().to_owned(), r.uid.key().to_owned());
        keys.insert(at, r.resume_key.expose().to_owned());
    }
}

/// The connection a test slot names: its latest `Open`, else a connection never opened.
fn conn_of(generation: &HashMap<u8, u64>, c: u8) -> ConnId {
    ConnId(*generation.get(&c).unwrap_or(&u64::from(c)))
}

/// The input an operation is, with the grant the shell would attach.
fn frame_input(now: Millis, conn: ConnId, f: &Frame, claim: Option<u8>, keys: &Keys) -> Input {
    let frame = decode(&text(f, claim, keys), rtcroom_protocol::DEFAULT_MAX_FRAME);
    let grant = match f {
        Frame::Join(..) | Frame::Resume(..) | Frame::UpdateToken => Grant::Valid {
            app_id: "10000".into(),
            uid: None,
            expires_at: now.plus_secs(30),
        },
        _ => Grant::Unchecked,
    };
    Input::Frame { conn, frame, grant }
}

/// What the test knows about a frame it handed to the engine.
struct Sent {
    conn: ConnId,
    /// The request, or why it did not decode.
    command: Result<Command, Option<Command>>,
    claimed: Option<String>,
    /// The member the connection spoke as before the frame.
    before: Option<Member>,
}

/// A member as the test tracks it, from the `respJoin` its connection got.
#[derive(Debug, Clone, PartialEq)]
struct Member {
    uid: String,
    session: Ulid,
}

/// An engine and the test's model of it, checked after every input.
pub struct World {
    mode: Mode,
    engine: Engine<SplitMix64>,
    static_rtc: SharedJson,
    cap: usize,
    now: Millis,
    ledger: Ledger,
    live: HashSet<ConnId>,
    /// The member each live connection speaks as.
    members: HashMap<ConnId, Member>,
    keys: Keys,
}

impl World {
    pub fn new(mode: Mode) -> Self {
        let cfg = config(mode);
        Self {
            mode,
            engine: engine(mode),
            static_rtc: cfg.rtc_config.clone(),
            cap: cfg.max_capacity,
            now: START,
            ledger: Ledger::default(),
            live: HashSet::new(),
            members: HashMap::new(),
            keys: Keys::new(),
        }
    }

    pub fn run(&mut self, ops: Vec<Op>) {
        let mut generation: HashMap<u8, u64> = HashMap::new();
        let mut next = 100u64;
        for op in ops {
            match op {
                Op::Open(c) => {
                    next += 1;
                    generation.insert(c, next);
                    let conn = ConnId(next);
                    self.live.insert(conn);
                    let ip = "192.0.2.9".into();
                    self.engine
                        .handle(self.now, Input::Open { conn, ip, at: None });
                    self.drain(None);
                }
                Op::Close(c, clean) => {
                    let conn = conn_of(&generation, c);
                    self.live.remove(&conn);
                    self.members.remove(&conn);
                    self.engine.handle(self.now, Input::Closed { conn, clean });
                    self.drain(None);
                }
                Op::Frame(c, f, claim) => {
                    let conn = conn_of(&generation, c);
                    let input = frame_input(self.now, conn, &f, claim, &self.keys);
                    let Input::Frame { frame, .. } = &input else {
                        unreachable!("frame_input makes frames")
                    };
                    let sent = Sent {
                        conn,
                        command: match frame {
                            Ok(req) => Ok(req.command()),
                            Err(e) => Err(e.command()),
                        },
                        claimed: frame.as_ref().ok().and_then(claimed_uid),
                        before: self.members.get(&conn).cloned(),
                    };
                    let answered = self.live.contains(&conn);
                    self.engine.handle(self.now, input);
                    self.drain(answered.then_some(sent));
                }
                Op::Advance(ms) => {
                    self.now = Millis(self.now.0 + u64::from(ms));
                    self.engine.handle_timeout(self.now);
                    self.drain(None);
                }
                Op::Kick(r, u) => {
                    let room = ROOMS[usize::from(r) % 2];
                    self.engine.kick(self.now, "10000", room, uid(u), "test");
                    self.drain(None);
                }
                Op::Restart => {
                    next += 1;
                    for e in restart(&mut self.engine, self.mode, self.now, next) {
                        let Effect::Close { conn, reason } = e else {
                            continue;
                        };
                        assert_eq!(reason, CloseReason::ServiceRestart);
                        assert!(self.live.remove(&conn), "closing a connection twice");
                        self.members.remove(&conn);
                    }
                    assert_eq!(self.engine.stats().connections, 0);
                }
                Op::Move => {
                    next += 1;
                    let seated = move_rooms(&mut self.engine, self.mode, self.now, next);
                    let mut roomless: Vec<ConnId> = self
                        .live
                        .iter()
                        .filter(|c| !seated.contains(c))
                        .copied()
                        .collect();
                    roomless.sort_unstable();
                    for conn in roomless {
                        let ip = "192.0.2.9".into();
                        self.engine
                            .handle(self.now, Input::Open { conn, ip, at: None });
                    }
                    self.drain(None);
                }
            }
        }
        // Sockets that were dropped wait for their timeout; a long silence then a shutdown
        // must close every record.
        self.now = self.now.plus_secs(100);
        self.engine.handle_timeout(self.now);
        self.drain(None);
        self.engine.shutdown(self.now);
        self.drain(None);
        assert_eq!(self.engine.stats().members, 0);
        let l = &self.ledger;
        assert_eq!(l.sessions_open, l.sessions_closed, "every session closed");
        assert_eq!(l.subs_open, l.subs_closed, "every sub-session finished");
    }

    /// Carry out every queued effect, checking each, then the answer to `sent` (a frame
    /// from a live connection) as a whole.
    fn drain(&mut self, sent: Option<Sent>) {
        let sender = sent.as_ref().map(|s| s.conn);
        let mut answers: Vec<ServerMsg> = Vec::new();
        let mut to_others: Vec<(ConnId, ServerMsg)> = Vec::new();
        let mut records: Vec<Record> = Vec::new();
        let mut refused = 0;
        while let Some(e) = self.engine.poll_effect() {
            match e {
                Effect::Send { conn, msg } => {
                    assert!(
                        self.live.contains(&conn),
                        "sent to a closed connection: {msg:?}"
                    );
                    self.follow(conn, &msg);
                    if let Some(sender) = sender {
                        self.check_rtc_config(sender, conn, &msg);
                    }
                    if Some(conn) == sender && msg.result().is_some() {
                        answers.push(msg);
                    } else if sender.is_some_and(|s| s != conn) {
                        to_others.push((conn, msg));
                    }
                }
                Effect::Close { conn, .. } => {
                    assert!(self.live.remove(&conn), "closing a connection twice");
                    self.members.remove(&conn);
                }
                Effect::Record(r) => {
                    self.ledger.apply(&r);
                    records.push(r);
                }
                Effect::Event(Event::Refused { .. }) => refused += 1,
                Effect::Event(_) => {}
            }
        }
        if let Some(sent) = sent {
            self.check_answers(&sent, &answers, &to_others, &records, refused);
            self.check_speaker(&sent, &answers, &to_others);
        }
        for room in self.engine.rooms() {
            assert!(room.members.len() <= self.cap, "room above capacity");
            let uids: HashSet<&str> = room.members.iter().map(|m| m.uid.as_str()).collect();
            assert_eq!(uids.len(), room.members.len(), "a uid twice in a room");
        }
    }

    /// Keep the model of who each connection speaks as.
    fn follow(&mut self, conn: ConnId, msg: &ServerMsg) {
        keep_key(&mut self.keys, msg);
        match msg {
            ServerMsg::RespJoin(r) if r.result == ResultCode::Ok => {
                let session = r.session_id.expect("a successful join has a session");
                let uid = r.uid.key().to_owned();
                self.members.insert(conn, Member { uid, session });
            }
            ServerMsg::RespLeave(r) if r.result == ResultCode::Ok => {
                self.members.remove(&conn);
            }
            ServerMsg::SystemKickUser(_) => {
                self.members.remove(&conn);
            }
            _ => {}
        }
    }

    /// Every request gets its command's response or its relay (or, for reports, its
    /// record); a refused one gets exactly one answer with a non-zero result and nothing else.
    fn check_answers(
        &self,
        sent: &Sent,
        answers: &[ServerMsg],
        to_others: &[(ConnId, ServerMsg)],
        records: &[Record],
        refused: usize,
    ) {
        let expected = match sent.command {
            Ok(cmd) | Err(Some(cmd)) => response_name(cmd),
            Err(None) => "generalMsgResp",
        };
        for a in answers {
            assert_eq!(a.name(), expected, "{:?} answered by {a:?}", sent.command);
        }
        let refusals = answers
            .iter()
            .filter(|a| a.result() != Some(ResultCode::Ok))
            .count();
        assert_eq!(refused, refusals, "one Refused event per refusal");
        if refusals > 0 {
            assert_eq!(answers.len(), 1, "a refused frame gets exactly one answer");
            assert!(to_others.is_empty(), "a refused frame is not relayed");
        }
        let cmd = match sent.command {
            Ok(cmd) => cmd,
            Err(_) => {
                assert_eq!(refusals, 1, "a bad frame gets exactly one non-zero answer");
                return;
            }
        };
        let relayed = |name: &str| to_others.iter().filter(|(_, m)| m.name() == name).count();
        let recorded = |f: fn(&Record) -> bool| records.iter().filter(|r| f(r)).count();
        let done_without_answer = match cmd {
            Command::Answer => relayed("relayAnswer") == 1,
            Command::Candidate => relayed("relayCandidate") == 1,
            Command::ReportInfo => recorded(|r| matches!(r, Record::ClientInfo(_))) == 1,
            Command::ReportStats => recorded(|r| matches!(r, Record::Quality(_))) == 1,
            _ => false,
        };
        if done_without_answer {
            assert!(
                answers.is_empty(),
                "{cmd:?} relayed and answered: {answers:?}"
            );
        } else {
            assert_eq!(
                answers.len(),
                1,
                "{cmd:?} got {answers:?}, relays {to_others:?}"
            );
        }
    }

    /// A connection speaks only as the member it joined as: a frame claiming another uid is
    /// refused with result 13, and everything a frame makes the engine send to others
    /// carries the sender's member uid, to the member it names as remote.
    fn check_speaker(&self, sent: &Sent, answers: &[ServerMsg], to_others: &[(ConnId, ServerMsg)]) {
        if let (Some(before), Some(claimed)) = (&sent.before, &sent.claimed)
            && before.uid != *claimed
        {
            let results: Vec<_> = answers.iter().map(ServerMsg::result).collect();
            assert_eq!(
                results,
                [Some(ResultCode::NotAllowed)],
                "{claimed} spoke as"
            );
            assert!(
                to_others.is_empty(),
                "a forged uid was relayed: {to_others:?}"
            );
        }
        let speaker = self.members.get(&sent.conn).or(sent.before.as_ref());
        for (to, msg) in to_others {
            let (uid, remote) = match msg {
                ServerMsg::RelayOffer(m) => (&m.uid, Some(&m.remote_uid)),
                ServerMsg::RelayAnswer(m) => (&m.uid, Some(&m.remote_uid)),
                ServerMsg::RelayCandidate(m) => (&m.uid, Some(&m.remote_uid)),
                ServerMsg::RelayTurnTalkType(m) => (&m.uid, None),
                ServerMsg::NotifyNewPeer(m) => (&m.uid, None),
                ServerMsg::RelayLeave(m) => (&m.uid, None),
                other => panic!("a frame sent {other:?} to another connection"),
            };
            let speaker = speaker.expect("only members relay");
            assert_eq!(uid.key(), speaker.uid, "a relay carries the sender's uid");
            if let Some(remote) = remote {
                let to = self.members.get(to).expect("relays go to members");
                assert_eq!(remote.key(), to.uid, "a relay goes to the remote it names");
            }
        }
    }

    /// Each pair's `rtcConfig` (in `notifyNewPeer` and `relayOffer`) names the ICE server
    /// recorded for the pair, with credentials for the member that receives it; without a
    /// registry it is the configured one.
    fn check_rtc_config(&self, sender: ConnId, to: ConnId, msg: &ServerMsg) {
        let rtc = match msg {
            ServerMsg::NotifyNewPeer(m) => &m.rtc_config,
            ServerMsg::RelayOffer(m) => &m.rtc_config,
            _ => return,
        };
        if self.mode != Mode::Registry {
            assert_eq!(
                rtc, &self.static_rtc,
                "a static rtcConfig handed out changed"
            );
            return;
        }
        let (Some(from), Some(to)) = (self.members.get(&sender), self.members.get(&to)) else {
            panic!("an rtcConfig between non-members: {msg:?}");
        };
        let key = pair_key(&from.session.to_string(), &to.session.to_string());
        let ice_ip = &self.ledger.pair_ice[&key];
        assert!(ICE_IPS.contains(&ice_ip.as_str()), "pair on {ice_ip:?}");
        let cfg: RtcConfig = serde_json::from_str(rtc.get()).expect("rtcConfig is JSON");
        for server in &cfg.ice_servers {
            for url in &server.urls {
                assert!(
                    url.contains(ice_ip.as_str()),
                    "{url} is not the pair's {ice_ip}"
                );
            }
            if url_is_turn(&server.urls) {
                let suffix = format!(":{}", to.uid);
                assert!(
                    server.username.ends_with(&suffix),
                    "{} for {}",
                    server.username,
                    to.uid
                );
            }
        }
    }
}

fn url_is_turn(urls: &[String]) -> bool {
    urls.iter().any(|u| u.starts_with("turn:"))
}

/// Every effect of `ops`, in order, ending with a shutdown while members are still in
/// their rooms (so that the order in which rooms are emptied shows).
pub fn effects_of(ops: &[Op], mode: Mode) -> Vec<Effect> {
    let mut engine = engine(mode);
    let mut now = START;
    let mut generation: HashMap<u8, u64> = HashMap::new();
    let mut effects: Vec<Effect> = Vec::new();
    let mut keys = Keys::new();
    for (n, op) in ops.iter().enumerate() {
        match op {
            Op::Open(c) => {
                let conn = ConnId(200 + n as u64);
                generation.insert(*c, conn.0);
                let ip = "192.0.2.9".into();
                engine.handle(now, Input::Open { conn, ip, at: None });
            }
            Op::Close(c, clean) => {
                let conn = conn_of(&generation, *c);
                engine.handle(
                    now,
                    Input::Closed {
                        conn,
                        clean: *clean,
                    },
                );
            }
            Op::Frame(c, f, claim) => {
                let conn = conn_of(&generation, *c);
                engine.handle(now, frame_input(now, conn, f, *claim, &keys));
            }
            Op::Advance(ms) => {
                now = Millis(now.0 + u64::from(*ms));
                engine.handle_timeout(now);
            }
            Op::Kick(r, u) => {
                engine.kick(now, "10000", ROOMS[usize::from(*r) % 2], uid(*u), "test");
            }
            Op::Restart => effects.extend(restart(&mut engine, mode, now, 1000 + n as u64)),
            // Connections in no room are left behind: their frames are ignored alike in
            // every run.
            Op::Move => {
                move_rooms(&mut engine, mode, now, 1000 + n as u64);
            }
        }
        effects.extend(std::iter::from_fn(|| engine.poll_effect()));
        for e in &effects {
            if let Effect::Send { msg, .. } = e {
                keep_key(&mut keys, msg);
            }
        }
    }
    engine.shutdown(now);
    effects.extend(std::iter::from_fn(|| engine.poll_effect()));
    effects
}

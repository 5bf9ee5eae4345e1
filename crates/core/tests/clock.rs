//! Deadlines run on the monotonic clock, dates on the wall clock: a step of the wall clock,
//! forward or back, at any moment, times out nobody, moves no token prompt or expiry and
//! changes no duration or cost; only the dates of the records follow it.

use proptest::prelude::*;
use rtcroom_core::*;
use rtcroom_protocol::decode;

const START: u64 = 1_700_000_000_000;
const CONNS: u8 = 4;
const HOUR: i64 = 3_600_000;

#[derive(Debug, Clone)]
enum Op {
    Open(u8),
    Join(u8, u8),
    KeepLive(u8),
    Offer(u8, u8),
    Connected(u8, u8),
    Leave(u8),
    Drop(u8),
    /// Both clocks move on, this many milliseconds.
    Advance(u64),
    /// The wall clock alone steps, this many milliseconds (negative: back).
    Step(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..CONNS).prop_map(Op::Open),
        3 => (0..CONNS, 0..2u8).prop_map(|(c, r)| Op::Join(c, r)),
        3 => (0..CONNS).prop_map(Op::KeepLive),
        2 => (0..CONNS, 0..CONNS).prop_map(|(c, r)| Op::Offer(c, r)),
        2 => (0..CONNS, 0..CONNS).prop_map(|(c, r)| Op::Connected(c, r)),
        1 => (0..CONNS).prop_map(Op::Leave),
        1 => (0..CONNS).prop_map(Op::Drop),
        3 => (0..50_000u64).prop_map(Op::Advance),
        2 => prop_oneof![Just(HOUR), Just(-HOUR), Just(24 * HOUR), -600_000..600_000i64]
            .prop_map(Op::Step),
    ]
}

/// One engine and the clocks it is fed: the wall clock is `mono + offset`.
struct Run {
    engine: Engine<SplitMix64>,
    mono: u64,
    offset: i64,
    /// Effects, reduced to what must not depend on the wall clock.
    seen: Vec<String>,
    tokens: bool,
}

impl Run {
    fn new(tokens: bool) -> Self {
        let cfg = EngineConfig {
            join_timeout_secs: 20,
            auth: if tokens {
                AuthMode::Required { prompt_secs: 10 }
            } else {
                AuthMode::Open
            },
            ..EngineConfig::default()
        };
        Self {
            engine: Engine::new(cfg, SplitMix64(7)),
            mono: START,
            offset: 0,
            seen: Vec::new(),
            tokens,
        }
    }

    fn now(&self) -> Now {
        Now {
            wall: Millis(self.mono.saturating_add_signed(self.offset)),
            mono: Millis(self.mono),
        }
    }

    fn frame(&mut self, conn: u8, json: &str) {
        let frame = decode(json, 65_536);
        // A token valid for 60 s from now, as the shell reads the wall clock.
        let grant = if self.tokens && json.contains("\"join\"") {
            Grant::Valid {
                app_id: "10000".into(),
                uid: None,
                expires_at: Millis(self.now().wall.0 + 60_000),
            }
        } else {
            Grant::Unchecked
        };
        let input = Input::Frame {
            conn: ConnId(conn.into()),
            frame,
            grant,
        };
        self.engine.handle(self.now(), input);
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Open(c) => {
                let input = Input::Open {
                    conn: ConnId(c.into()),
                    ip: format!("192.0.2.{c}"),
                    at: None,
                };
                self.engine.handle(self.now(), input);
            }
            Op::Join(c, r) => self.frame(
                c,
                &format!(r#"{{"cmd":"join","appId":"10000","roomId":"r{r}","uid":"u{c}"}}"#),
            ),
            Op::KeepLive(c) => self.frame(c, r#"{"cmd":"keepLive"}"#),
            Op::Offer(c, r) => self.frame(
                c,
                &format!(r#"{{"cmd":"offer","remoteUid":"u{r}","msg":"{{}}"}}"#),
            ),
            Op::Connected(c, r) => self.frame(
                c,
                &format!(r#"{{"cmd":"peerConnected","remoteUid":"u{r}","connectType":"TURN"}}"#),
            ),
            Op::Leave(c) => self.frame(c, r#"{"cmd":"leave"}"#),
            Op::Drop(c) => {
                let input = Input::Closed {
                    conn: ConnId(c.into()),
                    clean: false,
                };
                self.engine.handle(self.now(), input);
            }
            Op::Advance(ms) => self.mono += ms,
            Op::Step(ms) => self.offset += ms,
        }
        self.engine.handle_timeout(self.now());
        self.drain();
    }

    /// Keep what each effect means, without its dates and ids; check that the records of
    /// this moment are dated by the wall clock.
    fn drain(&mut self) {
        let wall = self.now().wall;
        while let Some(effect) = self.engine.poll_effect() {
            let seen = match effect {
                Effect::Send { conn, msg } => {
                    let v: serde_json::Value = serde_json::from_str(&msg.to_json()).unwrap();
                    format!("send {} {} {}", conn.0, v["cmd"], v["result"])
                }
                Effect::Close { conn, reason } => format!("close {} {}", conn.0, reason.code()),
                Effect::Record(Record::SessionOpen(r)) => {
                    assert_eq!(r.join_time, wall, "a join is dated by the wall clock");
                    format!("session+ {}", r.user_id)
                }
                Effect::Record(Record::SessionClose(r)) => {
                    assert_eq!(r.leave_time, wall, "a leave is dated by the wall clock");
                    format!("session- {} {}", r.duration_secs, r.timed_out)
                }
                Effect::Record(Record::SubSessionFinish(r)) => {
                    assert_eq!(r.finish_time, wall);
                    format!("sub- {} {:?} {}", r.duration_secs, r.status, r.cost_cents)
                }
                Effect::Record(r) => format!("{r:?}")
                    .split([' ', '('])
                    .next()
                    .unwrap()
                    .to_owned(),
                Effect::Event(e) => format!("{e:?}")
                    .split([' ', '{', '('])
                    .next()
                    .unwrap()
                    .to_owned(),
            };
            self.seen.push(seen);
        }
    }
}

/// Two engines fed the same inputs at the same monotonic times, one with a wall clock that
/// steps and one without: the same messages, closes, durations and costs, in the same order.
fn same_with_and_without_steps(ops: &[Op], tokens: bool) {
    let mut steady = Run::new(tokens);
    let mut stepped = Run::new(tokens);
    for op in ops {
        steady.apply(&match op {
            Op::Step(_) => Op::Step(0),
            other => other.clone(),
        });
        stepped.apply(op);
        assert_eq!(steady.seen, stepped.seen, "after {op:?} in {ops:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_wall_clock_step_moves_no_deadline(ops in proptest::collection::vec(op(), 1..60)) {
        same_with_and_without_steps(&ops, false);
    }

    #[test]
    fn a_wall_clock_step_moves_no_token_deadline(ops in proptest::collection::vec(op(), 1..60)) {
        same_with_and_without_steps(&ops, true);
    }
}

/// The issue's case, spelled out: a member in a call, the wall clock jumps an hour ahead,
/// nobody times out and the call's duration is what the monotonic clock measured; silence
/// past the heartbeat timeout on the monotonic clock still times the member out.
#[test]
fn a_clock_step_forward_times_out_nobody() {
    let ops = [
        Op::Open(0),
        Op::Join(0, 0),
        Op::Open(1),
        Op::Join(1, 0),
        Op::Connected(0, 1),
        Op::Advance(30_000),
        Op::KeepLive(0),
        Op::KeepLive(1),
        Op::Step(HOUR),
        Op::KeepLive(0),
        Op::Leave(0),
    ];
    let mut run = Run::new(false);
    for op in &ops {
        run.apply(op);
    }
    assert!(
        !run.seen.iter().any(|s| s.starts_with("close")),
        "{:#?}",
        run.seen
    );
    assert!(
        run.seen.contains(&"sub- 30 ConnectedLeft 1".to_owned()),
        "billed for 30 s, not an hour: {:#?}",
        run.seen
    );
    run.apply(&Op::Advance(41_000));
    assert!(
        run.seen.contains(&"close 1 4002".to_owned()),
        "{:#?}",
        run.seen
    );
}

//! Properties of the engine under arbitrary sequences of inputs: it never panics; every
//! request is answered by its command's response or relayed, and every refused frame gets
//! exactly one answer with a non-zero result; a connection speaks only as the member it
//! joined as, and every relay carries that member's uid; rooms never exceed their capacity
//! and hold a uid at most once; nothing is sent to a closed connection; each pair's ICE
//! server is the one recorded for it; two engines fed the same inputs emit the same effects;
//! all of it across resumes (joins with a member's resume key, right or wrong) and server
//! restarts (restart, snapshot through serde, restore into a new engine) and moves to
//! another node (`release_rooms`, snapshot through serde, `adopt` into a new engine with
//! every open connection seated, nothing said on either side); and after a shutdown every
//! session and sub-session record that was opened has been closed exactly once.

mod model;

use model::*;
use proptest::prelude::*;

fn frame_strategy() -> impl Strategy<Value = Frame> {
    prop_oneof![
        3 => (any::<u8>(), any::<u8>()).prop_map(|(r, u)| Frame::Join(r, u)),
        3 => (any::<u8>(), proptest::bool::weighted(0.8)).prop_map(|(k, right)| Frame::Resume(k, right)),
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
        12 => (0..CONNS, frame_strategy(), proptest::option::weighted(0.3, any::<u8>()))
            .prop_map(|(c, f, claim)| Op::Frame(c, f, claim)),
        2 => (0u16..50_000).prop_map(Op::Advance),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(r, u)| Op::Kick(r, u)),
        1 => Just(Op::Restart),
        1 => Just(Op::Move),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op_strategy(), 0..120)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn no_sequence_breaks_the_engine(ops in ops()) {
        World::new(Mode::Open).run(ops);
    }

    #[test]
    fn no_sequence_breaks_the_engine_with_tokens(ops in ops()) {
        World::new(Mode::Tokens).run(ops);
    }

    #[test]
    fn ice_servers_are_chosen_per_pair(ops in ops()) {
        World::new(Mode::Registry).run(ops);
    }

    #[test]
    fn same_inputs_same_effects(ops in ops(), registry in any::<bool>()) {
        let mode = if registry { Mode::Registry } else { Mode::Open };
        let first = effects_of(&ops, mode);
        prop_assert_eq!(first, effects_of(&ops, mode));
    }
}

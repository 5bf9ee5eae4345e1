//! Sequences of engine inputs, decoded from libFuzzer's bytes into the property tests'
//! operations (`crates/core/tests/model`) and checked by the same model: every invariant that
//! `tests/properties.rs` lists, after every input, and that two engines fed the same inputs
//! emit the same effects. Frames here include any text at all (the property tests' garbage is
//! printable ASCII), and sequences are as long as libFuzzer makes them (up to [`MAX_OPS`]).

use crate::model::{CONNS, Frame, Mode, Op, World, effects_of};
use libfuzzer_sys::arbitrary::{Result, Unstructured};

/// Operations per run: enough for calls to form, rejoin and restart many times over.
const MAX_OPS: usize = 400;

fn frame(u: &mut Unstructured<'_>) -> Result<Frame> {
    Ok(match u.int_in_range(0..=13u8)? {
        0 => Frame::Join(u.arbitrary()?, u.arbitrary()?),
        1 => Frame::Resume(u.arbitrary()?, u.arbitrary()?),
        2 => Frame::Leave,
        3 => Frame::Offer(u.arbitrary()?, u.arbitrary()?),
        4 => Frame::Answer(u.arbitrary()?),
        5 => Frame::Candidate(u.arbitrary()?),
        6 => Frame::KeepLive,
        7 => Frame::TurnTalkType(u.arbitrary()?, u.arbitrary()?),
        8 => Frame::PeerConnected(u.arbitrary()?, u.arbitrary()?),
        9 => Frame::ReportStats(u.arbitrary()?),
        10 => Frame::ReportInfo,
        11 => Frame::UpdateToken,
        12 => Frame::Spoof(u.arbitrary()?),
        _ => Frame::Garbage(u.arbitrary()?),
    })
}

fn op(u: &mut Unstructured<'_>) -> Result<Op> {
    Ok(match u.int_in_range(0..=15u8)? {
        0 | 1 => Op::Open(u.int_in_range(0..=CONNS - 1)?),
        2 => Op::Close(u.int_in_range(0..=CONNS - 1)?, u.arbitrary()?),
        3 | 4 => Op::Advance(u.int_in_range(0..=50_000)?),
        5 => Op::Kick(u.arbitrary()?, u.arbitrary()?),
        6 => Op::Restart,
        7 => Op::Move,
        _ => {
            let conn = u.int_in_range(0..=CONNS - 1)?;
            let f = frame(u)?;
            let claim = if u.ratio(3, 10)? {
                Some(u.arbitrary()?)
            } else {
                None
            };
            Op::Frame(conn, f, claim)
        }
    })
}

pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(mode) = u
        .choose(&[Mode::Open, Mode::Tokens, Mode::Registry])
        .copied()
    else {
        return;
    };
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        match op(&mut u) {
            Ok(o) => ops.push(o),
            Err(_) => break,
        }
    }
    World::new(mode).run(ops.clone());
    assert!(
        effects_of(&ops, mode) == effects_of(&ops, mode),
        "the same inputs gave different effects"
    );
}

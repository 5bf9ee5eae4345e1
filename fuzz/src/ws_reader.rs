//! The server's WebSocket read side (`Inbound` of crates/server/src/signaling/frame.rs, the
//! code `Socket` runs on every read) on any bytes, cut into reads of any sizes.
//!
//! Checked: it never panics; how the bytes are cut into reads changes nothing (the messages
//! and the violation are those of one `Reader` given all the bytes at once); what it hands
//! out is within the limits (messages up to `max_message`, pings up to 125 bytes); and it
//! holds at most one incomplete frame, without an allocation between frames.

use crate::ws_frame::{Inbound, Incoming, Reader, Violation};

/// The largest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// The input: a limit (from a few, the server's among them), read sizes, then the bytes.
struct Case<'a> {
    max_message: usize,
    reads: Vec<usize>,
    wire: &'a [u8],
}

fn case(data: &[u8]) -> Option<Case<'_>> {
    let (&limit, rest) = data.split_first()?;
    let max_message = match limit % 8 {
        0 => 0,
        1 => 1,
        2 => 125,
        3 => 126,
        4 => 1000,
        // The server's: four times the default max_frame_bytes.
        5 => 4 * 64 * 1024,
        6 => usize::MAX / 2,
        _ => usize::MAX,
    };
    let (&count, mut rest) = rest.split_first()?;
    let mut reads = Vec::new();
    for _ in 0..count % 8 {
        let [a, b, tail @ ..] = rest else { break };
        reads.push(usize::from(u16::from_be_bytes([*a, *b])).max(1));
        rest = tail;
    }
    if reads.is_empty() {
        reads.push(rest.len().max(1));
    }
    Some(Case {
        max_message,
        reads,
        wire: rest,
    })
}

/// The messages and how reading ended: a violation, or the bytes left waiting for more.
type Outcome = (Vec<Incoming>, Result<usize, Violation>);

/// One reader given every byte at once.
fn at_once(max_message: usize, wire: &[u8]) -> Outcome {
    let mut reader = Reader::new(max_message);
    let mut messages = Vec::new();
    let mut at = 0;
    loop {
        match reader.take(&wire[at..]) {
            Err(v) => return (messages, Err(v)),
            Ok((0, _)) => return (messages, Ok(wire.len() - at)),
            Ok((used, msg)) => {
                assert!(used <= wire.len() - at, "took more bytes than it was given");
                at += used;
                messages.extend(msg);
            }
        }
    }
}

/// The bytes cut into reads, handed to an `Inbound` the way `Socket::poll_next` does.
fn in_reads(case: &Case<'_>) -> Outcome {
    let mut inbound = Inbound::new(case.max_message);
    let mut messages = Vec::new();
    let mut rest = case.wire;
    let mut sizes = case.reads.iter().cycle();
    loop {
        match inbound.next_held() {
            Err(v) => return (messages, Err(v)),
            Ok(Some(m)) => {
                messages.push(m);
                continue;
            }
            Ok(None) => check_held(&inbound, case.max_message),
        }
        if rest.is_empty() {
            return (messages, Ok(inbound.held().len()));
        }
        let size = sizes.next().copied().unwrap_or(1).min(rest.len());
        let (read, tail) = rest.split_at(size);
        rest = tail;
        match inbound.received(read) {
            Err(v) => return (messages, Err(v)),
            Ok(msg) => messages.extend(msg),
        }
    }
}

/// Waiting for bytes, the socket holds one incomplete frame at most, and no allocation when
/// it holds nothing.
fn check_held(inbound: &Inbound, max_message: usize) {
    let held = inbound.held().len();
    assert!(
        held < MAX_HEADER.saturating_add(max_message),
        "holds {held} bytes waiting, more than one frame of at most {max_message}"
    );
    if held == 0 {
        assert!(!inbound.allocated(), "an allocation kept between frames");
    }
}

pub fn check(data: &[u8]) {
    let Some(case) = case(data) else {
        return;
    };
    let whole = at_once(case.max_message, case.wire);
    let read = in_reads(&case);
    assert_eq!(
        read, whole,
        "cutting the bytes into reads changed what they mean"
    );
    for m in &whole.0 {
        match m {
            Incoming::Text(t) => assert!(t.len() <= case.max_message, "text above the limit"),
            Incoming::Binary(n) => assert!(*n <= case.max_message, "binary above the limit"),
            Incoming::Ping(p) => assert!(p.len() <= 125, "ping above 125 bytes"),
            Incoming::Close(_) => {}
        }
    }
    if let Err(v) = &whole.1 {
        assert!(
            matches!(v.code, 1002 | 1007 | 1009),
            "close code {} for {}",
            v.code,
            v.why
        );
    }
}

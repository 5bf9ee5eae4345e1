//! WebSocket framing for the server side of `/ws` (RFC 6455 §5), without IO.
//!
//! Written here rather than taken from tungstenite for memory: tungstenite keeps a read
//! buffer per connection that grows to the largest frame the connection has received and
//! never shrinks, so every member that had sent an SDP held ~10 KB for good (massif, 600
//! members after their calls: 6.2 MB of 13.8 MB live heap). Here a connection holds bytes
//! only while a frame is incomplete. The other crates we looked at keep a fixed 8 KiB read
//! buffer per connection (fastwebsockets), more than a whole idle member costs us.
//!
//! [`Reader`] turns client bytes into messages: it checks what §5 requires of a client
//! (masked frames, no reserved bits or opcodes, control frames final and at most 125 bytes,
//! continuation only inside a fragmented message, text that is UTF-8, a size limit).
//! [`Inbound`] is the read side of a socket without its IO: the bytes of a frame not yet
//! complete, and the reader that takes frames from them and from each read.
//! [`Frames`] builds server frames (unmasked, shortest length encoding).
//!
//! This file uses nothing outside the standard library but `simdutf8`: the `ws_reader` fuzz
//! target (fuzz/) compiles it as it is.

use std::cell::Cell;
use std::sync::Arc;

/// What a client's frames amounted to.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(Text),
    /// A binary message, of this many bytes (signaling is text only; the engine answers it).
    Binary(usize),
    /// A ping, whose payload the pong must carry.
    Ping(Vec<u8>),
    /// The client closes, with its status code if it gave one.
    Close(Option<u16>),
}

/// The payload of a text message: bytes checked to be UTF-8 when the message was read, in a
/// buffer that the request decoded from them shares (`rtcroom_protocol::decode_shared`: a
/// relayed `msg` is a range of it, not a copy).
///
/// Checked by `simdutf8` (AVX2 or SSE4.2 picked at run time, about 0.1 instructions per byte
/// of ASCII) rather than `String::from_utf8` (about 0.5 per byte: callgrind,
/// docs/benchmarks.md). The check that turns the bytes into a `str` again in [`Text::as_str`]
/// costs as little; skipping it would need `unsafe`, which the workspace forbids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(Arc<Vec<u8>>);

impl Text {
    /// `bytes` as text, when they are UTF-8.
    fn checked(bytes: Vec<u8>) -> Option<Self> {
        simdutf8::basic::from_utf8(&bytes)
            .is_ok()
            .then(|| Self(Arc::new(bytes)))
    }

    pub fn as_str(&self) -> &str {
        simdutf8::basic::from_utf8(&self.0).expect("checked when the message was read")
    }

    /// The buffer of the text, to share.
    pub fn bytes(&self) -> &Arc<Vec<u8>> {
        &self.0
    }

    /// Bytes of the text.
    #[cfg(any(test, fuzzing))]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The text as a `String`: without a copy when nothing else shares the buffer.
    pub fn into_string(self) -> String {
        let bytes = Arc::try_unwrap(self.0).unwrap_or_else(|shared| shared.as_ref().clone());
        String::from_utf8(bytes).expect("checked when the message was read")
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self(Arc::new(s.into_bytes()))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Self(Arc::new(s.as_bytes().to_vec()))
    }
}

/// A violation of RFC 6455 by the client, with the close code to answer it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub code: u16,
    pub why: &'static str,
}

const fn violation(code: u16, why: &'static str) -> Violation {
    Violation { code, why }
}

/// Protocol error.
const PROTOCOL: u16 = 1002;
/// Text that is not UTF-8.
const NOT_UTF8: u16 = 1007;
/// Message too big.
const TOO_BIG: u16 = 1009;

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Reassembles messages from client frames. Holds nothing between messages but a
/// fragmented message's parts (rare: browsers send signaling frames whole).
#[derive(Debug)]
pub struct Reader {
    max_message: usize,
    /// The opcode and payload so far of a fragmented message.
    fragments: Option<(u8, Vec<u8>)>,
}

/// One complete frame at the front of a buffer: where its payload is, and how long the
/// frame is in all.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    start: usize,
    len: usize,
}

impl Reader {
    pub fn new(max_message: usize) -> Self {
        Self {
            max_message,
            fragments: None,
        }
    }

    /// Take the first frame from `buf` if it is complete. Returns how many bytes it took
    /// (0: wait for more bytes) and the message it completed, if any.
    pub fn take(&mut self, buf: &[u8]) -> Result<(usize, Option<Incoming>), Violation> {
        let Some(h) = self.header(buf)? else {
            return Ok((0, None));
        };
        let end = h.start + h.len;
        if buf.len() < end {
            return Ok((0, None));
        }
        let payload = unmask(&buf[h.start..end], h.mask);
        Ok((end, self.frame(h.fin, h.opcode, payload)?))
    }

    /// The header at the front of `buf`, checked; `None` until all of it is there.
    fn header(&self, buf: &[u8]) -> Result<Option<Header>, Violation> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        if b0 & 0x70 != 0 {
            return Err(violation(
                PROTOCOL,
                "reserved bits set without an extension",
            ));
        }
        let opcode = b0 & 0x0F;
        match opcode {
            CONTINUATION | TEXT | BINARY => {}
            CLOSE | PING | PONG => {
                if !fin {
                    return Err(violation(PROTOCOL, "fragmented control frame"));
                }
                if b1 & 0x7F > 125 {
                    return Err(violation(PROTOCOL, "control frame above 125 bytes"));
                }
            }
            _ => return Err(violation(PROTOCOL, "reserved opcode")),
        }
        if b1 & 0x80 == 0 {
            return Err(violation(PROTOCOL, "unmasked frame from a client"));
        }
        let (len, at) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut n = [0; 8];
                    n.copy_from_slice(b);
                    (u64::from_be_bytes(n), 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        let so_far = self.fragments.as_ref().map_or(0, |(_, p)| p.len());
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let start = at + 4;
        // A frame whose end is past the address space is too big whatever the limit (a limit
        // near usize::MAX let `start + len` overflow).
        if len.saturating_add(so_far) > self.max_message || len > usize::MAX - start {
            return Err(violation(TOO_BIG, "message above the size limit"));
        }
        let Some(mask) = buf.get(at..start) else {
            return Ok(None);
        };
        Ok(Some(Header {
            fin,
            opcode,
            mask: [mask[0], mask[1], mask[2], mask[3]],
            start,
            len,
        }))
    }

    fn frame(
        &mut self,
        fin: bool,
        opcode: u8,
        payload: Vec<u8>,
    ) -> Result<Option<Incoming>, Violation> {
        match opcode {
            PING => Ok(Some(Incoming::Ping(payload))),
            PONG => Ok(None),
            CLOSE => match payload.len() {
                0 => Ok(Some(Incoming::Close(None))),
                1 => Err(violation(PROTOCOL, "close frame of one byte")),
                _ => {
                    if std::str::from_utf8(&payload[2..]).is_err() {
                        return Err(violation(NOT_UTF8, "close reason is not UTF-8"));
                    }
                    Ok(Some(Incoming::Close(Some(u16::from_be_bytes([
                        payload[0], payload[1],
                    ])))))
                }
            },
            CONTINUATION => {
                let Some((first, mut parts)) = self.fragments.take() else {
                    return Err(violation(PROTOCOL, "continuation outside a message"));
                };
                parts.extend_from_slice(&payload);
                if fin {
                    message(first, parts).map(Some)
                } else {
                    self.fragments = Some((first, parts));
                    Ok(None)
                }
            }
            _ => {
                if self.fragments.is_some() {
                    return Err(violation(PROTOCOL, "new message inside a fragmented one"));
                }
                if fin {
                    message(opcode, payload).map(Some)
                } else {
                    self.fragments = Some((opcode, payload));
                    Ok(None)
                }
            }
        }
    }
}

/// The read side of a connection without its IO: give it each read's bytes, take the messages.
/// Between frames it holds nothing (no allocation); it holds the start of a frame only while
/// the frame is incomplete, so at most one frame header and `max_message` bytes.
#[derive(Debug)]
pub struct Inbound {
    reader: Reader,
    /// The start of a frame not yet complete; empty, without an allocation, between frames.
    partial: Vec<u8>,
}

impl Inbound {
    pub fn new(max_message: usize) -> Self {
        Self {
            reader: Reader::new(max_message),
            partial: Vec::new(),
        }
    }

    /// The next message from the bytes held already; `None`: read more bytes first.
    pub fn next_held(&mut self) -> Result<Option<Incoming>, Violation> {
        while !self.partial.is_empty() {
            let (used, msg) = self.reader.take(&self.partial)?;
            if used == 0 {
                return Ok(None);
            }
            if used == self.partial.len() {
                self.partial = Vec::new();
            } else {
                self.partial.drain(..used);
            }
            if msg.is_some() {
                return Ok(msg);
            }
        }
        Ok(None)
    }

    /// The bytes of one read. When nothing is held, a frame is taken straight from them and
    /// only what follows it is kept; else they join the held bytes. Either way, call
    /// [`Self::next_held`] for further messages before reading again.
    pub fn received(&mut self, got: &[u8]) -> Result<Option<Incoming>, Violation> {
        if !self.partial.is_empty() {
            self.partial.extend_from_slice(got);
            return self.next_held();
        }
        let (used, msg) = self.reader.take(got)?;
        if used < got.len() {
            self.partial = got[used..].to_vec();
        }
        Ok(msg)
    }

    /// The bytes held: the start of an incomplete frame, or frames not yet taken (for tests
    /// and the fuzz target, which check what a connection holds).
    #[cfg(any(test, fuzzing))]
    pub fn held(&self) -> &[u8] {
        &self.partial
    }

    /// Whether the held bytes have an allocation (none between frames).
    #[cfg(any(test, fuzzing))]
    pub fn allocated(&self) -> bool {
        self.partial.capacity() != 0
    }
}

fn message(opcode: u8, payload: Vec<u8>) -> Result<Incoming, Violation> {
    if opcode == BINARY {
        return Ok(Incoming::Binary(payload.len()));
    }
    Text::checked(payload)
        .map(Incoming::Text)
        .ok_or(violation(NOT_UTF8, "text frame is not UTF-8"))
}

/// The payload, unmasked, in a buffer of its own: one copy, then the mask applied 32 bytes
/// at a time in place, each block XOR-ed with the key repeated to 32 bytes (a loop the
/// compiler turns into two SIMD loads, XORs and stores; eight bytes at a time took ~0.5
/// instructions per byte, pushing four bytes at a time into a growing `Vec` ~3, and
/// unmasking while copying, each block XOR-ed and appended, ~0.8 against ~0.45 for this
/// copy and pass: docs/benchmarks.md).
fn unmask(masked: &[u8], mask: [u8; 4]) -> Vec<u8> {
    const BLOCK: usize = 32;
    let mut out = masked.to_vec();
    let key: [u8; BLOCK] = std::array::from_fn(|i| mask[i % 4]);
    let mut blocks = out.chunks_exact_mut(BLOCK);
    for block in &mut blocks {
        for (byte, k) in block.iter_mut().zip(key) {
            *byte ^= k;
        }
    }
    for (byte, k) in blocks.into_remainder().iter_mut().zip(key) {
        *byte ^= k;
    }
    out
}

/// Server-to-client frames, built in one buffer for one write.
///
/// Each message is serialized straight behind its frame header (FIN set, unmasked,
/// shortest length encoding): no copy of a frame between serializing and writing, and
/// nothing kept per connection once written. The buffer of a batch made by [`Frames::new`]
/// goes back to its thread when the batch is dropped, for the next batch (one buffer per
/// runtime thread rather than an allocation per batch).
#[derive(Debug, Default)]
pub struct Frames {
    buf: Vec<u8>,
}

thread_local! {
    /// The buffer of a batch written on this thread, empty, for the next one.
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

impl Frames {
    /// Room for a typical batch (a relayed SDP and its neighbours) without growing.
    const START: usize = 16 * 1024;
    /// A buffer grown above this (a batch of large messages) is freed, not kept.
    const KEEP: usize = 64 * 1024;

    pub fn new() -> Self {
        let mut buf = SPARE.try_with(Cell::take).unwrap_or_default();
        buf.reserve(Self::START);
        Self { buf }
    }

    /// Append one text frame whose payload `write` appends (valid UTF-8: JSON text).
    pub fn push_text(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        self.push(TEXT, write);
    }

    /// Append a pong carrying the ping's payload.
    pub fn push_pong(&mut self, payload: &[u8]) {
        self.push(PONG, |out| out.extend_from_slice(payload));
    }

    /// Append a close frame with `code` and a reason (cut to fit a control frame).
    pub fn push_close(&mut self, code: u16, reason: &str) {
        let mut cut = reason.len().min(123);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        self.push(CLOSE, |out| {
            out.extend_from_slice(&code.to_be_bytes());
            out.extend_from_slice(&reason.as_bytes()[..cut]);
        });
    }

    fn push(&mut self, opcode: u8, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        // Room for the common header (2-byte length); fixed up once the length is known.
        self.buf.extend_from_slice(&[0; 4]);
        write(&mut self.buf);
        let len = self.buf.len() - start - 4;
        self.buf[start] = 0x80 | opcode;
        if let Ok(short @ 0..=125) = u8::try_from(len) {
            self.buf[start + 1] = short;
            self.buf.drain(start + 2..start + 4);
        } else if let Ok(medium) = u16::try_from(len) {
            self.buf[start + 1] = 126;
            self.buf[start + 2..start + 4].copy_from_slice(&medium.to_be_bytes());
        } else {
            self.buf[start + 1] = 127;
            let long = (len as u64).to_be_bytes();
            self.buf.splice(start + 2..start + 4, long);
        }
    }

    /// Bytes of the frames so far, headers included.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        if (Self::START..=Self::KEEP).contains(&self.buf.capacity()) {
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            // Replaces (frees) a buffer another batch gave back meanwhile; after the thread's
            // locals are gone, the buffer is freed.
            let _ = SPARE.try_with(|spare| spare.set(buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked with a fixed key.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut f = vec![u8::from(fin) << 7 | opcode];
        match payload.len() {
            n @ 0..=125 => f.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    /// Feed `bytes` one byte at a time: nothing is taken until a frame is whole.
    fn read_all(r: &mut Reader, bytes: &[u8]) -> Result<Vec<Incoming>, Violation> {
        let mut got = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        for &b in bytes {
            buf.push(b);
            loop {
                let (used, msg) = r.take(&buf)?;
                if used == 0 {
                    break;
                }
                buf.drain(..used);
                got.extend(msg);
            }
        }
        assert!(buf.is_empty(), "bytes left over: {buf:?}");
        Ok(got)
    }

    #[test]
    fn text_of_every_length_class_and_a_fragmented_message_come_whole() {
        let mut r = Reader::new(1 << 20);
        let texts: Vec<String> = [0usize, 5, 125, 126, 65_535, 65_536]
            .iter()
            .map(|&n| "é".repeat(n / 2) + &"x".repeat(n % 2))
            .collect();
        let mut bytes = Vec::new();
        for t in &texts {
            bytes.extend(client_frame(true, TEXT, t.as_bytes()));
        }
        // "héllo" in three fragments, split inside the two-byte é, with a ping between.
        let h = "héllo".as_bytes();
        bytes.extend(client_frame(false, TEXT, &h[..2]));
        bytes.extend(client_frame(true, PING, b"p"));
        bytes.extend(client_frame(false, CONTINUATION, &h[2..4]));
        bytes.extend(client_frame(true, CONTINUATION, &h[4..]));
        bytes.extend(client_frame(true, BINARY, &[1, 2, 3]));
        bytes.extend(client_frame(true, PONG, b""));
        bytes.extend(client_frame(true, CLOSE, &[0x03, 0xE8, b'o', b'k']));
        let got = read_all(&mut r, &bytes).unwrap();
        let mut want: Vec<Incoming> = texts
            .into_iter()
            .map(|t| Incoming::Text(t.into()))
            .collect();
        want.extend([
            Incoming::Ping(b"p".to_vec()),
            Incoming::Text("héllo".into()),
            Incoming::Binary(3),
            Incoming::Close(Some(1000)),
        ]);
        assert_eq!(got, want);
    }

    /// A batch's buffer, once the batch is dropped, is the next batch's on the same thread,
    /// empty; a pong's or close's frames (no buffer of their own) do not displace it, and a
    /// buffer grown past `KEEP` is freed rather than kept.
    #[test]
    fn a_written_batch_gives_its_buffer_to_the_next() {
        let mut first = Frames::new();
        first.push_text(|out| out.extend_from_slice(b"{}"));
        let at = first.bytes().as_ptr();
        drop(first);
        // Another allocation of the same size meanwhile: a freed buffer would be its.
        let other = Vec::<u8>::with_capacity(Frames::START);
        let mut pong = Frames::default();
        pong.push_pong(b"p");
        drop(pong);
        let mut second = Frames::new();
        assert!(second.is_empty(), "a new batch starts empty");
        assert_eq!(second.buf.capacity(), Frames::START);
        second.push_text(|out| out.extend_from_slice(b"[]"));
        assert_eq!(
            second.bytes().as_ptr(),
            at,
            "the first batch's buffer was not reused"
        );
        assert_ne!(other.as_ptr(), at);
        assert_eq!(second.bytes(), [0x81, 2, b'[', b']']);
        second.push_text(|out| out.resize(out.len() + Frames::KEEP, b' '));
        drop(second);
        let third = Frames::new();
        assert!(third.is_empty());
        assert!(
            third.buf.capacity() <= Frames::KEEP,
            "a grown buffer was kept"
        );
    }

    use proptest::strategy::Strategy as _;

    /// 900 bytes of ASCII with `bytes` written over it at `at`.
    fn ascii_with(at: usize, bytes: &[u8]) -> Vec<u8> {
        let mut text = vec![b'a'; 900];
        text[at..at + bytes.len()].copy_from_slice(bytes);
        text
    }

    proptest::proptest! {
        /// Unmasking gives the payload XOR-ed with the key byte by byte, for lengths across
        /// the 32-byte blocks and their remainder.
        #[test]
        fn unmasking_is_the_xor_of_every_byte(
            masked in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            mask in proptest::array::uniform4(proptest::num::u8::ANY),
        ) {
            let want: Vec<u8> = masked.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
            proptest::prop_assert_eq!(unmask(&masked, mask), want);
        }

        /// A text message is accepted exactly when the standard library takes its bytes as
        /// UTF-8, and reads back as the same text (`simdutf8` checks a vector at a time: the
        /// lengths cross its block sizes, the bytes mix ASCII, multi-byte characters and
        /// arbitrary bytes).
        #[test]
        fn text_is_utf8_exactly_as_std_says(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    r#"[a-z\\"{}:,]{1,40}"#.prop_map(String::into_bytes),
                    "[é€😀]{1,4}".prop_map(String::into_bytes),
                    proptest::collection::vec(proptest::num::u8::ANY, 1..3),
                ],
                0..40,
            )
        ) {
            let bytes = parts.concat();
            let std = String::from_utf8(bytes.clone()).ok();
            let ours = Text::checked(bytes);
            proptest::prop_assert_eq!(ours.as_ref().map(Text::as_str), std.as_deref());
            proptest::prop_assert_eq!(ours.map(Text::into_string), std);
        }
    }

    #[test]
    fn violations_are_named_with_their_close_codes() {
        let cases: Vec<(Vec<u8>, u16)> = vec![
            // Unmasked.
            (vec![0x81, 0x01, b'a'], PROTOCOL),
            // Reserved bit.
            (
                [client_frame(true, TEXT, b"a")[0] | 0x40]
                    .into_iter()
                    .chain(client_frame(true, TEXT, b"a")[1..].iter().copied())
                    .collect(),
                PROTOCOL,
            ),
            // Reserved opcode.
            (client_frame(true, 0x3, b"a"), PROTOCOL),
            // Fragmented ping.
            (client_frame(false, PING, b"a"), PROTOCOL),
            // Ping above 125 bytes.
            (client_frame(true, PING, &[0; 126]), PROTOCOL),
            // Continuation with nothing to continue.
            (client_frame(true, CONTINUATION, b"a"), PROTOCOL),
            // A new message inside a fragmented one.
            (
                [
                    client_frame(false, TEXT, b"a"),
                    client_frame(true, TEXT, b"b"),
                ]
                .concat(),
                PROTOCOL,
            ),
            // Not UTF-8.
            (client_frame(true, TEXT, &[0xff, 0xfe]), NOT_UTF8),
            // Not UTF-8 deep inside a long text (checked a vector at a time): a lone
            // continuation byte, an overlong encoding, a surrogate, a sequence cut off at the end.
            (
                client_frame(true, TEXT, &ascii_with(700, &[0x80])),
                NOT_UTF8,
            ),
            (
                client_frame(true, TEXT, &ascii_with(500, &[0xc0, 0xaf])),
                NOT_UTF8,
            ),
            (
                client_frame(true, TEXT, &ascii_with(333, &[0xed, 0xa0, 0x80])),
                NOT_UTF8,
            ),
            (
                client_frame(true, TEXT, &ascii_with(899, &[0xc3])),
                NOT_UTF8,
            ),
            // Too big, refused from the header alone.
            (
                client_frame(true, TEXT, &[b'a'; 2000])[..4].to_vec(),
                TOO_BIG,
            ),
            // Too big across fragments.
            (
                [
                    client_frame(false, TEXT, &[b'a'; 600]),
                    client_frame(true, CONTINUATION, &[b'a'; 600]),
                ]
                .concat(),
                TOO_BIG,
            ),
            // A close frame of one byte.
            (client_frame(true, CLOSE, &[3]), PROTOCOL),
        ];
        for (i, (bytes, code)) in cases.into_iter().enumerate() {
            let mut r = Reader::new(1000);
            let mut buf = bytes.clone();
            let result = loop {
                match r.take(&buf) {
                    Ok((0, _)) => break Ok(()),
                    Ok((used, _)) => {
                        buf.drain(..used);
                    }
                    Err(v) => break Err(v),
                }
            };
            assert_eq!(result.map_err(|v| v.code), Err(code), "case {i}: {bytes:?}");
        }
    }

    /// Found by the `ws_reader` fuzz target: with a limit near `usize::MAX` (a huge
    /// `max_frame_bytes`), a 64-bit length made the frame's end overflow (a panic).
    #[test]
    fn a_frame_longer_than_memory_is_too_big_whatever_the_limit() {
        for limit in [usize::MAX, usize::MAX - 5] {
            let mut header = vec![0x81, 0x80 | 127];
            header.extend_from_slice(&u64::MAX.to_be_bytes());
            header.extend_from_slice(&[1, 2, 3, 4, b'a']);
            let got = Reader::new(limit).take(&header).map_err(|v| v.code);
            assert_eq!(got, Err(TOO_BIG), "limit {limit}");
        }
    }

    /// A message as a client may send it: text or binary, cut into fragments at the given
    /// points, with a ping when `ping` is set: after the first fragment (before the message
    /// when it is one frame), so that the ping always completes before the message does.
    fn fragmented(text: &str, binary: bool, cuts: &[usize], ping: bool) -> Vec<u8> {
        let bytes = text.as_bytes();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.sort_unstable();
        points.dedup();
        points.retain(|&p| p > 0 && p < bytes.len());
        let mut edges = vec![0];
        edges.extend(points);
        edges.push(bytes.len());
        let mut out = Vec::new();
        if ping && edges.len() == 2 {
            out.extend(client_frame(true, PING, b"x"));
        }
        for (i, w) in edges.windows(2).enumerate() {
            let last = i == edges.len() - 2;
            let opcode = match (i, binary) {
                (0, false) => TEXT,
                (0, true) => BINARY,
                _ => CONTINUATION,
            };
            out.extend(client_frame(last, opcode, &bytes[w[0]..w[1]]));
            if i == 0 && ping && !last {
                out.extend(client_frame(true, PING, b"x"));
            }
        }
        out
    }

    proptest::proptest! {
        /// Messages cut into any fragments and the bytes cut into any reads come out as
        /// they were sent, and nothing is left behind.
        #[test]
        fn any_fragmentation_and_any_reads_give_the_messages_back(
            msgs in proptest::collection::vec(
                ("\\PC{0,300}", proptest::prelude::any::<bool>(),
                 proptest::collection::vec(0usize..400, 0..4), proptest::prelude::any::<bool>()),
                1..6),
            reads in proptest::collection::vec(1usize..700, 1..20),
        ) {
            let mut wire = Vec::new();
            let mut want = Vec::new();
            for (text, binary, cuts, ping) in &msgs {
                wire.extend(fragmented(text, *binary, cuts, *ping));
                if *ping {
                    want.push(Incoming::Ping(b"x".to_vec()));
                }
                want.push(if *binary { Incoming::Binary(text.len()) } else { Incoming::Text(text.as_str().into()) });
            }
            let mut r = Reader::new(1 << 20);
            let mut got = Vec::new();
            let mut pending: Vec<u8> = Vec::new();
            let mut at = 0;
            for size in reads.iter().cycle() {
                if at >= wire.len() {
                    break;
                }
                let end = (at + size).min(wire.len());
                pending.extend_from_slice(&wire[at..end]);
                at = end;
                loop {
                    let (used, msg) = r.take(&pending).expect("valid frames");
                    if used == 0 {
                        break;
                    }
                    pending.drain(..used);
                    got.extend(msg);
                }
            }
            proptest::prop_assert!(pending.is_empty());
            proptest::prop_assert_eq!(got, want);
        }

        /// Whatever bytes arrive, the reader answers without panicking, never takes more than
        /// it was given, and never accepts a frame larger than its limit.
        #[test]
        fn any_bytes_are_answered_without_a_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            let mut r = Reader::new(64);
            let mut rest: &[u8] = &bytes;
            while let Ok((used, msg)) = r.take(rest) {
                proptest::prop_assert!(used <= rest.len());
                if let Some(Incoming::Text(t)) = &msg {
                    proptest::prop_assert!(t.len() <= 64);
                }
                if used == 0 {
                    break;
                }
                rest = &rest[used..];
            }
        }
    }

    #[test]
    fn server_frames_have_the_shortest_header() {
        for (n, header) in [
            (0usize, 2usize),
            (125, 2),
            (126, 4),
            (65_535, 4),
            (65_536, 10),
        ] {
            let mut f = Frames::new();
            f.push_text(|out| out.extend(std::iter::repeat_n(b'a', n)));
            assert_eq!(f.len(), n + header, "payload of {n}");
            assert_eq!(f.bytes()[0], 0x81);
            assert_eq!(f.bytes()[1] & 0x80, 0, "server frames are not masked");
        }
        let mut f = Frames::new();
        f.push_close(1008, &"é".repeat(100));
        assert_eq!(
            f.bytes()[1],
            2 + 122,
            "the reason is cut at a character boundary"
        );
        assert!(std::str::from_utf8(&f.bytes()[4..]).is_ok());
    }
}

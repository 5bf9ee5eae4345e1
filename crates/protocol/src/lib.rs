//! Wire types of the rtcroom signaling protocol (`docs/protocol.md`).
//!
//! This crate owns JSON: it turns a text frame into a typed [`Request`] (liberally: numbers
//! as strings, seconds or milliseconds, either spelling of a field) and a typed [`ServerMsg`]
//! into the exact JSON the original clients expect. It never does IO and never parses SDP:
//! the `msg` of an offer, answer or candidate is kept as the raw JSON it arrived as and
//! written back byte-for-byte.

mod decode;
mod encode;
mod ident;
mod refusal;
mod result;
mod resume;
mod rtc;
mod scan;
mod stats;

pub use decode::{
    Answer, Candidate, Join, KeepLive, Leave, Offer, PeerConnected, ReportInfo, ReportStats,
    Request, TurnTalkType, UpdateToken,
};
pub use decode::{Command, DecodeError, Identity, decode, decode_binary, decode_shared};
pub use encode::{
    GeneralMsgResp, NotifyNewPeer, Peer, RelayAnswer, RelayCandidate, RelayLeave, RelayOffer,
    RelayTurnTalkType, RespAnswer, RespCandidate, RespJoin, RespKeepLive, RespLeave, RespOffer,
    RespPeerConnected, RespTurnTalkType, RespUpdateToken, ServerMsg, SharedJson, SystemKickUser,
    SystemPromptToken,
};
pub use ident::Ident;
pub use refusal::{Field, Refusal};
pub use result::ResultCode;
pub use resume::ResumeKey;
pub use rtc::{ConnectType, IceServer, RtcConfig};
pub use stats::QualityStats;

/// The JSON text of a `msg`, `data1` or `data2` field exactly as the client sent it, written
/// back verbatim when serialized. Always one valid JSON value: the decoder checked it
/// (`scan`), and [`RawJson::from_json`] checks what it is given.
///
/// A `msg` decoded by [`decode_shared`] is a range of the frame's own buffer, shared rather
/// than copied: the SDP of an offer goes from the frame the client sent to the frame relayed
/// without a copy of its own (docs/benchmarks.md, "The relayed `msg` shared with its frame").
#[derive(Debug, Clone)]
pub struct RawJson(Repr);

#[derive(Debug, Clone)]
enum Repr {
    /// `null`, what [`RawJson::take`] leaves (no allocation).
    Null,
    Owned(Box<str>),
    /// `frame[start..end]`, text that is one JSON value.
    Shared {
        frame: std::sync::Arc<Vec<u8>>,
        start: usize,
        end: usize,
    },
}

impl RawJson {
    /// Move the value out, leaving `null` in its place (a relay forwards the `msg` it was
    /// given without copying it).
    pub fn take(&mut self) -> Self {
        std::mem::replace(self, Self(Repr::Null))
    }

    /// Wrap JSON text; `None` when the text is not one valid JSON value.
    pub fn from_json(text: String) -> Option<Self> {
        let raw = serde_json::value::RawValue::from_string(text).ok()?;
        Some(Self(Repr::Owned(Box::<str>::from(raw))))
    }

    /// Text the decoder has checked to be one JSON value.
    pub(crate) fn from_valid(text: &str) -> Self {
        Self(Repr::Owned(text.into()))
    }

    /// `frame[start..end]`, which the decoder has checked to be one JSON value.
    pub(crate) fn shared(frame: &std::sync::Arc<Vec<u8>>, start: usize, end: usize) -> Self {
        Self(Repr::Shared {
            frame: std::sync::Arc::clone(frame),
            start,
            end,
        })
    }

    /// The JSON text's bytes (UTF-8), without a check: what the encoder writes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Null => b"null",
            Repr::Owned(text) => text.as_bytes(),
            Repr::Shared { frame, start, end } => &frame[*start..*end],
        }
    }

    /// The JSON text. A shared value's bytes are checked to be UTF-8 again here (they were
    /// when the frame was read; a `str` of them without a check needs `unsafe`), so the
    /// encoder takes [`Self::as_bytes`] instead.
    pub fn get(&self) -> &str {
        match &self.0 {
            Repr::Null => "null",
            Repr::Owned(text) => text,
            Repr::Shared { .. } => {
                std::str::from_utf8(self.as_bytes()).expect("a decoded frame is UTF-8")
            }
        }
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl serde::Serialize for RawJson {
    /// Verbatim, through serde_json's `RawValue`, which checks the text again: only
    /// serializers other than [`ServerMsg::write_json`] (tests, tools) come here.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(self.get()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

/// Default limit on one text frame, in bytes (protocol.md: 64 KiB; a real SDP is 3–12 KB).
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

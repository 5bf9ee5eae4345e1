//! The checks behind rtcroom's fuzz targets (`fuzz_targets/`): each takes the bytes libFuzzer
//! made and panics when an invariant breaks, which libFuzzer reports as a crash and keeps.
//!
//! - [`decode`]: the signaling frame decoder (`rtcroom_protocol::decode`).
//! - [`ws_reader`]: the server's WebSocket read side (`crates/server/src/signaling/frame.rs`).
//! - [`turn_input`]: the embedded TURN server's handling of client datagrams (nonce gate and
//!   guard of `rtcroom-turn`).
//! - [`engine`]: sequences of engine inputs, checked by the property tests' model.

pub mod decode;
pub mod engine;
pub mod turn_input;
pub mod ws_reader;

/// The server's WebSocket framing, compiled from its source file (the server is a binary crate
/// with many dependencies; the file itself uses only the standard library).
#[path = "../../crates/server/src/signaling/frame.rs"]
pub mod ws_frame;

/// The engine model of the property tests, compiled from its source file.
#[path = "../../crates/core/tests/model/mod.rs"]
pub mod model;

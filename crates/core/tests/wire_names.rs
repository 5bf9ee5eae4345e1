//! Only `rtcroom-protocol` knows the JSON field names of the signaling protocol: the engine
//! names a field through `rtcroom_protocol::Field` and leaves the shaping of every message
//! to the protocol crate. This test reads the engine's sources (`src/engine/`) and fails if
//! code (comments aside) spells a wire field name.

use std::path::Path;

/// The protocol's field names that cannot be Rust identifiers of this crate (camelCase), and
/// the lower-case ones as they would appear in a string literal.
const WIRE_NAMES: &[&str] = &[
    "appId",
    "roomId",
    "roomName",
    "userType",
    "talkType",
    "osName",
    "osInfo",
    "sdkInfo",
    "sessionId",
    "subSessionId",
    "remoteUid",
    "remoteId",
    "isIceReset",
    "connectType",
    "rtcConfig",
    "reportStatsInterval",
    "userList",
    "expireAt",
    "iceServers",
    "\"uid\"",
    "\"uname\"",
    "\"cmd\"",
    "\"msg\"",
    "\"desc\"",
    "\"result\"",
    "\"token\"",
];

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the source folder is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a line, without a comment.
fn code(line: &str) -> &str {
    let line = line.trim_start();
    if line.starts_with("//") {
        return "";
    }
    line.split_once(" // ").map_or(line, |(code, _)| code)
}

#[test]
fn the_engine_spells_no_wire_field() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine"),
        &mut files,
    );
    assert!(files.len() > 5, "the engine's sources were found");
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a source file is readable");
        for (n, line) in text.lines().enumerate() {
            let code = code(line);
            for name in WIRE_NAMES.iter().filter(|name| code.contains(**name)) {
                found.push(format!("{}:{}: {name}", file.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "wire field names in the engine:\n{}",
        found.join("\n")
    );
}

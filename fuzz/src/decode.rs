//! The signaling frame decoder on any text: it never panics, refuses what is above the limit,
//! answers every refusal with a message, and what it accepts is fit for the rest of the
//! server: identifiers are non-empty, hold no control character, are echoed as valid JSON,
//! and come back from that JSON as they were (a snapshot keeps them that way across a
//! restart); raw `msg`/`data` fields are single JSON values; a frame read as a JSON object
//! is one for serde_json too.

use rtcroom_protocol::{
    DEFAULT_MAX_FRAME, DecodeError, Ident, Identity, Refusal, Request, ResultCode, decode,
};

/// A small limit as well as the default, so that the size check is reached by short inputs.
const SMALL_LIMIT: usize = 64;

pub fn check(data: &[u8]) {
    // Only UTF-8 reaches the decoder: the WebSocket reader refuses other text (1007).
    let Ok(frame) = std::str::from_utf8(data) else {
        return;
    };
    let full = decode(frame, DEFAULT_MAX_FRAME);
    let small = decode(frame, SMALL_LIMIT);
    if frame.len() > SMALL_LIMIT {
        assert!(
            matches!(small, Err(DecodeError::TooLarge { len, limit: SMALL_LIMIT }) if len == frame.len()),
            "a frame above the limit was not refused as too large: {small:?}"
        );
    } else {
        assert_eq!(
            small, full,
            "the limit changed how a frame within it decodes"
        );
    }
    assert_eq!(
        decode(frame, DEFAULT_MAX_FRAME),
        full,
        "decoding is not deterministic"
    );
    // What the decoder reads as a JSON object is JSON for serde_json too (the decoder's own
    // scan of the frame must never let through what serde_json would refuse).
    if !matches!(
        full,
        Err(DecodeError::NotJson(_) | DecodeError::NotObject | DecodeError::TooLarge { .. })
    ) {
        assert!(
            serde_json::from_str::<&serde_json::value::RawValue>(frame).is_ok(),
            "a frame that is not JSON was read: {full:?}"
        );
    }
    match &full {
        Ok(req) => check_request(req),
        Err(e) => check_error(e),
    }
}

fn check_error(e: &DecodeError) {
    let refusal = Refusal::undecodable(e);
    assert_ne!(refusal.code, ResultCode::Ok, "a refusal with result 0");
    assert!(!refusal.desc.is_empty(), "a refusal that says nothing");
    match e {
        DecodeError::UnknownCmd(name) => {
            assert!(
                name.chars().count() <= 64,
                "an unknown cmd echoed at length"
            )
        }
        DecodeError::Invalid { echo, .. } => check_identity(echo),
        _ => {}
    }
}

fn check_request(req: &Request) {
    let raw: Vec<&str> = match req {
        Request::Join(j) => {
            check_ident(&j.room_id);
            j.uid.iter().for_each(check_ident);
            for text in [
                &j.room_name,
                &j.uname,
                &j.os_name,
                &j.browser,
                &j.sdk_info,
                &j.token,
            ] {
                assert!(
                    text.as_ref().is_none_or(|t| !t.is_empty()),
                    "an empty text field kept"
                );
            }
            assert!(!j.app_id.is_empty(), "a join without an appId");
            assert!(
                !j.app_id.chars().any(char::is_control),
                "an appId with a control character"
            );
            Vec::new()
        }
        Request::Leave(r) => identity(&r.id),
        Request::KeepLive(r) => identity(&r.id),
        Request::Offer(r) => {
            check_ident(&r.remote_uid);
            with(identity(&r.id), r.msg.get())
        }
        Request::Answer(r) => {
            check_ident(&r.remote_uid);
            with(identity(&r.id), r.msg.get())
        }
        Request::Candidate(r) => {
            check_ident(&r.remote_uid);
            with(identity(&r.id), r.msg.get())
        }
        Request::TurnTalkType(r) => {
            assert!(r.index <= 3, "turnTalkType index {}", r.index);
            identity(&r.id)
        }
        Request::PeerConnected(r) => {
            check_ident(&r.remote_uid);
            identity(&r.id)
        }
        Request::ReportInfo(r) => {
            let mut raw = identity(&r.id);
            raw.extend(r.data1.iter().chain(&r.data2).map(|d| d.get()));
            raw
        }
        Request::ReportStats(r) => {
            r.remote_uid.iter().for_each(check_ident);
            assert!(
                r.remote_uid.is_some() || r.sub_session_id.is_some(),
                "reportStats without remoteUid or subSessionId"
            );
            identity(&r.id)
        }
        Request::UpdateToken(r) => {
            assert!(!r.token.is_empty(), "updateToken without a token");
            identity(&r.id)
        }
    };
    for json in raw {
        assert!(
            is_one_json_value(json),
            "a raw field is not one JSON value: {json:?}"
        );
        assert_ne!(json, "null", "a null raw field kept");
    }
}

/// Checks the identity fields and hands back no raw JSON of its own.
fn identity(id: &Identity) -> Vec<&'static str> {
    check_identity(id);
    Vec::new()
}

fn with<'a>(mut raw: Vec<&'a str>, json: &'a str) -> Vec<&'a str> {
    raw.push(json);
    raw
}

fn check_identity(id: &Identity) {
    id.room_id.iter().chain(&id.uid).for_each(check_ident);
    assert!(
        id.app_id
            .as_ref()
            .is_none_or(|a| !a.chars().any(char::is_control)),
        "an appId with a control character"
    );
    for text in [&id.app_id, &id.session_id] {
        assert!(
            text.as_ref().is_none_or(|t| !t.is_empty()),
            "an empty text field kept"
        );
    }
}

/// An identifier is non-empty, its JSON is a string holding its key or a number written as
/// its key, and it reads back from that JSON unchanged.
fn check_ident(id: &Ident) {
    assert!(!id.key().is_empty(), "an empty identifier");
    assert!(
        !id.key().chars().any(char::is_control),
        "an identifier with a control character: {:?}",
        id.key()
    );
    let raw = id.raw_json();
    assert!(
        is_one_json_value(raw),
        "identifier JSON {raw:?} is not one JSON value"
    );
    if raw.starts_with('"') {
        let s: String = serde_json::from_str(raw).expect("a JSON string");
        assert_eq!(s, id.key(), "string identifier key");
    } else {
        // A number (any JSON number, also one beyond f64's range), keyed by its text.
        assert!(
            raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()),
            "identifier JSON {raw:?} is neither a string nor a number"
        );
        assert_eq!(raw, id.key(), "number identifier key");
    }
    let back = Ident::from_json(raw)
        .unwrap_or_else(|| panic!("identifier {raw:?} does not read back from its JSON"));
    assert_eq!(
        back.key(),
        id.key(),
        "identifier {raw:?} read back as another key"
    );
    assert_eq!(
        back.raw_json(),
        raw,
        "identifier {raw:?} read back as other JSON"
    );
}

/// Valid JSON text of one value, without surrounding whitespace (what serde_json's RawValue
/// accepts: any JSON number, also one beyond f64's range, which `Value` would refuse).
fn is_one_json_value(json: &str) -> bool {
    serde_json::value::RawValue::from_string(json.to_owned()).is_ok_and(|v| v.get() == json)
}

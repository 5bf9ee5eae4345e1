//! Client-chosen identifiers (`uid`, `roomId`) that are echoed in the JSON type they came in.

use serde::Serialize;
use serde_json::value::RawValue;
use std::fmt;
use std::sync::Arc;

/// A `uid` or `roomId`. Clients send them as strings or as numbers and adopt whatever the
/// server echoes, so the identifier keeps its original JSON text for output, and a canonical
/// key (the string value, or the number's digits) for comparison: `"22"` and `22` name the
/// same room. Cloning is cheap (one reference count).
#[derive(Clone)]
pub struct Ident(Arc<Inner>);

/// The JSON text, then the key when it is not a slice of that text (a string with escapes):
/// two allocations (this and the `Arc`) per identifier.
struct Inner {
    text: Box<str>,
    /// Where the JSON text ends in `text`.
    raw_len: usize,
    /// Where the key is in `text`: inside the JSON text, or after it.
    key: std::ops::Range<usize>,
}

impl Ident {
    /// An identifier that will be written as a JSON string.
    pub fn new(key: &str) -> Self {
        let raw = serde_json::to_string(key).expect("a string always serializes");
        Self::of_valid(&raw, key)
    }

    /// An identifier from the JSON text it was received as (a string or a number), as
    /// [`Self::raw_json`] gives it; `None` for any other text. For state kept across a
    /// restart, so that the identifier is echoed as it was first received.
    pub fn from_json(raw_json: &str) -> Option<Self> {
        if raw_json.starts_with('"') {
            let key: String = serde_json::from_str(raw_json).ok()?;
            Some(Self::of_valid(raw_json, &key))
        } else if raw_json.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            // A number is keyed by its text, as the decoder keys it, so that every number the
            // decoder accepts (`1E2`, `-0`, `1.50`, `1e400`) comes back as it was written.
            let raw = RawValue::from_string(raw_json.to_owned()).ok()?;
            (raw.get() == raw_json).then(|| Self::of_valid(raw_json, raw_json))
        } else {
            None
        }
    }

    /// An identifier from JSON text already checked to be one JSON string or number
    /// (`raw_json`), and its key: the string's value, or the number's text. The decoder
    /// calls it with what its scan checked, so the text is not parsed a second time.
    pub(crate) fn of_valid(raw_json: &str, key: &str) -> Self {
        let sliced = raw_json
            .strip_prefix('"')
            .map_or(raw_json, |r| r.strip_suffix('"').unwrap_or(r));
        let (text, at) = if sliced == key {
            (Box::from(raw_json), usize::from(raw_json.starts_with('"')))
        } else {
            let mut both = String::with_capacity(raw_json.len() + key.len());
            both.push_str(raw_json);
            both.push_str(key);
            (both.into_boxed_str(), raw_json.len())
        };
        Self(Arc::new(Inner {
            text,
            raw_len: raw_json.len(),
            key: at..at + key.len(),
        }))
    }

    /// The canonical key used to compare identifiers.
    #[inline]
    pub fn key(&self) -> &str {
        &self.0.text[self.0.key.clone()]
    }

    /// The JSON text the identifier was received as (`"22"` or `22`).
    #[inline]
    pub fn raw_json(&self) -> &str {
        &self.0.text[..self.0.raw_len]
    }
}

impl PartialEq for Ident {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Ident {}

impl fmt::Debug for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw_json())
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl Serialize for Ident {
    /// Verbatim, through serde_json's `RawValue`, which checks the text again: the messages
    /// a relay writes ([`crate::ServerMsg::write_json`]) copy [`Self::raw_json`] instead.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue =
            serde_json::from_str(self.raw_json()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identifier_comes_back_from_its_json_text() {
        for raw in ["\"22\"", "22", "\"a\\\"b\""] {
            let id = Ident::from_json(raw).expect("valid identifier text");
            assert_eq!(id.raw_json(), raw);
        }
        assert_eq!(Ident::from_json("22").unwrap(), Ident::new("22"));
        assert_eq!(Ident::from_json("\"a\\\"b\"").unwrap().key(), "a\"b");
        for bad in [
            "", "x", "{}", "[1]", "22 ", "null", "\"open", "-", "1x", "01",
        ] {
            assert!(Ident::from_json(bad).is_none(), "{bad}");
        }
    }

    /// Found by the `decode` fuzz target: the decoder keys a number by its text, and a
    /// number not written the way serde_json writes it back (`1E2`, `-0`) did not come back
    /// from its JSON, so one member with such a uid made the whole rooms snapshot unreadable
    /// at the next start.
    #[test]
    fn every_number_the_decoder_accepts_comes_back_from_its_json_text() {
        for raw in [
            "1E2",
            "-0",
            "1.50",
            "1e400",
            "99999999999999999999",
            "-12.5e-3",
        ] {
            let frame = format!(r#"{{"cmd":"leave","uid":{raw}}}"#);
            let Ok(crate::Request::Leave(leave)) = crate::decode(&frame, 1024) else {
                panic!("{frame} did not decode")
            };
            let uid = leave.id.uid.expect("a uid");
            assert_eq!((uid.key(), uid.raw_json()), (raw, raw));
            let back = Ident::from_json(uid.raw_json()).expect("comes back from its JSON");
            assert_eq!((back.key(), back.raw_json()), (raw, raw));
        }
    }
}

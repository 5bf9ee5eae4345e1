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

struct Inner {
    key: Box<str>,
    raw: Box<RawValue>,
}

impl Ident {
    /// An identifier that will be written as a JSON string.
    pub fn new(key: &str) -> Self {
        let raw = serde_json::to_string(key).expect("a string always serializes");
        Self::from_parts(key.into(), raw)
    }

    /// An identifier from the JSON text it was received as (a string or a number), as
    /// [`Self::raw_json`] gives it; `None` for any other text. For state kept across a
    /// restart, so that the identifier is echoed as it was first received.
    pub fn from_json(raw_json: &str) -> Option<Self> {
        if raw_json.starts_with('"') {
            let key: String = serde_json::from_str(raw_json).ok()?;
            Some(Self::from_parts(key.into(), raw_json.to_owned()))
        } else if raw_json.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            // A number is keyed by its text, as the decoder keys it, so that every number the
            // decoder accepts (`1E2`, `-0`, `1.50`, `1e400`) comes back as it was written.
            let raw = RawValue::from_string(raw_json.to_owned()).ok()?;
            (raw.get() == raw_json).then(|| {
                Self(Arc::new(Inner {
                    key: raw_json.into(),
                    raw,
                }))
            })
        } else {
            None
        }
    }

    pub(crate) fn from_parts(key: Box<str>, raw_json: String) -> Self {
        let raw = RawValue::from_string(raw_json).expect("caller passes valid JSON");
        Self(Arc::new(Inner { key, raw }))
    }

    /// The canonical key used to compare identifiers.
    pub fn key(&self) -> &str {
        &self.0.key
    }

    /// The JSON text the identifier was received as (`"22"` or `22`).
    pub fn raw_json(&self) -> &str {
        self.0.raw.get()
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
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.raw.serialize(s)
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

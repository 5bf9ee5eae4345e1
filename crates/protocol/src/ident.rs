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
        } else {
            let n: serde_json::Number = serde_json::from_str(raw_json).ok()?;
            (n.to_string() == raw_json)
                .then(|| Self::from_parts(raw_json.into(), raw_json.to_owned()))
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
        for bad in ["", "x", "{}", "[1]", "22 ", "null", "\"open"] {
            assert!(Ident::from_json(bad).is_none(), "{bad}");
        }
    }
}

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

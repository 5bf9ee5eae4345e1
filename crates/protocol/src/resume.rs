//! The resume key: a member's proof, across connections, that it is the same member.

use serde::{Serialize, Serializer};
use std::fmt;

/// A secret handed to a member in `respJoin` (`resumeKey`) and shown back in a later `join`
/// to take the member's place again after its connection dropped. It is a credential, so
/// its `Debug` and `Display` never show it (a log line with a request or a response in it
/// stays free of keys), and comparing two keys takes the same time wherever they differ.
#[derive(Clone, Default)]
pub struct ResumeKey(Box<str>);

impl ResumeKey {
    pub fn new(key: impl Into<Box<str>>) -> Self {
        Self(key.into())
    }

    /// The key from 128 random bits, as 32 lowercase hex digits.
    pub fn from_bits(hi: u64, lo: u64) -> Self {
        Self(format!("{hi:016x}{lo:016x}").into())
    }

    /// The key itself, for the wire and for a snapshot; never for a log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `other` is this key. The time taken depends on the lengths only, not on where
    /// the keys differ, so a client cannot find a key byte by byte by timing answers. An
    /// empty key matches nothing.
    pub fn matches(&self, other: &ResumeKey) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        if a.is_empty() || a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl PartialEq for ResumeKey {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other) || (self.is_empty() && other.is_empty())
    }
}

impl fmt::Debug for ResumeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("ResumeKey(none)")
        } else {
            f.write_str("ResumeKey(…)")
        }
    }
}

impl Serialize for ResumeKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_only_themselves_and_never_show_in_debug() {
        let k = ResumeKey::from_bits(1, 2);
        assert_eq!(k.expose(), "00000000000000010000000000000002");
        assert!(k.matches(&ResumeKey::new("00000000000000010000000000000002")));
        assert!(!k.matches(&ResumeKey::new("00000000000000010000000000000003")));
        assert!(!k.matches(&ResumeKey::new("0000000000000001")));
        assert!(!ResumeKey::default().matches(&ResumeKey::default()));
        assert_eq!(format!("{k:?}"), "ResumeKey(…)");
    }
}

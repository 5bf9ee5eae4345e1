//! [`Text`]: the text a record shares with the engine's state.
//!
//! A record lives from the engine's effect until the writer has committed it, up to a second
//! or more, and is freed on another thread. Text copied into every record (eight strings per
//! join, seven per sub-session, two per quality report) was allocated among the members'
//! own long-lived allocations, and a page of the allocator stays resident for as long as one
//! member's string on it does: the record path cost idle members more memory than the records
//! themselves. A record's app, room, user, name and address therefore point at the text the
//! engine holds (a reference count, no allocation); only what the engine does not keep (a
//! join's `osName`, a report's codecs) is moved into the record from the request.

use rtcroom_protocol::Ident;
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// Immutable text, cheap to clone: an identifier's key ([`Ident`]), shared text, or a
/// constant. It compares, hashes, prints and serializes as the `str` it holds, as a `String`
/// does (a record's serde form is the same with `Text` as with `String`).
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
    /// The identifier's key.
    Ident(Ident),
}

impl Text {
    /// The empty text (no allocation).
    pub const EMPTY: Text = Text(Repr::Static(""));

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Shared(s) => s,
            Repr::Ident(id) => id.key(),
        }
    }
}

impl Default for Text {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Deref for Text {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self
    }
}

impl From<&str> for Text {
    /// A copy of `s` (none for the empty text).
    fn from(s: &str) -> Self {
        if s.is_empty() {
            Self::EMPTY
        } else {
            Self(Repr::Shared(Arc::from(s)))
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self::from(s.as_str())
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Self {
        Self::from(s.as_str())
    }
}

impl From<Ident> for Text {
    /// The identifier's key, sharing its text.
    fn from(id: Ident) -> Self {
        Self(Repr::Ident(id))
    }
}

impl From<&Ident> for Text {
    /// The identifier's key, sharing its text.
    fn from(id: &Ident) -> Self {
        Self(Repr::Ident(id.clone()))
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Self::from(&*s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_the_str_it_holds_whatever_holds_it() {
        let id = Ident::from_json(r#""a\"b""#).expect("an identifier");
        let all = [
            Text::from("a\"b"),
            Text::from(String::from("a\"b")),
            Text::from(&id),
        ];
        for t in &all {
            assert_eq!(t, &all[0]);
            assert_eq!(t.as_str(), "a\"b");
            assert_eq!(format!("{t:?}"), format!("{:?}", "a\"b"));
        }
        assert_eq!(Text::from(""), Text::EMPTY);
        assert_eq!(Text::default().as_str(), "");
    }

    /// Sharing: a clone of an identifier's key, or of shared text, points at the same bytes.
    #[test]
    fn a_clone_shares_its_text() {
        let id = Ident::new("user-1");
        let t = Text::from(&id);
        assert!(std::ptr::eq(t.as_str(), id.key()));
        let shared = Text::from("10.0.0.1");
        let copy = shared.clone();
        assert!(std::ptr::eq(shared.as_str(), copy.as_str()));
    }
}

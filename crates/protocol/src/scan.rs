//! A client frame split into its top-level members, each value kept as the JSON text it
//! arrived as, checked as JSON but not parsed.
//!
//! Why not serde_json for this: the `msg` of an offer is a JSON string holding the JSON of an
//! SDP, 3–12 KB with an escape (`\\r\\n`, `\"`) every ~25 bytes, and serde_json's string scan
//! stops at each one; it was about 44,000 of the ~78,000 instructions a relayed offer cost
//! the server (docs/benchmarks.md). A string is checked here in two passes that never stop
//! at an escape: `memchr` (vectorized, the CPU's best instructions picked at run time) finds
//! its closing quote, then one branch-free pass, which the compiler vectorizes, looks for
//! control characters and for a backslash before anything but `\`, `"`, `n` or `r`. A string
//! that has one (`\t`, `\u00e9`, a raw tab) is checked again byte by byte, so every JSON
//! string is still accepted and every invalid one refused. Values other than strings are
//! short and read by serde_json's own `RawValue`.
//!
//! The rules are serde_json's: a string holds no control character (U+0000–U+001F) and only
//! the escapes JSON defines (`\uXXXX` with four hex digits; which code point it names is
//! checked only where a string is read, not here, as serde_json's `RawValue` does).
//! `tests::agrees_with_serde_json` holds the two to the same verdicts.

use memchr::memchr;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Why a frame is not a JSON object whose members could be listed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not one valid JSON object (serde_json says where).
    Syntax,
    /// `each` refused a member.
    Member,
}

/// Call `each(key, value)` for every member of the JSON object `frame` (JSON whitespace
/// around it allowed, nothing else), in order, with the key unescaped and the value as its
/// exact JSON text. The whole frame is checked as JSON, members after a refused one too.
pub(crate) fn members<'a>(
    frame: &'a str,
    mut each: impl FnMut(&str, &'a str) -> bool,
) -> Result<(), Refused> {
    let b = frame.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err(Refused::Syntax);
    }
    i = skip_ws(b, i + 1);
    let mut refused = false;
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return Err(Refused::Syntax);
            }
            let key_end = string_end(b, i + 1).ok_or(Refused::Syntax)?;
            let key = key_text(&frame[i..key_end]).ok_or(Refused::Syntax)?;
            i = skip_ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return Err(Refused::Syntax);
            }
            i = skip_ws(b, i + 1);
            let value_end = value_end(frame, i).ok_or(Refused::Syntax)?;
            refused |= !each(&key, &frame[i..value_end]);
            i = skip_ws(b, value_end);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return Err(Refused::Syntax),
            }
        }
    }
    if skip_ws(b, i) != b.len() {
        return Err(Refused::Syntax);
    }
    if refused {
        return Err(Refused::Member);
    }
    Ok(())
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The text of a key given as its JSON string (quotes included), unescaped when it holds an
/// escape; `None` when the escapes do not make text (a lone surrogate).
fn key_text(raw: &str) -> Option<Cow<'_, str>> {
    if raw.contains('\\') {
        serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(&raw[1..raw.len() - 1]))
    }
}

/// Where the JSON value that starts at `i` ends; `None` when none starts there.
fn value_end(frame: &str, i: usize) -> Option<usize> {
    let b = frame.as_bytes();
    if *b.get(i)? == b'"' {
        return string_end(b, i + 1);
    }
    let mut de = serde_json::Deserializer::from_str(frame.get(i..)?);
    let raw = <&RawValue>::deserialize(&mut de).ok()?;
    Some(i + raw.get().len())
}

/// The end (just past its closing quote) of the JSON string whose text begins at `start`,
/// just after its opening quote; `None` when it does not end or is not a valid JSON string.
pub(crate) fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut from = start;
    let close = loop {
        let quote = from + memchr(b'"', b.get(from..)?)?;
        // A quote after an odd number of backslashes is escaped: the string goes on.
        let backslashes = b[start..quote]
            .iter()
            .rev()
            .take_while(|&&c| c == b'\\')
            .count();
        if backslashes % 2 == 0 {
            break quote;
        }
        from = quote + 1;
    };
    let text = &b[start..close];
    (plain(text) || escapes_valid(text)).then_some(close + 1)
}

/// Whether `text` (a string's bytes between its quotes, with no unescaped quote) surely is
/// valid: no control character, and nothing but `\`, `"`, `n` or `r` after a backslash.
/// Written without branches in the loop so that it is vectorized; `false` only means "look
/// closer" ([`escapes_valid`]): `\\t` (a backslash, then a `t`) is valid and answered `false`.
fn plain(text: &[u8]) -> bool {
    let Some((&first, rest)) = text.split_first() else {
        return true;
    };
    let bad = rest
        .iter()
        .zip(text)
        .fold(u8::from(first < 0x20), |bad, (&c, &before)| {
            let odd_escape = before == b'\\' && !matches!(c, b'\\' | b'"' | b'n' | b'r');
            bad | u8::from(c < 0x20) | u8::from(odd_escape)
        });
    bad == 0
}

/// Whether `text` (a string's bytes between its quotes, with no unescaped quote) holds no
/// control character and only the escapes JSON defines, byte by byte.
fn escapes_valid(text: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&c) = text.get(i) {
        i += match c {
            0..0x20 => return false,
            b'\\' => match text.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
                Some(b'u')
                    if text
                        .get(i + 2..i + 6)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                {
                    6
                }
                _ => return false,
            },
            _ => 1,
        };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(frame: &str) -> Result<Vec<(String, String)>, Refused> {
        let mut out = Vec::new();
        members(frame, |k, v| {
            out.push((k.to_owned(), v.to_owned()));
            true
        })
        .map(|()| out)
    }

    #[test]
    fn members_come_with_their_exact_text() {
        let got =
            listed(" {\"a\" : 1 ,\"b\":\"x\\\"y\", \"c\":{\"d\":[1, 2]},\"e\":null}\n").unwrap();
        let want = [
            ("a", "1"),
            ("b", "\"x\\\"y\""),
            ("c", "{\"d\":[1, 2]}"),
            ("e", "null"),
        ];
        assert_eq!(
            got,
            want.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
        );
        assert_eq!(listed("{}").unwrap(), vec![]);
        assert_eq!(
            listed(r#"{"m\u0073g":2}"#).unwrap(),
            vec![("msg".to_owned(), "2".to_owned())]
        );
    }

    #[test]
    fn strings_end_at_their_first_unescaped_quote() {
        for (text, end) in [
            (r#""""#, 2),
            (r#""a\\"b"#, 5),
            (r#""a\"b"c"#, 6),
            (r#""\\\"\\"x"#, 8),
            (r#""é\u00e9\t\/\b\f"z"#, 18),
        ] {
            assert_eq!(string_end(text.as_bytes(), 1), Some(end), "{text}");
        }
        for text in [
            "\"a",
            "\"a\\\"",
            "\"\u{1}\"",
            "\"a\tb\"",
            r#""\x""#,
            r#""\u12g4""#,
            r#""\u12""#,
            r#""\"#,
        ] {
            assert_eq!(string_end(text.as_bytes(), 1), None, "{text}");
        }
    }

    #[test]
    fn a_frame_that_is_not_one_object_is_refused() {
        for frame in [
            "",
            "[]",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\":1}}",
            "{\"a\":1} x",
            "{\"a\":tru}",
            "{\"a\":1x}",
            "{a:1}",
            "{\"a\":\"\u{0}\"}",
            "\u{a0}{}",
        ] {
            assert_eq!(listed(frame), Err(Refused::Syntax), "{frame:?}");
        }
    }

    /// What serde_json's `RawValue` of one string accepts, and nothing else.
    fn serde_string_end(text: &str) -> Option<usize> {
        let mut de = serde_json::Deserializer::from_str(text);
        <&RawValue>::deserialize(&mut de)
            .ok()
            .map(|raw| raw.get().len())
    }

    proptest::proptest! {
        /// Strings made of the characters that matter (quotes, backslashes, the letters of
        /// escapes, hex digits, control characters) end where serde_json says, or are
        /// refused where it refuses them.
        #[test]
        fn agrees_with_serde_json(body in "[\"\\\\nrtbfu/0aF9g\\x00\\x1f\\t é]{0,40}") {
            let text = format!("\"{body}");
            proptest::prop_assert_eq!(
                string_end(text.as_bytes(), 1),
                serde_string_end(&text),
                "{:?}", text
            );
        }

        /// Objects: accepted exactly when serde_json accepts them.
        #[test]
        fn objects_agree_with_serde_json(body in "[{}\\[\\]:,\" \\\\a1n]{0,24}") {
            let frame = format!("{{{body}");
            let ours = listed(&frame).is_ok();
            let serde = serde_json::from_str::<serde::de::IgnoredAny>(&frame).is_ok();
            proptest::prop_assert_eq!(ours, serde, "{:?}", frame);
        }
    }
}

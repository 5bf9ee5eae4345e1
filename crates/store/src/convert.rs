//! Values as the columns hold them: widths, integer ranges and times.
//!
//! MySQL (strict mode) and PostgreSQL refuse a string longer than its column or an integer
//! out of its range, and a refused record would stop the writer's batch; SQLite accepts
//! anything. So every value is fitted here, the same way for all three backends, before it
//! is bound. The widths are the ones the migrations declare.

use crate::db::Val;
use chrono::{DateTime, NaiveDateTime, Utc};
use rtcroom_core::Millis;
use ulid::Ulid;

/// Session and sub-session ids, record ids: ULIDs (26 characters) in `VARCHAR(32)`.
pub(crate) const ID: usize = 32;
/// App, room and user ids and names: the room server accepts up to 64 characters.
pub(crate) const NAME: usize = 64;
/// os_name, browser, sdk_info (the engine cuts them to 64 characters too).
pub(crate) const INFO: usize = 64;
/// IP addresses in text form (IPv6 takes up to 45 characters).
pub(crate) const IP: usize = 64;
/// The ICE server's host.
pub(crate) const ICE: usize = 255;
pub(crate) const CODEC: usize = 32;
pub(crate) const CONNECT_TYPE: usize = 10;
/// A client's `desc`: MySQL's `TEXT` holds 65,535 bytes, 16,000 four-byte characters fit.
pub(crate) const DESC: usize = 16_000;
/// `data1`/`data2`: a signaling frame is at most 64 KiB, so this only guards the column.
pub(crate) const DATA: usize = 65_536;

/// `s` cut to `max` characters, without NUL characters (PostgreSQL refuses them in text).
pub(crate) fn clip(s: &str, max: usize) -> String {
    // Nearly every value fits as it is: no more bytes than `max` means no more characters.
    if s.len() <= max && !s.contains('\0') {
        return s.to_owned();
    }
    s.chars().filter(|&c| c != '\0').take(max).collect()
}

/// [`clip`] without a copy when the value fits as it is.
pub(crate) fn clipped(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max && !s.contains('\0') {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(clip(s, max))
}

pub(crate) fn str_val(s: &str, max: usize) -> Val {
    Val::Str(Some(clip(s, max)))
}

/// A ULID as its 26-character text (always within [`ID`]), made in place.
pub(crate) fn id_val(id: Ulid) -> Val {
    let mut buf = [0; ulid::ULID_LEN];
    Val::Str(Some(id.array_to_str(&mut buf).to_owned()))
}

/// An `INT` column (bitrates, sizes, cost, result codes): clamped into 32 bits.
pub(crate) fn int_val(v: i64) -> Val {
    Val::I64(Some(int_of(v)))
}

/// [`int_val`]'s number.
pub(crate) fn int_of(v: i64) -> i64 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX))
}

/// A `TINYINT` column (user and talk types).
pub(crate) fn tiny_val(v: i64) -> Val {
    Val::I64(Some(v.clamp(i64::from(i8::MIN), i64::from(i8::MAX))))
}

/// A `BIGINT` count of seconds.
pub(crate) fn secs_val(v: u64) -> Val {
    Val::I64(Some(i64::try_from(v).unwrap_or(i64::MAX)))
}

/// A loss rate: finite and not negative (the protocol crate checks; this keeps NaN out of
/// a column whatever the caller did).
pub(crate) fn rate_val(v: f32) -> Val {
    Val::F32(Some(rate_of(v)))
}

/// [`rate_val`]'s number.
pub(crate) fn rate_of(v: f32) -> f32 {
    if v.is_finite() { v.max(0.0) } else { 0.0 }
}

/// The latest time every backend can hold (MySQL's `DATETIME` ends with year 9999).
fn max_time() -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp_millis(253_402_300_799_999)
        .expect("in range")
        .naive_utc()
}

/// A server time (Unix ms, UTC) as the naive UTC datetime the columns store.
pub(crate) fn db_time(m: Millis) -> NaiveDateTime {
    i64::try_from(m.0)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|t| t.naive_utc())
        .filter(|t| *t <= max_time())
        .unwrap_or_else(max_time)
}

pub(crate) fn time_val(m: Millis) -> Val {
    Val::Time(Some(db_time(m)))
}

/// A stored time back as Unix milliseconds.
pub(crate) fn millis_of(t: NaiveDateTime) -> Millis {
    Millis(u64::try_from(t.and_utc().timestamp_millis()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_counts_characters_and_drops_nul() {
        assert_eq!(clip("ab\0c", 10), "abc");
        assert_eq!(clip("用户名字", 2), "用户");
        assert_eq!(clip("", 3), "");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("a\0b", 3), "ab");
        assert_eq!(clip("用户", 6), "用户");
    }

    #[test]
    fn times_round_trip_at_millisecond_precision_and_clamp() {
        let m = Millis(1_700_000_123_456);
        assert_eq!(millis_of(db_time(m)), m);
        assert_eq!(db_time(Millis(u64::MAX)), max_time());
        assert_eq!(int_val(i64::MAX), Val::I64(Some(i64::from(i32::MAX))));
        assert_eq!(tiny_val(-1000), Val::I64(Some(-128)));
        assert_eq!(rate_val(f32::NAN), Val::F32(Some(0.0)));
    }
}

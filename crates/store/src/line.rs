//! The line format of the spool and the journal: one JSON object per entry, in the order the
//! entries were queued.
//!
//! Version 2, written by this build: an envelope around the entry,
//! `{"v":2,"seq":7,"record":{"k":"SessionOpen",...}}`, or `"close_open":ms` (the restart
//! recovery) or `"checkpoint":ms` (stamp the open rows alive) in place of `record`. The record
//! is core's own serde form (`rtcroom-core`'s `serde` feature): no mirror of its fields here.
//! `seq` numbers entries across runs, so that the journal replayed after a crash and the
//! spool can be told apart where they overlap (see `journal`).
//!
//! Version 1, written by earlier builds: the record's fields beside `v` and `k`, no `seq`;
//! `{"v":1,"k":"CloseOpen","now":ms}` for the recovery. Still read, as sequence number 0
//! (older than anything numbered). A reader refuses a version it does not know rather than
//! guess.

use crate::apply::Item;
use rtcroom_core::{Millis, Quality, Record};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

const VERSION: u32 = 2;

/// An item and its place in the queue.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub seq: u64,
    pub item: Item,
}

impl Entry {
    pub(crate) fn item(&self) -> &Item {
        &self.item
    }
}

#[derive(Serialize)]
struct Out<'a> {
    v: u32,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a Record>,
    #[serde(skip_serializing_if = "Option::is_none")]
    close_open: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkpoint: Option<Millis>,
}

#[derive(Deserialize)]
struct In {
    seq: u64,
    record: Option<Record>,
    close_open: Option<Millis>,
    checkpoint: Option<Millis>,
}

/// Only the version, to choose the reader.
#[derive(Deserialize)]
struct Version {
    v: u32,
}

/// Why a line could not be read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LineError {
    #[error("not a spool line: {0}")]
    Json(#[from] serde_json::Error),
    #[error("spool format version {0}, this build reads 1 and {VERSION}")]
    Version(u32),
    #[error("a spool line without an entry")]
    Empty,
}

/// `entry` as one line of JSON, without the newline.
pub(crate) fn encode(entry: &Entry) -> String {
    let mut out = String::new();
    encode_into(entry, &mut out);
    out
}

/// Appends `entry` as one line of JSON, without the newline, to `out`.
///
/// A quality record (nearly every line under load: one per `reportStats`) is written by
/// hand, byte for byte what serde writes (`quality_lines_are_what_serde_writes`), which
/// costs a fraction of serde's field-by-field path; the other entries go through serde.
pub(crate) fn encode_into(entry: &Entry, out: &mut String) {
    if let Item::Record(Record::Quality(q)) = &entry.item {
        quality_line(entry.seq, q, out);
        return;
    }
    out.push_str(&encode_serde(entry));
}

/// `entry` through serde: the format's definition, which [`quality_line`] must match.
fn encode_serde(entry: &Entry) -> String {
    let mut out = Out {
        v: VERSION,
        seq: entry.seq,
        record: None,
        close_open: None,
        checkpoint: None,
    };
    match &entry.item {
        Item::Record(r) => out.record = Some(r),
        Item::CloseOpen(now) => out.close_open = Some(*now),
        Item::Checkpoint(now) => out.checkpoint = Some(*now),
    }
    serde_json::to_string(&out).expect("spool lines hold only strings and numbers")
}

/// A quality record's line, as serde writes it: the envelope, core's `{"k":"Quality",...}`
/// with the fields in declaration order, ids as ULID text, rates through `zmij` (`null`
/// when not finite, as serde_json writes them) and integers through `itoa`.
fn quality_line(seq: u64, q: &Quality, out: &mut String) {
    let s = &q.stats;
    let mut int = itoa::Buffer::new();
    out.reserve(640);
    out.push_str("{\"v\":");
    out.push_str(int.format(VERSION));
    out.push_str(",\"seq\":");
    out.push_str(int.format(seq));
    out.push_str(",\"record\":{\"k\":\"Quality\",\"id\":\"");
    push_ulid(out, q.id);
    out.push_str("\",\"sub_session_id\":\"");
    push_ulid(out, q.sub_session_id);
    out.push_str("\",\"session_id\":\"");
    push_ulid(out, q.session_id);
    out.push_str("\",\"user_id\":");
    push_str(out, &q.user_id);
    out.push_str(",\"remote_user_id\":");
    push_str(out, &q.remote_user_id);
    out.push_str(",\"create_time\":");
    out.push_str(int.format(q.create_time.0));
    out.push_str(",\"stats\":{\"aud_send_lost_rate\":");
    push_f32(out, s.aud_send_lost_rate);
    out.push_str(",\"aud_send_bitrate\":");
    out.push_str(int.format(s.aud_send_bitrate));
    out.push_str(",\"aud_rcv_lost_rate\":");
    push_f32(out, s.aud_rcv_lost_rate);
    out.push_str(",\"aud_rcv_bitrate\":");
    out.push_str(int.format(s.aud_rcv_bitrate));
    out.push_str(",\"vid_send_lost_rate\":");
    push_f32(out, s.vid_send_lost_rate);
    out.push_str(",\"vid_send_bitrate\":");
    out.push_str(int.format(s.vid_send_bitrate));
    out.push_str(",\"send_width\":");
    out.push_str(int.format(s.send_width));
    out.push_str(",\"send_height\":");
    out.push_str(int.format(s.send_height));
    out.push_str(",\"send_framerate_sent\":");
    out.push_str(int.format(s.send_framerate_sent));
    out.push_str(",\"send_codec\":");
    push_str(out, &s.send_codec);
    out.push_str(",\"vid_rcv_lost_rate\":");
    push_f32(out, s.vid_rcv_lost_rate);
    out.push_str(",\"vid_rcv_bitrate\":");
    out.push_str(int.format(s.vid_rcv_bitrate));
    out.push_str(",\"recv_width\":");
    out.push_str(int.format(s.recv_width));
    out.push_str(",\"recv_height\":");
    out.push_str(int.format(s.recv_height));
    out.push_str(",\"recv_framerate_recv\":");
    out.push_str(int.format(s.recv_framerate_recv));
    out.push_str(",\"recv_codec\":");
    push_str(out, &s.recv_codec);
    out.push_str("}}}");
}

fn push_ulid(out: &mut String, id: Ulid) {
    let mut buf = [0; ulid::ULID_LEN];
    out.push_str(id.array_to_str(&mut buf));
}

fn push_f32(out: &mut String, v: f32) {
    if v.is_finite() {
        out.push_str(zmij::Buffer::new().format_finite(v));
    } else {
        out.push_str("null");
    }
}

/// `s` as a JSON string. Text without a byte JSON escapes is copied as it is; anything else
/// goes through serde_json, so that the escapes are serde's.
fn push_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).expect("a string always serializes"));
    }
}

/// The sequence number of a line, read without the entry: 0 for a version 1 line (and for
/// one that cannot be read, which the reader sets aside).
pub(crate) fn seq_of(line: &str) -> u64 {
    #[derive(Deserialize)]
    struct Seq {
        seq: Option<u64>,
    }
    serde_json::from_str::<Seq>(line)
        .ok()
        .and_then(|s| s.seq)
        .unwrap_or(0)
}

/// A line back; a version 1 line gets sequence number 0.
pub(crate) fn decode(line: &str) -> Result<Entry, LineError> {
    match serde_json::from_str::<Version>(line)?.v {
        1 => decode_v1(line),
        VERSION => {
            let l: In = serde_json::from_str(line)?;
            let item = match (l.record, l.close_open, l.checkpoint) {
                (Some(r), None, None) => Item::Record(r),
                (None, Some(now), None) => Item::CloseOpen(now),
                (None, None, Some(now)) => Item::Checkpoint(now),
                _ => return Err(LineError::Empty),
            };
            Ok(Entry { seq: l.seq, item })
        }
        v => Err(LineError::Version(v)),
    }
}

/// Version 1: the record's own fields beside `v` (core's serde form is the same shape, so
/// the record reads straight from the line; `v` is ignored as an unknown field).
fn decode_v1(line: &str) -> Result<Entry, LineError> {
    #[derive(Deserialize)]
    #[serde(tag = "k")]
    enum Recovery {
        CloseOpen { now: Millis },
    }
    let item = if line.contains(r#""k":"CloseOpen""#) {
        let Recovery::CloseOpen { now } = serde_json::from_str(line)?;
        Item::CloseOpen(now)
    } else {
        Item::Record(serde_json::from_str(line)?)
    };
    Ok(Entry { seq: 0, item })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcroom_core::{
        ClientInfo, Quality, SessionClose, SessionOpen, SubSessionBegin, SubSessionConnect,
        SubSessionFinish, SubSessionOpen, SubStatus,
    };
    use rtcroom_protocol::{ConnectType, QualityStats};
    use ulid::Ulid;

    /// One record of each kind, as `tests/fixtures/spool-v1.jsonl` holds them.
    fn one_of_each() -> Vec<Item> {
        let id = |n: u128| Ulid::from_parts(1_700_000_000_000, n);
        let stats = QualityStats {
            aud_send_lost_rate: 0.25,
            aud_send_bitrate: 41,
            aud_rcv_lost_rate: 1.5,
            aud_rcv_bitrate: 39,
            vid_send_lost_rate: 2.75,
            vid_send_bitrate: 612,
            send_width: 640,
            send_height: 480,
            send_framerate_sent: 30,
            send_codec: "VP8".into(),
            vid_rcv_lost_rate: 0.125,
            vid_rcv_bitrate: 598,
            recv_width: 320,
            recv_height: 240,
            recv_framerate_recv: 24,
            recv_codec: "H264".into(),
        };
        let records = vec![
            Record::SessionOpen(SessionOpen {
                session_id: id(1),
                app_id: "app".into(),
                room_id: "房间".into(),
                user_id: "u1".into(),
                user_name: "name \"quoted\"\n".into(),
                user_type: 1,
                talk_type: -2,
                user_ip: "::1".into(),
                os_name: "Linux".into(),
                browser: "Chrome".into(),
                sdk_info: "web".into(),
                join_time: Millis(1),
            }),
            Record::SessionClose(SessionClose {
                session_id: id(1),
                leave_time: Millis(u64::MAX),
                duration_secs: 7,
                timed_out: true,
            }),
            Record::SubSessionOpen(SubSessionOpen {
                sub_session_id: id(2),
                session_id: id(1),
                app_id: "app".into(),
                room_id: "r".into(),
                user_id: "u1".into(),
                remote_user_id: "u2".into(),
                remote_user_name: "n2".into(),
                remote_user_ip: "10.0.0.2".into(),
                ice_ip: "turn.example".into(),
                created: Millis(3),
            }),
            Record::SubSessionBegin(SubSessionBegin {
                sub_session_id: id(2),
                begin_time: Millis(4),
            }),
            Record::SubSessionConnect(SubSessionConnect {
                sub_session_id: id(2),
                connect_time: Millis(5),
                connect_type: ConnectType::Stun,
            }),
            Record::SubSessionFinish(SubSessionFinish {
                sub_session_id: id(2),
                finish_time: Millis(6),
                duration_secs: 61,
                status: SubStatus::NeverConnectedTimedOut,
                cost_cents: 2,
            }),
            Record::Quality(Quality {
                id: id(3),
                sub_session_id: id(2),
                session_id: id(1),
                user_id: "u1".into(),
                remote_user_id: "u2".into(),
                create_time: Millis(7),
                stats,
            }),
            Record::ClientInfo(ClientInfo {
                id: id(4),
                session_id: id(1),
                app_id: "app".into(),
                room_id: "r".into(),
                user_id: "u1".into(),
                result: 11,
                desc: "boom".into(),
                data1: Some("{\"a\":[1,2]}".into()),
                data2: None,
                create_time: Millis(8),
            }),
        ];
        let mut items: Vec<Item> = records.into_iter().map(Item::Record).collect();
        items.push(Item::CloseOpen(Millis(9)));
        items
    }

    #[test]
    fn every_item_kind_survives_a_line() {
        let mut items = one_of_each();
        items.push(Item::Checkpoint(Millis(10)));
        for (seq, item) in items.into_iter().enumerate() {
            let entry = Entry {
                seq: seq as u64 + 1,
                item,
            };
            let line = encode(&entry);
            assert!(!line.contains('\n'), "{line}");
            assert!(line.starts_with(r#"{"v":2,"seq":"#), "{line}");
            assert_eq!(decode(&line).unwrap(), entry, "{line}");
        }
    }

    /// The hand-written quality line is serde's, whatever the values: escapes, non-ASCII
    /// text, non-finite and extreme numbers.
    #[test]
    fn quality_lines_are_what_serde_writes() {
        let base = one_of_each()
            .into_iter()
            .find_map(|i| match i {
                Item::Record(Record::Quality(q)) => Some(q),
                _ => None,
            })
            .expect("one_of_each holds a quality record");
        let texts = [
            "",
            "u1",
            "a\"b\\c",
            "tab\tnl\ncr\r\u{1}\u{1f}\u{7f}",
            "用户 é",
            "</script>",
        ];
        let rates = [0.0, -0.0, 0.1, 1e-9, 3.4e38, f32::NAN, f32::INFINITY, -1.5];
        let ints = [0, -1, i64::MIN, i64::MAX, 1_000_000_007];
        for (i, text) in texts.iter().enumerate() {
            for (j, rate) in rates.iter().enumerate() {
                let mut q = base.clone();
                q.id = Ulid::from_parts(u64::MAX >> 16, u128::MAX >> 48);
                q.user_id = (*text).into();
                q.remote_user_id = texts[(i + 1) % texts.len()].into();
                q.create_time = Millis(u64::MAX - j as u64);
                q.stats.aud_send_lost_rate = *rate;
                q.stats.vid_rcv_lost_rate = rates[(j + 3) % rates.len()];
                q.stats.send_codec = texts[(i + 2) % texts.len()].into();
                q.stats.recv_codec = (*text).into();
                q.stats.aud_send_bitrate = ints[j % ints.len()];
                q.stats.recv_framerate_recv = ints[(i + j) % ints.len()];
                let entry = Entry {
                    seq: u64::MAX - (i * 8 + j) as u64,
                    item: Item::Record(Record::Quality(q)),
                };
                let mut line = String::from("kept ");
                encode_into(&entry, &mut line);
                assert_eq!(line, format!("kept {}", encode_serde(&entry)));
            }
        }
    }

    /// Spool files written by the builds before the envelope (format 1) are still read: the
    /// fixture was written by such a build (one line per item kind).
    #[test]
    fn version_1_spool_lines_are_read() {
        let fixture = include_str!("../tests/fixtures/spool-v1.jsonl");
        let read: Vec<Entry> = fixture.lines().map(|l| decode(l).unwrap()).collect();
        let want: Vec<Entry> = one_of_each()
            .into_iter()
            .map(|item| Entry { seq: 0, item })
            .collect();
        assert_eq!(read, want);
    }

    #[test]
    fn unknown_versions_bad_ids_and_empty_envelopes_are_refused() {
        let line = encode(&Entry {
            seq: 1,
            item: Item::CloseOpen(Millis(1)),
        })
        .replace("\"v\":2", "\"v\":3");
        assert!(matches!(decode(&line), Err(LineError::Version(3))));
        let bad = r#"{"v":1,"k":"SubSessionBegin","sub_session_id":"nope","begin_time":1}"#;
        assert!(matches!(decode(bad), Err(LineError::Json(_))));
        let bad = r#"{"v":2,"seq":1,"record":{"k":"SubSessionBegin","sub_session_id":"nope","begin_time":1}}"#;
        assert!(matches!(decode(bad), Err(LineError::Json(_))));
        assert!(matches!(
            decode(r#"{"v":2,"seq":1}"#),
            Err(LineError::Empty)
        ));
    }
}

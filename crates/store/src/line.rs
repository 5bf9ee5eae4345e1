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
use rtcroom_core::{Millis, Record};
use serde::{Deserialize, Serialize};

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

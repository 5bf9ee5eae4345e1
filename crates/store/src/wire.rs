//! The spool's line format: one JSON object per record, in the order they were emitted.
//!
//! The engine's record types carry no serde (the core crate knows no JSON), so this module
//! mirrors them field by field. A line carries a format version `v`; a reader refuses a
//! version it does not know rather than guess.

use crate::apply::Item;
use rtcroom_core::{
    ClientInfo, Millis, Quality, Record, SessionClose, SessionOpen, SubSessionBegin,
    SubSessionConnect, SubSessionFinish, SubSessionOpen, SubStatus,
};
use rtcroom_protocol::{ConnectType, QualityStats};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Line {
    v: u32,
    #[serde(flatten)]
    item: WireItem,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "k")]
enum WireItem {
    SessionOpen {
        session_id: String,
        app_id: String,
        room_id: String,
        user_id: String,
        user_name: String,
        user_type: i64,
        talk_type: i64,
        user_ip: String,
        os_name: String,
        browser: String,
        sdk_info: String,
        join_time: u64,
    },
    SessionClose {
        session_id: String,
        leave_time: u64,
        duration_secs: u64,
        timed_out: bool,
    },
    SubSessionOpen {
        sub_session_id: String,
        session_id: String,
        app_id: String,
        room_id: String,
        user_id: String,
        remote_user_id: String,
        remote_user_name: String,
        remote_user_ip: String,
        ice_ip: String,
        created: u64,
    },
    SubSessionBegin {
        sub_session_id: String,
        begin_time: u64,
    },
    SubSessionConnect {
        sub_session_id: String,
        connect_time: u64,
        connect_type: String,
    },
    SubSessionFinish {
        sub_session_id: String,
        finish_time: u64,
        duration_secs: u64,
        status: u8,
        cost_cents: u64,
    },
    Quality {
        id: String,
        sub_session_id: String,
        session_id: String,
        user_id: String,
        remote_user_id: String,
        create_time: u64,
        stats: WireStats,
    },
    ClientInfo {
        id: String,
        session_id: String,
        app_id: String,
        room_id: String,
        user_id: String,
        result: i64,
        desc: String,
        data1: Option<String>,
        data2: Option<String>,
        create_time: u64,
    },
    CloseOpen {
        now: u64,
    },
}

#[derive(Serialize, Deserialize)]
struct WireStats {
    aud_send_lost_rate: f32,
    aud_send_bitrate: i64,
    aud_rcv_lost_rate: f32,
    aud_rcv_bitrate: i64,
    vid_send_lost_rate: f32,
    vid_send_bitrate: i64,
    send_width: i64,
    send_height: i64,
    send_framerate_sent: i64,
    send_codec: String,
    vid_rcv_lost_rate: f32,
    vid_rcv_bitrate: i64,
    recv_width: i64,
    recv_height: i64,
    recv_framerate_recv: i64,
    recv_codec: String,
}

/// Why a spool line could not be read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LineError {
    #[error("not a spool line: {0}")]
    Json(#[from] serde_json::Error),
    #[error("spool format version {0}, this build reads {VERSION}")]
    Version(u32),
    #[error("bad id {0:?}")]
    Id(String),
    #[error("bad sub-session status {0}")]
    Status(u8),
}

/// `item` as one line of JSON, without the newline.
pub(crate) fn encode(item: &Item) -> String {
    let line = Line {
        v: VERSION,
        item: to_wire(item),
    };
    serde_json::to_string(&line).expect("spool lines hold only strings and numbers")
}

pub(crate) fn decode(line: &str) -> Result<Item, LineError> {
    let l: Line = serde_json::from_str(line)?;
    if l.v != VERSION {
        return Err(LineError::Version(l.v));
    }
    from_wire(l.item)
}

fn id(s: &str) -> Result<Ulid, LineError> {
    Ulid::from_string(s).map_err(|_| LineError::Id(s.to_owned()))
}

fn to_wire(item: &Item) -> WireItem {
    let r = match item {
        Item::CloseOpen(now) => return WireItem::CloseOpen { now: now.0 },
        Item::Record(r) => r,
    };
    match r {
        Record::SessionOpen(r) => WireItem::SessionOpen {
            session_id: r.session_id.to_string(),
            app_id: r.app_id.clone(),
            room_id: r.room_id.clone(),
            user_id: r.user_id.clone(),
            user_name: r.user_name.clone(),
            user_type: r.user_type,
            talk_type: r.talk_type,
            user_ip: r.user_ip.clone(),
            os_name: r.os_name.clone(),
            browser: r.browser.clone(),
            sdk_info: r.sdk_info.clone(),
            join_time: r.join_time.0,
        },
        Record::SessionClose(r) => WireItem::SessionClose {
            session_id: r.session_id.to_string(),
            leave_time: r.leave_time.0,
            duration_secs: r.duration_secs,
            timed_out: r.timed_out,
        },
        Record::SubSessionOpen(r) => WireItem::SubSessionOpen {
            sub_session_id: r.sub_session_id.to_string(),
            session_id: r.session_id.to_string(),
            app_id: r.app_id.clone(),
            room_id: r.room_id.clone(),
            user_id: r.user_id.clone(),
            remote_user_id: r.remote_user_id.clone(),
            remote_user_name: r.remote_user_name.clone(),
            remote_user_ip: r.remote_user_ip.clone(),
            ice_ip: r.ice_ip.clone(),
            created: r.created.0,
        },
        Record::SubSessionBegin(r) => WireItem::SubSessionBegin {
            sub_session_id: r.sub_session_id.to_string(),
            begin_time: r.begin_time.0,
        },
        Record::SubSessionConnect(r) => WireItem::SubSessionConnect {
            sub_session_id: r.sub_session_id.to_string(),
            connect_time: r.connect_time.0,
            connect_type: r.connect_type.as_str().to_owned(),
        },
        Record::SubSessionFinish(r) => WireItem::SubSessionFinish {
            sub_session_id: r.sub_session_id.to_string(),
            finish_time: r.finish_time.0,
            duration_secs: r.duration_secs,
            status: r.status as u8,
            cost_cents: r.cost_cents,
        },
        Record::Quality(r) => {
            let q = &r.stats;
            WireItem::Quality {
                id: r.id.to_string(),
                sub_session_id: r.sub_session_id.to_string(),
                session_id: r.session_id.to_string(),
                user_id: r.user_id.clone(),
                remote_user_id: r.remote_user_id.clone(),
                create_time: r.create_time.0,
                stats: WireStats {
                    aud_send_lost_rate: q.aud_send_lost_rate,
                    aud_send_bitrate: q.aud_send_bitrate,
                    aud_rcv_lost_rate: q.aud_rcv_lost_rate,
                    aud_rcv_bitrate: q.aud_rcv_bitrate,
                    vid_send_lost_rate: q.vid_send_lost_rate,
                    vid_send_bitrate: q.vid_send_bitrate,
                    send_width: q.send_width,
                    send_height: q.send_height,
                    send_framerate_sent: q.send_framerate_sent,
                    send_codec: q.send_codec.clone(),
                    vid_rcv_lost_rate: q.vid_rcv_lost_rate,
                    vid_rcv_bitrate: q.vid_rcv_bitrate,
                    recv_width: q.recv_width,
                    recv_height: q.recv_height,
                    recv_framerate_recv: q.recv_framerate_recv,
                    recv_codec: q.recv_codec.clone(),
                },
            }
        }
        Record::ClientInfo(r) => WireItem::ClientInfo {
            id: r.id.to_string(),
            session_id: r.session_id.to_string(),
            app_id: r.app_id.clone(),
            room_id: r.room_id.clone(),
            user_id: r.user_id.clone(),
            result: r.result,
            desc: r.desc.clone(),
            data1: r.data1.clone(),
            data2: r.data2.clone(),
            create_time: r.create_time.0,
        },
    }
}

fn status(s: u8) -> Result<SubStatus, LineError> {
    Ok(match s {
        0 => SubStatus::ConnectedLeft,
        1 => SubStatus::ConnectedTimedOut,
        2 => SubStatus::NeverConnectedLeft,
        3 => SubStatus::NeverConnectedTimedOut,
        _ => return Err(LineError::Status(s)),
    })
}

fn from_wire(w: WireItem) -> Result<Item, LineError> {
    let r = match w {
        WireItem::CloseOpen { now } => return Ok(Item::CloseOpen(Millis(now))),
        WireItem::SessionOpen {
            session_id,
            app_id,
            room_id,
            user_id,
            user_name,
            user_type,
            talk_type,
            user_ip,
            os_name,
            browser,
            sdk_info,
            join_time,
        } => Record::SessionOpen(SessionOpen {
            session_id: id(&session_id)?,
            app_id,
            room_id,
            user_id,
            user_name,
            user_type,
            talk_type,
            user_ip,
            os_name,
            browser,
            sdk_info,
            join_time: Millis(join_time),
        }),
        WireItem::SessionClose {
            session_id,
            leave_time,
            duration_secs,
            timed_out,
        } => Record::SessionClose(SessionClose {
            session_id: id(&session_id)?,
            leave_time: Millis(leave_time),
            duration_secs,
            timed_out,
        }),
        WireItem::SubSessionOpen {
            sub_session_id,
            session_id,
            app_id,
            room_id,
            user_id,
            remote_user_id,
            remote_user_name,
            remote_user_ip,
            ice_ip,
            created,
        } => Record::SubSessionOpen(SubSessionOpen {
            sub_session_id: id(&sub_session_id)?,
            session_id: id(&session_id)?,
            app_id,
            room_id,
            user_id,
            remote_user_id,
            remote_user_name,
            remote_user_ip,
            ice_ip,
            created: Millis(created),
        }),
        WireItem::SubSessionBegin {
            sub_session_id,
            begin_time,
        } => Record::SubSessionBegin(SubSessionBegin {
            sub_session_id: id(&sub_session_id)?,
            begin_time: Millis(begin_time),
        }),
        WireItem::SubSessionConnect {
            sub_session_id,
            connect_time,
            connect_type,
        } => Record::SubSessionConnect(SubSessionConnect {
            sub_session_id: id(&sub_session_id)?,
            connect_time: Millis(connect_time),
            connect_type: ConnectType::parse(&connect_type),
        }),
        WireItem::SubSessionFinish {
            sub_session_id,
            finish_time,
            duration_secs,
            status: s,
            cost_cents,
        } => Record::SubSessionFinish(SubSessionFinish {
            sub_session_id: id(&sub_session_id)?,
            finish_time: Millis(finish_time),
            duration_secs,
            status: status(s)?,
            cost_cents,
        }),
        WireItem::Quality {
            id: qid,
            sub_session_id,
            session_id,
            user_id,
            remote_user_id,
            create_time,
            stats: q,
        } => Record::Quality(Quality {
            id: id(&qid)?,
            sub_session_id: id(&sub_session_id)?,
            session_id: id(&session_id)?,
            user_id,
            remote_user_id,
            create_time: Millis(create_time),
            stats: QualityStats {
                aud_send_lost_rate: q.aud_send_lost_rate,
                aud_send_bitrate: q.aud_send_bitrate,
                aud_rcv_lost_rate: q.aud_rcv_lost_rate,
                aud_rcv_bitrate: q.aud_rcv_bitrate,
                vid_send_lost_rate: q.vid_send_lost_rate,
                vid_send_bitrate: q.vid_send_bitrate,
                send_width: q.send_width,
                send_height: q.send_height,
                send_framerate_sent: q.send_framerate_sent,
                send_codec: q.send_codec,
                vid_rcv_lost_rate: q.vid_rcv_lost_rate,
                vid_rcv_bitrate: q.vid_rcv_bitrate,
                recv_width: q.recv_width,
                recv_height: q.recv_height,
                recv_framerate_recv: q.recv_framerate_recv,
                recv_codec: q.recv_codec,
            },
        }),
        WireItem::ClientInfo {
            id: cid,
            session_id,
            app_id,
            room_id,
            user_id,
            result,
            desc,
            data1,
            data2,
            create_time,
        } => Record::ClientInfo(ClientInfo {
            id: id(&cid)?,
            session_id: id(&session_id)?,
            app_id,
            room_id,
            user_id,
            result,
            desc,
            data1,
            data2,
            create_time: Millis(create_time),
        }),
    };
    Ok(Item::Record(r))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for item in one_of_each() {
            let line = encode(&item);
            assert!(!line.contains('\n'), "{line}");
            assert_eq!(decode(&line).unwrap(), item, "{line}");
        }
    }

    #[test]
    fn unknown_versions_and_bad_ids_are_refused() {
        let line = encode(&Item::CloseOpen(Millis(1))).replace("\"v\":1", "\"v\":2");
        assert!(matches!(decode(&line), Err(LineError::Version(2))));
        let bad = r#"{"v":1,"k":"SubSessionBegin","sub_session_id":"nope","begin_time":1}"#;
        assert!(matches!(decode(bad), Err(LineError::Id(_))));
    }
}

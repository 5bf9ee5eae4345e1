//! The engine's events as log lines and counters. Log lines carry the call's ids as fields,
//! at the document's levels: warn for a misbehaving client, info for the call flow.
//!
//! Alerts are data here: [`event`] returns the [`Alert`] an event raises, and whoever drives
//! the engine hands it to the alert task (`ops::alerts`); nothing in this module sends mail.

use super::alerts::Alert;
use super::metrics::{CauseLabel, RefusalLabel, metrics};
use rtcroom_core::{Event, Millis};

/// Log one engine event and count it; an event that operators must hear of (an ICE server
/// left or rejoined rotation) also comes back as an [`Alert`], for the caller to hand to the
/// alert task. Nothing here waits: a log line goes into the log queue (`ops::log`).
#[must_use]
pub fn event(e: &Event, now: Millis) -> Option<Alert> {
    let m = metrics();
    match e {
        Event::Joined {
            app_id,
            room_id,
            uid,
            session_id,
            rejoin,
        } => {
            if *rejoin {
                m.rejoins.inc()
            } else {
                m.joins.inc()
            };
            tracing::info!(app = %app_id, room = %room_id, uid = %uid, session = %session_id, rejoin, "joined");
        }
        Event::Left {
            app_id,
            room_id,
            uid,
            session_id,
            cause,
        } => {
            m.leaves
                .get_or_create(&CauseLabel {
                    cause: cause.as_str(),
                })
                .inc();
            tracing::info!(app = %app_id, room = %room_id, uid = %uid, session = %session_id, cause = cause.as_str(), "left");
        }
        Event::Detached {
            app_id,
            room_id,
            uid,
            session_id,
        } => {
            tracing::info!(app = %app_id, room = %room_id, uid = %uid, session = %session_id, "connection dropped; waiting for a reconnect");
        }
        Event::ClientReport {
            app_id,
            room_id,
            uid,
            session_id,
            result,
            desc,
        } => {
            m.client_reports.inc();
            tracing::warn!(app = %app_id, room = %room_id, uid = %uid, session = %session_id, result, desc = %desc, "client reported a problem");
        }
        Event::IceHealth {
            server,
            in_rotation,
            last_seen_ms,
        } => return Some(ice_health(server, *in_rotation, *last_seen_ms, now)),
        // Passed to the other nodes of a cluster by the hub; nothing to log.
        Event::IceReserved { .. } => {}
        Event::Refused {
            conn,
            cmd,
            result,
            desc,
        } => {
            m.refusals
                .get_or_create(&RefusalLabel {
                    cmd,
                    result: *result,
                })
                .inc();
            tracing::warn!(conn = conn.0, cmd, result, desc = %desc, "request refused");
        }
    }
    None
}

/// The log line and the alert of an ICE server (`ADDRESS:TURN_PORT`) that left or rejoined
/// rotation.
fn ice_health(server: &str, in_rotation: bool, last_seen_ms: Option<u64>, now: Millis) -> Alert {
    if in_rotation {
        tracing::info!(ice = %server, "ICE server is back in rotation");
        return Alert {
            subject: format!("[rtcroom] ICE server {server} is back in rotation"),
            body: format!("The ICE server {server} reports again and gets new calls.\n"),
        };
    }
    let ago = last_seen_ms.map_or(String::from("ever"), |t| {
        let secs = now.0.saturating_sub(t) / 1000;
        format!("{secs} s ago")
    });
    tracing::error!(ice = %server, last_report = %ago, critical = true, "ICE server left rotation: it stopped reporting");
    Alert {
        subject: format!("[rtcroom] ICE server {server} left rotation"),
        body: format!(
            "The ICE server {server} has not reported its load since {ago} and gets no new calls.\n\
             Check its agent (rtcroom ice-agent) and the TURN server beside it.\n"
        ),
    }
}

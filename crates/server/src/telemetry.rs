//! Logs and counters. The engine's events become log lines here, with the call's ids as
//! fields (the document's levels: warn for a misbehaving client, info for the call flow).

use rtcroom_core::{Event, LeaveCause};
use rtcroom_protocol::ServerMsg;
use std::sync::atomic::{AtomicU64, Ordering};

/// Process-wide counters, read by the health and metrics endpoints.
#[derive(Debug, Default)]
pub struct Counters {
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub refusals: AtomicU64,
    pub slow_clients: AtomicU64,
    pub joins: AtomicU64,
    pub leaves: AtomicU64,
    pub timeouts: AtomicU64,
}

pub static COUNTERS: Counters = Counters {
    connections_opened: AtomicU64::new(0),
    connections_closed: AtomicU64::new(0),
    frames_in: AtomicU64::new(0),
    bytes_in: AtomicU64::new(0),
    messages_out: AtomicU64::new(0),
    refusals: AtomicU64::new(0),
    slow_clients: AtomicU64::new(0),
    joins: AtomicU64::new(0),
    leaves: AtomicU64::new(0),
    timeouts: AtomicU64::new(0),
};

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub fn connection_opened() {
    bump(&COUNTERS.connections_opened);
}

pub fn connection_closed() {
    bump(&COUNTERS.connections_closed);
}

pub fn received(bytes: usize) {
    bump(&COUNTERS.frames_in);
    COUNTERS.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
}

pub fn sent(_msg: &ServerMsg) {
    bump(&COUNTERS.messages_out);
}

pub fn slow_client() {
    bump(&COUNTERS.slow_clients);
}

/// Log one engine event.
pub fn event(e: &Event) {
    match e {
        Event::Joined {
            app_id,
            room_id,
            uid,
            session_id,
            rejoin,
        } => {
            bump(&COUNTERS.joins);
            tracing::info!(app = %app_id, room = %room_id, uid = %uid, session = %session_id, rejoin, "joined");
        }
        Event::Left {
            app_id,
            room_id,
            uid,
            session_id,
            cause,
        } => {
            bump(&COUNTERS.leaves);
            if *cause == LeaveCause::TimedOut {
                bump(&COUNTERS.timeouts);
            }
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
            tracing::warn!(app = %app_id, room = %room_id, uid = %uid, session = %session_id, result, desc = %desc, "client reported a problem");
        }
        Event::Refused {
            conn,
            cmd,
            result,
            desc,
        } => {
            bump(&COUNTERS.refusals);
            tracing::warn!(conn = conn.0, cmd, result, desc = %desc, "request refused");
        }
    }
}

/// Install the log subscriber: human-readable by default, JSON lines with `json`.
pub fn init(format: &str, level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

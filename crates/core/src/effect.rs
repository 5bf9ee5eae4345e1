//! What the engine asks the shell to do.

use crate::{ConnId, Record};
use rtcroom_protocol::ServerMsg;
use ulid::Ulid;

/// Why the engine closes a connection. The shell sends a WebSocket close frame with
/// [`CloseReason::code`] and [`CloseReason::text`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CloseReason {
    /// The same uid joined again from another connection.
    Replaced,
    /// Nothing was heard within the heartbeat timeout.
    HeartbeatTimeout,
    /// The connection was in no room for the join timeout (it never joined, or it left).
    JoinTimeout,
    /// The token expired without `updateToken`.
    TokenExpired,
    /// An operator removed the member.
    Kicked(String),
    /// The server is shutting down; its members were removed.
    Shutdown,
    /// The server restarts: reconnect and resume (`join` with the `resumeKey`). The member
    /// keeps its place for the heartbeat timeout.
    ServiceRestart,
}

impl CloseReason {
    /// WebSocket close code: 4000–4999 are for applications.
    pub fn code(&self) -> u16 {
        match self {
            Self::Replaced => 4001,
            Self::HeartbeatTimeout => 4002,
            Self::JoinTimeout => 4005,
            Self::TokenExpired => 4003,
            Self::Kicked(_) => 4004,
            Self::Shutdown => 1001,
            // RFC 6455 §7.4.1 as registered: 1012 "Service Restart".
            Self::ServiceRestart => 1012,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Self::Replaced => "replaced by a newer connection of the same uid".into(),
            Self::HeartbeatTimeout => "no message within the heartbeat timeout".into(),
            Self::JoinTimeout => {
                "no join within the join timeout; join right after connecting".into()
            }
            Self::TokenExpired => "token is expire".into(),
            Self::Kicked(why) => format!("kicked: {why}"),
            Self::Shutdown => "server is shutting down; reconnect shortly".into(),
            Self::ServiceRestart => "service restart; reconnect and resume".into(),
        }
    }
}

/// How a member came to leave its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveCause {
    Leave,
    /// The socket closed cleanly without a `leave`.
    Closed,
    TimedOut,
    TokenExpired,
    Kicked,
    Shutdown,
}

impl LeaveCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leave => "leave",
            Self::Closed => "closed",
            Self::TimedOut => "timeout",
            Self::TokenExpired => "token_expired",
            Self::Kicked => "kicked",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Things worth a log line or a metric, with the ids of the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Joined {
        app_id: String,
        room_id: String,
        uid: String,
        session_id: Ulid,
        /// The uid was already in the room: a reconnect of the same connection, or a resume
        /// with the member's resume key.
        rejoin: bool,
    },
    Left {
        app_id: String,
        room_id: String,
        uid: String,
        session_id: Ulid,
        cause: LeaveCause,
    },
    /// A member's socket dropped without a close; it keeps its place until the timeout.
    Detached {
        app_id: String,
        room_id: String,
        uid: String,
        session_id: Ulid,
    },
    /// `reportInfo` with a non-zero result: a client-side problem.
    ClientReport {
        app_id: String,
        room_id: String,
        uid: String,
        session_id: Ulid,
        result: i64,
        desc: String,
    },
    /// An ICE server left rotation (it stopped reporting) or came back.
    IceHealth {
        /// `ADDRESS:TURN_PORT`: several servers may share an address.
        server: String,
        in_rotation: bool,
        /// When it was last heard from (Unix ms), for a server that left.
        last_seen_ms: Option<u64>,
    },
    /// A selection reserved `kbps` on ICE server `server` (`ADDRESS:TURN_PORT`,
    /// `Chosen::server`) for a new pair, until that server's next report: a cluster passes it
    /// to the other nodes' registries.
    IceReserved { server: String, kbps: u64 },
    /// A request was refused with a non-zero result.
    Refused {
        conn: ConnId,
        cmd: &'static str,
        result: u8,
        desc: String,
    },
}

/// One thing for the shell to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Queue `msg` on the connection's outbound queue.
    Send { conn: ConnId, msg: ServerMsg },
    /// Close the connection (after the messages already queued for it).
    Close { conn: ConnId, reason: CloseReason },
    /// Hand a record to the record writer.
    Record(Record),
    /// Log it, count it.
    Event(Event),
}

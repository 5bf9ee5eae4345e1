//! The `result` codes of protocol.md and their standard `desc` texts.

/// A `result` code. The numbers are the wire values of protocol.md's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ResultCode {
    Ok = 0,
    RoomFull = 1,
    UidNotFound = 2,
    ParseFailed = 3,
    RoomNotFound = 5,
    RemoteNotFound = 6,
    IceBandwidthFull = 8,
    TokenInvalid = 12,
    NotAllowed = 13,
    RateLimited = 14,
}

impl ResultCode {
    /// The wire value.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The standard `desc` (the original server's text where one existed). Callers add
    /// detail after it where protocol.md says "says which".
    pub fn desc(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::RoomFull => "room is full",
            Self::UidNotFound => "can't find the designated uid, it may leave the room halfway",
            Self::ParseFailed => "server parse the message faild, please check the format",
            Self::RoomNotFound => "can't find the designated room id",
            Self::RemoteNotFound => "can't find the remote user id",
            Self::IceBandwidthFull => "ice server bandwidth is full loading",
            Self::TokenInvalid => "token is missing, invalid or expired",
            Self::NotAllowed => "not allowed",
            Self::RateLimited => "rate limited",
        }
    }
}

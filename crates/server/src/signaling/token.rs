//! The token check the connection tasks run on `join` and `updateToken`, before the frame
//! goes to the hub: verifying a signature is work done in parallel, off the engine's task.

use crate::auth::Apps;
use rtcroom_core::{Grant, Millis};
use rtcroom_protocol::Request;

/// Checks tokens for the hub. The login issue gives it keys; until then it only knows
/// whether checking is on.
pub trait TokenCheck: Send + Sync + 'static {
    fn check(&self, req: &Request) -> Grant;
}

/// No token checking (`[auth] required = false`).
#[derive(Debug)]
pub struct NoTokenCheck;

impl TokenCheck for NoTokenCheck {
    fn check(&self, _req: &Request) -> Grant {
        Grant::Unchecked
    }
}

/// The token check the signaling shell runs on `join` and `updateToken`.
#[derive(Debug)]
pub struct JwtCheck {
    pub apps: Apps,
}

impl TokenCheck for JwtCheck {
    fn check(&self, req: &Request) -> Grant {
        let token = match req {
            Request::Join(j) => j.token.as_deref(),
            Request::UpdateToken(u) => Some(u.token.as_str()),
            _ => return Grant::Unchecked,
        };
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Grant::Invalid(
                "the request carries no token; log in first (POST /api/login)".into(),
            );
        };
        match self.apps.verify(token, crate::clock::now()) {
            Ok(c) => Grant::Valid {
                app_id: c.app,
                uid: c.sub,
                expires_at: Millis::from_secs(c.exp),
            },
            Err(e) => Grant::Invalid(e.to_string()),
        }
    }
}

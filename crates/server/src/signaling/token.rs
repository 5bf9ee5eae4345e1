//! The token check the connection tasks run on `join` and `updateToken`, before the frame
//! goes to the hub: verifying a signature is work done in parallel, off the engine's task.

use crate::auth::Apps;
use rtcroom_core::{Grant, Millis};
use rtcroom_protocol::Request;

/// Checks tokens for the hub. `origin` is the host of the connection's `Origin` header
/// (a browser page's), `None` for clients that sent none.
pub trait TokenCheck: Send + Sync + 'static {
    fn check(&self, req: &Request, origin: Option<&str>) -> Grant;
}

/// No token checking (`[auth] required = false`).
#[derive(Debug)]
pub struct NoTokenCheck;

impl TokenCheck for NoTokenCheck {
    fn check(&self, _req: &Request, _origin: Option<&str>) -> Grant {
        Grant::Unchecked
    }
}

/// The token check the signaling shell runs on `join` and `updateToken`.
#[derive(Debug)]
pub struct JwtCheck {
    pub apps: Apps,
}

impl TokenCheck for JwtCheck {
    fn check(&self, req: &Request, origin: Option<&str>) -> Grant {
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
        let claims = match self.apps.verify(token, crate::clock::now()) {
            Ok(c) => c,
            Err(e) => return Grant::Invalid(e.to_string()),
        };
        match self.apps.admits(&claims, origin) {
            Ok(()) => Grant::Valid {
                app_id: claims.app,
                uid: claims.sub,
                expires_at: Millis::from_secs(claims.exp),
            },
            Err(why) => Grant::Invalid(why),
        }
    }
}

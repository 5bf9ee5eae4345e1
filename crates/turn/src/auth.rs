//! coturn's REST credential scheme as the `turn` crate's auth handler: a username is
//! `"<unix expiry>:<uid>"`, its password `base64(HMAC-SHA1(secret, username))`, and an expired
//! username is refused. The scheme itself lives in `rtcroom-ice`, so the room server mints
//! exactly what this server accepts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

use rtcroom_ice::{UsernameError, check_username, rest_password};
use turn::auth::{AuthHandler, generate_auth_key};

use crate::counters::Counters;

/// The long-term key (RFC 5389 §15.4, `MD5(username:realm:password)`) of a REST username at
/// `now_secs`, or why the username is refused.
pub(crate) fn rest_key(
    secret: &[u8],
    username: &str,
    realm: &str,
    now_secs: u64,
) -> Result<Vec<u8>, UsernameError> {
    check_username(username, now_secs)?;
    Ok(generate_auth_key(
        username,
        realm,
        &rest_password(secret, username),
    ))
}

pub(crate) struct RestAuth {
    pub secret: Vec<u8>,
    pub counters: Arc<Counters>,
}

impl AuthHandler for RestAuth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        _src_addr: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        // The one clock read of the auth path: the shell is the only place that may read it,
        // and this handler is part of the shell.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        rest_key(&self.secret, username, realm, now).map_err(|e| {
            self.counters.auth_refused.fetch_add(1, Relaxed);
            turn::Error::Other(e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_of_a_valid_username() {
        // MD5("1700000600:42:test:IJqLNx10NKZjt+Umu/9xSgStSaA="), the password being the
        // vector of rtcroom-ice's credential tests; computed with
        //   python3 -c "import hashlib; print(hashlib.md5(
        //       b'1700000600:42:test:IJqLNx10NKZjt+Umu/9xSgStSaA=').hexdigest())"
        let key = rest_key(b"north-secret", "1700000600:42", "test", 1_700_000_000).expect("valid");
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "77f343354dc9426b8764c4789f5b8f66");
    }

    #[test]
    fn expired_and_malformed_usernames_are_refused() {
        assert!(matches!(
            rest_key(b"s", "1700000600:42", "test", 1_700_000_601),
            Err(UsernameError::Expired { .. })
        ));
        assert!(matches!(
            rest_key(b"s", "alice", "test", 0),
            Err(UsernameError::NoExpiry(_))
        ));
    }
}

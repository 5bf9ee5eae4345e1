//! Ephemeral TURN credentials in coturn's REST scheme ("TURN REST API", coturn's
//! `--use-auth-secret`): the username is `"<unix expiry>:<uid>"` and the password is
//! `base64(HMAC-SHA1(shared secret, username))`. The room server mints them per member; any
//! TURN server that knows the secret (coturn, or the embedded one) checks them without talking
//! to the room server.
//!
//! This module owns both sides of the scheme, so the embedded TURN server verifies exactly what
//! the registry mints. It never reads the clock: the caller passes the time.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// A minted TURN username and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestCredential {
    pub username: String,
    pub credential: String,
    /// Unix seconds after which TURN servers refuse the username.
    pub expires_at_secs: u64,
}

/// Why a REST username was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("username {0:?} does not start with a unix expiry time")]
    NoExpiry(String),
    #[error("username expired at {expired_at} (now {now})")]
    Expired { expired_at: u64, now: u64 },
}

/// The password for `username` under `secret`: `base64(HMAC-SHA1(secret, username))`.
pub fn rest_password(secret: &[u8], username: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes any key size");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Mint the credential of `uid`, valid for `ttl_secs` from `now_ms` (unix milliseconds).
pub fn mint(secret: &[u8], uid: &str, now_ms: u64, ttl_secs: u64) -> RestCredential {
    let expires_at_secs = (now_ms / 1000).saturating_add(ttl_secs);
    let username = format!("{expires_at_secs}:{uid}");
    RestCredential {
        credential: rest_password(secret, &username),
        username,
        expires_at_secs,
    }
}

/// The expiry of a REST username if it is still valid at `now_secs`. Accepts `"<expiry>"` and
/// `"<expiry>:<anything>"` (the uid may itself contain colons), as coturn does with its default
/// separator. A username is valid up to and including its expiry second, as in coturn.
pub fn check_username(username: &str, now_secs: u64) -> Result<u64, UsernameError> {
    let stamp = username.split_once(':').map_or(username, |(t, _)| t);
    let expiry = stamp
        .parse::<u64>()
        .ok()
        .filter(|_| stamp.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| UsernameError::NoExpiry(username.into()))?;
    if expiry < now_secs {
        return Err(UsernameError::Expired {
            expired_at: expiry,
            now: now_secs,
        });
    }
    Ok(expiry)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from coturn's documented formula, computed independently with Python:
    //   python3 -c "import hmac,hashlib,base64; print(base64.b64encode(hmac.new(
    //       b'north-secret', b'1700000000:alice', hashlib.sha1).digest()).decode())"
    // gives g+jb180fcj+xlpA/2mP60OdIgU0= ; with b'1700000600:42' it gives
    // IJqLNx10NKZjt+Umu/9xSgStSaA= .
    #[test]
    fn password_matches_coturn_formula() {
        assert_eq!(
            rest_password(b"north-secret", "1700000000:alice"),
            "g+jb180fcj+xlpA/2mP60OdIgU0="
        );
    }

    #[test]
    fn mint_sets_expiry_from_ttl() {
        let c = mint(b"north-secret", "42", 1_700_000_000_999, 600);
        assert_eq!(
            c,
            RestCredential {
                username: "1700000600:42".into(),
                credential: "IJqLNx10NKZjt+Umu/9xSgStSaA=".into(),
                expires_at_secs: 1_700_000_600,
            }
        );
        assert_ne!(
            mint(b"other-secret", "42", 1_700_000_000_000, 600).credential,
            c.credential
        );
    }

    #[test]
    fn expiry() {
        assert_eq!(
            check_username("1700000600:42", 1_700_000_000),
            Ok(1_700_000_600)
        );
        assert_eq!(
            check_username("1700000600:42", 1_700_000_600),
            Ok(1_700_000_600)
        );
        assert_eq!(
            check_username("1700000600:42", 1_700_000_601),
            Err(UsernameError::Expired {
                expired_at: 1_700_000_600,
                now: 1_700_000_601
            })
        );
        assert_eq!(check_username("1700000600", 5), Ok(1_700_000_600));
        assert_eq!(check_username("1700000600:a:b", 5), Ok(1_700_000_600));
        for bad in [
            "alice",
            "alice:1700000600",
            "",
            ":42",
            "+17:42",
            "99999999999999999999:x",
        ] {
            assert!(
                matches!(check_username(bad, 0), Err(UsernameError::NoExpiry(_))),
                "{bad}"
            );
        }
    }
}

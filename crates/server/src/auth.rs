//! Apps, their signing keys and allowed domains, and the tokens that `join` carries.
//!
//! A token is a standard JWT signed with HS256 (RFC 7519), so that an app's own backend can
//! mint one with any JWT library and the app's secret:
//!
//! ```text
//! header  {"alg":"HS256","typ":"JWT","kid":"<key id>"}
//! claims  {"app":"<appId>","sub":"<uid, optional>","iat":<unix s>,"exp":<unix s>}
//! ```
//!
//! The HS256 envelope is written here (about sixty lines over `hmac` and `sha2`) rather than
//! taken from `jsonwebtoken`, whose current versions make every user build a full crypto
//! backend (RSA and elliptic curves, or a C library) for algorithms this server never uses.
//! Verification compares MACs in constant time (`Mac::verify_slice`).
//!
//! This module decides whether a token is genuine and unexpired at the moment it is seen;
//! what that means for a member (result 12, the prompt before expiry, the kick at expiry) is
//! the room engine's, which keeps the clock.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use rtcroom_core::Millis;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;

type HmacSha256 = Hmac<Sha256>;

/// One signing key of an app. The first key of an app signs; every key verifies, so a key
/// can be rotated by adding a new one first and removing the old one after its tokens expire.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct AppKey {
    pub kid: String,
    pub secret: String,
}

/// How an app's members get their identities vouched for (docs/auth.md).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AppMode {
    /// The public login hands tokens to any page on the app's domains, bound to that domain:
    /// for anonymous calls, where whoever has the link may join under any name.
    #[default]
    Public,
    /// The public login hands out no tokens; the app's own server mints them (with the app's
    /// secret, `rtcroom token` or `POST /api/token`), each naming its user.
    Backend,
}

/// A registered app.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct App {
    pub id: String,
    /// Shorthand for a single key with the id `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default)]
    pub keys: Vec<AppKey>,
    /// Hosts the app's pages may run on: `example.com` (that host), `*.example.com` (its
    /// subdomains and itself).
    #[serde(default)]
    pub domains: Vec<String>,
    /// `public` (the default) or `backend`.
    #[serde(default)]
    pub mode: AppMode,
}

impl App {
    /// The keys, the shorthand `secret` first.
    pub fn all_keys(&self) -> Vec<AppKey> {
        let mut keys = Vec::new();
        if let Some(s) = &self.secret {
            keys.push(AppKey {
                kid: "default".into(),
                secret: s.clone(),
            });
        }
        keys.extend(self.keys.iter().cloned());
        keys
    }

    /// Whether a page on `host` may use this app.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.domains.iter().any(|d| {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            match d.strip_prefix("*.") {
                Some(base) => host == base || host.ends_with(&format!(".{base}")),
                None => host == d,
            }
        })
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a JWT (header.claims.signature)")]
    Malformed,
    #[error("the token's algorithm must be HS256")]
    Algorithm,
    #[error("the token names app {0}, which is not registered")]
    UnknownApp(String),
    #[error("the token's signature does not match any key of app {0}")]
    Signature(String),
    #[error("the token expired at {0} (unix seconds); log in again for a fresh one")]
    Expired(u64),
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
}

/// The claims this server puts in and reads from a token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub app: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default)]
    pub iat: u64,
    pub exp: u64,
    /// **ours**: the host of the page a public login minted the token for; such a token is
    /// refused from a page of another origin. Absent from tokens minted by app backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dom: Option<String>,
}

fn mac(secret: &str, signing_input: &str) -> HmacSha256 {
    let mut m =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    m.update(signing_input.as_bytes());
    m
}

/// Sign `claims` with `key`.
pub fn sign(key: &AppKey, claims: &Claims) -> String {
    let header = Header {
        alg: "HS256".into(),
        typ: Some("JWT".into()),
        kid: Some(key.kid.clone()),
    };
    let h = B64.encode(serde_json::to_vec(&header).expect("serializable"));
    let c = B64.encode(serde_json::to_vec(claims).expect("serializable"));
    let input = format!("{h}.{c}");
    let sig = B64.encode(mac(&key.secret, &input).finalize().into_bytes());
    format!("{input}.{sig}")
}

/// The registry of apps, with what a login and a join need from it.
#[derive(Debug, Clone, Default)]
pub struct Apps {
    apps: HashMap<String, App>,
    /// Lifetime of the tokens this server mints.
    pub token_ttl_secs: u64,
}

impl Apps {
    pub fn new(apps: Vec<App>, token_ttl_secs: u64) -> Self {
        Self {
            apps: apps.into_iter().map(|a| (a.id.clone(), a)).collect(),
            token_ttl_secs,
        }
    }

    pub fn get(&self, id: &str) -> Option<&App> {
        self.apps.get(id)
    }

    pub fn list(&self) -> Vec<&App> {
        let mut v: Vec<&App> = self.apps.values().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Mint a token for `app` (and `uid`; bound to pages on `domain` when given), valid from
    /// `now` for the configured lifetime.
    pub fn mint(
        &self,
        app: &App,
        uid: Option<&str>,
        domain: Option<&str>,
        now: Millis,
    ) -> Option<(String, u64)> {
        let key = app.all_keys().into_iter().next()?;
        let exp = now.as_secs() + self.token_ttl_secs;
        let claims = Claims {
            app: app.id.clone(),
            sub: uid.map(str::to_owned),
            iat: now.as_secs(),
            exp,
            dom: domain.map(str::to_owned),
        };
        Some((sign(&key, &claims), exp))
    }

    /// Whether `given` is one of `app`'s secrets (an app backend authenticating itself).
    pub fn is_secret_of(app: &App, given: &str) -> bool {
        app.all_keys()
            .iter()
            .any(|k| same(k.secret.as_bytes(), given.as_bytes()))
    }

    /// Whether verified `claims` may be used by a client whose page has origin host
    /// `origin` (`None`: not a browser page), under the app's mode; why not.
    pub fn admits(&self, claims: &Claims, origin: Option<&str>) -> Result<(), String> {
        let Some(app) = self.apps.get(&claims.app) else {
            return Err(TokenError::UnknownApp(claims.app.clone()).to_string());
        };
        if app.mode == AppMode::Backend {
            if claims.dom.is_some() {
                return Err(format!(
                    "the token comes from the public login, which app {} does not use (mode = \"backend\"): get a token from the app's own server",
                    app.id
                ));
            }
            if claims.sub.is_none() {
                return Err(format!(
                    "app {} mints its tokens on its own server (mode = \"backend\"): the token must name the uid (sub)",
                    app.id
                ));
            }
        }
        if let Some(host) = origin {
            if !app.allows_host(host) {
                return Err(format!(
                    "the page's origin {host} is not one of app {}'s domains",
                    app.id
                ));
            }
            if let Some(dom) = &claims.dom
                && !dom.eq_ignore_ascii_case(host)
            {
                return Err(format!(
                    "the token was handed to a page on {dom}, not {host}: log in from this page"
                ));
            }
        }
        Ok(())
    }

    /// Whether any app allows pages on `host`.
    pub fn any_allows_host(&self, host: &str) -> bool {
        self.apps.values().any(|a| a.allows_host(host))
    }

    /// Check a token's form, signature and expiry at `now`.
    pub fn verify(&self, token: &str, now: Millis) -> Result<Claims, TokenError> {
        let mut parts = token.trim().split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = B64
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if header.alg != "HS256" {
            return Err(TokenError::Algorithm);
        }
        let claims: Claims = B64
            .decode(c)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        let sig = B64.decode(s).map_err(|_| TokenError::Malformed)?;
        let app = self
            .apps
            .get(&claims.app)
            .ok_or_else(|| TokenError::UnknownApp(claims.app.clone()))?;
        let input = &token.trim()[..h.len() + 1 + c.len()];
        let genuine = app
            .all_keys()
            .iter()
            .filter(|k| header.kid.as_deref().is_none_or(|kid| kid == k.kid))
            .any(|k| mac(&k.secret, input).verify_slice(&sig).is_ok());
        if !genuine {
            return Err(TokenError::Signature(claims.app));
        }
        if claims.exp <= now.as_secs() {
            return Err(TokenError::Expired(claims.exp));
        }
        Ok(claims)
    }
}

/// Compare without an early exit, so that the time taken does not tell a prefix.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why an operator request was refused.
#[derive(Debug)]
pub struct Denied(StatusCode, &'static str);

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({"error": self.1}))).into_response()
    }
}

/// Check an operator request's `Authorization: Bearer <token>` header against `expected`
/// (`[admin] token`; empty disables the operator API).
pub fn operator(expected: &str, headers: &HeaderMap) -> Result<(), Denied> {
    if expected.is_empty() {
        return Err(Denied(
            StatusCode::FORBIDDEN,
            "the operator API is disabled: set [admin] token (or RTCROOM_ADMIN_TOKEN)",
        ));
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if same(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Denied(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps() -> Apps {
        Apps::new(
            vec![App {
                id: "10000".into(),
                secret: None,
                keys: vec![
                    AppKey {
                        kid: "k2".into(),
                        secret: "new-secret".into(),
                    },
                    AppKey {
                        kid: "k1".into(),
                        secret: "old-secret".into(),
                    },
                ],
                domains: vec!["localhost".into(), "*.example.com".into()],
                mode: AppMode::Public,
            }],
            3600,
        )
    }

    #[test]
    fn a_token_from_another_jwt_library_verifies() {
        // Made with PyJWT 2: jwt.encode({"app":"10000","sub":"alice","iat":1700000000,
        // "exp":4102444800}, "old-secret", algorithm="HS256", headers={"kid":"k1"})
        let token = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJhcHAiOiIxMDAwMCIsInN1YiI6ImFsaWNlIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDB9.4CG3D437e2-OpmiKQHwuYOC-AljjtQHdj0OcxenBJ9o";
        let c = apps()
            .verify(token, Millis::from_secs(1_700_000_000))
            .unwrap();
        assert_eq!(c.app, "10000");
        assert_eq!(c.sub.as_deref(), Some("alice"));
    }

    #[test]
    fn minted_tokens_verify_until_they_expire() {
        let a = apps();
        let now = Millis::from_secs(1_700_000_000);
        let (token, exp) = a
            .mint(a.get("10000").unwrap(), Some("bob"), None, now)
            .unwrap();
        assert_eq!(exp, 1_700_003_600);
        assert_eq!(a.verify(&token, now).unwrap().sub.as_deref(), Some("bob"));
        assert_eq!(
            a.verify(&token, Millis::from_secs(exp)),
            Err(TokenError::Expired(exp))
        );
    }

    #[test]
    fn forged_and_foreign_tokens_fail() {
        let a = apps();
        let now = Millis::from_secs(1_700_000_000);
        let claims = Claims {
            app: "10000".into(),
            sub: None,
            iat: 0,
            exp: 4_102_444_800,
            dom: None,
        };
        let forged = sign(
            &AppKey {
                kid: "k2".into(),
                secret: "guess".into(),
            },
            &claims,
        );
        assert_eq!(
            a.verify(&forged, now),
            Err(TokenError::Signature("10000".into()))
        );
        let other = sign(
            &AppKey {
                kid: "k2".into(),
                secret: "new-secret".into(),
            },
            &Claims {
                app: "20000".into(),
                ..claims.clone()
            },
        );
        assert_eq!(
            a.verify(&other, now),
            Err(TokenError::UnknownApp("20000".into()))
        );
        assert_eq!(a.verify("not-a-jwt", now), Err(TokenError::Malformed));
        let mut tampered = sign(
            &AppKey {
                kid: "k2".into(),
                secret: "new-secret".into(),
            },
            &claims,
        );
        tampered.replace_range(tampered.len() - 2.., "AA");
        assert!(a.verify(&tampered, now).is_err());
    }

    #[test]
    fn rotation_keeps_old_tokens_until_the_key_is_removed() {
        let mut a = apps();
        let now = Millis::from_secs(1_700_000_000);
        let old = sign(
            &AppKey {
                kid: "k1".into(),
                secret: "old-secret".into(),
            },
            &Claims {
                app: "10000".into(),
                sub: None,
                iat: 0,
                exp: 4_102_444_800,
                dom: None,
            },
        );
        assert!(a.verify(&old, now).is_ok());
        let (fresh, _) = a.mint(a.get("10000").unwrap(), None, None, now).unwrap();
        assert!(
            fresh.starts_with(&B64.encode(br#"{"alg":"HS256","typ":"JWT","kid":"k2"}"#)),
            "the first key signs"
        );
        let mut app = a.get("10000").unwrap().clone();
        app.keys.retain(|k| k.kid != "k1");
        a = Apps::new(vec![app], 3600);
        assert_eq!(
            a.verify(&old, now),
            Err(TokenError::Signature("10000".into()))
        );
        assert!(a.verify(&fresh, now).is_ok());
    }

    #[test]
    fn a_token_is_admitted_by_its_apps_mode_and_the_pages_origin() {
        let mut backend = apps().get("10000").unwrap().clone();
        backend.id = "30000".into();
        backend.mode = AppMode::Backend;
        let a = Apps::new(vec![apps().get("10000").unwrap().clone(), backend], 3600);
        let claims = |app: &str, sub: Option<&str>, dom: Option<&str>| Claims {
            app: app.into(),
            sub: sub.map(Into::into),
            iat: 0,
            exp: 4_102_444_800,
            dom: dom.map(Into::into),
        };
        let public = claims("10000", None, Some("meet.example.com"));
        assert_eq!(a.admits(&public, None), Ok(()), "no Origin: not a browser");
        assert_eq!(a.admits(&public, Some("meet.example.com")), Ok(()));
        let e = a.admits(&public, Some("other.example.com")).unwrap_err();
        assert!(e.contains("handed to a page on meet.example.com"), "{e}");
        let e = a.admits(&public, Some("evil.test")).unwrap_err();
        assert!(e.contains("not one of app 10000's domains"), "{e}");
        let anonymous = claims("30000", None, None);
        assert!(
            a.admits(&anonymous, None)
                .unwrap_err()
                .contains("must name the uid")
        );
        let from_login = claims("30000", Some("alice"), Some("localhost"));
        assert!(
            a.admits(&from_login, None)
                .unwrap_err()
                .contains("public login")
        );
        assert_eq!(
            a.admits(&claims("30000", Some("alice"), None), None),
            Ok(())
        );
    }

    #[test]
    fn domains_match_hosts_and_subdomains() {
        let a = apps();
        let app = a.get("10000").unwrap();
        assert!(app.allows_host("localhost"));
        assert!(app.allows_host("example.com"));
        assert!(app.allows_host("meet.Example.com"));
        assert!(!app.allows_host("evil-example.com"));
        assert!(!app.allows_host("example.com.evil.net"));
    }
}

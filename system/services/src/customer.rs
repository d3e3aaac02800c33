//! Customer identity: the bearer tokens every public hold and order route
//! reads, and the verifier each service runs itself.
//!
//! A token is a JWT (HS256, signed with `auth.jwt_secret`) whose `sub` is
//! the customer id; the users service mints one at login, `ticketing token
//! --customer NAME` mints one for curl and the load harness. Expiry is
//! checked against the injected clock (never the system clock, so the
//! simulator's time is the token's time), not by the JWT library.
//!
//! A request is either a customer's (a valid `Authorization: Bearer`
//! token) or anonymous (no `Authorization` at all, allowed only where
//! `auth.anonymous` is on: the embedded demo by default, contract v1's
//! open access). A bad token is refused even where anonymous access is on:
//! a client that sent credentials means to be someone. Every refusal is 401
//! `UNAUTHENTICATED` with the standard body and says nothing about any
//! customer.
//!
//! Ownership: a hold or order made with a token belongs to its customer;
//! [`Caller::may_see`] is the one rule (another customer, or an anonymous
//! caller, is told the thing does not exist — 404, never 403).
//!
//! Layer: shared types; imports `error` and the domain.

use crate::error::ApiError;
use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use ticketing_domain::UnixMs;

/// The `iss` of every token this system mints and accepts.
pub const ISSUER: &str = "ticketing";
/// Shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash size).
pub const SECRET_MIN_BYTES: usize = 32;
/// Longest token read (a real one is ~200 bytes).
pub const TOKEN_MAX_BYTES: usize = 4096;
/// Longest customer id (`sub`) accepted.
pub const CUSTOMER_MAX_BYTES: usize = 64;

/// The signing and verifying key.
#[derive(Clone)]
pub struct CustomerKey {
    enc: EncodingKey,
    dec: DecodingKey,
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerKey(..)")
    }
}

/// A key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("auth.jwt_secret must be at least {SECRET_MIN_BYTES} bytes (it is {0})")]
pub struct WeakSecret(pub usize);

impl CustomerKey {
    /// An HS256 key; refuses a secret shorter than [`SECRET_MIN_BYTES`].
    pub fn hs256(secret: &str) -> Result<CustomerKey, WeakSecret> {
        if secret.len() < SECRET_MIN_BYTES {
            return Err(WeakSecret(secret.len()));
        }
        Ok(CustomerKey {
            enc: EncodingKey::from_secret(secret.as_bytes())
                .map_err(|_| WeakSecret(secret.len()))?,
            dec: DecodingKey::from_secret(secret.as_bytes())
                .map_err(|_| WeakSecret(secret.len()))?,
        })
    }
}

/// What a token says (JWT registered claims; times in Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub iat: u64,
    pub exp: u64,
}

/// A freshly minted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    pub token: String,
    pub expires_at_ms: UnixMs,
}

/// Why a token is refused (the client is told only that it is refused,
/// and whether it has expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the bearer token is malformed or its signature is wrong")]
    Invalid,
    #[error("the bearer token has expired")]
    Expired,
}

/// Signs a token for `customer`, valid for `ttl_ms` from `now_ms`.
pub fn mint(key: &CustomerKey, customer: &str, now_ms: UnixMs, ttl_ms: u64) -> Minted {
    let exp_s = (now_ms + ttl_ms) / 1000;
    let claims = Claims {
        sub: customer.to_owned(),
        iss: ISSUER.to_owned(),
        iat: now_ms / 1000,
        exp: exp_s,
    };
    // HS256 over serializable claims cannot fail.
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key.enc)
        .unwrap_or_else(|e| unreachable!("HS256 signing failed: {e}"));
    Minted {
        token,
        expires_at_ms: exp_s * 1000,
    }
}

/// Checks the signature, the issuer, and the expiry against `now_ms`.
/// Returns the customer id.
pub fn verify(key: &CustomerKey, token: &str, now_ms: UnixMs) -> Result<String, TokenError> {
    if token.len() > TOKEN_MAX_BYTES {
        return Err(TokenError::Invalid);
    }
    let mut v = Validation::new(Algorithm::HS256);
    // Expiry is ours to check, on the injected clock.
    v.validate_exp = false;
    v.set_required_spec_claims(&["exp", "sub", "iss"]);
    v.set_issuer(&[ISSUER]);
    let data =
        jsonwebtoken::decode::<Claims>(token, &key.dec, &v).map_err(|_| TokenError::Invalid)?;
    let c = data.claims;
    if c.sub.is_empty() || c.sub.len() > CUSTOMER_MAX_BYTES {
        return Err(TokenError::Invalid);
    }
    if now_ms >= c.exp.saturating_mul(1000) {
        return Err(TokenError::Expired);
    }
    Ok(c.sub)
}

/// Headers that make every request of a client `customer`'s: a fresh
/// token in `Authorization` (marked sensitive, so it is never logged).
/// For clients outside the system — the load harness, benchmarks, tests.
pub fn authorization(key: &CustomerKey, customer: &str, now_ms: UnixMs, ttl_ms: u64) -> HeaderMap {
    let token = mint(key, customer, now_ms, ttl_ms).token;
    let mut headers = HeaderMap::new();
    // A JWT is base64url and dots: always a valid header value.
    if let Ok(mut v) = axum::http::HeaderValue::from_str(&format!("Bearer {token}")) {
        v.set_sensitive(true);
        headers.insert(axum::http::header::AUTHORIZATION, v);
    }
    headers
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credentials, where anonymous access is on.
    Anonymous,
    /// A verified token's customer.
    Customer(String),
}

impl Caller {
    /// The customer id, if any.
    pub fn customer(&self) -> Option<&str> {
        match self {
            Caller::Anonymous => None,
            Caller::Customer(c) => Some(c),
        }
    }

    /// May this caller see a thing owned by `owner`? A customer's things
    /// only by that customer; an anonymous thing (`None`, contract v1) by
    /// whoever has its id.
    pub fn may_see(&self, owner: Option<&str>) -> bool {
        match owner {
            None => true,
            Some(o) => self.customer() == Some(o),
        }
    }
}

/// The verifier a service runs: the key and whether anonymous calls pass.
#[derive(Debug, Clone)]
pub struct CustomerAuth {
    key: Option<Arc<CustomerKey>>,
    anonymous: bool,
}

impl CustomerAuth {
    pub fn new(key: Option<CustomerKey>, anonymous: bool) -> CustomerAuth {
        CustomerAuth {
            key: key.map(Arc::new),
            anonymous,
        }
    }

    /// Anonymous access only, no key (tests and the simulator's v1 users).
    pub fn anonymous_only() -> CustomerAuth {
        CustomerAuth::new(None, true)
    }

    pub fn allows_anonymous(&self) -> bool {
        self.anonymous
    }

    /// The caller of a request with these headers at `now_ms`.
    pub fn caller(&self, headers: &HeaderMap, now_ms: UnixMs) -> Result<Caller, ApiError> {
        let refuse = |m: &str| Err(ApiError::Unauthenticated(m.to_owned()));
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            if self.anonymous {
                return Ok(Caller::Anonymous);
            }
            return refuse("this route needs an Authorization: Bearer token (POST /api/sessions)");
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return refuse("the Authorization header must be `Bearer <token>`");
        };
        let Some(key) = &self.key else {
            return refuse("this deployment does not accept bearer tokens");
        };
        match verify(key, token, now_ms) {
            Ok(customer) => Ok(Caller::Customer(customer)),
            Err(e) => refuse(&e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn key() -> CustomerKey {
        CustomerKey::hs256(SECRET).unwrap()
    }

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
        h
    }

    #[test]
    fn a_minted_token_names_its_customer_until_it_expires() {
        let m = mint(&key(), "alice", 1_000_000, 60_000);
        assert_eq!(m.expires_at_ms, 1_060_000);
        assert_eq!(verify(&key(), &m.token, 1_059_999).unwrap(), "alice");
        assert_eq!(
            verify(&key(), &m.token, 1_060_000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn another_key_a_changed_byte_or_nonsense_is_invalid() {
        let m = mint(&key(), "alice", 0, 60_000);
        let other = CustomerKey::hs256(&"x".repeat(40)).unwrap();
        assert_eq!(verify(&other, &m.token, 0), Err(TokenError::Invalid));
        let mut bytes = m.token.clone().into_bytes();
        let i = bytes.len() - 3;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(verify(&key(), &tampered, 0), Err(TokenError::Invalid));
        for junk in ["", "a.b.c", "not a token", &"a".repeat(TOKEN_MAX_BYTES + 1)] {
            assert_eq!(verify(&key(), junk, 0), Err(TokenError::Invalid), "{junk}");
        }
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert_eq!(CustomerKey::hs256("short").unwrap_err(), WeakSecret(5));
    }

    #[test]
    fn callers_are_anonymous_only_where_allowed_and_bad_tokens_never_pass() {
        let strict = CustomerAuth::new(Some(key()), false);
        let open = CustomerAuth::new(Some(key()), true);
        let none = HeaderMap::new();
        assert!(matches!(
            strict.caller(&none, 0),
            Err(ApiError::Unauthenticated(_))
        ));
        assert_eq!(open.caller(&none, 0).unwrap(), Caller::Anonymous);
        let good = mint(&key(), "bob", 0, 60_000).token;
        for a in [&strict, &open] {
            assert_eq!(
                a.caller(&bearer(&good), 0).unwrap(),
                Caller::Customer("bob".into())
            );
            assert!(a.caller(&bearer("junk"), 0).is_err());
            assert!(a.caller(&bearer(&good), 60_000).is_err());
        }
        let mut basic = HeaderMap::new();
        basic.insert("authorization", HeaderValue::from_static("Basic Ym9iOnB3"));
        assert!(open.caller(&basic, 0).is_err());
    }

    #[test]
    fn a_customers_things_are_theirs_alone() {
        let bob = Caller::Customer("bob".into());
        assert!(bob.may_see(Some("bob")));
        assert!(!bob.may_see(Some("alice")));
        assert!(!Caller::Anonymous.may_see(Some("bob")));
        assert!(Caller::Anonymous.may_see(None));
        assert!(bob.may_see(None));
    }
}

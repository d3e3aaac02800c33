//! Business rules that do not need storage: request validation, hold
//! lifetimes and the extension cap, request hashing for idempotency, and
//! the shape of accounts (email key, password bounds).
//!
//! Keeping these pure means the in-memory model, the Redis adapter and the
//! HTTP layer all apply the same numbers.

use crate::model::{SeatId, UnixMs};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// Contract v1: a hold covers between 1 and 8 seats.
pub const MAX_SEATS_PER_HOLD: usize = 8;

/// Limits on holds. Defaults match the documented configuration keys
/// (`hold.*`); see docs/API.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HoldPolicy {
    /// Shortest hold a client may ask for.
    pub hold_seconds_min: u64,
    /// Longest single hold or extension a client may ask for.
    pub hold_seconds_max: u64,
    /// Hard cap on a hold's whole life, counted from its creation: extensions
    /// never push expiry past `created + max_lifetime_seconds`.
    pub max_lifetime_seconds: u64,
    /// Checkout window: placing an order pins the hold and keeps it alive
    /// at least this long, so the saga can confirm it.
    pub checkout_seconds: u64,
    /// How long a gone hold is remembered so its holder gets 410, not 404.
    pub tombstone_seconds: u64,
}

impl Default for HoldPolicy {
    fn default() -> Self {
        Self {
            hold_seconds_min: 1,
            hold_seconds_max: 600,
            max_lifetime_seconds: 1_800,
            checkout_seconds: 120,
            tombstone_seconds: 3_600,
        }
    }
}

/// Why a request is invalid (maps to 422 `VALIDATION_FAILED`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Checks a hold request's shape: 1..=8 distinct seats and an allowed duration.
pub fn validate_hold_request(
    seat_ids: &[SeatId],
    hold_seconds: u64,
    policy: &HoldPolicy,
) -> Result<(), Invalid> {
    if seat_ids.is_empty() || seat_ids.len() > MAX_SEATS_PER_HOLD {
        return Err(Invalid(format!(
            "seatIds must list between 1 and {MAX_SEATS_PER_HOLD} seats, got {}",
            seat_ids.len()
        )));
    }
    let distinct: BTreeSet<&SeatId> = seat_ids.iter().collect();
    if distinct.len() != seat_ids.len() {
        return Err(Invalid("seatIds must not repeat a seat".into()));
    }
    validate_hold_seconds(hold_seconds, policy)
}

/// Checks a requested hold or extension duration.
pub fn validate_hold_seconds(hold_seconds: u64, policy: &HoldPolicy) -> Result<(), Invalid> {
    if hold_seconds < policy.hold_seconds_min || hold_seconds > policy.hold_seconds_max {
        return Err(Invalid(format!(
            "holdSeconds must be between {} and {}, got {hold_seconds}",
            policy.hold_seconds_min, policy.hold_seconds_max
        )));
    }
    Ok(())
}

/// The expiry an extension would give, or `None` when the hold is already at
/// its lifetime cap (an extension must move expiry forward to count).
pub fn extended_expiry(
    created_at_ms: UnixMs,
    current_expiry_ms: UnixMs,
    now_ms: UnixMs,
    hold_ms: u64,
    max_lifetime_ms: u64,
) -> Option<UnixMs> {
    let cap = created_at_ms.saturating_add(max_lifetime_ms);
    let wanted = now_ms.saturating_add(hold_ms).min(cap);
    (wanted > current_expiry_ms).then_some(wanted)
}

/// Why [`extended_expiry`] refused, in words for the client: the hold is at
/// its lifetime cap, or the requested time from now does not reach past
/// the current expiry. (The refusal itself is decided in the seat store's
/// atomic step; this only explains it.)
pub fn extension_refusal(
    created_at_ms: UnixMs,
    current_expiry_ms: UnixMs,
    now_ms: UnixMs,
    hold_ms: u64,
    max_lifetime_ms: u64,
) -> String {
    let cap = created_at_ms.saturating_add(max_lifetime_ms);
    if cap <= current_expiry_ms || cap <= now_ms {
        format!(
            "the hold is at its lifetime cap: no hold lasts more than {} s after it was made",
            max_lifetime_ms / 1000
        )
    } else {
        format!(
            "an extension must move the expiry later: {} s from now is not after the current expiry, {} s from now",
            hold_ms / 1000,
            current_expiry_ms.saturating_sub(now_ms).div_ceil(1000)
        )
    }
}

/// A stable hash of a JSON request body, independent of key order and
/// whitespace, so an `Idempotency-Key` replay is recognised as "the same
/// request" exactly when its meaning is the same.
pub fn request_hash(body: &serde_json::Value) -> String {
    // serde_json's default map is ordered by key, so `to_vec` is canonical.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seats(n: usize) -> Vec<SeatId> {
        (0..n).map(|i| SeatId(format!("1-{i}"))).collect()
    }

    #[test]
    fn hold_request_bounds() {
        let p = HoldPolicy::default();
        assert!(validate_hold_request(&seats(0), 60, &p).is_err());
        assert!(validate_hold_request(&seats(1), 60, &p).is_ok());
        assert!(validate_hold_request(&seats(8), 60, &p).is_ok());
        assert!(validate_hold_request(&seats(9), 60, &p).is_err());
        assert!(validate_hold_request(&seats(2), 0, &p).is_err());
        assert!(validate_hold_request(&seats(2), 601, &p).is_err());
        let dup = vec![SeatId::from("1-1"), SeatId::from("1-1")];
        assert!(validate_hold_request(&dup, 60, &p).is_err());
    }

    #[test]
    fn extension_is_capped_by_lifetime() {
        // created at 0, lifetime cap 100, currently expiring at 50.
        assert_eq!(extended_expiry(0, 50, 40, 30, 100), Some(70));
        assert_eq!(extended_expiry(0, 50, 90, 30, 100), Some(100));
        assert_eq!(extended_expiry(0, 100, 95, 30, 100), None);
        // An "extension" that would shorten the hold is not an extension.
        assert_eq!(extended_expiry(0, 80, 10, 30, 100), None);
    }

    #[test]
    fn hold_seconds_take_both_bounds() {
        let p = HoldPolicy {
            hold_seconds_min: 5,
            hold_seconds_max: 50,
            ..HoldPolicy::default()
        };
        assert!(validate_hold_seconds(4, &p).is_err());
        assert!(validate_hold_seconds(5, &p).is_ok());
        assert!(validate_hold_seconds(50, &p).is_ok());
        assert!(validate_hold_seconds(51, &p).is_err());
    }

    #[test]
    fn an_extension_refusal_says_which_rule_refused() {
        let cap =
            "the hold is at its lifetime cap: no hold lasts more than 100 s after it was made";
        // Expiry already at the cap (created 0, lifetime 100 s).
        assert_eq!(extension_refusal(0, 100_000, 95_000, 30_000, 100_000), cap);
        // Past the cap, the expiry before it.
        assert_eq!(extension_refusal(0, 50_000, 100_000, 30_000, 100_000), cap);
        assert_eq!(
            extension_refusal(0, 80_000, 10_000, 30_000, 1_000_000),
            "an extension must move the expiry later: 30 s from now is not after the current expiry, 70 s from now"
        );
        assert_eq!(
            extension_refusal(0, 80_001, 10_000, 30_000, 1_000_000),
            "an extension must move the expiry later: 30 s from now is not after the current expiry, 71 s from now",
            "the remaining time is rounded up"
        );
    }

    #[test]
    fn request_hash_ignores_key_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":[1,2]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{ "b":[1,2], "a":1 }"#).unwrap();
        let c: serde_json::Value = serde_json::from_str(r#"{"a":2,"b":[1,2]}"#).unwrap();
        assert_eq!(request_hash(&a), request_hash(&b));
        assert_ne!(request_hash(&a), request_hash(&c));
    }
}

/// Longest email accepted (RFC 5321's path limit).
pub const EMAIL_MAX_CHARS: usize = 254;
/// Shortest password accepted (OWASP ASVS 2.1.1).
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longest password accepted (ASVS 2.1.2 asks for at least 64; the bound
/// keeps one hash's work fixed).
pub const PASSWORD_MAX_BYTES: usize = 256;

/// The key an email is matched by: trimmed and lowercased (so `Ann@X.org`
/// and `ann@x.org` are one account). Any script is allowed; the shape must
/// be `local@domain` (one `@`), both non-empty, without spaces or control
/// characters.
pub fn email_key(email: &str) -> Result<String, Invalid> {
    let e = email.trim();
    let bad = || Invalid("email must look like name@example.org (at most 254 characters)".into());
    if e.is_empty() || e.chars().count() > EMAIL_MAX_CHARS {
        return Err(bad());
    }
    if e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    match e.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !local.contains('@') =>
        {
            Ok(e.to_lowercase())
        }
        _ => Err(bad()),
    }
}

/// A new password's shape: 8 characters to 256 bytes.
pub fn validate_password(password: &str) -> Result<(), Invalid> {
    if password.chars().count() < PASSWORD_MIN_CHARS || password.len() > PASSWORD_MAX_BYTES {
        return Err(Invalid(format!(
            "password must be at least {PASSWORD_MIN_CHARS} characters and at most \
             {PASSWORD_MAX_BYTES} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod account_tests {
    use super::*;

    #[test]
    fn emails_match_case_blind_in_any_script_and_nonsense_is_refused() {
        assert_eq!(email_key("  Ann@Example.ORG ").unwrap(), "ann@example.org");
        assert_eq!(email_key("Jürgen@bücher.de").unwrap(), "jürgen@bücher.de");
        for bad in [
            "",
            "ann",
            "@x.org",
            "ann@",
            "a b@x.org",
            "a@b@c",
            "a\u{0}@x.org",
        ] {
            assert!(email_key(bad).is_err(), "{bad:?}");
        }
        assert!(email_key(&format!("{}@x.org", "a".repeat(250))).is_err());
        let longest = format!("{}@x.org", "a".repeat(EMAIL_MAX_CHARS - 6));
        assert_eq!(longest.chars().count(), EMAIL_MAX_CHARS);
        assert!(email_key(&longest).is_ok(), "254 characters are allowed");
    }

    #[test]
    fn passwords_are_bounded_both_ways() {
        assert!(validate_password("1234567").is_err());
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password(&"ü".repeat(128)).is_ok());
        assert!(validate_password(&"x".repeat(257)).is_err());
    }
}

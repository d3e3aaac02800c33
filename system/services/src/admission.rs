//! Waiting-room admission tokens: what the queue service hands an admitted
//! visitor and what reservation checks before a hold on a protected event.
//!
//! A token is `v2.<event>.<visitor>.<customer>.<expires>.<mac>`: the event,
//! visitor and customer ids in hex (the customer empty for an anonymous
//! visitor, allowed only where `auth.anonymous` is on), the expiry in Unix
//! ms, and HMAC-SHA-256 over everything before the last dot with the key
//! from `queue.admission_key` — never a default outside the embedded demo.
//! The token binds the admission to one visitor of one event, for one
//! customer, until its expiry; reservation refuses it from any other
//! customer's bearer token and also asks the queue store whether that
//! visitor's slot is still held (`QueueStore::touch`), so a token stops
//! working as soon as the slot frees (bought, idle, expired). v1 tokens
//! (no customer) are refused.
//!
//! Layer: shared types; imports the domain only.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use ticketing_domain::{EventId, UnixMs, VisitorId};

/// The header that carries the admission token on a hold request.
pub const ADMISSION_HEADER: &str = "x-admission-token";

type HmacSha256 = Hmac<Sha256>;

/// The signing key (shared by the queue and reservation services).
#[derive(Clone)]
pub struct AdmissionKey(Vec<u8>);

impl std::fmt::Debug for AdmissionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdmissionKey(..)")
    }
}

impl AdmissionKey {
    pub fn new(secret: &str) -> Self {
        Self(secret.as_bytes().to_vec())
    }

    fn mac(&self, text: &str) -> HmacSha256 {
        // HMAC takes a key of any length.
        let mut mac = HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(text.as_bytes());
        mac
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionClaims {
    pub event_id: EventId,
    pub visitor_id: VisitorId,
    /// The customer the visitor joined as (`None`: anonymous).
    pub customer_id: Option<String>,
    pub expires_at_ms: UnixMs,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    #[error("the admission token is malformed or its signature is wrong")]
    Invalid,
    #[error("the admission token has expired")]
    Expired,
}

/// Signs `claims`.
pub fn sign(key: &AdmissionKey, claims: &AdmissionClaims) -> String {
    let body = format!(
        "v2.{}.{}.{}.{}",
        hex::encode(claims.event_id.as_str()),
        hex::encode(claims.visitor_id.as_str()),
        hex::encode(claims.customer_id.as_deref().unwrap_or("")),
        claims.expires_at_ms
    );
    let tag = hex::encode(key.mac(&body).finalize().into_bytes());
    format!("{body}.{tag}")
}

/// Checks the signature (in constant time) and the expiry.
pub fn verify(
    key: &AdmissionKey,
    token: &str,
    now_ms: UnixMs,
) -> Result<AdmissionClaims, AdmissionError> {
    let (body, tag) = token.rsplit_once('.').ok_or(AdmissionError::Invalid)?;
    let tag = hex::decode(tag).map_err(|_| AdmissionError::Invalid)?;
    key.mac(body)
        .verify_slice(&tag)
        .map_err(|_| AdmissionError::Invalid)?;
    let fields: Vec<&str> = body.split('.').collect();
    let ["v2", event, visitor, customer, exp] = fields[..] else {
        return Err(AdmissionError::Invalid);
    };
    let expires_at_ms: UnixMs = exp.parse().map_err(|_| AdmissionError::Invalid)?;
    if expires_at_ms <= now_ms {
        return Err(AdmissionError::Expired);
    }
    let customer = unhex(customer)?;
    Ok(AdmissionClaims {
        event_id: EventId(unhex(event)?),
        visitor_id: VisitorId(unhex(visitor)?),
        customer_id: (!customer.is_empty()).then_some(customer),
        expires_at_ms,
    })
}

fn unhex(field: &str) -> Result<String, AdmissionError> {
    let bytes = hex::decode(field).map_err(|_| AdmissionError::Invalid)?;
    String::from_utf8(bytes).map_err(|_| AdmissionError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AdmissionClaims {
        AdmissionClaims {
            event_id: EventId::from("stadium|final"),
            visitor_id: VisitorId::from("v_0011"),
            customer_id: Some("ada@example.com".into()),
            expires_at_ms: 5_000,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let key = AdmissionKey::new("k1");
        let token = sign(&key, &claims());
        assert_eq!(verify(&key, &token, 4_999), Ok(claims()));
        assert_eq!(verify(&key, &token, 5_000), Err(AdmissionError::Expired));
        let anonymous = AdmissionClaims {
            customer_id: None,
            ..claims()
        };
        let token = sign(&key, &anonymous);
        assert_eq!(verify(&key, &token, 0), Ok(anonymous));
    }

    #[test]
    fn a_v1_token_even_correctly_signed_is_refused() {
        let key = AdmissionKey::new("k1");
        let body = format!("v1.{}", hex::encode("stadium|v_0011|5000"));
        let tag = hex::encode(key.mac(&body).finalize().into_bytes());
        let v1 = format!("{body}.{tag}");
        assert_eq!(verify(&key, &v1, 0), Err(AdmissionError::Invalid));
    }

    #[test]
    fn the_customer_cannot_be_swapped_under_the_signature() {
        let key = AdmissionKey::new("k1");
        let token = sign(&key, &claims());
        let swapped = token.replace(
            &hex::encode("ada@example.com"),
            &hex::encode("eve@example.com"),
        );
        assert_ne!(swapped, token);
        assert_eq!(verify(&key, &swapped, 0), Err(AdmissionError::Invalid));
    }

    #[test]
    fn another_key_or_any_changed_byte_is_refused() {
        let key = AdmissionKey::new("k1");
        let token = sign(&key, &claims());
        assert_eq!(
            verify(&AdmissionKey::new("k2"), &token, 0),
            Err(AdmissionError::Invalid)
        );
        let forged = sign(
            &key,
            &AdmissionClaims {
                expires_at_ms: 9_999_999,
                ..claims()
            },
        );
        let (forged_body, _) = forged.rsplit_once('.').unwrap();
        let (_, real_tag) = token.rsplit_once('.').unwrap();
        let spliced = format!("{forged_body}.{real_tag}");
        assert_eq!(verify(&key, &spliced, 0), Err(AdmissionError::Invalid));
        for bad in ["", "v2", "v2..", "x.y.z", "v2.zz.00", "v2.61.62.63.1.00"] {
            assert_eq!(
                verify(&key, bad, 0),
                Err(AdmissionError::Invalid),
                "{bad:?}"
            );
        }
    }
}

//! Waiting-room admission tokens: what the queue service hands an admitted
//! visitor and what reservation checks before a hold on a protected event.
//!
//! A token is `v1.<claims>.<mac>`: the claims (event, visitor, expiry in
//! Unix ms) as hex of `event|visitor|expires`, and HMAC-SHA-256 over
//! `v1.<claims>` with the key from `queue.admission_key` — never a default
//! outside the embedded demo. The token binds the admission to one visitor
//! of one event until its expiry; reservation also asks the queue store
//! whether that visitor's slot is still held (`QueueStore::touch`), so a
//! token stops working as soon as the slot frees (bought, idle, expired),
//! and a token shared with others keeps admitting only the one visitor's
//! slot — every hold made with it counts as that visitor's activity.
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
    let text = format!(
        "{}|{}|{}",
        claims.event_id, claims.visitor_id, claims.expires_at_ms
    );
    let body = format!("v1.{}", hex::encode(text));
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
    let claims = body.strip_prefix("v1.").ok_or(AdmissionError::Invalid)?;
    let text = hex::decode(claims).map_err(|_| AdmissionError::Invalid)?;
    let text = String::from_utf8(text).map_err(|_| AdmissionError::Invalid)?;
    let mut parts = text.rsplitn(3, '|');
    let (Some(exp), Some(visitor), Some(event)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(AdmissionError::Invalid);
    };
    let expires_at_ms: UnixMs = exp.parse().map_err(|_| AdmissionError::Invalid)?;
    if expires_at_ms <= now_ms {
        return Err(AdmissionError::Expired);
    }
    Ok(AdmissionClaims {
        event_id: EventId::from(event),
        visitor_id: VisitorId::from(visitor),
        expires_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AdmissionClaims {
        AdmissionClaims {
            event_id: EventId::from("stadium|final"),
            visitor_id: VisitorId::from("v_0011"),
            expires_at_ms: 5_000,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let key = AdmissionKey::new("k1");
        let token = sign(&key, &claims());
        assert_eq!(verify(&key, &token, 4_999), Ok(claims()));
        assert_eq!(verify(&key, &token, 5_000), Err(AdmissionError::Expired));
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
        for bad in ["", "v1", "v1..", "x.y.z", "v1.zz.00"] {
            assert_eq!(
                verify(&key, bad, 0),
                Err(AdmissionError::Invalid),
                "{bad:?}"
            );
        }
    }
}

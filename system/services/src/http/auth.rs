//! The service credential on internal routes: a router wrapped by
//! [`require_service_token`] answers 401 `UNAUTHENTICATED` (standard body)
//! to a call whose `x-service-token` is missing or is not one of the
//! accepted tokens. The comparison hashes both sides (SHA-256) and compares
//! the digests without an early exit, so its time says nothing about the
//! token.
//!
//! Layer: plumbing; imports `config` and `error`.

use crate::config::{InternalSettings, SERVICE_TOKEN_HEADER};
use crate::error::ErrorPayload;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// `router` with the credential check, when tokens are configured; as it
/// is otherwise (the embedded demo's loopback-only internal routes).
pub fn require_service_token(router: Router, internal: &InternalSettings) -> Router {
    let accepted: Vec<[u8; 32]> = internal
        .accepted()
        .iter()
        .map(|t| digest(t.as_bytes()))
        .collect();
    if accepted.is_empty() {
        return router;
    }
    router.layer(axum::middleware::from_fn_with_state(
        Arc::new(accepted),
        check,
    ))
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Equal digests, looked at in full whatever they hold.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn check(State(accepted): State<Arc<Vec<[u8; 32]>>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(SERVICE_TOKEN_HEADER)
        .map(|v| digest(v.as_bytes()));
    let ok = given.is_some_and(|g| accepted.iter().fold(false, |any, a| any | same(a, &g)));
    if ok {
        return next.run(req).await;
    }
    let message = format!("internal routes need a valid {SERVICE_TOKEN_HEADER} header");
    ErrorPayload::respond(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_equal_only_when_equal() {
        let a = digest(b"secret");
        assert!(same(&a, &digest(b"secret")));
        assert!(!same(&a, &digest(b"secreT")));
        assert!(!same(&a, &digest(b"")));
    }
}

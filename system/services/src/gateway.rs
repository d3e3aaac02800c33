//! The gateway's routing: contract v1's public paths. Payment and every
//! `/internal/...` path are not routed. In the embedded mode the public
//! routers are merged into one router on one port; in a deployment nginx
//! routes the same prefixes to the service processes.
//!
//! Layer: top of the crate; imports `started` and `openapi` only (the
//! routers come from each service's `start`).

use crate::started::Started;
use axum::Router;
use axum::routing::get;

/// Public path prefixes and the service that owns each (for nginx configs and docs).
pub const ROUTES: &[(&str, &str)] = &[
    ("/api/events", "catalog"),
    ("/api/reservations", "reservation"),
    ("/api/orders", "order"),
    ("/api/queue", "queue"),
    ("/api/users", "users"),
    ("/api/sessions", "users"),
    ("/api/openapi.json", "catalog"),
];

/// Internal path prefixes (never routed by the gateway) and their owners.
pub const INTERNAL_ROUTES: &[(&str, &str)] = &[
    ("/internal/events", "catalog"),
    ("/internal/holds", "reservation"),
    ("/internal/audit/orders", "order"),
    ("/internal/orders", "order"),
    ("/internal/payments", "payment"),
    ("/internal/payment-faults", "payment"),
    ("/internal/settlements", "payment"),
    ("/internal/ledger", "payment"),
    ("/internal/queue", "queue"),
];

/// The service that owns `path` (`other` for `/health`, `/metrics` and
/// unknown paths): the `service` of each request span, so one embedded
/// process's trace still says which service did what.
pub fn owner(path: &str) -> &'static str {
    ROUTES
        .iter()
        .chain(INTERNAL_ROUTES)
        .find(|(prefix, _)| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .map_or("other", |(_, service)| service)
}

/// One router with every service's public routes, plus `GET /health` and
/// the published OpenAPI document.
pub fn public_router(services: &[&Started]) -> Router {
    services.iter().fold(
        Router::new()
            .route("/health", get(|| async { "ok" }))
            .merge(crate::openapi::router()),
        |router, s| router.merge(s.public.clone()),
    )
}

#[cfg(test)]
mod tests {
    use super::{ROUTES, owner};

    #[test]
    fn every_public_route_is_in_the_openapi_document_and_no_internal_one() {
        let doc = crate::openapi::document();
        let paths: Vec<&str> = doc["paths"]
            .as_object()
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        for (prefix, _) in ROUTES.iter().filter(|(p, _)| *p != crate::openapi::PATH) {
            assert!(
                paths.iter().any(|p| p.starts_with(prefix)),
                "{prefix} is routed but not documented: {paths:?}"
            );
        }
        assert!(paths.iter().all(|p| p.starts_with("/api/")), "{paths:?}");
    }

    #[test]
    fn paths_are_owned_by_their_service() {
        assert_eq!(owner("/api/events/jazz/seats/stream"), "catalog");
        assert_eq!(owner("/api/reservations"), "reservation");
        assert_eq!(owner("/api/orders/o-1"), "order");
        assert_eq!(owner("/internal/payments/o-1/capture"), "payment");
        assert_eq!(owner("/internal/holds/h/pin"), "reservation");
        assert_eq!(owner("/api/queue/stadium-final/q_1"), "queue");
        assert_eq!(owner("/api/users"), "users");
        assert_eq!(owner("/api/sessions"), "users");
        assert_eq!(owner("/internal/queue/stadium-final"), "queue");
        assert_eq!(owner("/api/ordersx"), "other");
        assert_eq!(owner("/health"), "other");
    }
}

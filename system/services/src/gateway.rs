//! The gateway's routing: contract v1's public paths. Payment and every
//! `/internal/...` path are not routed. In the embedded mode the public
//! routers are merged into one router on one port; in a deployment nginx
//! routes the same prefixes to the service processes.

use crate::catalog::{self, CatalogState};
use crate::order::{self, OrderState};
use crate::reservation::{self, ReservationState};
use axum::Router;
use axum::routing::get;

/// Public path prefixes and the service that owns each (for nginx configs and docs).
pub const ROUTES: &[(&str, &str)] = &[
    ("/api/events", "catalog"),
    ("/api/reservations", "reservation"),
    ("/api/orders", "order"),
];

/// One router with every public route, plus `GET /health`.
pub fn public_router(
    catalog: CatalogState,
    reservation: ReservationState,
    order: OrderState,
) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(catalog::public_router(catalog))
        .merge(reservation::public_router(reservation))
        .merge(order::public_router(order))
}

//! The published contract: an OpenAPI 3.1 document of every public route,
//! built by utoipa from the handlers' `#[utoipa::path]` attributes and the
//! contract types' `ToSchema` derives — so it says what the code does, not
//! what someone remembered to write. Served at `GET /api/openapi.json`
//! ([`router`]: by the embedded gateway, and by the catalog process behind
//! nginx) and committed as `docs/openapi.json`, which a test keeps equal to
//! [`json`] (`UPDATE_OPENAPI=1` rewrites it).
//!
//! Internal routes (`/internal/...`) are not in it: they are never public.
//!
//! Layer: top, beside `gateway` (it names every service's handlers).

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Where the document is served.
pub const PATH: &str = "/api/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ticketing",
        version = "2",
        description = "Flash-sale seat sales: events and seat maps, holds, idempotent orders, \
                       the waiting room and customer accounts. Every error body is \
                       `{code, message, traceId}`; docs/API.md is the prose reference."
    ),
    paths(
        crate::catalog::list_events,
        crate::catalog::get_event,
        crate::catalog::get_seats,
        crate::catalog::get_layout,
        crate::catalog::get_status,
        crate::catalog::stream_seats,
        crate::reservation::create_hold,
        crate::reservation::get_hold,
        crate::reservation::extend_hold,
        crate::reservation::release_hold,
        crate::order::place_order,
        crate::order::get_order,
        crate::queue::join,
        crate::queue::get_place,
        crate::queue::stream_place,
        crate::users::sign_up,
        crate::users::log_in,
    ),
    components(schemas(ticketing_contract::ChangeView)),
    modifiers(&BearerScheme),
    tags(
        (name = "events", description = "Events, seat maps and the live seat stream"),
        (name = "holds", description = "Seat holds (the hold id is the holder's capability; the token's customer owns it)"),
        (name = "orders", description = "Idempotent orders and their status"),
        (name = "waiting room", description = "The queue in front of a protected event's sale"),
        (name = "customers", description = "Accounts and bearer tokens"),
    )
)]
struct PublicApi;

/// The `bearer` security scheme the hold and order routes name.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "`POST /api/sessions`'s accessToken. Required in production modes; \
                 the embedded demo also takes anonymous calls (auth.anonymous).",
            ))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    PublicApi::openapi()
}

/// The document as the pretty JSON that is served and committed.
pub fn json() -> String {
    let mut text = document().to_pretty_json().unwrap_or_else(|e| {
        format!("{{\"error\": \"the OpenAPI document did not serialize: {e}\"}}")
    });
    text.push('\n');
    text
}

/// `GET /api/openapi.json`.
pub fn router() -> Router {
    Router::new().route(
        PATH,
        get(|| async { ([(CONTENT_TYPE, "application/json")], json()) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/openapi.json` is the document this build serves; after a
    /// contract change, `UPDATE_OPENAPI=1 cargo test -p ticketing-services
    /// openapi` rewrites it (and the diff shows in review).
    #[test]
    fn the_committed_document_is_the_served_one() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        let now = json();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &now).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == now,
            "docs/openapi.json differs from the document this build serves: \
             run `UPDATE_OPENAPI=1 cargo test -p ticketing-services openapi` and review the diff"
        );
    }
}

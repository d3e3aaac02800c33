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
        crate::order::cancel_order,
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
        (name = "orders", description = "Idempotent orders, their status and their cancellation"),
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

/// OpenAPI links: where an answer's ids lead (a client's next calls, and
/// the sequences schemathesis's stateful phase follows): a hold to reading,
/// extending, releasing and ordering it; an order to its status; a place
/// in the queue to reading it; an account to logging in. Written into the
/// JSON (utoipa 5.5's `Link` serializes its fields in snake case, which
/// OpenAPI readers do not know).
/// (path, method, status, link name, operation id, parameters, request body).
type LinkSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<serde_json::Value>,
);

fn link_specs() -> Vec<LinkSpec> {
    let hold = &[("hold_id", "$response.body#/holdId")][..];
    vec![
        (
            "/api/reservations",
            "post",
            "201",
            "GetHold",
            "get_hold",
            hold,
            None,
        ),
        (
            "/api/reservations",
            "post",
            "201",
            "ExtendHold",
            "extend_hold",
            hold,
            None,
        ),
        (
            "/api/reservations",
            "post",
            "201",
            "ReleaseHold",
            "release_hold",
            hold,
            None,
        ),
        (
            "/api/reservations",
            "post",
            "201",
            "OrderHold",
            "place_order",
            &[],
            Some(serde_json::json!({"holdId": "$response.body#/holdId"})),
        ),
        (
            "/api/orders",
            "post",
            "202",
            "GetOrder",
            "get_order",
            &[("order_id", "$response.body#/orderId")],
            None,
        ),
        (
            "/api/orders",
            "post",
            "202",
            "CancelOrder",
            "cancel_order",
            &[("order_id", "$response.body#/orderId")],
            None,
        ),
        (
            "/api/queue/{event_id}",
            "post",
            "201",
            "GetPlace",
            "get_place",
            &[
                ("event_id", "$response.body#/eventId"),
                ("ticket", "$response.body#/ticket"),
            ],
            None,
        ),
        (
            "/api/users",
            "post",
            "201",
            "LogIn",
            "log_in",
            &[],
            Some(serde_json::json!("$request.body")),
        ),
    ]
}

/// The document with its [`link_specs`], as JSON.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(PublicApi::openapi()).unwrap_or_default();
    for (path, method, status, name, operation, params, body) in link_specs() {
        // A JSON pointer, not indexing: indexing would add what is missing.
        let at = format!(
            "/paths/{}/{method}/responses/{status}",
            path.replace('~', "~0").replace('/', "~1")
        );
        let Some(resp) = doc.pointer_mut(&at).filter(|r| r.is_object()) else {
            continue;
        };
        let mut link = serde_json::json!({ "operationId": operation });
        if !params.is_empty() {
            let map: serde_json::Map<String, serde_json::Value> = params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect();
            link["parameters"] = map.into();
        }
        if let Some(b) = body {
            link["requestBody"] = b;
        }
        resp["links"][name] = link;
    }
    doc
}

/// The document as the pretty JSON that is served and committed.
pub fn json() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_else(|e| {
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

    #[test]
    fn every_link_is_attached_and_names_an_operation_of_the_document() {
        let doc = document();
        let mut operations = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                operations.extend(op["operationId"].as_str());
            }
        }
        for (path, method, status, name, operation, _, _) in link_specs() {
            let link = &doc["paths"][path][method]["responses"][status]["links"][name];
            assert_eq!(
                link["operationId"], operation,
                "{path} {method} {status} {name}"
            );
            assert!(
                operations.contains(&operation),
                "{operation} is no operation"
            );
        }
    }

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

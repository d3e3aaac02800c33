//! The published OpenAPI document: served at `/api/openapi.json` by the
//! gateway, and true to what the API answers — each answer of a purchase's
//! walk has every property its schema requires and none it does not name.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The component schema `name` of `doc`, following one `$ref`.
fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][name];
    assert!(s.is_object(), "no schema {name} in the document");
    s
}

/// Whether `body` has the properties `name`'s schema requires and no other
/// than it names (one level: what drifts when a field is added or renamed).
fn conforms(doc: &Value, name: &str, body: &Value) -> Result<(), String> {
    let s = schema(doc, name);
    let props = s["properties"]
        .as_object()
        .ok_or(format!("{name}: no properties"))?;
    let got = body
        .as_object()
        .ok_or(format!("{name}: {body} is not an object"))?;
    for r in s["required"].as_array().into_iter().flatten() {
        let r = r.as_str().unwrap_or_default();
        if !got.contains_key(r) {
            return Err(format!("{name}: {body} lacks the required {r}"));
        }
    }
    for k in got.keys() {
        if !props.contains_key(k) {
            return Err(format!(
                "{name}: {body} has {k}, which the schema does not name"
            ));
        }
    }
    Ok(())
}

/// The schema a path's operation answers with `status`, by name.
fn answer_schema(doc: &Value, path: &str, method: &str, status: &str) -> String {
    let content = &doc["paths"][path][method]["responses"][status]["content"]["application/json"];
    let r = content["schema"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} {path} {status}: no schema reference"));
    r.rsplit('/').next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_document_is_served_and_each_answer_of_a_purchase_matches_it() {
    let app = spawn_app().await;
    let r = app.get("/api/openapi.json").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = r.json().await.unwrap();
    let built: Value = serde_json::from_str(&ticketing_services::openapi::json()).unwrap();
    assert_eq!(doc, built, "the served document is the built one");
    assert_eq!(doc["openapi"], "3.1.0");

    let check = |path: &str, method: &str, status: &str, body: &Value| {
        let name = answer_schema(&doc, path, method, status);
        conforms(&doc, &name, body).unwrap_or_else(|e| panic!("{method} {path} {status}: {e}"));
    };
    let event: Value = app
        .get("/api/events/spring-gala")
        .await
        .json()
        .await
        .unwrap();
    check("/api/events/{event_id}", "get", "200", &event);
    let map: Value = app
        .get("/api/events/spring-gala/seats")
        .await
        .json()
        .await
        .unwrap();
    check("/api/events/{event_id}/seats", "get", "200", &map);
    conforms(&doc, "SeatView", &map["seats"][0]).unwrap();

    let r = app.hold("spring-gala", &["2-1", "2-2"], 60).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let hold: Value = r.json().await.unwrap();
    check("/api/reservations", "post", "201", &hold);
    let hold_id = hold["holdId"].as_str().unwrap();
    let r = app.hold("spring-gala", &["2-2"], 60).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    check("/api/reservations", "post", "409", &r.json().await.unwrap());

    let r = app.order(hold_id, "openapi-key-1").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let placed: Value = r.json().await.unwrap();
    check("/api/orders", "post", "202", &placed);
    let order = app.wait_terminal(placed["orderId"].as_str().unwrap()).await;
    check("/api/orders/{order_id}", "get", "200", &order);

    let missing: Value = app.get("/api/orders/o-none").await.json().await.unwrap();
    check("/api/orders/{order_id}", "get", "404", &missing);
    app.stop().await;
}

#[test]
fn a_body_the_schema_does_not_describe_is_refused_by_the_check() {
    let doc: Value = serde_json::from_str(&ticketing_services::openapi::json()).unwrap();
    let ok = json!({"orderId": "o", "status": "PENDING"});
    assert_eq!(conforms(&doc, "PlacedView", &ok), Ok(()));
    let extra = json!({"orderId": "o", "status": "PENDING", "secret": 1});
    assert!(conforms(&doc, "PlacedView", &extra).is_err());
    assert!(conforms(&doc, "PlacedView", &json!({"orderId": "o"})).is_err());
}

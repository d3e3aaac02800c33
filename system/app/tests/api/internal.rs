//! The internal routes the load harness uses: `POST /internal/events` and
//! `GET /internal/audit/orders`, on the embedded internal listener — and not
//! on the public port; and the saga's confirm over HTTP.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn create(app: &TestApp, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/internal/events", app.embedded().internal_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn event(id: &str, rows: u32, cols: u32) -> Value {
    json!({"eventId": id, "title": "Load run", "startsAt": "2030-01-01T20:00:00Z", "rows": rows, "cols": cols})
}

#[tokio::test]
async fn an_event_is_created_once_with_its_whole_grid() {
    let app = spawn_app().await;
    let r = create(&app, event("run-1-rush", 3, 7)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["seatCount"], 21);
    assert_eq!(view["availableCount"], 21);

    let map = app.seat_map("run-1-rush").await;
    let seats = map["seats"].as_array().unwrap();
    assert_eq!(seats.len(), 21);
    assert_eq!(seat_status(&map, "3-7"), "AVAILABLE");
    app.hold_ok("run-1-rush", &["2-5"]).await;

    // Again: refused, and the event (with its hold) is untouched.
    let again = create(&app, event("run-1-rush", 1, 1)).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["code"], "EVENT_EXISTS");
    assert_eq!(
        seat_status(&app.seat_map("run-1-rush").await, "2-5"),
        "HELD"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_events_are_refused_with_the_standard_body() {
    let app = spawn_app().await;
    for bad in [
        event("", 1, 1),
        event("has space", 1, 1),
        event(&"x".repeat(65), 1, 1),
        event("zero", 0, 5),
        event("huge", 1000, 1000),
    ] {
        let r = create(&app, bad.clone()).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "VALIDATION_FAILED", "{bad}");
        assert!(body["traceId"].is_string());
    }
    // Not on the public port.
    let r = app.post("/internal/events", event("public", 1, 1)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app.get("/internal/audit/orders").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn the_order_audit_shows_orders_tickets_and_the_outbox() {
    let app = spawn_live_app_with(|_| {}).await;
    let hold = app.hold_ok("spring-gala", &["4-4", "4-5"]).await;
    let order_id = app.order_ok(&hold, "audit-1").await;
    assert_eq!(app.wait_terminal(&order_id).await["status"], "CONFIRMED");

    let audit: Value = reqwest::get(format!(
        "{}/internal/audit/orders",
        app.embedded().internal_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let orders = audit["orders"].as_array().unwrap();
    let mine = orders
        .iter()
        .find(|o| o["orderId"] == order_id.as_str())
        .unwrap();
    assert_eq!(mine["status"], "CONFIRMED");
    assert_eq!(mine["seatIds"], json!(["4-4", "4-5"]));
    let mut seats: Vec<&str> = audit["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["orderId"] == order_id.as_str())
        .map(|t| t["seatId"].as_str().unwrap())
        .collect();
    seats.sort();
    assert_eq!(seats, ["4-4", "4-5"]);
    assert_eq!(audit["outboxBacklog"], 0);
    app.stop().await;
}

#[tokio::test]
async fn internal_routes_need_the_service_token_when_one_is_set() {
    let app = spawn_app_with(|s| {
        s.internal.token = Some("new-secret".into());
        s.internal.previous_token = Some("old-secret".into());
    })
    .await;
    let url = format!("{}/internal/payment-faults", app.embedded().internal_url());
    let call = |token: Option<&'static str>| {
        let mut r = app.http.get(&url);
        if let Some(t) = token {
            r = r.header("x-service-token", t);
        }
        r.send()
    };
    for token in [None, Some("wrong"), Some("new-secre")] {
        let r = call(token).await.unwrap();
        let b = expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
        assert!(!b["message"].as_str().unwrap().contains("secret"), "{b}");
    }
    // The current token and, during a rotation, the previous one.
    for token in ["new-secret", "old-secret"] {
        assert_eq!(call(Some(token)).await.unwrap().status(), StatusCode::OK);
    }
    // The order service's own internal calls (pin, payment) carry it: a
    // purchase goes through.
    let hold = app.hold_ok("spring-gala", &["9-9"]).await;
    let order = app.order_ok(&hold, "with-credential").await;
    assert_eq!(app.wait_terminal(&order).await["status"], "CONFIRMED");
    // The public routes need no credential.
    assert_eq!(app.get("/api/events").await.status(), StatusCode::OK);
    app.stop().await;
}

/// The saga's fast path, `POST /internal/holds/{id}/confirm`: fenced by the
/// pin (another order is refused and nothing changes), idempotent for the
/// pinned order, and the seats are SOLD.
#[tokio::test]
async fn a_confirm_over_http_is_fenced_by_the_pin_and_idempotent() {
    let app = spawn_app().await;
    let internal = app.embedded().internal_url();
    let post = |path: String, body: serde_json::Value| {
        let http = app.http.clone();
        let url = format!("{internal}{path}");
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            (r.status(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let hold = app.hold_ok("spring-gala", &["4-4"]).await;
    let (status, _) = post(
        format!("/internal/holds/{hold}/pin"),
        serde_json::json!({"orderId": "o-pinned"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let confirm = |order: &str| {
        post(
            format!("/internal/holds/{hold}/confirm"),
            serde_json::json!({ "orderId": order }),
        )
    };
    let (status, other) = confirm("o-other").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        other,
        serde_json::json!({"confirmed": false, "reason": "HOLD_NOT_PINNED"})
    );
    let map = app.seat_map("spring-gala").await;
    let seat = |map: &serde_json::Value| {
        map["seats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["seatId"] == "4-4")
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(seat(&map), "HELD", "a refused confirm changes nothing");
    for _ in 0..2 {
        let (status, body) = confirm("o-pinned").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({"confirmed": true}));
    }
    assert_eq!(seat(&app.seat_map("spring-gala").await), "SOLD");
    let (status, unknown) = post(
        "/internal/holds/h_unknown/confirm".into(),
        serde_json::json!({"orderId": "o-pinned"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unknown["confirmed"], false, "{unknown}");
    app.stop().await;
}

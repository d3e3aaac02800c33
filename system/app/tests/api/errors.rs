//! Bad input of every kind gets a 4xx with the standard body — never a 5xx.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn invalid_hold_requests_are_422() {
    let app = spawn_app().await;
    let nine: Vec<String> = (1..=9).map(|c| format!("1-{c}")).collect();
    let bad = [
        json!({ "eventId": "spring-gala", "seatIds": [], "holdSeconds": 60 }),
        json!({ "eventId": "spring-gala", "seatIds": nine, "holdSeconds": 60 }),
        json!({ "eventId": "spring-gala", "seatIds": ["1-1", "1-1"], "holdSeconds": 60 }),
        json!({ "eventId": "spring-gala", "seatIds": ["1-1"], "holdSeconds": 0 }),
        json!({ "eventId": "spring-gala", "seatIds": ["1-1"], "holdSeconds": 601 }),
        json!({ "eventId": "spring-gala", "seatIds": ["1-1"], "holdSeconds": "60" }),
        json!({ "eventId": "spring-gala", "seatIds": "1-1", "holdSeconds": 60 }),
        json!({ "eventId": "spring-gala", "seatIds": ["1-1"], "holdSeconds": -5 }),
        json!({ "eventId": "spring-gala", "seatIds": ["1-1"] }),
        json!({ "eventId": "spring-gala", "seatIds": ["1-1"], "holdSeconds": 60, "extra": true }),
        json!({ "eventId": "", "seatIds": ["1-1"], "holdSeconds": 60 }),
        json!({ "eventId": "x".repeat(65), "seatIds": ["1-1"], "holdSeconds": 60 }),
    ];
    for body in bad {
        let r = app.post("/api/reservations", body.clone()).await;
        expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    }
    // Nothing was held by any of them.
    let map = app.seat_map("spring-gala").await;
    assert_eq!(map["version"], 0);
    app.stop().await;
}

#[tokio::test]
async fn malformed_oversize_and_untyped_bodies() {
    let app = spawn_app().await;
    let r = app
        .http
        .post(app.url("/api/reservations"))
        .header("content-type", "application/json")
        .body("{\"eventId\": ")
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "MALFORMED_JSON").await;

    let r = app
        .http
        .post(app.url("/api/reservations"))
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_error(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;

    let huge = json!({ "eventId": "spring-gala", "seatIds": ["1-1"], "holdSeconds": 60, "pad": "x".repeat(64 * 1024) });
    let r = app.post("/api/reservations", huge).await;
    expect_error(r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;

    let r = app
        .http
        .post(app.url("/api/orders"))
        .header("Idempotency-Key", "k")
        .header("content-type", "application/json")
        .body("[1,2")
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "MALFORMED_JSON").await;

    let r = app
        .http
        .post(app.url("/api/orders"))
        .header("Idempotency-Key", "k")
        .json(&json!({ "holdId": 7 }))
        .send()
        .await
        .unwrap();
    let b = expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(b["message"], "holdId: must be text, not integer `7`");
    app.stop().await;
}

#[tokio::test]
async fn validation_messages_name_fields_and_rules_not_server_types() {
    let app = spawn_app().await;
    let send = |body: serde_json::Value| app.post("/api/reservations", body);
    let cases = [
        (
            json!({ "eventId": "spring-gala", "seatIds": ["1-1"], "holdSeconds": "x" }),
            "holdSeconds: must be a whole number in range",
        ),
        (
            json!({ "eventId": "spring-gala", "seatIds": ["1-1"], "holdSeconds": -1 }),
            "holdSeconds: must be a whole number in range",
        ),
        (
            json!(["spring-gala", ["1-1"]]),
            "must be a JSON object with the documented fields",
        ),
        (
            json!({ "eventId": "spring-gala", "seatIds": ["1-1"] }),
            "`holdSeconds` is required",
        ),
        (
            json!({ "eventId": "spring-gala", "seatIds": ["1-1"], "holdSeconds": 60, "x": 1 }),
            "unknown field `x`",
        ),
    ];
    for (body, want) in cases {
        let b = expect_error(
            send(body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        )
        .await;
        let message = b["message"].as_str().unwrap();
        assert!(message.starts_with(want), "{body}: {message}");
        for leak in ["u64", "struct", "HoldBody", "line 1", "target type"] {
            assert!(!message.contains(leak), "{body}: {message}");
        }
    }
    // JSON is UTF-8: another declared charset is 415; utf-8 and +json are fine.
    let body = r#"{"eventId":"spring-gala","seatIds":["7-7"],"holdSeconds":60}"#;
    for (ct, status) in [
        (
            "application/json; charset=latin1",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        ("application/json; charset=UTF-8", StatusCode::CREATED),
    ] {
        let r = app
            .http
            .post(app.url("/api/reservations"))
            .header("content-type", ct)
            .body(body.replace(
                "7-7",
                if status == StatusCode::CREATED {
                    "7-8"
                } else {
                    "7-7"
                },
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{ct}");
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let app = spawn_app().await;
    expect_error(
        app.get("/api/nothing-here").await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let r = app.http.put(app.url("/api/events")).send().await.unwrap();
    expect_error(r, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
    let r = app
        .http
        .delete(app.url("/api/orders/x"))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
    app.stop().await;
}

#[tokio::test]
async fn a_database_outage_is_503_with_the_standard_body() {
    let app = spawn_live_app_with(|_| {}).await;
    let hold = app.hold_ok("spring-gala", &["4-4"]).await;
    app.embedded().handles.orders.set_down(true);
    let r = app.order(&hold, "outage-key").await;
    expect_error(r, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE").await;
    app.embedded().handles.orders.set_down(false);
    // The retry with the same key goes through: nothing was lost.
    let order = app.order_ok(&hold, "outage-key").await;
    assert_eq!(app.wait_terminal(&order).await["status"], "CONFIRMED");
    app.stop().await;
}

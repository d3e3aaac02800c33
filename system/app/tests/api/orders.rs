//! `POST /api/orders` and its Idempotency-Key semantics.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use ticketing_domain::ports::OrderRepository;

#[tokio::test]
async fn idempotency_key_is_required() {
    let app = spawn_app().await;
    let hold = app.hold_ok("spring-gala", &["1-1"]).await;
    let r = app.post("/api/orders", json!({ "holdId": hold })).await;
    expect_error(r, StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED").await;
    let r = app
        .http
        .post(app.url("/api/orders"))
        .header("Idempotency-Key", "k".repeat(256))
        .json(&json!({ "holdId": hold }))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    // Visible ASCII only, as docs/API.md says: no space, no TAB.
    for key in ["two words", "tab\there"] {
        let r = app
            .http
            .post(app.url("/api/orders"))
            .header("Idempotency-Key", key)
            .json(&json!({ "holdId": hold }))
            .send()
            .await
            .unwrap();
        expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    }
    // No order was created and the hold is not pinned.
    let got: Value = app
        .get(&format!("/api/reservations/{hold}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "ACTIVE");
    app.stop().await;
}

#[tokio::test]
async fn replay_returns_the_first_response_and_a_different_body_is_422() {
    let app = spawn_app().await;
    let hold = app.hold_ok("spring-gala", &["1-1", "1-2"]).await;
    let first = app.order(&hold, "key-1").await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    let replay = app.order(&hold, "key-1").await;
    assert_eq!(replay.status(), StatusCode::ACCEPTED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay, first);

    // Same meaning, other key order and spacing: still the same request.
    let r = app
        .http
        .post(app.url("/api/orders"))
        .header("Idempotency-Key", "key-1")
        .header("content-type", "application/json")
        .body(format!("{{ \"holdId\" : \"{hold}\" }}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let other = app.hold_ok("spring-gala", &["1-3"]).await;
    let r = app.order(&other, "key-1").await;
    expect_error(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_MISMATCH",
    )
    .await;

    let orders = app.embedded().handles.orders.orders().await.unwrap();
    assert_eq!(orders.len(), 1, "one key, one order");
    assert_eq!(
        orders[0].order_id.as_str(),
        first["orderId"].as_str().unwrap()
    );
    app.stop().await;
}

#[tokio::test]
async fn concurrent_requests_with_one_key_make_one_order() {
    let app = Arc::new(spawn_app().await);
    let hold = app.hold_ok("jazz-night", &["4-4"]).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let app = app.clone();
        let hold = hold.clone();
        tasks.push(tokio::spawn(async move {
            let r = app.order(&hold, "same-key").await;
            let replayed = r.headers().get("idempotent-replayed").is_some();
            (r.status(), replayed, r.json::<Value>().await.unwrap())
        }));
    }
    let (mut ids, mut firsts) = (Vec::new(), 0);
    for t in tasks {
        let (status, replayed, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        ids.push(body["orderId"].as_str().unwrap().to_owned());
        firsts += usize::from(!replayed);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every response names the same order");
    // Repeats that arrived while the first was in progress say so too.
    assert_eq!(firsts, 1, "one answer is the first, every other a replay");
    let orders = app.embedded().handles.orders.orders().await.unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(app.wait_terminal(&ids[0]).await["status"], "CONFIRMED");
    Arc::into_inner(app).unwrap().stop().await;
}

#[tokio::test]
async fn unknown_and_expired_holds_are_refused_and_the_refusal_is_replayed() {
    let app = spawn_app().await;
    let r = app
        .order("h_0123456789abcdef0123456789abcdef", "k-unknown")
        .await;
    let first = expect_error(r, StatusCode::NOT_FOUND, "HOLD_NOT_FOUND").await;
    let r = app
        .order("h_0123456789abcdef0123456789abcdef", "k-unknown")
        .await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let again = expect_error_body(r, StatusCode::NOT_FOUND).await;
    assert_eq!(again, first, "the stored refusal, verbatim");

    let r = app.hold("spring-gala", &["3-3"], 5).await;
    let hold: Value = r.json().await.unwrap();
    app.clock.advance_ms(6_000);
    let r = app
        .order(hold["holdId"].as_str().unwrap(), "k-expired")
        .await;
    expect_error(r, StatusCode::GONE, "HOLD_EXPIRED").await;
    assert!(
        app.embedded()
            .handles
            .orders
            .orders()
            .await
            .unwrap()
            .is_empty()
    );
    app.stop().await;
}

/// The body of an error response (trace header not compared: a replay keeps
/// the first body, the header names the replaying request).
async fn expect_error_body(r: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status);
    r.json().await.unwrap()
}

#[tokio::test]
async fn get_order_shows_status_and_unknown_is_404() {
    let app = spawn_app().await;
    expect_error(
        app.get("/api/orders/nope").await,
        StatusCode::NOT_FOUND,
        "ORDER_NOT_FOUND",
    )
    .await;
    let hold = app.hold_ok("comedy-hour", &["1-5", "1-6"]).await;
    let order = app.order_ok(&hold, "get-1").await;
    let done = app.wait_terminal(&order).await;
    assert_eq!(done["status"], "CONFIRMED");
    assert_eq!(done["reason"], Value::Null);
    assert_eq!(done["holdId"], hold.as_str());
    assert_eq!(done["eventId"], "comedy-hour");
    assert_eq!(done["seatIds"], json!(["1-5", "1-6"]));
    assert_eq!(done["amountCents"], 30_000);
    app.stop().await;
}

/// `?waitMs=` answers a PENDING order in one request as soon as it is
/// terminal (long before the deadline), a PENDING order that stays so at
/// the deadline with its status then, a terminal order at once; a bad
/// `waitMs` is 422.
#[tokio::test]
async fn a_read_with_wait_ms_answers_when_the_order_is_terminal() {
    // Each payment call takes 300 ms: an order is PENDING for at least 600.
    let app = spawn_app_with(|s| {
        s.payment.latency_ms_min = 300;
        s.payment.latency_ms_max = 300;
    })
    .await;
    let hold = app.hold_ok("spring-gala", &["7-7"]).await;
    let order = app.order_ok(&hold, "wait-1").await;
    let path = format!("/api/orders/{order}");
    let body: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(body["status"], "PENDING");

    let (body, took) = read_waiting(&app, &order, 10_000).await;
    assert_eq!(body["status"], "CONFIRMED", "{body}");
    // Woken by the change, not answered by the deadline's last read.
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    let (body, took) = read_waiting(&app, &order, 10_000).await;
    assert_eq!(body["status"], "CONFIRMED");
    assert!(
        took < Duration::from_secs(5),
        "terminal, yet answered after {took:?}"
    );

    let hold = app.hold_ok("spring-gala", &["7-8"]).await;
    let second = app.order_ok(&hold, "wait-2").await;
    let (body, took) = read_waiting(&app, &second, 100).await;
    assert_eq!(body["status"], "PENDING", "{body}");
    assert!(
        took >= Duration::from_millis(100),
        "answered after {took:?}"
    );
    assert_eq!(app.wait_terminal(&second).await["status"], "CONFIRMED");

    for bad in ["10001", "-1", "soon"] {
        let r = app.get(&format!("{path}?waitMs={bad}")).await;
        expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    }
    let r = app.get("/api/orders/no-such-order?waitMs=5000").await;
    expect_error(r, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
}

/// `GET /api/orders/{order}?waitMs=` and how long its answer took.
async fn read_waiting(app: &TestApp, order: &str, wait_ms: u64) -> (Value, Duration) {
    let started = tokio::time::Instant::now();
    let r = app
        .get(&format!("/api/orders/{order}?waitMs={wait_ms}"))
        .await;
    (r.json().await.unwrap(), started.elapsed())
}

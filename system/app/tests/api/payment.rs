//! The payment gateway's internal API, called directly on its own port (the
//! gateway does not route it): idempotent per order, the refusals, and
//! settlement (batches per event, ledger statistics).

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn call(app: &TestApp, op: &str, order: &str, body: Option<Value>) -> (StatusCode, Value) {
    let url = format!(
        "http://{}/internal/payments/{order}/{op}",
        app.embedded().payment_addr
    );
    let mut req = app.http.post(url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn calls_are_idempotent_per_order_and_refusals_are_409() {
    let app = spawn_app().await;
    let auth = |o: &'static str| {
        call(
            &app,
            "authorize",
            o,
            Some(json!({ "amountCents": 2500, "eventId": "ev-1" })),
        )
    };

    let (s, b) = auth("o-1").await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("AUTHORIZED"))
    );
    let (_, b) = auth("o-1").await;
    assert_eq!(b["status"], "AUTHORIZED", "a repeat changes nothing");
    let (_, b) = call(&app, "capture", "o-1", None).await;
    assert_eq!(b["status"], "CAPTURED");
    let (_, b) = call(&app, "capture", "o-1", None).await;
    assert_eq!(b["status"], "CAPTURED");
    let (s, b) = call(&app, "void", "o-1", None).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("PAYMENT_ALREADY_CAPTURED"))
    );
    let (_, b) = call(&app, "refund", "o-1", None).await;
    assert_eq!(b["status"], "REFUNDED");
    let (_, b) = call(&app, "refund", "o-1", None).await;
    assert_eq!(b["status"], "REFUNDED");
    assert_eq!(
        app.ledger_kinds("o-1").await,
        ["AUTHORIZE", "CAPTURE", "REFUND"]
    );

    // A void before any authorization is recorded; a late authorization cannot land.
    let (_, b) = call(&app, "void", "o-2", None).await;
    assert_eq!(b["status"], "VOIDED");
    let (_, b) = auth("o-2").await;
    assert_eq!(b["status"], "VOIDED");
    let (s, b) = call(&app, "capture", "o-2", None).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("PAYMENT_NOT_CAPTURABLE"))
    );
    let (s, b) = call(&app, "refund", "o-3", None).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("PAYMENT_NOT_REFUNDABLE"))
    );
    let (s, b) = call(
        &app,
        "authorize",
        "o-4",
        Some(json!({ "amountCents": -1, "eventId": "ev-1" })),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("VALIDATION_FAILED"))
    );

    let url = format!(
        "http://{}/internal/payments/o-9",
        app.embedded().payment_addr
    );
    let r = app.http.get(url).send().await.unwrap();
    expect_error(r, StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND").await;
    app.stop().await;
}

#[tokio::test]
async fn fault_settings_are_validated_and_applied() {
    let app = spawn_app().await;
    let url = format!(
        "http://{}/internal/payment-faults",
        app.embedded().payment_addr
    );
    let r = app
        .http
        .put(&url)
        .json(&json!({ "decline_rate": 1.5 }))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let r = app
        .http
        .put(&url)
        .json(&json!({ "surprise": 1 }))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let r = app
        .http
        .put(&url)
        .json(&json!({ "decline_rate": 1.0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, b) = call(
        &app,
        "authorize",
        "o-5",
        Some(json!({ "amountCents": 100, "eventId": "ev-1" })),
    )
    .await;
    assert_eq!(b["status"], "DECLINED");
    let got: Value = app
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["decline_rate"], 1.0);
    app.stop().await;
}

/// `GET` or `POST` an internal payment route; the status and JSON body.
async fn internal(app: &TestApp, post: bool, path: &str) -> (StatusCode, Value) {
    let url = format!("http://{}{path}", app.embedded().payment_addr);
    let req = if post {
        app.http.post(url)
    } else {
        app.http.get(url)
    };
    let r = req.send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

/// Authorizes (for `event`) and captures `order`.
async fn sell(app: &TestApp, order: &str, event: &str, amount_cents: i64) {
    let body = json!({ "amountCents": amount_cents, "eventId": event });
    let (_, b) = call(app, "authorize", order, Some(body)).await;
    assert_eq!(b["status"], "AUTHORIZED");
    let (_, b) = call(app, "capture", order, None).await;
    assert_eq!(b["status"], "CAPTURED");
}

#[tokio::test]
async fn settlement_closes_one_batch_per_event_and_takes_each_entry_once() {
    // The worker stays out of the way: this test closes by hand.
    let app = spawn_app_with(|s| s.settlement.interval_ms = 3_600_000).await;
    sell(&app, "s-1", "ev-a", 1_000).await;
    sell(&app, "s-2", "ev-a", 500).await;
    sell(&app, "s-3", "ev-b", 700).await;
    let (_, b) = call(&app, "refund", "s-2", None).await;
    assert_eq!(b["status"], "REFUNDED");
    let (_, stats) = internal(&app, false, "/internal/ledger/stats").await;
    assert_eq!(
        (
            &stats["capturedCents"],
            &stats["refundedCents"],
            &stats["unsettledEntries"]
        ),
        (&json!(2_200), &json!(500), &json!(4))
    );
    let (s, closed) = internal(&app, true, "/internal/settlements/close").await;
    assert_eq!((s, &closed["settled"]), (StatusCode::OK, &json!(true)));
    let batches = closed["closed"].as_array().unwrap();
    let net = |b: &Value| {
        (
            b["eventId"].clone(),
            b["capturedCents"].clone(),
            b["refundedCents"].clone(),
        )
    };
    let nets: Vec<_> = batches.iter().map(net).collect();
    assert_eq!(
        nets,
        [
            (json!("ev-a"), json!(1_500), json!(500)),
            (json!("ev-b"), json!(700), json!(0))
        ]
    );
    assert_eq!(batches[0]["entrySeqs"].as_array().unwrap().len(), 3);
    // Nothing left: closing again closes nothing, and the stats agree.
    let (_, again) = internal(&app, true, "/internal/settlements/close").await;
    assert_eq!(
        (&again["closed"], &again["settled"]),
        (&json!([]), &json!(true))
    );
    let (_, stats) = internal(&app, false, "/internal/ledger/stats").await;
    assert_eq!(stats["unsettledEntries"], 0);
    let (_, of_b) = internal(&app, false, "/internal/settlements?eventId=ev-b").await;
    assert_eq!(of_b.as_array().map(Vec::len), Some(1));
    assert_eq!(of_b[0]["batchId"], batches[1]["batchId"]);
    let (s, bad) = internal(&app, false, "/internal/settlements?event=ev-b").await;
    assert_eq!(
        (s, &bad["code"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("VALIDATION_FAILED")
        )
    );
    app.stop().await;
}

#[tokio::test]
async fn the_settlement_worker_settles_on_its_own() {
    let app = spawn_app_with(|s| s.settlement.interval_ms = 50).await;
    sell(&app, "w-1", "ev-w", 900).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let batches = loop {
        let (_, b) = internal(&app, false, "/internal/settlements?eventId=ev-w").await;
        if b.as_array().is_some_and(|a| !a.is_empty()) || tokio::time::Instant::now() > deadline {
            break b;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(batches[0]["capturedCents"], 900, "{batches}");
    app.stop().await;
}

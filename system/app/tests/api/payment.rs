//! The payment gateway's internal API, called directly on its own port (the
//! gateway does not route it): idempotent per order, and the refusals.

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
    let auth = |o: &'static str| call(&app, "authorize", o, Some(json!({ "amountCents": 2500 })));

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
    let (s, b) = call(&app, "authorize", "o-4", Some(json!({ "amountCents": -1 }))).await;
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
        Some(json!({ "amountCents": 100 })),
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

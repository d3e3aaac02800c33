//! The saga's outcomes, end to end, checked against ground truth: the seat
//! map, the durable tickets and the payment ledger.

use crate::helpers::*;
use serde_json::Value;
use ticketing_domain::ports::OrderRepository;
use ticketing_services::config::{PaymentFaults, ScriptedFault};

/// Waits (bounded) until the order's saga counts at least `n` failed
/// attempts at its current step; returns the count it saw.
async fn failed_attempts(app: &TestApp, order: &str, n: u32) -> u32 {
    let orders = &app.embedded().handles.orders;
    let id = ticketing_domain::OrderId::from(order);
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        let record = orders.get_order(&id).await.unwrap().expect("order stored");
        if record.attempts >= n || tokio::time::Instant::now() >= deadline {
            return record.attempts;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn tickets_for(app: &TestApp, order: &str) -> Vec<String> {
    app.embedded()
        .handles
        .orders
        .tickets()
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.order_id.as_str() == order)
        .map(|t| t.seat_id.to_string())
        .collect()
}

#[tokio::test]
async fn success_confirms_sells_the_seats_and_captures_once() {
    let app = spawn_live_app_with(|_| {}).await;
    let hold = app.hold_ok("spring-gala", &["5-1", "5-2"]).await;
    let order = app.order_ok(&hold, "ok-1").await;
    let done = app.wait_terminal(&order).await;
    assert_eq!(done["status"], "CONFIRMED");
    let map = app.seat_map("spring-gala").await;
    assert_eq!(seat_status(&map, "5-1"), "SOLD");
    assert_eq!(seat_status(&map, "5-2"), "SOLD");
    assert_eq!(tickets_for(&app, &order).await, ["5-1", "5-2"]);
    assert_eq!(app.ledger_kinds(&order).await, ["AUTHORIZE", "CAPTURE"]);
    // A sold seat cannot be held again.
    let r = app.hold("spring-gala", &["5-1"], 60).await;
    assert_eq!(r.status(), reqwest::StatusCode::CONFLICT);
    app.stop().await;
}

#[tokio::test]
async fn decline_fails_the_order_and_releases_the_seats() {
    let app = spawn_live_app_with(|_| {}).await;
    app.set_payment_faults(PaymentFaults {
        script: vec![ScriptedFault::Decline],
        ..PaymentFaults::default()
    });
    let hold = app.hold_ok("spring-gala", &["6-6"]).await;
    let order = app.order_ok(&hold, "decline-1").await;
    let done = app.wait_terminal(&order).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["reason"], "PAYMENT_DECLINED");
    app.wait_seats("spring-gala", "release after decline", |m| {
        seat_status(m, "6-6") == "AVAILABLE"
    })
    .await;
    assert!(tickets_for(&app, &order).await.is_empty());
    assert_eq!(app.ledger_kinds(&order).await, ["DECLINE"]);
    app.stop().await;
}

#[tokio::test]
async fn confirm_rejected_after_expiry_voids_cancels_and_does_not_oversell() {
    let app = spawn_live_app_with(|s| {
        s.hold.checkout_seconds = 30;
        s.saga.authorize_deadline_ms = 600_000;
        // Authorization takes a while (1.5 s, generous for a loaded CI
        // machine): the clock passes the hold's expiry meanwhile.
        s.payment.latency_ms_min = 1_500;
        s.payment.latency_ms_max = 1_500;
        s.saga.payment_timeout_ms = 5_000;
    })
    .await;
    let hold = app.hold_ok("jazz-night", &["9-1"]).await; // 60 s hold
    let order = app.order_ok(&hold, "late-1").await;
    // While the gateway is authorizing, the clock passes the hold's expiry.
    app.clock.advance_ms(61_000);
    let done = app.wait_terminal(&order).await;
    assert_eq!(done["status"], "CANCELLED", "{done}");
    assert_eq!(done["reason"], "HOLD_EXPIRED");
    assert_eq!(app.ledger_kinds(&order).await, ["AUTHORIZE", "VOID"]);
    assert!(tickets_for(&app, &order).await.is_empty());

    // The seat went back to sale and someone else buys it: sold once.
    app.set_payment_faults(PaymentFaults::default());
    app.wait_seats("jazz-night", "expiry", |m| {
        seat_status(m, "9-1") == "AVAILABLE"
    })
    .await;
    let hold2 = app.hold_ok("jazz-night", &["9-1"]).await;
    let order2 = app.order_ok(&hold2, "late-2").await;
    assert_eq!(app.wait_terminal(&order2).await["status"], "CONFIRMED");
    let tickets = app.embedded().handles.orders.tickets().await.unwrap();
    let for_seat: Vec<_> = tickets
        .iter()
        .filter(|t| t.seat_id.as_str() == "9-1")
        .collect();
    assert_eq!(for_seat.len(), 1);
    assert_eq!(for_seat[0].order_id.as_str(), order2);
    app.stop().await;
}

#[tokio::test]
async fn payment_timeout_that_still_succeeded_is_not_charged_twice() {
    let app = spawn_live_app_with(|s| s.saga.payment_timeout_ms = 200).await;
    app.set_payment_faults(PaymentFaults {
        // The authorization succeeds but answers after the caller gave up;
        // the capture does the same.
        script: vec![
            ScriptedFault::TimeoutAfterSuccess,
            ScriptedFault::None,
            ScriptedFault::TimeoutAfterSuccess,
        ],
        timeout_delay_ms: 600,
        ..PaymentFaults::default()
    });
    let hold = app.hold_ok("comedy-hour", &["2-2"]).await;
    let order = app.order_ok(&hold, "slow-1").await;
    let done = app.wait_terminal(&order).await;
    assert_eq!(done["status"], "CONFIRMED");
    assert_eq!(app.ledger_kinds(&order).await, ["AUTHORIZE", "CAPTURE"]);
    app.stop().await;
}

#[tokio::test]
async fn transient_payment_errors_are_retried() {
    let app = spawn_live_app_with(|_| {}).await;
    app.set_payment_faults(PaymentFaults {
        script: vec![
            ScriptedFault::Error,
            ScriptedFault::Error,
            ScriptedFault::None,
            ScriptedFault::Error,
        ],
        ..PaymentFaults::default()
    });
    let hold = app.hold_ok("comedy-hour", &["3-3"]).await;
    let order = app.order_ok(&hold, "flaky-1").await;
    assert_eq!(app.wait_terminal(&order).await["status"], "CONFIRMED");
    assert_eq!(app.ledger_kinds(&order).await, ["AUTHORIZE", "CAPTURE"]);
    app.stop().await;
}

#[tokio::test]
async fn unreachable_gateway_past_the_deadline_voids_and_fails() {
    let app = spawn_live_app_with(|s| s.saga.authorize_deadline_ms = 10_000).await;
    app.set_payment_faults(PaymentFaults {
        error_rate: 1.0,
        ..PaymentFaults::default()
    });
    let hold = app.hold_ok("comedy-hour", &["4-4"]).await;
    let order = app.order_ok(&hold, "down-1").await;
    // Wait until payment attempts have failed, then pass the deadline and
    // let the gateway recover.
    let failed = failed_attempts(&app, &order, 2).await;
    assert!(failed >= 2, "{failed} failed payment attempts");
    app.clock.advance_ms(10_000);
    app.set_payment_faults(PaymentFaults::default());
    let done = app.wait_terminal(&order).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["reason"], "PAYMENT_UNAVAILABLE");
    assert_eq!(
        app.ledger_kinds(&order).await,
        ["VOID"],
        "void recorded, so a late authorization cannot land"
    );
    app.wait_seats("comedy-hour", "release", |m| {
        seat_status(m, "4-4") == "AVAILABLE"
    })
    .await;
    app.stop().await;
}

/// The kicker drives an order placed by this process at once: with the
/// broker away (no `OrderPlaced` can arrive) and the clock stopped (the
/// watchdog's grace never ends), only it can have made the payment call —
/// and with the seats confirmed over HTTP, the whole purchase: no broker
/// hop is on its path.
#[tokio::test]
async fn an_order_is_authorized_at_once_without_waiting_for_its_message() {
    let app = spawn_app_with(|_| {}).await;
    let bus = app.embedded().handles.bus.clone();
    bus.set_down(true);
    let hold = app.hold_ok("spring-gala", &["10-9"]).await;
    let order = app.order_ok(&hold, "kick-1").await;
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    while app.ledger_kinds(&order).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the placed order was not driven before its message came"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(app.wait_terminal(&order).await["status"], "CONFIRMED");
    assert_eq!(app.ledger_kinds(&order).await, ["AUTHORIZE", "CAPTURE"]);
    // Its message still goes out once the broker is back, and finds the
    // order done: still one authorization, one capture.
    bus.set_down(false);
    app.wait_outbox_drained().await;
    assert_eq!(app.ledger_kinds(&order).await, ["AUTHORIZE", "CAPTURE"]);
    app.stop().await;
}

#[tokio::test]
async fn a_broker_outage_delays_but_loses_nothing() {
    // The command path (seats confirmed through the broker): with the
    // HTTP confirm an outage does not delay a purchase at all (above).
    let app = spawn_live_app_with(|s| s.saga.confirm_over_http = false).await;
    let bus = app.embedded().handles.bus.clone();
    bus.set_down(true);
    let hold = app.hold_ok("spring-gala", &["10-10"]).await;
    let order = app.order_ok(&hold, "outage-1").await;
    // The watchdog drives authorization without OrderPlaced; ConfirmSeats waits in the outbox.
    app.clock.advance_ms(3_000);
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    while app.ledger_kinds(&order).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "authorization never happened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let pending: Value = app
        .get(&format!("/api/orders/{order}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending["status"], "PENDING");
    assert!(
        app.embedded()
            .handles
            .orders
            .outbox_backlog()
            .await
            .unwrap()
            > 0
    );

    bus.set_down(false);
    assert_eq!(app.wait_terminal(&order).await["status"], "CONFIRMED");
    app.wait_outbox_drained().await;
    assert_eq!(app.ledger_kinds(&order).await, ["AUTHORIZE", "CAPTURE"]);
    app.stop().await;
}

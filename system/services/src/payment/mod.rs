//! Payment: a mock payment gateway (internal; the gateway does not route it).
//!
//! authorize / capture / void / refund, idempotent per order id: a repeated
//! call returns the payment's current status and never moves money twice.
//! Each move is a compare-and-set on the payment repository plus an
//! append-only ledger entry, so concurrent retries take effect once.
//!
//! Behaviour under test is configurable ([`PaymentFaults`]): a latency
//! range, and decline / error / "times out at the caller but still succeeds"
//! probabilities rolled on the seeded random source, plus a script of faults
//! for the next calls.
//!
//! Layer: a service; imports the shared types, `http`, `started`; never
//! another service or the gateway.

use crate::Ctx;
use crate::config::{PaymentFaults, ScriptedFault};
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::started::Started;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing_contract::{AuthorizeBody, PaymentView};
use ticketing_domain::ports::{PaymentRepository, RandomExt, RepoError};
use ticketing_domain::{Cents, LedgerEntry, LedgerKind, OrderId, Payment, PaymentStatus};

/// Shared state of the payment service.
#[derive(Debug, Clone)]
pub struct PaymentState {
    pub ctx: Ctx,
    pub repo: Arc<dyn PaymentRepository>,
    /// Live fault settings; `PUT /internal/payment-faults` replaces them.
    pub faults: Arc<Mutex<PaymentFaults>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Authorize,
    Capture,
    Void,
    Refund,
}

fn payment_view(p: Payment) -> PaymentView {
    PaymentView {
        order_id: p.order_id,
        status: p.status,
        amount_cents: p.amount_cents,
    }
}

/// The payment service (the mock gateway): internal routes only, no workers.
pub fn start(state: PaymentState) -> Started {
    Started {
        service: "payment",
        public: Router::new(),
        internal: router(state),
        workers: Vec::new(),
    }
}

/// Routes (all internal): `/internal/payments/...`.
pub fn router(state: PaymentState) -> Router {
    Router::new()
        .route("/internal/payments", get(ledger))
        .route("/internal/payments/{order_id}", get(get_payment))
        .route("/internal/payments/{order_id}/authorize", post(authorize))
        .route("/internal/payments/{order_id}/capture", post(capture))
        .route("/internal/payments/{order_id}/void", post(void))
        .route("/internal/payments/{order_id}/refund", post(refund))
        .route("/internal/payment-faults", put(set_faults).get(get_faults))
        .with_state(state)
}

/// The fault for this call: the next scripted one, else rolled from the rates.
fn pick_fault(state: &PaymentState, op: Op) -> (ScriptedFault, u64) {
    let mut faults = crate::lock(&state.faults);
    let latency_ms = state
        .ctx
        .rng
        .range_u64(faults.latency_ms_min, faults.latency_ms_max);
    if !faults.script.is_empty() {
        return (faults.script.remove(0), latency_ms);
    }
    let rng = &state.ctx.rng;
    let fault = if rng.unit_f64() < faults.error_rate {
        ScriptedFault::Error
    } else if rng.unit_f64() < faults.timeout_rate {
        ScriptedFault::TimeoutAfterSuccess
    } else if op == Op::Authorize && rng.unit_f64() < faults.decline_rate {
        ScriptedFault::Decline
    } else {
        ScriptedFault::None
    };
    (fault, latency_ms)
}

async fn run(
    state: &PaymentState,
    op: Op,
    order_id: OrderId,
    amount_cents: Cents,
) -> Result<Json<PaymentView>, ApiError> {
    let result = run_op(state, op, order_id, amount_cents).await;
    let operation = match op {
        Op::Authorize => "authorize",
        Op::Capture => "capture",
        Op::Void => "void",
        Op::Refund => "refund",
    };
    let outcome = match &result {
        Ok(view) => match view.status {
            PaymentStatus::Authorized => "AUTHORIZED",
            PaymentStatus::Declined => "DECLINED",
            PaymentStatus::Captured => "CAPTURED",
            PaymentStatus::Voided => "VOIDED",
            PaymentStatus::Refunded => "REFUNDED",
        },
        Err(e) => e.payload().code,
    };
    metrics::counter!(crate::metrics::PAYMENTS, "operation" => operation, "result" => outcome)
        .increment(1);
    result
}

/// One operation with the injected faults.
async fn run_op(
    state: &PaymentState,
    op: Op,
    order_id: OrderId,
    amount_cents: Cents,
) -> Result<Json<PaymentView>, ApiError> {
    let (fault, latency_ms) = pick_fault(state, op);
    if latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }
    if fault == ScriptedFault::Error {
        return Err(ApiError::Unavailable("injected payment error".into()));
    }
    let payment = apply(
        state,
        op,
        &order_id,
        amount_cents,
        fault == ScriptedFault::Decline,
    )
    .await?;
    if fault == ScriptedFault::TimeoutAfterSuccess {
        let delay = crate::lock(&state.faults).timeout_delay_ms;
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    Ok(Json(payment_view(payment)))
}

/// The state change for one call; retried a bounded number of times when a
/// concurrent call for the same order won the compare-and-set.
async fn apply(
    state: &PaymentState,
    op: Op,
    order_id: &OrderId,
    amount_cents: Cents,
    decline: bool,
) -> Result<Payment, ApiError> {
    for _ in 0..4 {
        let current = state.repo.get(order_id).await?;
        let status = current.as_ref().map(|p| p.status);
        let amount = current.as_ref().map_or(amount_cents, |p| p.amount_cents);
        use PaymentStatus as S;
        let next = match (op, status) {
            (Op::Authorize, None) if decline => Some((S::Declined, LedgerKind::Decline)),
            (Op::Authorize, None) => Some((S::Authorized, LedgerKind::Authorize)),
            (Op::Authorize, Some(_)) => None,
            (Op::Capture, Some(S::Authorized)) => Some((S::Captured, LedgerKind::Capture)),
            (Op::Capture, Some(S::Captured)) => None,
            (Op::Capture, _) => {
                return Err(ApiError::Conflict(
                    "PAYMENT_NOT_CAPTURABLE",
                    format!("payment is {status:?}, not AUTHORIZED"),
                ));
            }
            (Op::Void, None) => Some((S::Voided, LedgerKind::Void)),
            (Op::Void, Some(S::Authorized)) => Some((S::Voided, LedgerKind::Void)),
            (Op::Void, Some(S::Voided | S::Declined)) => None,
            (Op::Void, Some(_)) => {
                return Err(ApiError::Conflict(
                    "PAYMENT_ALREADY_CAPTURED",
                    "a captured payment must be refunded, not voided".into(),
                ));
            }
            (Op::Refund, Some(S::Captured)) => Some((S::Refunded, LedgerKind::Refund)),
            (Op::Refund, Some(S::Refunded)) => None,
            (Op::Refund, _) => {
                return Err(ApiError::Conflict(
                    "PAYMENT_NOT_REFUNDABLE",
                    format!("payment is {status:?}, not CAPTURED"),
                ));
            }
        };
        let Some((new_status, kind)) = next else {
            // Idempotent repeat: report the current state.
            return current.ok_or(ApiError::NotFound("PAYMENT_NOT_FOUND", "no payment".into()));
        };
        let payment = Payment {
            order_id: order_id.clone(),
            amount_cents: if op == Op::Void && status.is_none() {
                0
            } else {
                amount
            },
            status: new_status,
        };
        match state
            .repo
            .transition(status, payment.clone(), kind, state.ctx.clock.now_ms())
            .await
        {
            Ok(()) => return Ok(payment),
            Err(RepoError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Unavailable("payment busy, retry".into()))
}

async fn authorize(
    State(state): State<PaymentState>,
    Path(order_id): Path<String>,
    ApiJson(body): ApiJson<AuthorizeBody>,
) -> Result<Json<PaymentView>, ApiError> {
    if body.amount_cents < 0 {
        return Err(ApiError::Validation(
            "amountCents must not be negative".into(),
        ));
    }
    run(&state, Op::Authorize, OrderId(order_id), body.amount_cents).await
}

async fn capture(
    State(state): State<PaymentState>,
    Path(order_id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    run(&state, Op::Capture, OrderId(order_id), 0).await
}

async fn void(
    State(state): State<PaymentState>,
    Path(order_id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    run(&state, Op::Void, OrderId(order_id), 0).await
}

async fn refund(
    State(state): State<PaymentState>,
    Path(order_id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    run(&state, Op::Refund, OrderId(order_id), 0).await
}

async fn get_payment(
    State(state): State<PaymentState>,
    Path(order_id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    state
        .repo
        .get(&OrderId(order_id))
        .await?
        .map(|p| Json(payment_view(p)))
        .ok_or(ApiError::NotFound(
            "PAYMENT_NOT_FOUND",
            "no payment for this order".into(),
        ))
}

async fn ledger(State(state): State<PaymentState>) -> Result<Json<Vec<LedgerEntry>>, ApiError> {
    Ok(Json(state.repo.ledger().await?))
}

async fn set_faults(
    State(state): State<PaymentState>,
    ApiJson(faults): ApiJson<PaymentFaults>,
) -> Result<Json<PaymentFaults>, ApiError> {
    for (name, rate) in [
        ("decline_rate", faults.decline_rate),
        ("error_rate", faults.error_rate),
        ("timeout_rate", faults.timeout_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(ApiError::Validation(format!(
                "{name} must be within [0, 1]"
            )));
        }
    }
    *crate::lock(&state.faults) = faults.clone();
    Ok(Json(faults))
}

async fn get_faults(State(state): State<PaymentState>) -> Json<PaymentFaults> {
    Json(crate::lock(&state.faults).clone())
}

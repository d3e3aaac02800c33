//! Payment: a mock payment gateway (internal; the gateway does not route it).
//!
//! authorize / capture / void / refund, idempotent per order id: a repeated
//! call returns the payment's current status and never moves money twice.
//! Each move is a compare-and-set on the payment repository plus an
//! append-only ledger entry, so concurrent retries take effect once.
//!
//! Settlement ([`settlement`]): a worker closes, per event, a batch of the
//! captures and refunds since the last one; `GET /internal/settlements`,
//! `POST /internal/settlements/close` and `GET /internal/ledger/stats`
//! show and drive it.
//!
//! Behaviour under test is configurable ([`PaymentFaults`]): a latency
//! range, and decline / error / "times out at the caller but still succeeds"
//! probabilities rolled on the seeded random source, plus a script of faults
//! for the next calls.
//!
//! Layer: a service; imports the shared types, `http`, `started`; never
//! another service or the gateway.

pub mod settlement;

use crate::Ctx;
use crate::config::{PaymentFaults, ScriptedFault, SettlementSettings};
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::started::Started;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing_contract::{AuthorizeBody, LedgerStatsView, PaymentView, SettleView};
use ticketing_domain::ports::{PaymentRepository, RandomExt, RepoError};
use ticketing_domain::{
    Cents, EventId, LedgerEntry, LedgerKind, OrderId, Payment, PaymentStatus, SettlementBatch,
};
use tokio_util::sync::CancellationToken;

/// Shared state of the payment service.
#[derive(Debug, Clone)]
pub struct PaymentState {
    pub ctx: Ctx,
    pub repo: Arc<dyn PaymentRepository>,
    /// Live fault settings; `PUT /internal/payment-faults` replaces them.
    pub faults: Arc<Mutex<PaymentFaults>>,
    pub settlement: SettlementSettings,
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

/// The settlement worker's name.
pub const SETTLEMENT_WORKER: &str = "settlement";

/// The payment service (the mock gateway): internal routes only, and the
/// settlement worker.
pub fn start(state: PaymentState, shutdown: CancellationToken) -> Started {
    let (repo, clock) = (state.repo.clone(), state.ctx.clock.clone());
    let settle = settlement::run_worker(repo, clock, state.settlement, shutdown);
    Started {
        service: "payment",
        public: Router::new(),
        internal: router(state),
        workers: vec![crate::started::NamedWorker::new(SETTLEMENT_WORKER, settle)],
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
        .route("/internal/settlements", get(settlements))
        .route("/internal/settlements/close", post(close_settlements))
        .route("/internal/ledger/stats", get(ledger_stats))
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

/// One call: the order it is for, and what only authorize says (the
/// event and the amount; later calls use the stored payment's).
struct Call {
    order_id: OrderId,
    event_id: EventId,
    amount_cents: Cents,
}

impl Call {
    fn on(order_id: String) -> Call {
        Call {
            order_id: OrderId(order_id),
            event_id: EventId::from(""),
            amount_cents: 0,
        }
    }
}

async fn run(state: &PaymentState, op: Op, call: Call) -> Result<Json<PaymentView>, ApiError> {
    let result = run_op(state, op, call).await;
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
async fn run_op(state: &PaymentState, op: Op, call: Call) -> Result<Json<PaymentView>, ApiError> {
    let (fault, latency_ms) = pick_fault(state, op);
    if latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }
    if fault == ScriptedFault::Error {
        return Err(ApiError::Unavailable("injected payment error".into()));
    }
    let payment = apply(state, op, &call, fault == ScriptedFault::Decline).await?;
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
    call: &Call,
    decline: bool,
) -> Result<Payment, ApiError> {
    let order_id = &call.order_id;
    for _ in 0..4 {
        let current = state.repo.get(order_id).await?;
        let status = current.as_ref().map(|p| p.status);
        let amount = current
            .as_ref()
            .map_or(call.amount_cents, |p| p.amount_cents);
        let event_id = current.as_ref().map_or(&call.event_id, |p| &p.event_id);
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
            event_id: event_id.clone(),
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
    let call = Call {
        order_id: OrderId(order_id),
        event_id: body.event_id,
        amount_cents: body.amount_cents,
    };
    run(&state, Op::Authorize, call).await
}

async fn capture(
    State(state): State<PaymentState>,
    Path(order_id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    run(&state, Op::Capture, Call::on(order_id)).await
}

async fn void(
    State(state): State<PaymentState>,
    Path(order_id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    run(&state, Op::Void, Call::on(order_id)).await
}

async fn refund(
    State(state): State<PaymentState>,
    Path(order_id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    run(&state, Op::Refund, Call::on(order_id)).await
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

/// `GET /internal/settlements?eventId=`: closed batches, oldest first.
async fn settlements(
    State(state): State<PaymentState>,
    query: Result<Query<SettlementsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<SettlementBatch>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::Validation(e.body_text()))?;
    let event_id = q.event_id.map(EventId);
    Ok(Json(state.repo.settlements(event_id.as_ref()).await?))
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettlementsQuery {
    event_id: Option<String>,
}

/// `POST /internal/settlements/close`: settle everything now.
async fn close_settlements(
    State(state): State<PaymentState>,
) -> Result<Json<SettleView>, ApiError> {
    let (closed, settled) = settlement::settle_all(
        state.repo.as_ref(),
        state.ctx.clock.as_ref(),
        state.settlement.max_entries,
    )
    .await?;
    Ok(Json(SettleView { closed, settled }))
}

/// `GET /internal/ledger/stats`: counts and sums by event and kind.
async fn ledger_stats(
    State(state): State<PaymentState>,
) -> Result<Json<LedgerStatsView>, ApiError> {
    let stats = state.repo.ledger_stats().await?;
    let total = |kind: LedgerKind| -> Cents {
        stats
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.amount_cents)
            .sum()
    };
    Ok(Json(LedgerStatsView {
        captured_cents: total(LedgerKind::Capture),
        refunded_cents: total(LedgerKind::Refund),
        unsettled_entries: stats.iter().map(|s| s.unsettled).sum(),
        stats,
    }))
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

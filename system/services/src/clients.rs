//! HTTP adapters of the client ports: the payment gateway, reservation's
//! pin and the catalog's calendar, over [`HttpClient`] with any connector.
//!
//! The payment client adds two protections of its own, on top of the
//! saga's slower retries (the watchdog, with capped exponential backoff):
//! a few quick **retries with full jitter** inside one call, for blips, and
//! a **circuit breaker** that fails calls fast while the gateway is plainly
//! down, so order workers are not tied up waiting on timeouts. Both are
//! safe because every call is idempotent per order id.
//!
//! Layer: clients, above `http` and the shared types; below the services.

use crate::http::client::{CallError, HttpClient, JsonResponse, body};
use async_trait::async_trait;
use http::{Method, StatusCode};
use hyper_util::client::legacy::connect::Connect;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing_contract::{AuthorizeBody, ConfirmBody, ConfirmView, PinBody};
use ticketing_domain::ports::{
    CalendarError, Clock, ConfirmReply, EventCalendar, GatewayError, PaymentGateway, PinError,
    RandomExt, ReservationClient,
};
use ticketing_domain::probe::{self, Probe};
use ticketing_domain::saga::FailureReason;
use ticketing_domain::{Cents, EventId, Hold, HoldId, OrderId, PaymentStatus, TraceId, UnixMs};

/// Retry and circuit-breaker settings of [`HttpPaymentGateway`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentClientPolicy {
    /// Extra attempts within one call after a timeout or 5xx/transport error.
    pub retries: u32,
    /// Backoff before retry `n` is uniform in `[0, base * 2^n]` (full jitter).
    pub retry_backoff_ms: u64,
    /// Consecutive failed calls that open the circuit (0 = never).
    pub breaker_failures: u32,
    /// How long an open circuit fails calls fast before letting one try.
    pub breaker_open_ms: u64,
}

impl Default for PaymentClientPolicy {
    fn default() -> Self {
        Self {
            retries: 2,
            retry_backoff_ms: 25,
            breaker_failures: 5,
            breaker_open_ms: 1_000,
        }
    }
}

impl PaymentClientPolicy {
    /// The policy the saga's settings configure (`saga.payment_*`).
    pub fn from_saga(s: &crate::config::SagaSettings) -> Self {
        Self {
            retries: s.payment_retries,
            retry_backoff_ms: s.payment_retry_backoff_ms,
            breaker_failures: s.payment_breaker_failures,
            breaker_open_ms: s.payment_breaker_open_ms,
        }
    }
}

/// The order service's clients of its peers.
#[derive(Debug)]
pub struct OrderClients<C> {
    pub reservation: Arc<HttpReservationClient<C>>,
    pub payment: Arc<HttpPaymentGateway<C>>,
    pub calendar: Arc<HttpEventCalendar<C>>,
}

/// The order service's three clients — reservation (pin), payment and the
/// catalog's calendar — over `connector`, with the saga's timeouts and the
/// payment retry policy. Every assembly builds them here (TCP in
/// production, turmoil in the sim).
pub fn order_clients<C>(
    connector: C,
    urls: &crate::config::ClientSettings,
    saga: &crate::config::SagaSettings,
    internal: &crate::config::InternalSettings,
    ctx: &crate::Ctx,
) -> OrderClients<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client = |url: &str, timeout_ms: u64| {
        let c = HttpClient::new(
            connector.clone(),
            url,
            Duration::from_millis(timeout_ms),
            ctx.rng.clone(),
        );
        match &internal.token {
            Some(t) => c.with_header(crate::config::SERVICE_TOKEN_HEADER, t),
            None => c,
        }
    };
    OrderClients {
        reservation: Arc::new(HttpReservationClient::new(client(
            &urls.reservation_url,
            saga.reservation_timeout_ms,
        ))),
        payment: Arc::new(HttpPaymentGateway::with_policy(
            client(&urls.payment_url, saga.payment_timeout_ms),
            PaymentClientPolicy::from_saga(saga),
            ctx.clock.clone(),
        )),
        calendar: Arc::new(HttpEventCalendar {
            http: client(&urls.catalog_url, saga.reservation_timeout_ms),
        }),
    }
}

/// Consecutive failures and, when open, until when (clock port time).
#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until_ms: Option<UnixMs>,
}

/// [`PaymentGateway`] over HTTP. The order id is the idempotency key, sent
/// both in the path and as `Idempotency-Key`.
pub struct HttpPaymentGateway<C> {
    http: HttpClient<C>,
    policy: PaymentClientPolicy,
    breaker: Mutex<Breaker>,
    /// The breaker's time: the clock port, so tests and the simulator drive it.
    clock: Arc<dyn Clock>,
}

impl<C> std::fmt::Debug for HttpPaymentGateway<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPaymentGateway")
            .field("http", &self.http)
            .field("policy", &self.policy)
            .finish()
    }
}

impl<C> HttpPaymentGateway<C> {
    pub fn with_policy(
        http: HttpClient<C>,
        policy: PaymentClientPolicy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            policy,
            breaker: Mutex::new(Breaker::default()),
            clock,
        }
    }

    /// `Some(error)` while the circuit is open: fail without calling.
    fn circuit_open(&self) -> Option<GatewayError> {
        let b = crate::lock(&self.breaker);
        match b.open_until_ms {
            Some(until) if self.clock.now_ms() < until => Some(GatewayError::Unavailable(
                "payment gateway circuit open (recent calls failed)".into(),
            )),
            _ => None,
        }
    }

    /// Counts a call's outcome: definite answers close the circuit, enough
    /// consecutive failures open it (again, after a failed trial call).
    fn record(&self, failed: bool) {
        let mut b = crate::lock(&self.breaker);
        if !failed {
            if b.open_until_ms.is_some() {
                probe::reached(Probe::BreakerClosed);
            }
            *b = Breaker::default();
            return;
        }
        b.failures = b.failures.saturating_add(1);
        if self.policy.breaker_failures > 0 && b.failures >= self.policy.breaker_failures {
            if b.open_until_ms.is_none() {
                probe::reached(Probe::BreakerOpened);
            }
            b.open_until_ms = Some(self.clock.now_ms() + self.policy.breaker_open_ms);
        }
    }
}

fn gateway_result(r: Result<JsonResponse, CallError>) -> Result<PaymentStatus, GatewayError> {
    let resp = match r {
        Ok(resp) => resp,
        Err(CallError::Timeout(_)) => {
            probe::reached(Probe::PaymentCallTimedOut);
            return Err(GatewayError::Timeout);
        }
        Err(CallError::Transport(m)) => return Err(GatewayError::Unavailable(m)),
    };
    if resp.status.is_server_error() {
        return Err(GatewayError::Unavailable(format!("status {}", resp.status)));
    }
    let body = resp.value();
    if !resp.status.is_success() {
        return Err(GatewayError::Refused {
            // From the body already parsed (what `error_code` reads).
            code: body
                .get("code")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            message: body
                .get("message")
                .map(|m| m.to_string())
                .unwrap_or_default(),
        });
    }
    serde_json::from_value(body.get("status").cloned().unwrap_or_default())
        .map_err(|e| GatewayError::Unavailable(format!("bad payment response: {e}")))
}

impl<C> HttpPaymentGateway<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    async fn call(
        &self,
        op: &str,
        order_id: &OrderId,
        body: Option<serde_json::Value>,
        trace: Option<&TraceId>,
    ) -> Result<PaymentStatus, GatewayError> {
        let path = format!("/internal/payments/{order_id}/{op}");
        let key = format!("{order_id}:{op}");
        let mut attempt = 0u32;
        loop {
            if let Some(open) = self.circuit_open() {
                return Err(open);
            }
            let r = self
                .http
                .send_json(
                    Method::POST,
                    &path,
                    body.as_ref(),
                    &[("idempotency-key", key.as_str())],
                    trace,
                )
                .await;
            let result = gateway_result(r);
            let failed = matches!(
                result,
                Err(GatewayError::Timeout | GatewayError::Unavailable(_))
            );
            self.record(failed);
            if !failed || attempt >= self.policy.retries {
                return result;
            }
            let cap = self
                .policy
                .retry_backoff_ms
                .saturating_mul(1u64 << attempt.min(10));
            let pause = self.http.rng().range_u64(0, cap);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            attempt += 1;
        }
    }
}

#[async_trait]
impl<C> PaymentGateway for HttpPaymentGateway<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    async fn authorize(
        &self,
        order_id: &OrderId,
        event_id: &EventId,
        amount_cents: Cents,
        trace: Option<&TraceId>,
    ) -> Result<PaymentStatus, GatewayError> {
        let event_id = event_id.clone();
        self.call(
            "authorize",
            order_id,
            Some(body(&AuthorizeBody {
                amount_cents,
                event_id,
            })),
            trace,
        )
        .await
    }

    async fn capture(
        &self,
        order_id: &OrderId,
        trace: Option<&TraceId>,
    ) -> Result<PaymentStatus, GatewayError> {
        self.call("capture", order_id, None, trace).await
    }

    async fn void(
        &self,
        order_id: &OrderId,
        trace: Option<&TraceId>,
    ) -> Result<PaymentStatus, GatewayError> {
        self.call("void", order_id, None, trace).await
    }

    async fn refund(
        &self,
        order_id: &OrderId,
        trace: Option<&TraceId>,
    ) -> Result<PaymentStatus, GatewayError> {
        self.call("refund", order_id, None, trace).await
    }
}

/// [`ReservationClient`] over HTTP (`POST /internal/holds/{id}/pin`).
pub struct HttpReservationClient<C> {
    http: HttpClient<C>,
}

impl<C> std::fmt::Debug for HttpReservationClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpReservationClient")
            .field("http", &self.http)
            .finish()
    }
}

impl<C> HttpReservationClient<C> {
    pub fn new(http: HttpClient<C>) -> Self {
        Self { http }
    }
}

/// Hold ids are hex: anything else cannot name a hold and must not be
/// spliced into a path.
fn path_safe(hold_id: &HoldId) -> bool {
    hold_id
        .as_str()
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[async_trait]
impl<C> ReservationClient for HttpReservationClient<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    async fn pin(
        &self,
        hold_id: &HoldId,
        order_id: &OrderId,
        customer: Option<&str>,
        trace: Option<&TraceId>,
    ) -> Result<Hold, PinError> {
        if !path_safe(hold_id) {
            return Err(PinError::NotFound);
        }
        let path = format!("/internal/holds/{hold_id}/pin");
        let resp = self
            .http
            .send_json(
                Method::POST,
                &path,
                Some(&body(&PinBody {
                    order_id: order_id.to_string(),
                    customer_id: customer.map(str::to_owned),
                })),
                &[],
                trace,
            )
            .await
            .map_err(|e| PinError::Unavailable(e.to_string()))?;
        match resp.status {
            StatusCode::OK => {
                let view: ticketing_contract::HoldView = serde_json::from_slice(&resp.bytes)
                    .map_err(|e| PinError::Unavailable(format!("bad pin response: {e}")))?;
                Ok(Hold {
                    hold_id: view.hold_id,
                    event_id: view.event_id,
                    seat_ids: view.seat_ids,
                    amount_cents: view.amount_cents,
                    created_at_ms: 0,
                    expires_at_ms: view.expires_at_ms,
                    pinned_order: Some(order_id.clone()),
                    customer_id: customer.map(str::to_owned),
                })
            }
            StatusCode::NOT_FOUND => Err(PinError::NotFound),
            StatusCode::GONE => Err(PinError::Gone(gone_reason(&resp.value()))),
            StatusCode::CONFLICT => Err(PinError::PinnedToOther),
            s => Err(PinError::Unavailable(format!("status {s}"))),
        }
    }

    async fn confirm(
        &self,
        hold_id: &HoldId,
        order_id: &OrderId,
        trace: Option<&TraceId>,
    ) -> ConfirmReply {
        if !path_safe(hold_id) {
            return ConfirmReply::Rejected(FailureReason::HoldReleased);
        }
        let path = format!("/internal/holds/{hold_id}/confirm");
        let body = body(&ConfirmBody {
            order_id: order_id.to_string(),
        });
        let resp = match self
            .http
            .send_json(Method::POST, &path, Some(&body), &[], trace)
            .await
        {
            Ok(r) => r,
            Err(e) => return ConfirmReply::Unavailable(e.to_string()),
        };
        match (resp.status, resp.json::<ConfirmView>()) {
            (StatusCode::OK, Some(v)) if v.confirmed => ConfirmReply::Confirmed,
            (
                StatusCode::OK,
                Some(ConfirmView {
                    reason: Some(r), ..
                }),
            ) => ConfirmReply::Rejected(r),
            (s, _) => ConfirmReply::Unavailable(format!("confirm answered {s}")),
        }
    }
}

/// [`EventCalendar`] over HTTP (`GET /internal/events/{id}` on the catalog).
pub struct HttpEventCalendar<C> {
    http: HttpClient<C>,
}

impl<C> std::fmt::Debug for HttpEventCalendar<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEventCalendar")
            .field("http", &self.http)
            .finish()
    }
}

#[async_trait]
impl<C> EventCalendar for HttpEventCalendar<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    async fn starts_at_ms(
        &self,
        event_id: &EventId,
        trace: Option<&TraceId>,
    ) -> Result<Option<UnixMs>, CalendarError> {
        // Event ids are [A-Za-z0-9_-] (the catalog refuses others): nothing
        // else is spliced into a path.
        let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        if !event_id.as_str().bytes().all(plain) {
            return Ok(None);
        }
        let path = format!("/internal/events/{event_id}");
        let resp = self
            .http
            .send_json(Method::GET, &path, None, &[], trace)
            .await
            .map_err(|e| CalendarError::Unavailable(e.to_string()))?;
        match resp.status {
            StatusCode::OK => {
                let view: ticketing_contract::EventView = resp
                    .json()
                    .ok_or_else(|| CalendarError::Unavailable("bad event body".into()))?;
                ticketing_contract::parse_rfc3339_ms(&view.starts_at)
                    .map(Some)
                    .ok_or_else(|| {
                        CalendarError::Unavailable(format!("bad startsAt {:?}", view.starts_at))
                    })
            }
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(CalendarError::Unavailable(format!("status {s}"))),
        }
    }
}

/// Why reservation said a hold is gone (its 410 body's code).
fn gone_reason(body: &serde_json::Value) -> ticketing_domain::ports::GoneReason {
    use ticketing_domain::ports::GoneReason;
    match (body["code"].as_str(), body["orderId"].as_str()) {
        (Some("HOLD_ORDERED"), Some(order)) => GoneReason::Ordered(OrderId::from(order)),
        (Some("HOLD_RELEASED"), _) => GoneReason::Released,
        _ => GoneReason::Expired,
    }
}

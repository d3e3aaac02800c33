//! HTTP adapters of the client ports: the payment gateway and reservation's
//! pin, over [`HttpClient`] with any connector.

use crate::http::client::{CallError, HttpClient, JsonResponse};
use async_trait::async_trait;
use http::{Method, StatusCode};
use hyper_util::client::legacy::connect::Connect;
use serde_json::json;
use ticketing_domain::ports::{GatewayError, PaymentGateway, PinError, ReservationClient};
use ticketing_domain::{Cents, Hold, HoldId, OrderId, PaymentStatus, TraceId};

/// [`PaymentGateway`] over HTTP. The order id is the idempotency key, sent
/// both in the path and as `Idempotency-Key`.
pub struct HttpPaymentGateway<C> {
    http: HttpClient<C>,
}

impl<C> std::fmt::Debug for HttpPaymentGateway<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPaymentGateway")
            .field("http", &self.http)
            .finish()
    }
}

impl<C> HttpPaymentGateway<C> {
    pub fn new(http: HttpClient<C>) -> Self {
        Self { http }
    }
}

fn gateway_result(r: Result<JsonResponse, CallError>) -> Result<PaymentStatus, GatewayError> {
    let resp = match r {
        Ok(resp) => resp,
        Err(CallError::Timeout(_)) => return Err(GatewayError::Timeout),
        Err(CallError::Transport(m)) => return Err(GatewayError::Unavailable(m)),
    };
    if resp.status.is_server_error() {
        return Err(GatewayError::Unavailable(format!("status {}", resp.status)));
    }
    if !resp.status.is_success() {
        return Err(GatewayError::Refused {
            code: resp.error_code().to_owned(),
            message: resp
                .body
                .get("message")
                .map(|m| m.to_string())
                .unwrap_or_default(),
        });
    }
    serde_json::from_value(resp.body.get("status").cloned().unwrap_or_default())
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
        gateway_result(r)
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
        amount_cents: Cents,
        trace: Option<&TraceId>,
    ) -> Result<PaymentStatus, GatewayError> {
        self.call(
            "authorize",
            order_id,
            Some(json!({ "amountCents": amount_cents })),
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

#[async_trait]
impl<C> ReservationClient for HttpReservationClient<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    async fn pin(
        &self,
        hold_id: &HoldId,
        order_id: &OrderId,
        trace: Option<&TraceId>,
    ) -> Result<Hold, PinError> {
        // Hold ids are hex; anything else cannot name a hold and must not
        // be spliced into a path.
        if !hold_id
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(PinError::NotFound);
        }
        let path = format!("/internal/holds/{hold_id}/pin");
        let resp = self
            .http
            .send_json(
                Method::POST,
                &path,
                Some(&json!({ "orderId": order_id })),
                &[],
                trace,
            )
            .await
            .map_err(|e| PinError::Unavailable(e.to_string()))?;
        match resp.status {
            StatusCode::OK => {
                let view: crate::reservation::HoldView = serde_json::from_value(resp.body)
                    .map_err(|e| PinError::Unavailable(format!("bad pin response: {e}")))?;
                Ok(Hold {
                    hold_id: view.hold_id,
                    event_id: view.event_id,
                    seat_ids: view.seat_ids,
                    amount_cents: view.amount_cents,
                    created_at_ms: 0,
                    expires_at_ms: view.expires_at_ms,
                    pinned_order: Some(order_id.clone()),
                    customer_id: None,
                })
            }
            StatusCode::NOT_FOUND => Err(PinError::NotFound),
            StatusCode::GONE => Err(PinError::Gone),
            StatusCode::CONFLICT => Err(PinError::PinnedToOther),
            s => Err(PinError::Unavailable(format!("status {s}"))),
        }
    }
}

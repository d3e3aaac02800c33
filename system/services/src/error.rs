//! The one place where errors become HTTP responses.
//!
//! Handlers return [`ApiError`]. Its `IntoResponse` sets the status and
//! attaches an [`ErrorPayload`] extension; the trace middleware
//! (`http::trace`) then renders the standard body
//! `{"code","message","traceId"}` with the request's trace id. Responses
//! that carry no payload but an error status (axum's own 404/405/413, for
//! example) get a standard body too, so no client ever sees a bare error.
//!
//! Layer: shared types (bottom); imports only the domain.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use ticketing_domain::SeatId;
use ticketing_domain::ports::{
    CalendarError, GoneReason, LimitKind, QueueError, RepoError, SeatStoreError,
};
use ticketing_domain::refund::CancelRefusal;

/// Code, message and optional extra fields of an error body.
#[derive(Debug, Clone)]
pub struct ErrorPayload {
    pub code: &'static str,
    pub message: String,
    /// Extra top-level fields, e.g. `seatIds` for `SEATS_UNAVAILABLE`.
    pub extra: Option<(&'static str, Value)>,
}

impl ErrorPayload {
    /// A bare `status` response carrying this payload: the trace middleware
    /// renders it as the standard error body.
    pub fn respond(status: StatusCode, code: &'static str, message: String) -> Response {
        let mut resp = status.into_response();
        resp.extensions_mut().insert(ErrorPayload {
            code,
            message,
            extra: None,
        });
        resp
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    BadRequest(&'static str, String),
    #[error("event not found")]
    EventNotFound,
    #[error("unknown seats")]
    SeatsNotFound(Vec<SeatId>),
    #[error("seats unavailable")]
    SeatsUnavailable(Vec<SeatId>),
    #[error("hold not found")]
    HoldNotFound,
    /// A gone hold, told to its owner (anyone else gets `HoldNotFound`).
    #[error("{}", gone_message(.0))]
    HoldGone(GoneReason),
    #[error("hold is pinned to an order")]
    HoldPinned,
    /// A per-customer limit on the event (`limits.*`).
    #[error("this customer already has {count} {kind} (at most {limit})")]
    CustomerLimit {
        kind: LimitKind,
        count: u32,
        limit: u32,
    },
    /// Extending would not move the expiry later; says which rule refused.
    #[error("{0}")]
    ExtensionLimit(String),
    #[error("order not found")]
    OrderNotFound,
    #[error("Idempotency-Key header is required")]
    IdempotencyKeyRequired,
    #[error("Idempotency-Key was used with a different request body")]
    IdempotencyKeyMismatch,
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("not found")]
    NotFound(&'static str, String),
    #[error("{1}")]
    Forbidden(&'static str, String),
    /// No valid customer token (missing, malformed, expired, other key).
    #[error("{0}")]
    Unauthenticated(String),
    /// Login with a wrong password or an unknown email: one answer for both.
    #[error("email or password is wrong")]
    InvalidCredentials,
    /// A rate limit refused the request; `Retry-After` says when to come back.
    #[error("too many requests; retry after {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    /// A dependency is down; the client may retry.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A refusal made before the handler (the JSON extractor's), kept as it
    /// was: its status, code and message.
    #[error("{2}")]
    Rejected(StatusCode, &'static str, String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

fn gone_message(reason: &GoneReason) -> &'static str {
    match reason {
        GoneReason::Expired => "the hold has expired",
        GoneReason::Released => "the hold was released",
        GoneReason::Ordered(_) => "the hold was ordered: its seats are the order's",
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            BadRequest(..) | IdempotencyKeyRequired => StatusCode::BAD_REQUEST,
            EventNotFound | SeatsNotFound(_) | HoldNotFound | OrderNotFound | NotFound(..) => {
                StatusCode::NOT_FOUND
            }
            SeatsUnavailable(_)
            | HoldPinned
            | CustomerLimit { .. }
            | ExtensionLimit(_)
            | Conflict(..) => StatusCode::CONFLICT,
            HoldGone(_) => StatusCode::GONE,
            Forbidden(..) => StatusCode::FORBIDDEN,
            Unauthenticated(_) | InvalidCredentials => StatusCode::UNAUTHORIZED,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            IdempotencyKeyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Rejected(status, ..) => *status,
            Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn payload(&self) -> ErrorPayload {
        use ApiError::*;
        let seats = |s: &Vec<SeatId>| Some(("seatIds", serde_json::json!(s)));
        let (code, extra) = match self {
            Validation(_) => ("VALIDATION_FAILED", None),
            BadRequest(code, _) => (*code, None),
            EventNotFound => ("EVENT_NOT_FOUND", None),
            SeatsNotFound(s) => ("SEAT_NOT_FOUND", seats(s)),
            SeatsUnavailable(s) => ("SEATS_UNAVAILABLE", seats(s)),
            HoldNotFound => ("HOLD_NOT_FOUND", None),
            HoldGone(GoneReason::Expired) => ("HOLD_EXPIRED", None),
            HoldGone(GoneReason::Released) => ("HOLD_RELEASED", None),
            HoldGone(GoneReason::Ordered(order)) => {
                ("HOLD_ORDERED", Some(("orderId", serde_json::json!(order))))
            }
            HoldPinned => ("HOLD_PINNED", None),
            CustomerLimit { kind, count, limit } => (
                "CUSTOMER_LIMIT",
                Some((
                    "customerLimit",
                    serde_json::json!({
                        "kind": match kind {
                            LimitKind::SeatsPerEvent => "SEATS_PER_EVENT",
                            LimitKind::ActiveHolds => "ACTIVE_HOLDS",
                        },
                        "count": count,
                        "limit": limit,
                    }),
                )),
            ),
            ExtensionLimit(_) => ("HOLD_EXTENSION_LIMIT", None),
            OrderNotFound => ("ORDER_NOT_FOUND", None),
            IdempotencyKeyRequired => ("IDEMPOTENCY_KEY_REQUIRED", None),
            IdempotencyKeyMismatch => ("IDEMPOTENCY_KEY_MISMATCH", None),
            Conflict(code, _) | NotFound(code, _) | Forbidden(code, _) => (*code, None),
            Unauthenticated(_) => ("UNAUTHENTICATED", None),
            InvalidCredentials => ("INVALID_CREDENTIALS", None),
            RateLimited { retry_after_ms } => (
                "RATE_LIMITED",
                Some(("retryAfterMs", serde_json::json!(retry_after_ms))),
            ),
            Unavailable(_) => ("SERVICE_UNAVAILABLE", None),
            Rejected(_, code, _) => (*code, None),
            Unexpected(_) => ("INTERNAL", None),
        };
        let message = match self {
            // Never leak internals to clients; the log has the details.
            Unexpected(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        ErrorPayload {
            code,
            message,
            extra,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        let mut resp = status.into_response();
        let headers = resp.headers_mut();
        match &self {
            // RFC 6750 §3: say which scheme the route takes.
            ApiError::Unauthenticated(_) | ApiError::InvalidCredentials => {
                headers.insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer realm=\"ticketing\""),
                );
            }
            // RFC 9110 §10.2.3: whole seconds, rounded up.
            ApiError::RateLimited { retry_after_ms } => {
                headers.insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(retry_after_ms.div_ceil(1000).max(1)),
                );
            }
            _ => {}
        }
        resp.extensions_mut().insert(self.payload());
        resp
    }
}

impl From<SeatStoreError> for ApiError {
    fn from(e: SeatStoreError) -> Self {
        match e {
            SeatStoreError::UnknownEvent => ApiError::EventNotFound,
            SeatStoreError::UnknownSeats(s) => ApiError::SeatsNotFound(s),
            SeatStoreError::SeatsUnavailable(s) => ApiError::SeatsUnavailable(s),
            SeatStoreError::HoldNotFound => ApiError::HoldNotFound,
            SeatStoreError::HoldGone { reason, .. } => ApiError::HoldGone(reason),
            SeatStoreError::HoldPinned => ApiError::HoldPinned,
            SeatStoreError::CustomerLimit { kind, count, limit } => {
                ApiError::CustomerLimit { kind, count, limit }
            }
            SeatStoreError::ExtensionLimit => {
                ApiError::ExtensionLimit("the hold's expiry cannot move later".into())
            }
            SeatStoreError::DuplicateHoldId => {
                ApiError::Unexpected(anyhow::anyhow!("hold id collision"))
            }
            SeatStoreError::Unavailable(m) => ApiError::Unavailable(m),
        }
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Unavailable(m) => ApiError::Unavailable(m),
            RepoError::Conflict => ApiError::Unavailable("concurrent update, retry".into()),
            other => ApiError::Unexpected(anyhow::anyhow!(other)),
        }
    }
}

/// The standard error code for a bare status (used when a response has no payload).
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "BAD_REQUEST",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::URI_TOO_LONG => "URI_TOO_LONG",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "HEADERS_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        StatusCode::UNPROCESSABLE_ENTITY => "VALIDATION_FAILED",
        StatusCode::REQUEST_TIMEOUT => "REQUEST_TIMEOUT",
        StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
        StatusCode::TOO_MANY_REQUESTS => "RATE_LIMITED",
        s if s.is_client_error() => "BAD_REQUEST",
        _ => "INTERNAL",
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::UnknownRoom => {
                ApiError::Conflict("QUEUE_NOT_ENABLED", "this event has no waiting room".into())
            }
            QueueError::NotOpen => ApiError::Conflict(
                "QUEUE_NOT_OPEN",
                "the waiting room does not take visitors yet".into(),
            ),
            QueueError::DuplicateTicket => {
                ApiError::Unexpected(anyhow::anyhow!("queue ticket collision"))
            }
            QueueError::Unavailable(m) => ApiError::Unavailable(m),
        }
    }
}

impl From<CancelRefusal> for ApiError {
    fn from(e: CancelRefusal) -> Self {
        let code = match e {
            CancelRefusal::NotConfirmed => "ORDER_NOT_CONFIRMED",
            CancelRefusal::RefundWindowClosed { .. } => "REFUND_WINDOW_CLOSED",
        };
        ApiError::Conflict(code, e.to_string())
    }
}

impl From<CalendarError> for ApiError {
    fn from(e: CalendarError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

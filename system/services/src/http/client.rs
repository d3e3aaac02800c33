//! Service-to-service HTTP: a hyper client over a pluggable connector.
//!
//! Production and the embedded mode use hyper's `HttpConnector` (TCP); the
//! simulator plugs in a connector over turmoil streams. Every call has a
//! timeout covering connect, request and the whole response body — turmoil's
//! TCP does not retransmit, so a call without one could wait forever — and
//! a broken pooled connection simply fails the call, which the caller retries
//! on a fresh connection.
//!
//! Layer: plumbing; imports `http::trace` and `telemetry`.

use super::trace::traceparent;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use ticketing_domain::TraceId;
use ticketing_domain::ports::{RandomExt as _, RandomSource};
use tracing::Instrument as _;

/// Responses larger than this are refused (a bound on what a peer can make us buffer).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("timed out after {0} ms")]
    Timeout(u64),
    #[error("transport error: {0}")]
    Transport(String),
}

/// A JSON response: its status and its body's bytes, parsed on demand —
/// into the type the caller expects ([`JsonResponse::json`]) rather than a
/// generic [`Value`] first (a 10,000-seat map is mostly strings and enums:
/// one typed pass instead of a tree of maps and a second pass).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonResponse {
    pub status: StatusCode,
    pub bytes: Bytes,
}

/// The one field of a standard error body most callers need.
#[derive(serde::Deserialize)]
struct ErrorCode {
    #[serde(default)]
    code: String,
}

impl JsonResponse {
    /// The body as `T`; `None` when it is empty, not JSON or not a `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.bytes).ok()
    }

    /// The body as a JSON value (`Null` when empty or not JSON).
    pub fn value(&self) -> Value {
        self.json().unwrap_or(Value::Null)
    }

    /// The `code` field of a standard error body (empty when there is none).
    pub fn error_code(&self) -> String {
        self.json::<ErrorCode>().map(|e| e.code).unwrap_or_default()
    }
}

/// A JSON-over-HTTP client for one peer service.
pub struct HttpClient<C> {
    client: Client<C, Full<Bytes>>,
    base_url: String,
    timeout: Duration,
    rng: Arc<dyn RandomSource>,
    /// Sent on every call (the service credential).
    fixed_headers: Vec<(&'static str, String)>,
}

impl<C> std::fmt::Debug for HttpClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A contract request body as the JSON [`HttpClient::send_json`] sends.
/// The contract's bodies are structs of text and numbers, which always
/// serialize.
pub fn body<T: serde::Serialize>(b: &T) -> Value {
    serde_json::to_value(b).expect("a contract body serializes")
}

/// How long a pooled connection to a peer may sit idle. The pool checks
/// once per this interval, so an idle connection (and its task and
/// descriptors, on both ends) goes 10–20 s after its last call: well inside
/// the soak's 60 s for resources to come back after a run
/// (`soak.settle_timeout_ms`), while a service under load keeps reusing it.
pub const POOL_IDLE_TIMEOUT_MS: u64 = 10_000;

impl<C> HttpClient<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// `base_url` like `http://127.0.0.1:8081` (no trailing slash).
    pub fn new(
        connector: C,
        base_url: impl Into<String>,
        timeout: Duration,
        rng: Arc<dyn RandomSource>,
    ) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_millis(POOL_IDLE_TIMEOUT_MS))
            .build(connector);
        Self {
            client,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            timeout,
            rng,
            fixed_headers: Vec::new(),
        }
    }

    /// Sends `name: value` on every call (e.g. the service credential).
    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.fixed_headers.push((name, value.to_owned()));
        self
    }

    /// The random source (jitter, span ids).
    pub fn rng(&self) -> &Arc<dyn RandomSource> {
        &self.rng
    }

    /// Sends `body` as JSON (if any) and reads a JSON answer, all within the timeout.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        trace: Option<&TraceId>,
    ) -> Result<JsonResponse, CallError> {
        let timeout_ms = self.timeout.as_millis() as u64;
        // The caller's side of the call: its span id is the parent the
        // callee's request span names (drawn here whether or not spans are
        // exported, so the random stream is the same either way).
        let span = tracing::info_span!(
            "call",
            %method,
            path,
            otel.kind = "client",
            otel.name = %format!("{method} {path}"),
        );
        let value = trace.map(|t| {
            let span_id = self.rng.as_ref().span_id();
            crate::telemetry::start_with_span_id(&span, t, &span_id);
            traceparent(t, &span_id)
        });
        let call = self.call(method, path, body, headers, value.as_deref());
        match tokio::time::timeout(self.timeout, call.instrument(span)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout(timeout_ms)),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        traceparent: Option<&str>,
    ) -> Result<JsonResponse, CallError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base_url, path));
        if let Some(value) = traceparent {
            builder = builder.header(super::trace::TRACEPARENT, value);
        }
        for (k, v) in &self.fixed_headers {
            builder = builder.header(*k, v.as_str());
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let payload = match body {
            Some(v) => {
                builder = builder.header(http::header::CONTENT_TYPE, "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let req = builder
            .body(Full::new(payload))
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let status = resp.status();
        let bytes = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?
            .to_bytes();
        Ok(JsonResponse { status, bytes })
    }
}

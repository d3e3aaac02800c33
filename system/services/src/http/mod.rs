//! HTTP plumbing shared by every service: the JSON extractor that maps bad
//! input to the standard 4xx body, the trace-id middleware, the
//! service-to-service client with a pluggable connector, and `serve` over
//! any `axum::serve::Listener` (TCP in production, turmoil in the simulator)
//! with the edge's connection limits.
//!
//! Layer: plumbing above the shared types (`config`, `error`, `metrics`,
//! the crate root's `Ctx`) and `telemetry`; no service, client or gateway.

pub mod auth;
pub mod client;
pub mod extract;
pub mod peer;
mod serve;
pub mod trace;

pub use serve::{bind, serve};

use crate::Ctx;
use crate::config::HttpSettings;
use crate::error::ErrorPayload;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::sync::Arc;
use std::time::Duration;

/// Adds what every service router has: the trace-id and error-body
/// middleware (its spans labelled by `label`), request metrics, the request
/// body limit and read deadline, and a standard 404 for unknown paths.
pub fn finish_router(
    router: Router,
    ctx: &Ctx,
    http: &HttpSettings,
    label: trace::ServiceLabel,
) -> Router {
    let layer = trace::TraceLayer {
        rng: ctx.rng.clone(),
        label,
    };
    let edge = Arc::new(http.clone());
    router
        .fallback(|| async { axum::http::StatusCode::NOT_FOUND })
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(
            edge.clone(),
            early_413,
        ))
        .layer(axum::middleware::from_fn_with_state(edge, head_limits))
        .layer(axum::Extension(extract::BodyReadTimeout(
            Duration::from_millis(http.body_read_timeout_ms.max(1)),
        )))
        .layer(axum::middleware::from_fn(crate::metrics::http_layer))
        .layer(axum::middleware::from_fn_with_state(
            layer,
            trace::trace_layer,
        ))
}

/// Most bytes of a refused body read (and dropped) before answering, so a
/// client that sent it all without `Expect: 100-continue` reads the 413
/// instead of a reset; a larger body is answered at once.
const DRAIN_MAX_BYTES: u64 = 1024 * 1024;

/// Middleware: a declared `Content-Length` over the limit is refused before
/// the body is parsed: 413 `PAYLOAD_TOO_LARGE` and `Connection: close`,
/// after draining at most [`DRAIN_MAX_BYTES`] within the body deadline.
async fn early_413(
    axum::extract::State(http): axum::extract::State<Arc<HttpSettings>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    use http_body_util::BodyExt as _;
    let limit_bytes = http.body_limit_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(declared) = declared.filter(|n| *n > limit_bytes as u64) else {
        return next.run(req).await;
    };
    if declared <= DRAIN_MAX_BYTES {
        let mut body = req.into_body();
        let drain = async {
            let mut read = 0u64;
            while read <= DRAIN_MAX_BYTES
                && let Some(Ok(frame)) = body.frame().await
            {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
        };
        let within = Duration::from_millis(http.body_read_timeout_ms.max(1));
        let _ = tokio::time::timeout(within, drain).await;
    }
    let message = format!("the body is larger than {limit_bytes} bytes");
    let mut resp =
        ErrorPayload::respond(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", message);
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// What is over a head limit (`http.max_*`), if anything: status, code, message.
fn head_refusal(
    http: &HttpSettings,
    req: &axum::extract::Request,
) -> Option<(axum::http::StatusCode, &'static str, String)> {
    use axum::http::StatusCode;
    let too_large = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if uri > http.max_uri_bytes {
        let m = format!(
            "the path and query are longer than {} bytes",
            http.max_uri_bytes
        );
        Some((StatusCode::URI_TOO_LONG, "URI_TOO_LONG", m))
    } else if headers.len() > http.max_headers {
        let m = format!("more than {} headers", http.max_headers);
        Some((too_large, "HEADERS_TOO_LARGE", m))
    } else if bytes > http.max_header_bytes {
        let m = format!("headers larger than {} bytes", http.max_header_bytes);
        Some((too_large, "HEADERS_TOO_LARGE", m))
    } else {
        None
    }
}

/// Middleware: a path and query over `http.max_uri_bytes` is 414
/// `URI_TOO_LONG`; more than `http.max_headers` headers or
/// `http.max_header_bytes` of them is 431 `HEADERS_TOO_LARGE` — answered
/// by the application, with the standard body and trace id.
async fn head_limits(
    axum::extract::State(http): axum::extract::State<Arc<HttpSettings>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match head_refusal(&http, &req) {
        Some((status, code, message)) => ErrorPayload::respond(status, code, message),
        None => next.run(req).await,
    }
}

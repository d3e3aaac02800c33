//! Trace ids and the standard error body.
//!
//! Every request gets a [`TraceId`]: the one in an incoming W3C
//! `traceparent` (or `x-trace-id`) header, else a fresh one from the seeded
//! random source. It is put in the request's extensions for handlers, sent
//! back in the `x-trace-id` header of every response, and written into every
//! error body.
//!
//! Layer: HTTP plumbing; imports the shared types (`error`, `metrics` for the bounded method label) and `telemetry`,
//! never a service or the gateway (the span's service label is passed in).

use crate::error::{ErrorPayload, code_for_status};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use ticketing_domain::ports::{RandomExt, RandomSource};
use ticketing_domain::{MessageId, TraceId};
use tracing::Instrument as _;

pub const TRACE_HEADER: &str = "x-trace-id";
pub const TRACEPARENT: &str = "traceparent";

/// Marks a response whose error body is already in the standard shape (a
/// stored idempotent response): the middleware leaves it as it is.
#[derive(Debug, Clone, Copy)]
pub struct KeepBody;

fn is_trace_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

/// The incoming trace id — from `traceparent` (`00-<trace>-<span>-<flags>`)
/// or `x-trace-id` — and, from a `traceparent`, the caller's span id.
pub fn incoming_trace(headers: &HeaderMap) -> Option<(TraceId, Option<String>)> {
    if let Some(tp) = headers.get(TRACEPARENT).and_then(|v| v.to_str().ok())
        && let Some((trace, span)) = parse_traceparent(tp)
    {
        return Some((trace, span));
    }
    headers
        .get(TRACE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| is_trace_id(s))
        .map(|s| (TraceId(s.to_owned()), None))
}

/// `00-<trace>-<span>-<flags>`: the trace id, and the span id when valid.
pub fn parse_traceparent(value: &str) -> Option<(TraceId, Option<String>)> {
    let parts: Vec<&str> = value.split('-').collect();
    if parts.len() != 4 || parts[0] != "00" || !is_trace_id(parts[1]) {
        return None;
    }
    let span = parts[2];
    let span_ok = span.len() == 16
        && span
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && span.bytes().any(|b| b != b'0');
    Some((
        TraceId(parts[1].to_owned()),
        span_ok.then(|| span.to_owned()),
    ))
}

/// A `traceparent` header value for an outgoing call in this trace, from
/// the caller's span `span_id`.
pub fn traceparent(trace: &TraceId, span_id: &str) -> String {
    format!("00-{}-{span_id}-01", trace.as_str())
}

/// Headers for a message about to be written (outbox row or reply): W3C
/// trace context as [`message_headers`], and a `send` producer span, child
/// of the current span, whose id is the `traceparent`'s span id — the parent
/// the consumer's `message` span names.
pub fn send_headers(
    topic: &str,
    trace: Option<&TraceId>,
    message_id: &MessageId,
) -> Vec<(String, String)> {
    let headers = message_headers(trace, message_id);
    if let Some(trace) = trace
        && let Some((_, value)) = headers.first()
        && let Some((_, Some(span_id))) = parse_traceparent(value)
    {
        let span = tracing::info_span!(
            "send",
            topic,
            message_id = %message_id,
            otel.kind = "producer",
            otel.name = %format!("send {topic}"),
        );
        crate::telemetry::start_with_span_id(&span, trace, &span_id);
    }
    headers
}

/// The `traceparent` value of a message (the one [`message_headers`] carries).
pub fn message_traceparent(trace: Option<&TraceId>, message_id: &MessageId) -> Option<String> {
    message_headers(trace, message_id)
        .into_iter()
        .next()
        .map(|(_, value)| value)
}

/// Bus message headers carrying W3C trace context, so a consumer that reads
/// only headers (tracing middleware, a broker UI) joins the order's trace.
/// The span id is taken from the message id (random already): no draw from
/// the random source, so simulated runs keep their random streams.
pub fn message_headers(trace: Option<&TraceId>, message_id: &MessageId) -> Vec<(String, String)> {
    let Some(trace) = trace else {
        return Vec::new();
    };
    let hex: String = message_id
        .as_str()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let tail = hex.get(hex.len().saturating_sub(16)..).unwrap_or_default();
    let mut span = format!("{tail:0>16}");
    if span.chars().all(|c| c == '0') {
        span.replace_range(15..16, "1"); // W3C: an all-zero span id is invalid
    }
    vec![(
        TRACEPARENT.to_owned(),
        format!("00-{}-{span}-01", trace.as_str()),
    )]
}

/// Names the service that serves a path (the `service` field of each
/// request span). Whoever builds the router supplies it: the gateway's
/// routing table in the embedded process, where one router serves several
/// services.
pub type ServiceLabel = fn(&str) -> &'static str;

/// What [`trace_layer`] needs: the random source for fresh trace ids and
/// the service label.
#[derive(Debug, Clone)]
pub struct TraceLayer {
    pub rng: Arc<dyn RandomSource>,
    pub label: ServiceLabel,
}

/// Middleware: assign the trace id, render error bodies, set the header.
pub async fn trace_layer(
    State(layer): State<TraceLayer>,
    mut req: Request,
    next: Next,
) -> Response {
    let (trace_id, parent) = match incoming_trace(req.headers()) {
        Some((trace, parent)) => (trace, parent),
        None => (layer.rng.trace_id(), None),
    };
    // Bounded: a made-up method is `OTHER` in logs and spans too.
    let method = crate::metrics::method_label(req.method());
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(trace_id.clone());
    // Every log line of this request carries its trace id; exported, the
    // span is the server side of the caller's span, or the trace's root.
    let span = tracing::info_span!(
        "request",
        trace_id = %trace_id,
        %method,
        %path,
        service = (layer.label)(&path),
        otel.kind = "server",
        otel.name = %format!("{method} {path}"),
    );
    match &parent {
        Some(parent) => crate::telemetry::join_remote(&span, &trace_id, parent),
        None => crate::telemetry::start_root(&span, &trace_id),
    }
    finish(req, next, trace_id).instrument(span).await
}

/// The rest of [`trace_layer`], inside the request's span.
async fn finish(req: Request, next: Next, trace_id: TraceId) -> Response {
    let mut resp = next.run(req).await;
    let status = resp.status();
    let keep = resp.extensions().get::<KeepBody>().is_some();
    if !keep && (status.is_client_error() || status.is_server_error()) {
        let payload = resp.extensions_mut().remove::<ErrorPayload>();
        let (code, message, extra) = match payload {
            Some(p) => (p.code, p.message, p.extra),
            None => (
                code_for_status(status),
                status.canonical_reason().unwrap_or("error").to_owned(),
                None,
            ),
        };
        let mut body = serde_json::json!({
            "code": code,
            "message": message,
            "traceId": trace_id.as_str(),
        });
        if let Some((k, v)) = extra {
            body[k] = v;
        }
        tracing::debug!(status = status.as_u16(), code, trace_id = %trace_id, "error response");
        let headers = resp.headers_mut();
        headers.remove(axum::http::header::CONTENT_LENGTH);
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        *resp.body_mut() = Body::from(body.to_string());
    }
    if let Ok(v) = HeaderValue::from_str(trace_id.as_str()) {
        resp.headers_mut().insert(TRACE_HEADER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_traceparent_and_rejects_garbage() {
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(
            incoming_trace(&h).unwrap().0.as_str(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let mut bad = HeaderMap::new();
        bad.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-xyz-00f067aa0ba902b7-01"),
        );
        bad.insert(
            TRACE_HEADER,
            HeaderValue::from_static("00000000000000000000000000000000"),
        );
        assert!(incoming_trace(&bad).is_none());
    }

    #[test]
    fn message_headers_carry_a_valid_traceparent_of_the_trace() {
        let trace = TraceId("4bf92f3577b34da6a3ce929d0e0e4736".into());
        let id = MessageId("0f1e2d3c-4b5a-4697-8877-665544332211".into());
        let headers = message_headers(Some(&trace), &id);
        assert_eq!(
            headers,
            vec![(
                TRACEPARENT.to_owned(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-8877665544332211-01".to_owned()
            )]
        );
        // What goes out is what an incoming parser accepts.
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, HeaderValue::from_str(&headers[0].1).unwrap());
        assert_eq!(incoming_trace(&h).map(|(t, _)| t), Some(trace.clone()));
        // No hex in the id: still a valid (non-zero) span id.
        let odd = message_headers(Some(&trace), &MessageId("zz/zz".into()));
        assert!(odd[0].1.ends_with("-0000000000000001-01"), "{}", odd[0].1);
        assert!(message_headers(None, &id).is_empty());
    }
}

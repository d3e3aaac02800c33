//! One order, one trace: the embedded system runs a purchase under an
//! in-process OpenTelemetry collector (the same tracing layer and id
//! generator the binary exports with, an in-memory exporter instead of
//! OTLP) and the test reads back every span.
//!
//! The subscriber is this test thread's default and `#[tokio::test]` runs
//! every task of the embedded system on this thread, so it sees them all
//! and no other test's.

use crate::helpers::*;
use opentelemetry::trace::{SpanId, SpanKind, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tracing_subscriber::layer::SubscriberExt as _;

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

fn describe(span: &SpanData) -> String {
    format!(
        "{} [{:?}] trace {} span {} parent {}",
        span.name,
        span.span_kind,
        span.span_context.trace_id(),
        span.span_context.span_id(),
        span.parent_span_id
    )
}

#[tokio::test]
async fn a_purchase_is_one_trace_from_order_to_payment_bus_reservation_and_seat_stream() {
    let exporter = InMemorySpanExporter::default();
    let provider = ticketing_services::telemetry::provider_builder("ticketing")
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _default = tracing::subscriber::set_default(subscriber);

    // The command path, whose trace crosses the bus both ways (the HTTP
    // confirm's trace is the call's: it joins the same way as the pin's).
    let app = spawn_app_with(|s| s.saga.confirm_over_http = false).await;
    // A buyer watching the seat map: the sale ends on this stream.
    let mut stream = app
        .http
        .get(app.url("/api/events/comedy-hour/seats/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let hold = app.hold_ok("comedy-hour", &["3-3"]).await;
    // The buyer's client starts the trace: its span is the order's parent.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let r = app
        .http
        .post(app.url("/api/orders"))
        .header("Idempotency-Key", "trace-1")
        .header("traceparent", format!("00-{trace}-{client_span}-01"))
        .json(&json!({ "holdId": hold }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["x-trace-id"], trace);
    let order: Value = r.json().await.unwrap();
    let order_id = order["orderId"].as_str().unwrap().to_owned();
    assert_eq!(app.wait_terminal(&order_id).await["status"], "CONFIRMED");
    let sold = r#""seatId":"3-3","status":"SOLD""#;
    let mut seen = String::new();
    while !seen.contains(sold) {
        let chunk = tokio::time::timeout(WAIT_LIMIT, stream.chunk())
            .await
            .expect("the stream shows the sale in time")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(stream);

    // A refusal: its body and header name the trace its spans were exported in.
    let refused = app.order("no-such-hold", "trace-2").await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let header = refused.headers()["x-trace-id"].to_str().unwrap().to_owned();
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["traceId"], header.as_str());

    app.stop().await;
    let spans = exporter.get_finished_spans().unwrap();
    let want = TraceId::from_hex(trace).unwrap();
    let in_trace: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == want)
        .collect();
    let listing = in_trace
        .iter()
        .map(|s| describe(s))
        .collect::<Vec<_>>()
        .join("\n");

    // The order's request is the buyer's span's child, and every other span
    // of the trace has its parent in the trace: one tree, no loose ends —
    // but for the saga watchdog's retries, caused by the clock: each is a
    // root of its own in the order's trace (it may or may not have raced
    // the consumer to a step in this run).
    let ids: BTreeSet<String> = in_trace
        .iter()
        .map(|s| s.span_context.span_id().to_string())
        .collect();
    let place = in_trace
        .iter()
        .find(|s| s.name == "POST /api/orders")
        .unwrap_or_else(|| panic!("no order request span in:\n{listing}"));
    assert_eq!(place.span_kind, SpanKind::Server);
    assert_eq!(place.parent_span_id, SpanId::from_hex(client_span).unwrap());
    assert!(place.parent_span_is_remote);
    // The kicker's drive of the order it placed is such a root too.
    let watchdog = ticketing_services::order::saga::WATCHDOG_SPAN;
    let kick = ticketing_services::order::saga::KICK_SPAN;
    for s in &in_trace {
        if s.name == watchdog || s.name == kick {
            assert_eq!(s.span_kind, SpanKind::Internal, "{}", describe(s));
            assert_eq!(s.parent_span_id, SpanId::INVALID, "{}", describe(s));
            continue;
        }
        if s.span_context.span_id() != place.span_context.span_id() {
            assert!(
                ids.contains(&s.parent_span_id.to_string()),
                "{} has a parent outside the trace:\n{listing}",
                describe(s)
            );
        }
    }

    // The services and hops an order goes through.
    let services: BTreeSet<String> = in_trace
        .iter()
        .filter_map(|s| attribute(s, "service"))
        .collect();
    for service in ["order", "payment", "reservation", "catalog"] {
        assert!(
            services.contains(service),
            "no {service} span in the trace ({services:?}):\n{listing}"
        );
    }
    let names: BTreeSet<&str> = in_trace.iter().map(|s| s.name.as_ref()).collect();
    assert!(
        names.contains(kick),
        "no `{kick}` span: the kicker did not drive the order in its trace:\n{listing}"
    );
    for name in [
        "send order-saga",
        "receive order-saga",
        "send reservation-commands",
        "receive reservation-commands",
        "push seat changes",
    ] {
        assert!(names.contains(name), "no `{name}` span in:\n{listing}");
    }
    let authorize = format!("POST /internal/payments/{order_id}/authorize");
    let capture = format!("POST /internal/payments/{order_id}/capture");
    let pin = format!("POST /internal/holds/{hold}/pin");
    for name in [&authorize, &capture, &pin] {
        // The order service's call and the callee's request, parent and child.
        let client = in_trace
            .iter()
            .find(|s| s.name == name.as_str() && s.span_kind == SpanKind::Client)
            .unwrap_or_else(|| panic!("no client span `{name}` in:\n{listing}"));
        assert!(
            in_trace.iter().any(|s| s.name == name.as_str()
                && s.span_kind == SpanKind::Server
                && s.parent_span_id == client.span_context.span_id()),
            "no server span `{name}` under its call in:\n{listing}"
        );
    }

    // Every span of the saga — each call it made and each message it sent
    // or handled — is in this trace, whatever task it ran in (the refused
    // request's own call is the only other one).
    let refusal_trace = TraceId::from_hex(&header).unwrap();
    for s in spans
        .iter()
        .filter(|s| s.span_context.trace_id() != refusal_trace)
    {
        if matches!(
            s.span_kind,
            SpanKind::Client | SpanKind::Producer | SpanKind::Consumer
        ) {
            assert_eq!(
                s.span_context.trace_id(),
                want,
                "{} is outside the order's trace",
                describe(s)
            );
        }
    }

    // The refusal's trace id is its exported request span's trace id.
    assert!(
        spans
            .iter()
            .any(|s| s.span_context.trace_id() == refusal_trace && s.name == "POST /api/orders"),
        "no exported span for the refused request's trace {header}"
    );
}

//! Telemetry set up in one place: `tracing` with an env filter
//! (`RUST_LOG`, default `info`), written to stderr as text or as JSON lines
//! (`log.format`), and — only when `trace.otlp_endpoint` is set — every span
//! exported with OpenTelemetry (OTLP over HTTP). Binaries call [`init`] once,
//! after reading the settings, and [`Telemetry::shutdown`] on the way out.
//!
//! Every request runs in a `request` span and every bus message in a
//! `message` span, both carrying `trace_id`, so each log line names the
//! trace it belongs to (in JSON: `span.trace_id`).
//!
//! **One trace id.** The system's own [`TraceId`] (drawn from the seeded
//! random source, or taken from an incoming `traceparent`) is the id in
//! error bodies, `x-trace-id` headers, logs and bus envelopes. The exported
//! spans use the very same id: a request without a `traceparent` starts its
//! OpenTelemetry trace with that id ([`start_root`], through the
//! [`PresetIds`] id generator), one with a `traceparent` joins the caller's
//! span ([`join_remote`]), and outgoing HTTP calls and bus messages open a
//! client/producer span whose span id is the one the callee receives in its
//! `traceparent` ([`start_with_span_id`]). So an order is one trace from the
//! first request to the last saga step, with no missing parents.
//!
//! Without the OpenTelemetry layer (the simulator, tests, export off) these
//! functions do nothing and draw nothing: simulated runs are unchanged.
//!
//! Layer: plumbing; imports `config` only.

use crate::config::{LogFormat, TraceSettings};
use anyhow::Context as _;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracerProvider};
use std::cell::Cell;
use std::time::Duration;
use ticketing_domain::TraceId;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// What [`init`] set up; keep it until exit and call [`Telemetry::shutdown`].
#[derive(Debug, Default)]
#[must_use = "call shutdown() on the way out, or buffered spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still buffered (bounded by the export timeout).
    /// Call it from outside the runtime's `block_on`, with the runtime still
    /// alive (the binary's `main` does): it waits for the exporter's task,
    /// which must be free to run on a runtime worker meanwhile.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "span export did not finish cleanly");
        }
    }
}

/// Installs the global subscriber: the log layer and, when an OTLP
/// endpoint is configured, the OpenTelemetry layer exporting as
/// `service_name`. A second call installs nothing. Must run inside a tokio
/// runtime (the exporter's batch task runs on it).
pub fn init(
    default_filter: &str,
    format: LogFormat,
    trace: &TraceSettings,
    service_name: &str,
) -> anyhow::Result<Telemetry> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let provider = match trace.endpoint() {
        Some(endpoint) => Some(otlp_provider(
            endpoint,
            Duration::from_millis(trace.export_timeout_ms),
            service_name,
        )?),
        None => None,
    };
    // The log filter (`RUST_LOG`) quiets logs, not traces: spans are
    // exported at info and above whatever the log level.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("ticketing"))
            .with_filter(LevelFilter::INFO)
    });
    let installed = tracing_subscriber::registry()
        .with(otel)
        .with(logs.with_filter(filter))
        .try_init()
        .is_ok();
    if !installed {
        return Ok(Telemetry::default());
    }
    if let Some(endpoint) = trace.endpoint() {
        tracing::info!(endpoint, service_name, "exporting spans over OTLP");
    }
    Ok(Telemetry { provider })
}

/// A tracer provider exporting in batches to `endpoint` over OTLP/HTTP.
fn otlp_provider(
    endpoint: &str,
    timeout: Duration,
    service_name: &str,
) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig as _;
    use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
    let base = endpoint.trim_end_matches('/');
    let url = if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url.clone())
        .with_timeout(timeout)
        .build()
        .with_context(|| format!("cannot export spans to {url}"))?;
    // Batches go out from a tokio task (no exporter thread of its own).
    let batches = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    Ok(provider_builder(service_name)
        .with_span_processor(batches)
        .build())
}

/// A tracer-provider builder with what every exporter needs here: the
/// service name and [`PresetIds`]. Tests add an in-memory exporter to it.
pub fn provider_builder(service_name: &str) -> opentelemetry_sdk::trace::TracerProviderBuilder {
    SdkTracerProvider::builder()
        .with_id_generator(PresetIds::default())
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
}

thread_local! {
    /// The trace id the next root span built on this thread must have.
    static PRESET_TRACE: Cell<Option<[u8; 16]>> = const { Cell::new(None) };
    /// The span id the next span built on this thread must have.
    static PRESET_SPAN: Cell<Option<[u8; 8]>> = const { Cell::new(None) };
}

/// The OpenTelemetry id generator: hands out the ids [`start_root`] and
/// [`start_with_span_id`] preset for the span they are building (on this
/// thread, for that one call), random ones otherwise.
#[derive(Debug, Default)]
pub struct PresetIds {
    random: RandomIdGenerator,
}

impl IdGenerator for PresetIds {
    fn new_trace_id(&self) -> opentelemetry::trace::TraceId {
        match PRESET_TRACE.with(Cell::take) {
            Some(b) => opentelemetry::trace::TraceId::from_bytes(b),
            None => self.random.new_trace_id(),
        }
    }

    fn new_span_id(&self) -> SpanId {
        match PRESET_SPAN.with(Cell::take) {
            Some(b) => SpanId::from_bytes(b),
            None => self.random.new_span_id(),
        }
    }
}

fn trace_bytes(trace: &TraceId) -> Option<[u8; 16]> {
    u128::from_str_radix(trace.as_str(), 16)
        .ok()
        .filter(|v| *v != 0 && trace.as_str().len() == 32)
        .map(u128::to_be_bytes)
}

fn span_bytes(span_id: &str) -> Option<[u8; 8]> {
    u64::from_str_radix(span_id, 16)
        .ok()
        .filter(|v| *v != 0 && span_id.len() == 16)
        .map(u64::to_be_bytes)
}

/// Builds `span`'s OpenTelemetry span now, with `trace`/`span_id` preset
/// for the ids the SDK draws while building it.
fn build_with(span: &tracing::Span, trace: Option<[u8; 16]>, span_id: Option<[u8; 8]>) {
    PRESET_TRACE.with(|c| c.set(trace));
    PRESET_SPAN.with(|c| c.set(span_id));
    // Reading the context builds the span (a no-op without the layer).
    let _ = span.context();
    PRESET_TRACE.with(|c| c.set(None));
    PRESET_SPAN.with(|c| c.set(None));
}

/// Makes `span` (not yet entered) the root of trace `trace`.
pub fn start_root(span: &tracing::Span, trace: &TraceId) {
    build_with(span, trace_bytes(trace), None);
}

/// Makes `span` (not yet entered) a child of the caller's span
/// `parent_span_id` in trace `trace`, as carried by a `traceparent`.
pub fn join_remote(span: &tracing::Span, trace: &TraceId, parent_span_id: &str) {
    let (Some(t), Some(s)) = (trace_bytes(trace), span_bytes(parent_span_id)) else {
        start_root(span, trace);
        return;
    };
    let remote = SpanContext::new(
        opentelemetry::trace::TraceId::from_bytes(t),
        SpanId::from_bytes(s),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let cx = opentelemetry::Context::new().with_remote_span_context(remote);
    // Fails only without the layer (nothing to do) or once started (we
    // never start it before).
    let _ = span.set_parent(cx);
}

/// Builds `span` (created inside the current span, not yet entered) with
/// span id `span_id` — the id a callee or consumer will see as its parent in
/// `traceparent`. Outside any span it becomes a root of `trace`.
pub fn start_with_span_id(span: &tracing::Span, trace: &TraceId, span_id: &str) {
    build_with(span, trace_bytes(trace), span_bytes(span_id));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_only_when_valid() {
        let t = TraceId("4bf92f3577b34da6a3ce929d0e0e4736".into());
        assert_eq!(
            trace_bytes(&t).map(u128::from_be_bytes),
            Some(0x4bf92f3577b34da6a3ce929d0e0e4736)
        );
        assert!(trace_bytes(&TraceId("0".repeat(32))).is_none());
        assert!(trace_bytes(&TraceId("4bf9".into())).is_none());
        assert_eq!(
            span_bytes("00f067aa0ba902b7").map(u64::from_be_bytes),
            Some(0x00f067aa0ba902b7)
        );
        assert!(span_bytes("0000000000000000").is_none());
        assert!(span_bytes("zz").is_none());
    }

    #[test]
    fn presets_are_used_once_then_ids_are_random() {
        let ids = PresetIds::default();
        PRESET_TRACE.with(|c| c.set(Some([7; 16])));
        PRESET_SPAN.with(|c| c.set(Some([9; 8])));
        assert_eq!(ids.new_span_id(), SpanId::from_bytes([9; 8]));
        assert_eq!(
            ids.new_trace_id(),
            opentelemetry::trace::TraceId::from_bytes([7; 16])
        );
        assert_ne!(ids.new_span_id(), SpanId::from_bytes([9; 8]));
        assert_ne!(
            ids.new_trace_id(),
            opentelemetry::trace::TraceId::from_bytes([7; 16])
        );
    }
}

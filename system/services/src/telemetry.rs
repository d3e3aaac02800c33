//! Telemetry set up in one place: `tracing` with an env filter
//! (`RUST_LOG`, default `info`), written to stderr as text or as JSON lines
//! (`log.format`). Binaries call [`init`] once, after reading the settings.
//!
//! Every request runs in a `request` span and every bus message in a
//! `message` span, both carrying `trace_id`, so each log line names the
//! trace it belongs to (in JSON: `span.trace_id`).

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call is a no-op.
pub fn init(default_filter: &str, format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

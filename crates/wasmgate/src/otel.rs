//! OpenTelemetry span export for `wasmgate up`, configured by the standard `OTEL_*`
//! environment variables (see `wasmgate_telemetry::OtlpConfig`): started before the first
//! request, flushed after the last one.

use anyhow::Context;
use std::time::Duration;
use wasmgate_telemetry::{OtlpConfig, SpanExport, Telemetry};

/// How long a graceful shutdown waits for the last spans to reach the collector.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts span export if the environment asks for it (on the current tokio runtime); `None`
/// when it is off. The service name defaults to the app's name.
pub fn start(telemetry: &Telemetry, app: &str) -> anyhow::Result<Option<SpanExport>> {
    let config = OtlpConfig::from_env(|name| std::env::var(name).ok(), app)
        .context("OpenTelemetry configuration")?;
    let Some(config) = config else {
        return Ok(None);
    };
    tracing::info!(
        endpoint = %config.endpoint,
        protocol = ?config.protocol,
        "exporting spans over OTLP"
    );
    Ok(Some(telemetry.start_span_export(config)))
}

/// Sends the spans still queued, waiting at most [`FLUSH_TIMEOUT`].
pub async fn flush(export: Option<SpanExport>) {
    if let Some(export) = export {
        if !export.flush(FLUSH_TIMEOUT).await {
            tracing::warn!("not every span reached the OTLP collector before shutdown");
        }
    }
}

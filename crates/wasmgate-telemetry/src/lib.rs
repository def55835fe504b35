//! Wasmgate's telemetry: the per-invocation record and where it goes.
//!
//! Every request that reaches a component ends in one [`InvocationRecord`]. [`Telemetry::emit`]
//! turns it into Prometheus metrics ([`Metrics`]), one structured log line, and an entry in a
//! bounded in-memory history ([`History`]) that the admin API queries. Nothing here knows about
//! wasmtime or listeners: executors fill records, the server serves what this crate holds.

mod exposition;
mod history;
mod metrics;
mod otlp;
mod otlp_encode;
mod otlp_transport;
mod record;
pub mod spans;
mod summary;
mod trace;

pub use exposition::{
    openmetrics_to_classic, wants_openmetrics, CLASSIC_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE,
};
pub use history::{History, InvocationQuery, LIVE_BUFFER};
pub use metrics::{CacheResult, Metrics};
pub use otlp::{OtlpConfig, OtlpConfigError, SpanExport};
pub use otlp_transport::{public_tls_client_config, Protocol as OtlpProtocol, GRPC_EXPORT_PATH};
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::gauge::Gauge;
pub use record::{count_lines, method_label, HostCallSummary, InvocationRecord};
pub use summary::{summarize, Percentiles, RouteSummary, RoutesSummary, RATE_WINDOW_MS};
pub use trace::{parse_traceparent, TraceContext, TraceId};

use spans::RequestSpan;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Where invocation records go. One per process, shared by every executor.
pub struct Telemetry {
    pub metrics: Metrics,
    pub history: History,
    app: Arc<str>,
    /// Set once at startup when OTLP span export is configured; unset, requests build no spans.
    spans: OnceLock<SpanExport>,
}

impl Telemetry {
    pub fn new(app: &str, history_capacity: usize) -> Telemetry {
        Telemetry {
            metrics: Metrics::new(),
            history: History::new(history_capacity),
            app: app.into(),
            spans: OnceLock::new(),
        }
    }

    /// The app name records carry.
    pub fn app(&self) -> &Arc<str> {
        &self.app
    }

    /// Starts exporting spans as `config` says (on the current tokio runtime). Only the first
    /// call has an effect.
    pub fn start_span_export(&self, config: OtlpConfig) -> SpanExport {
        let counters = self.metrics.span_counters();
        self.spans
            .get_or_init(|| SpanExport::start(config, counters))
            .clone()
    }

    /// Whether requests should collect spans: the one check the request path makes.
    pub fn tracing(&self) -> bool {
        self.spans.get().is_some()
    }

    /// Sends the spans still queued (graceful shutdown); false if `timeout` passed first.
    pub async fn flush_spans(&self, timeout: Duration) -> bool {
        match self.spans.get() {
            Some(export) => export.flush(timeout).await,
            None => true,
        }
    }

    /// [`Telemetry::emit`], plus the invocation's spans when they were collected.
    pub fn emit_traced(&self, record: InvocationRecord, request: Option<RequestSpan>) {
        if let (Some(request), Some(export)) = (request, self.spans.get()) {
            export.submit(&record, request);
        }
        self.emit(record);
    }

    /// Publishes one finished invocation: metrics, a log line, the history.
    pub fn emit(&self, record: InvocationRecord) {
        self.metrics.observe(&record);
        // The log line is written from the history's live feed, off the request path (the
        // binary's access log).
        self.history.push(record);
    }
}

//! Wasmgate's telemetry: the per-invocation record and where it goes.
//!
//! Every request that reaches a component ends in one [`InvocationRecord`]. [`Telemetry::emit`]
//! turns it into Prometheus metrics ([`Metrics`]), one structured log line, and an entry in a
//! bounded in-memory history ([`History`]) that the admin API queries. Nothing here knows about
//! wasmtime or listeners: executors fill records, the server serves what this crate holds.

mod exposition;
pub mod guest_output;
mod histogram;
mod history;
mod metrics;
mod otlp;
mod otlp_encode;
mod otlp_tls;
mod otlp_transport;
mod publisher;
mod record;
mod route_cache;
mod sampler;
pub mod spans;
mod summary;
mod trace;

pub use exposition::{
    openmetrics_to_classic, wants_openmetrics, CLASSIC_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE,
};
pub use guest_output::{GuestLine, GuestOutput};
pub use history::{History, InvocationQuery, LIVE_BUFFER};
pub use metrics::{CacheResult, Metrics};
pub use otlp::{OtlpConfig, OtlpConfigError, SpanExport, SpanSink};
pub use otlp_transport::{public_tls_client_config, Protocol as OtlpProtocol, GRPC_EXPORT_PATH};
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::gauge::Gauge;
pub use publisher::{next_rest, Doze, PUBLISH_INTERVAL};
pub use record::{count_lines, method_label, CallTrace, HostCallSummary, InvocationRecord};
pub use route_cache::RouteCache;
pub use sampler::Sampler;
pub use summary::{summarize, Percentiles, RouteSummary, RoutesSummary, RATE_WINDOW_MS};
pub use trace::{parse_traceparent, tracestate_to_propagate, TraceContext, TraceId, TRACESTATE};

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
    /// False when the operator turned telemetry off: records are dropped unseen.
    enabled: bool,
    /// Records (and their spans) on their way to metrics, history and span export when a
    /// publisher thread runs.
    // Pointers, not the record and span themselves (about 600 bytes), which were copied at
    // every hand-over: queued, taken, passed to the exporter.
    inbox: publisher::Inbox<(Arc<InvocationRecord>, Option<Box<RequestSpan>>)>,
}

impl Telemetry {
    pub fn new(app: &str, history_capacity: usize) -> Telemetry {
        Telemetry {
            metrics: Metrics::new(),
            history: History::new(history_capacity),
            app: app.into(),
            spans: OnceLock::new(),
            enabled: true,
            inbox: publisher::Inbox::default(),
        }
    }

    /// Publishes records from a thread of their own from now on (see `publisher.rs`); until
    /// this is called, `emit` publishes on the caller's thread. The thread ends when the
    /// telemetry is dropped.
    pub fn start_publisher(self: &Arc<Self>) -> std::io::Result<()> {
        let telemetry = Arc::downgrade(self);
        let thread = std::thread::Builder::new()
            .name("wasmgate-telemetry".into())
            .spawn(move || {
                let mut rest = publisher::PUBLISH_INTERVAL;
                while let Some(telemetry) = telemetry.upgrade() {
                    let inbox = &telemetry.inbox;
                    inbox.doze.rest(rest, || inbox.has_queued());
                    rest = publisher::next_rest(rest, telemetry.settle());
                }
            })?;
        self.inbox.doze.set_thread(thread.thread().clone());
        self.inbox.set_piped();
        Ok(())
    }

    /// Publishes every record emitted so far (and hands their spans to the exporter). Readers
    /// of metrics and history call it first. False when there was none.
    pub fn settle(&self) -> bool {
        self.inbox.settle(|batch| {
            let mut sink = self.spans.get().map(SpanExport::sink);
            let mut published = Vec::with_capacity(batch.len());
            for (record, request) in batch {
                if let (Some(request), Some(sink)) = (request, sink.as_mut()) {
                    sink.push(record.clone(), request);
                }
                self.metrics.observe(&record);
                published.push(record);
            }
            self.history.push_all(published);
        })
    }

    /// Telemetry turned off (`wasmgate up --no-telemetry`): no metrics observed, no history,
    /// no log lines, no spans, and executors skip the call-hook timing. What remains on the
    /// request path is building the record, which is then dropped.
    pub fn off(app: &str) -> Telemetry {
        Telemetry {
            enabled: false,
            ..Telemetry::new(app, 1)
        }
    }

    /// Whether records are kept; executors time guest and host only when they are.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The app name records carry.
    pub fn app(&self) -> &Arc<str> {
        &self.app
    }

    /// Starts exporting spans as `config` says (on the current tokio runtime). Only the first
    /// call has an effect.
    pub fn start_span_export(&self, config: OtlpConfig) -> SpanExport {
        debug_assert!(self.enabled, "span export started with telemetry off");
        let counters = self.metrics.span_counters();
        self.spans
            .get_or_init(|| SpanExport::start(config, counters))
            .clone()
    }

    /// Makes the sampling decision for a request's new trace context (see [`Sampler`]); with
    /// span export off, the caller's flag (or "sampled" for new traces) is left as it is.
    pub fn sample(&self, trace: &mut TraceContext) {
        if let Some(export) = self.spans.get() {
            trace.sampled = export.sampler().decide(trace);
        }
    }

    /// Whether requests should collect spans: the one check the request path makes.
    pub fn tracing(&self) -> bool {
        self.spans.get().is_some()
    }

    /// Sends the spans still queued (graceful shutdown); false if `timeout` passed first.
    pub async fn flush_spans(&self, timeout: Duration) -> bool {
        self.settle();
        match self.spans.get() {
            Some(export) => export.flush(timeout).await,
            None => true,
        }
    }

    /// [`Telemetry::emit`], plus the invocation's spans when they were collected (only sampled
    /// requests collect them).
    pub fn emit_traced(&self, record: InvocationRecord, request: Option<Box<RequestSpan>>) {
        if !self.enabled {
            return;
        }
        let record = Arc::new(record);
        if self.inbox.piped() {
            if self.inbox.queue((record, request)) {
                self.settle();
            }
            return;
        }
        if let (Some(request), Some(export)) = (request, self.spans.get()) {
            export.sink().push(record.clone(), request);
        }
        self.publish(record);
    }

    /// Publishes one finished invocation: metrics, a log line, the history; queued for the
    /// publisher thread when one runs.
    pub fn emit(&self, record: InvocationRecord) {
        self.emit_traced(record, None);
    }

    fn publish(&self, record: Arc<InvocationRecord>) {
        self.metrics.observe(&record);
        // The log line is written from the history's access-log feed, off the request path
        // (the binary's access log).
        self.history.push(record);
    }
}

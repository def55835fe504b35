//! Wasmgate's telemetry: the per-invocation record and where it goes.
//!
//! Every request that reaches a component ends in one [`InvocationRecord`]. [`Telemetry::emit`]
//! turns it into Prometheus metrics ([`Metrics`]), one structured log line, and an entry in a
//! bounded in-memory history ([`History`]) that the admin API queries. Nothing here knows about
//! wasmtime or listeners: executors fill records, the server serves what this crate holds.

mod exposition;
mod history;
mod metrics;
mod record;
mod trace;

pub use exposition::{
    openmetrics_to_classic, wants_openmetrics, CLASSIC_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE,
};
pub use history::{History, InvocationQuery, LIVE_BUFFER};
pub use metrics::{CacheResult, Metrics};
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::gauge::Gauge;
pub use record::{count_lines, method_label, HostCallSummary, InvocationRecord};
pub use trace::{parse_traceparent, TraceContext, TraceId};

use std::sync::Arc;

/// Where invocation records go. One per process, shared by every executor.
pub struct Telemetry {
    pub metrics: Metrics,
    pub history: History,
    app: Arc<str>,
}

impl Telemetry {
    pub fn new(app: &str, history_capacity: usize) -> Telemetry {
        Telemetry {
            metrics: Metrics::new(),
            history: History::new(history_capacity),
            app: app.into(),
        }
    }

    /// The app name records carry.
    pub fn app(&self) -> &Arc<str> {
        &self.app
    }

    /// Publishes one finished invocation: metrics, a log line, the history.
    pub fn emit(&self, record: InvocationRecord) {
        self.metrics.observe(&record);
        log(&record);
        self.history.push(record);
    }
}

/// The invocation's log line: one per request, structured (JSON with `--log-format json`).
/// At debug level for now (`RUST_LOG=wasmgate::invocation=debug` turns it on): formatting it
/// through tracing-subscriber's JSON layer costs about a fifth of a hello request's CPU.
/// Failed invocations are also logged at warn/error by their executor either way.
fn log(record: &InvocationRecord) {
    tracing::debug!(
        target: "wasmgate::invocation",
        invocation = record.id,
        trace_id = %record.trace_id,
        route = %record.route,
        component = %record.component,
        executor = record.executor,
        method = record.method,
        status = record.status,
        outcome = record.outcome,
        wall_us = record.wall_time_us,
        instantiate_us = record.instantiate_time_us,
        peak_memory = record.peak_memory_bytes,
        cold_start = record.cold_start,
        request_bytes = record.request_bytes,
        response_bytes = record.response_bytes,
        "invocation"
    );
}

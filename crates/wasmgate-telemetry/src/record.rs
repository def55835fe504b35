//! The invocation record: what one request did inside Wasmgate.

use crate::trace::TraceId;
use serde::Serialize;
use std::sync::Arc;

/// One request's invocation of a component. Times are microseconds; `None` means the figure is
/// not measured for this component (e.g. instructions without fuel).
#[derive(Debug, Clone, Serialize, Default)]
pub struct InvocationRecord {
    pub id: u64,
    /// The W3C trace this request belongs to (continued from its `traceparent`, or new).
    pub trace_id: TraceId,
    /// Unix time the request arrived, in milliseconds.
    pub started_at_ms: u64,
    // Names are shared (`Arc<str>`), not copied: a record is built for every request.
    pub app: Arc<str>,
    /// The route pattern as written in the manifest, never the raw path.
    pub route: Arc<str>,
    pub component: Arc<str>,
    /// `http`, `wagi` or `service`; `none` for a request a route's limits refused before
    /// any executor saw it.
    pub executor: &'static str,
    /// The request method, or `_OTHER` for a non-standard one (OpenTelemetry's rule, which
    /// keeps metric labels bounded).
    pub method: &'static str,
    /// The status the client got (0 if the client went away before a response).
    pub status: u16,
    /// `ok`, `trap`, `timeout`, `memory_limit`, `host_call_limit`, `fuel_limit`, `no_response`,
    /// `bad_output`, `overloaded`, `instantiate_failed`, `client_gone`; for requests refused
    /// before a guest ran: `denied`, `rate_limited`, `rejected`.
    pub outcome: &'static str,
    pub error: Option<String>,
    pub backtrace: Option<String>,
    pub exit_code: Option<i32>,
    pub wall_time_us: u64,
    pub instantiate_time_us: u64,
    pub guest_cpu_time_us: Option<u64>,
    pub host_calls: Option<u64>,
    pub host_call_time_us: Option<u64>,
    /// Host calls by capability (`key_value`, `sql`, `outbound_http`...); empty when the guest
    /// made none.
    pub host_calls_by_capability: Vec<HostCallSummary>,
    pub instructions: Option<u64>,
    pub peak_memory_bytes: u64,
    pub cold_start: bool,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub stdout_lines: u64,
    pub stdout_bytes: u64,
    pub stderr_lines: u64,
    pub stderr_bytes: u64,
    /// The first lines the guest wrote and its `wasi:logging` records, in order (capped:
    /// `guest_output::KEPT_LINES`, `KEPT_BYTES`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<crate::GuestLine>,
    /// Lines and records past what `output` keeps.
    #[serde(skip_serializing_if = "is_zero")]
    pub output_left_out: u64,
    /// Calls to outbound HTTP, key-value and SQL one by one, in order, for the trace view
    /// (the first `MAX_TRACED_CALLS` of them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<CallTrace>,
    /// Such calls past what `calls` keeps.
    #[serde(skip_serializing_if = "is_zero")]
    pub calls_left_out: u64,
}

/// One capability call of an invocation, placed in its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallTrace {
    pub capability: &'static str,
    /// `GET host:port`, `get store`, `SELECT database`...: never keys, values or SQL text.
    pub operation: String,
    /// When the call started, after the request arrived.
    pub start_us: u64,
    pub duration_us: u64,
    pub failed: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Calls an invocation made into one capability, and the time they took.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostCallSummary {
    pub capability: &'static str,
    pub count: u64,
    pub time_us: u64,
}

impl InvocationRecord {
    /// The addresses of the record's route, component, executor and method: a cache key by
    /// name that hashes or compares no text (metrics' series, `RouteCache`). A cache using it
    /// must hold the route and component `Arc`s of each entry, so that no other name can take
    /// their addresses while the entry lives; the executor and method are `'static`.
    pub fn name_addresses(&self) -> [usize; 4] {
        [
            Arc::as_ptr(&self.route) as *const u8 as usize,
            Arc::as_ptr(&self.component) as *const u8 as usize,
            self.executor.as_ptr() as usize,
            self.method.as_ptr() as usize,
        ]
    }

    /// `2xx`, `4xx`... the status label metrics use (low cardinality).
    pub fn status_class(&self) -> &'static str {
        match self.status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            500..=599 => "5xx",
            _ => "none",
        }
    }
}

/// The method as recorded: standard methods by name, anything else `_OTHER`.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        _ => "_OTHER",
    }
}

/// Line and byte counts of captured guest output.
pub fn count_lines(bytes: &[u8]) -> u64 {
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    match bytes.last() {
        Some(b'\n') | None => newlines,
        Some(_) => newlines + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        let mut record = InvocationRecord {
            status: 204,
            ..Default::default()
        };
        assert_eq!(record.status_class(), "2xx");
        record.status = 504;
        assert_eq!(record.status_class(), "5xx");
        record.status = 0;
        assert_eq!(record.status_class(), "none");
    }

    #[test]
    fn non_standard_methods_are_other() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("BREW"), "_OTHER");
    }

    #[test]
    fn lines_count_a_final_partial_line() {
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"a\nb\n"), 2);
        assert_eq!(count_lines(b"a\nb"), 2);
    }
}

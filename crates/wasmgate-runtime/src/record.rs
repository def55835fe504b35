//! Building one invocation's record while the request runs, and emitting it when the last
//! party that can add to it is done: the guest's task (outcome, memory, output) and the
//! response body (bytes sent, whether the client stayed to the end). Whichever finishes last
//! emits, so the record's wall time covers the whole exchange.

use crate::call_clock::CallClock;
use crate::executor::RequestContext;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use wasmgate_capabilities::HostCalls;
use wasmgate_telemetry::spans::{unix_ns_at, InstanceSpans, RequestHead, RequestSpan, SpanBuffer};
use wasmgate_telemetry::{method_label, HostCallSummary, InvocationRecord, Telemetry};

pub struct Pending {
    record: Mutex<InvocationRecord>,
    telemetry: Arc<Telemetry>,
    started: Instant,
    request_bytes: AtomicU64,
    response_bytes: AtomicU64,
    /// Set when the response body was dropped before its end: the client went away.
    body_cut: AtomicBool,
    /// HEAD responses have no body to send, so an unpolled body is not a cut one.
    head_request: bool,
    /// The request's SERVER span and its children, only when span export is on.
    spans: Option<Box<RequestSpan>>,
}

impl Pending {
    pub fn new(
        telemetry: &Arc<Telemetry>,
        context: &RequestContext,
        component: &Arc<str>,
        executor: &'static str,
        method: &http::Method,
        started: Instant,
    ) -> Arc<Pending> {
        Arc::new(Pending::build(
            telemetry,
            context,
            component,
            executor,
            method,
            started,
            None::<&http::Request<()>>,
        ))
    }

    /// [`Pending::new`] for `request`, whose line and headers its span reports when span
    /// export is on.
    pub fn for_request<B>(
        telemetry: &Arc<Telemetry>,
        context: &RequestContext,
        component: &Arc<str>,
        executor: &'static str,
        request: &http::Request<B>,
        started: Instant,
    ) -> Arc<Pending> {
        Arc::new(Pending::build(
            telemetry,
            context,
            component,
            executor,
            request.method(),
            started,
            Some(request),
        ))
    }

    fn build<B>(
        telemetry: &Arc<Telemetry>,
        context: &RequestContext,
        component: &Arc<str>,
        executor: &'static str,
        method: &http::Method,
        started: Instant,
        request: Option<&http::Request<B>>,
    ) -> Pending {
        let arrived_unix_ns = unix_ns_at(started);
        let spans = request_span(telemetry, context, request, (started, arrived_unix_ns));
        let started_at_ms = arrived_unix_ns / 1_000_000;
        Pending {
            record: Mutex::new(InvocationRecord {
                id: context.invocation_id,
                trace_id: context.trace.trace_id,
                started_at_ms,
                app: telemetry.app().clone(),
                route: context.route.pattern.clone(),
                component: component.clone(),
                executor,
                method: method_label(method.as_str()),
                outcome: "ok",
                ..Default::default()
            }),
            telemetry: telemetry.clone(),
            started,
            request_bytes: AtomicU64::new(0),
            response_bytes: AtomicU64::new(0),
            body_cut: AtomicBool::new(false),
            head_request: method == http::Method::HEAD,
            spans,
        }
    }

    /// Where this invocation's child spans go; `None` when span export is off.
    pub fn span_buffer(&self) -> Option<&SpanBuffer> {
        self.spans.as_ref().map(|s| &s.children)
    }

    /// Changes the record in place.
    pub fn update(&self, change: impl FnOnce(&mut InvocationRecord)) {
        let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut record);
    }

    pub fn add_request_bytes(&self, n: u64) {
        self.request_bytes.fetch_add(n, Ordering::Relaxed);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut record = std::mem::take(self.record.get_mut().unwrap_or_else(|p| p.into_inner()));
        let finished = Instant::now();
        record.wall_time_us = finished.saturating_duration_since(self.started).as_micros() as u64;
        record.request_bytes = *self.request_bytes.get_mut();
        record.response_bytes = *self.response_bytes.get_mut();
        if *self.body_cut.get_mut() && record.outcome == "ok" {
            record.outcome = "client_gone";
        }
        let mut spans = self.spans.take();
        if let Some(spans) = &mut spans {
            spans.finished = Some(finished);
        }
        self.telemetry.emit_traced(record, spans);
    }
}

/// The SERVER span's starting point for a request, when span export is on (else `None`, and
/// nothing is built).
pub fn request_span<B>(
    telemetry: &Telemetry,
    context: &RequestContext,
    request: Option<&http::Request<B>>,
    // When the request arrived, as an instant and in Unix nanoseconds (`unix_ns_at`).
    started: (Instant, u64),
) -> Option<Box<RequestSpan>> {
    // An unsampled request builds no spans at all: most of span export's cost is here and in
    // the export task, not in the decision.
    if !telemetry.tracing() || !context.trace.sampled {
        return None;
    }
    let scheme = match context.scheme {
        crate::Scheme::Http => "http",
        crate::Scheme::Https => "https",
    };
    let mut span = RequestSpan::new(
        context.trace,
        started,
        scheme,
        context.local_addr,
        context.remote_addr,
    );
    span.http = request.map(request_head);
    Some(Box::new(span))
}

fn request_head<B>(request: &http::Request<B>) -> RequestHead {
    // One pass over the headers for both: a request carries only a few, and two lookups
    // hashed their names (about 240 instructions).
    let (mut host_header, mut user_agent) = (None, None);
    for (name, value) in request.headers() {
        if *name == http::header::HOST {
            host_header = host_header.or(Some(value.as_bytes()));
        } else if *name == http::header::USER_AGENT {
            user_agent = user_agent.or(Some(value.as_bytes()));
        } else {
            continue;
        }
        if host_header.is_some() && user_agent.is_some() {
            break;
        }
    }
    let host = match request.uri().authority() {
        // Userinfo (`user:password@`) is not part of the host, and not for spans.
        Some(authority) => {
            let text = authority.as_str();
            Some(
                text.rsplit_once('@')
                    .map_or(text, |(_, host)| host)
                    .as_bytes(),
            )
        }
        None => host_header,
    };
    let method = request.method();
    RequestHead::new(
        request
            .uri()
            .path_and_query()
            .map_or(request.uri().path(), |target| target.as_str()),
        host,
        user_agent,
        match request.version() {
            http::Version::HTTP_09 => "0.9",
            http::Version::HTTP_10 => "1.0",
            http::Version::HTTP_2 => "2",
            http::Version::HTTP_3 => "3",
            _ => "1.1",
        },
        (method_label(method.as_str()) == "_OTHER").then(|| method.clone()),
    )
}

/// Records a request the server answered itself before it reached a component (a guard
/// refused it: rate limit, full queue, body too large, authentication...), so it shows up in
/// `/api/invocations` and the metrics like any other. `outcome` is an [`crate::Outcome`]'s
/// word (or `rejected`); `executor` is `"none"`, since none ran. The wall time runs from
/// `started`, so time spent waiting in a queue shows.
#[allow(clippy::too_many_arguments)]
pub fn record_unserved(
    telemetry: &Arc<Telemetry>,
    context: &RequestContext,
    component: &Arc<str>,
    method: &http::Method,
    started: Instant,
    outcome: &'static str,
    status: http::StatusCode,
    detail: String,
) {
    let pending = Pending::new(telemetry, context, component, "none", method, started);
    // The SERVER span of a refused request has no children.
    pending.update(|r| {
        r.outcome = outcome;
        r.status = status.as_u16();
        r.error = Some(detail);
    });
}

/// A body that counts its bytes into a [`Pending`] record (request bodies on their way to a
/// guest, response bodies on their way to the client).
pub struct Counted<B: Body> {
    inner: B,
    pending: Option<Arc<Pending>>,
    direction: Direction,
}

#[derive(Clone, Copy)]
pub enum Direction {
    Request,
    Response,
}

impl<B: Body> Counted<B> {
    pub fn new(inner: B, pending: Arc<Pending>, direction: Direction) -> Counted<B> {
        Counted {
            inner,
            pending: Some(pending),
            direction,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(pending)) = (frame.data_ref(), &this.pending) {
                    let counter = match this.direction {
                        Direction::Request => &pending.request_bytes,
                        Direction::Response => &pending.response_bytes,
                    };
                    counter.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                // hyper may stop polling once a body says it has ended.
                if this.inner.is_end_stream() {
                    this.pending = None;
                }
            }
            // The end (or a failure): this body has nothing more to add.
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => this.pending = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Body> Drop for Counted<B> {
    fn drop(&mut self) {
        if let (Some(pending), Direction::Response) = (&self.pending, self.direction) {
            if !self.inner.is_end_stream() && !pending.head_request {
                pending.body_cut.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// Copies an instance's guest time and host-call totals (every host call, WASI included)
/// into its record.
pub(crate) fn fill_call_clock(record: &mut InvocationRecord, clock: &CallClock) {
    record.guest_cpu_time_us = Some(clock.guest.as_micros() as u64);
    record.host_calls = Some(clock.host_calls);
    record.host_call_time_us = Some(clock.host.as_micros() as u64);
}

/// Copies what the guest wrote and logged (counts, and the lines kept) into its record.
pub(crate) fn fill_output(
    record: &mut InvocationRecord,
    transcript: wasmgate_telemetry::guest_output::Transcript,
) {
    let counts = transcript.counts;
    record.stdout_lines = counts.stdout_lines;
    record.stdout_bytes = counts.stdout_bytes;
    record.stderr_lines = counts.stderr_lines;
    record.stderr_bytes = counts.stderr_bytes;
    record.output = transcript.kept;
    record.output_left_out = transcript.left_out;
}

/// Copies an instance's capability-call tally (by capability) into its record.
pub(crate) fn fill_host_calls(record: &mut InvocationRecord, calls: &HostCalls, started: Instant) {
    let Some(summary) = calls.take_summary() else {
        return;
    };
    record.calls = summary
        .traced
        .into_iter()
        .map(|call| wasmgate_telemetry::CallTrace {
            capability: call.capability.as_str(),
            operation: call.operation,
            start_us: call.started.saturating_duration_since(started).as_micros() as u64,
            duration_us: call.duration.as_micros() as u64,
            failed: call.failed,
        })
        .collect();
    record.calls_left_out = summary.untraced;
    record.host_calls_by_capability = summary
        .by_capability
        .into_iter()
        .map(|(capability, stats)| HostCallSummary {
            capability: capability.as_str(),
            count: stats.count,
            time_us: stats.duration.as_micros() as u64,
        })
        .collect();
}

/// When an instance was being created and ran, for its spans.
pub(crate) struct InstanceTimes {
    pub instantiating: Instant,
    /// `None` when instantiation failed (or did not finish in time).
    pub instantiated: Option<Instant>,
    pub ran_until: Instant,
}

/// The `instantiate` and `execute` spans of one instance (children of the request's SERVER
/// span); the execute span fails when the invocation's outcome is a fault. The component is
/// in their names and on the SERVER span, not repeated as attributes.
pub(crate) fn instance_spans(
    spans: &SpanBuffer,
    component: &Arc<str>,
    times: InstanceTimes,
    outcome: crate::Outcome,
) {
    spans.set_instance(InstanceSpans {
        component: component.clone(),
        instantiating: times.instantiating,
        instantiated: times.instantiated,
        ran_until: times.ran_until,
        failed: (outcome != crate::Outcome::Ok).then(|| outcome.as_str()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_head_copies_path_host_and_user_agent() {
        let request = http::Request::get("/shop/cart?token=secret")
            .header(http::header::HOST, "shop.example:8443")
            .header(http::header::USER_AGENT, "curl/8.5")
            .body(())
            .unwrap();
        let head = request_head(&request);
        assert_eq!(head.path(), "/shop/cart");
        assert_eq!(head.host(), Some(&b"shop.example:8443"[..]));
        assert_eq!(head.user_agent(), Some("curl/8.5"));
        assert_eq!(head.protocol_version, "1.1");
        assert!(head.method_original.is_none());

        // An absolute-form URI names the host (its userinfo is left out); a user agent that
        // is not text is left out too.
        let request = http::Request::builder()
            .method("PURGE")
            .uri("http://user:pw@cdn.example:81/a")
            .header(http::header::HOST, "ignored.example")
            .header(
                http::header::USER_AGENT,
                http::HeaderValue::from_bytes(b"bot\xff").unwrap(),
            )
            .body(())
            .unwrap();
        let head = request_head(&request);
        assert_eq!(head.path(), "/a");
        assert_eq!(head.host(), Some(&b"cdn.example:81"[..]));
        assert_eq!(head.user_agent(), None);
        assert_eq!(
            head.method_original.as_ref().map(|m| m.as_str()),
            Some("PURGE")
        );

        let request = http::Request::get("/").body(()).unwrap();
        let head = request_head(&request);
        assert_eq!(
            (head.path(), head.host(), head.user_agent()),
            ("/", None, None)
        );
    }
}

//! One invocation's spans, built from what the runtime already measures: a SERVER span for the
//! request (its attributes are the invocation record's figures) and child spans for
//! instantiation, guest execution and the host calls that matter (outbound HTTP, key-value,
//! SQL).
//!
//! Nothing here exists unless span export is on: the runtime asks [`crate::Telemetry::tracing`]
//! once per request and, when it says no, builds none of these. While a request runs it only
//! collects [`ChildSpan`]s (instants, names, a few attributes) in a [`SpanBuffer`]; encoding
//! them and the record as OTLP happens on the exporter's task, off the request path.

use crate::otlp_encode::{
    append, field, Encoder, FLAG_SAMPLED, KIND_CLIENT, KIND_INTERNAL, KIND_SERVER, STATUS_ERROR,
};
use crate::record::InvocationRecord;
use crate::route_cache::RouteCache;
use crate::trace::{new_span_id, TraceContext};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Child spans an invocation may collect; calls past this are counted on the SERVER span
/// (`wasmgate.spans_truncated`) instead, so a guest looping on host calls cannot grow memory.
pub const MAX_CHILD_SPANS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal,
    Client,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Cow<'static, str>),
    Int(i64),
    Bool(bool),
}

impl From<&'static str> for Value {
    fn from(value: &'static str) -> Value {
        Value::Str(Cow::Borrowed(value))
    }
}

impl From<String> for Value {
    fn from(value: String) -> Value {
        Value::Str(Cow::Owned(value))
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Value {
        Value::Int(value)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Value {
        Value::Bool(value)
    }
}

/// A span measured inside an invocation, child of its SERVER span.
#[derive(Debug, Clone)]
pub struct ChildSpan {
    /// Set when the id was already used elsewhere (an outbound `traceparent`); otherwise one
    /// is drawn at export.
    pub span_id: Option<u64>,
    pub name: Cow<'static, str>,
    pub kind: SpanKind,
    pub start: Instant,
    pub end: Instant,
    pub attributes: Vec<(&'static str, Value)>,
    /// Marks the span as failed, with this message.
    pub error: Option<String>,
}

/// An invocation's child spans, shared by the parts of the runtime that measure them (the
/// executor's task, capability host calls). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SpanBuffer {
    inner: Arc<Mutex<Collected>>,
}

#[derive(Debug, Default)]
struct Collected {
    instance: Option<InstanceSpans>,
    spans: Vec<ChildSpan>,
    truncated: u64,
}

/// The `instantiate` and `execute` spans of an invocation's instance. Every invocation that
/// reaches a guest has them, so they are kept as instants beside the other children rather
/// than as two [`ChildSpan`]s: no allocation, one lock.
#[derive(Debug, Clone)]
pub struct InstanceSpans {
    /// In both spans' names (`instantiate {component}`, `execute {component}`).
    pub component: Arc<str>,
    pub instantiating: Instant,
    /// `None` when instantiation failed (or did not finish in time): no execute span then.
    pub instantiated: Option<Instant>,
    pub ran_until: Instant,
    /// The outcome's word when it is a fault; it marks the span that failed.
    pub failed: Option<&'static str>,
}

impl Collected {
    fn count(&self) -> usize {
        self.spans.len() + self.instance.as_ref().map_or(0, InstanceSpans::count)
    }
}

impl InstanceSpans {
    fn count(&self) -> usize {
        1 + usize::from(self.instantiated.is_some())
    }
}

impl SpanBuffer {
    /// Records the instance's `instantiate` and `execute` spans (the last call wins).
    pub fn set_instance(&self, spans: InstanceSpans) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .instance = Some(spans);
    }

    pub fn push(&self, span: ChildSpan) {
        let mut collected = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if collected.spans.len() < MAX_CHILD_SPANS {
            collected.spans.push(span);
        } else {
            collected.truncated += 1;
        }
    }

    /// Spans collected so far.
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |c| c.count())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(&self) -> Collected {
        std::mem::take(&mut *self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// What the SERVER span needs besides the invocation record: the request's identity in its
/// trace, when it arrived, and its HTTP particulars. Built once per request when export is on.
#[derive(Debug)]
pub struct RequestSpan {
    pub trace: TraceContext,
    /// When the request arrived, on both clocks: spans carry Unix times, the runtime measures
    /// with [`Instant`]s.
    pub arrived: Instant,
    pub arrived_unix_ns: u64,
    /// Set when the record is complete (the SERVER span's end).
    pub finished: Option<Instant>,
    pub scheme: &'static str,
    pub local_addr: SocketAddr,
    pub remote_addr: SocketAddr,
    pub http: Option<RequestHead>,
    pub children: SpanBuffer,
}

/// The request line and headers the SERVER span reports.
///
/// The path, host and user agent are copied into one small buffer rather than kept as the
/// request's own `Bytes`, which share hyper's read buffer until export: one allocation here
/// cost about 250 fewer instructions than the shared handles' clones and drops on two threads.
/// (Keeping a usual head inside the request span instead, to spare the allocation, cost more
/// in moving the bigger span than it saved.)
#[derive(Debug, Default)]
pub struct RequestHead {
    /// The request target (path, and `?query` if any), then the host the client named, then
    /// the user agent, as sent.
    text: Box<[u8]>,
    path_len: usize,
    /// The target's length: the path's, or the path's, `?` and the query's.
    target_len: usize,
    host_len: Option<usize>,
    pub protocol_version: &'static str,
    /// The method as sent, when it is not one of the standard ones the record names.
    pub method_original: Option<http::Method>,
}

impl RequestHead {
    /// `host` is the URI's authority when the request has one (HTTP/2, absolute-form), else
    /// the `Host` header, as sent; it is parsed only at export, off the request path.
    /// `target` is the path with its `?query`, if any.
    pub fn new(
        target: &str,
        host: Option<&[u8]>,
        user_agent: Option<&[u8]>,
        protocol_version: &'static str,
        method_original: Option<http::Method>,
    ) -> RequestHead {
        let host_bytes = host.unwrap_or_default();
        let agent = user_agent.unwrap_or_default();
        let mut text = Vec::with_capacity(target.len() + host_bytes.len() + agent.len());
        text.extend_from_slice(target.as_bytes());
        text.extend_from_slice(host_bytes);
        text.extend_from_slice(agent);
        RequestHead {
            text: text.into_boxed_slice(),
            path_len: target.find('?').unwrap_or(target.len()),
            target_len: target.len(),
            host_len: host.map(<[u8]>::len),
            protocol_version,
            method_original,
        }
    }

    pub fn path(&self) -> &str {
        std::str::from_utf8(self.path_utf8()).unwrap_or_default()
    }

    /// The path's bytes: UTF-8, since they were copied from a `str`.
    fn path_utf8(&self) -> &[u8] {
        &self.text[..self.path_len]
    }

    /// The query, without its `?`, when the target had one.
    pub fn query(&self) -> Option<&str> {
        let query = self.text.get(self.path_len + 1..self.target_len)?;
        std::str::from_utf8(query).ok().filter(|q| !q.is_empty())
    }

    pub fn host(&self) -> Option<&[u8]> {
        self.host_len
            .map(|len| &self.text[self.target_len..self.target_len + len])
    }

    /// The `User-Agent` header when there was one and it is text.
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent_utf8()
            .and_then(|agent| std::str::from_utf8(agent).ok())
    }

    /// The `User-Agent` header's bytes when there was one and they are UTF-8. Agents are
    /// ASCII in practice, and checking for that is a fraction of full UTF-8 validation.
    fn user_agent_utf8(&self) -> Option<&[u8]> {
        let agent = self.user_agent_bytes();
        // An empty header and no header read the same: neither says anything.
        (!agent.is_empty() && (agent.is_ascii() || std::str::from_utf8(agent).is_ok()))
            .then_some(agent)
    }

    /// The `User-Agent` header's bytes as sent (none: empty).
    fn user_agent_bytes(&self) -> &[u8] {
        let start = self.target_len + self.host_len.unwrap_or(0);
        self.text.get(start..).unwrap_or_default()
    }

    /// The bytes of the whole head: path, host, user agent.
    fn len(&self) -> usize {
        self.text.len()
    }
}

impl RequestSpan {
    pub fn new(
        trace: TraceContext,
        (arrived, arrived_unix_ns): (Instant, u64),
        scheme: &'static str,
        local_addr: SocketAddr,
        remote_addr: SocketAddr,
    ) -> RequestSpan {
        RequestSpan {
            trace,
            arrived,
            arrived_unix_ns,
            finished: None,
            scheme,
            local_addr,
            remote_addr,
            http: None,
            children: SpanBuffer::default(),
        }
    }

    fn unix_ns(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.arrived).as_nanos() as u64;
        self.arrived_unix_ns + since
    }
}

/// The Unix time, in nanoseconds, of `at` (an instant in the recent past): the record's start
/// and the SERVER span's both come from this one reading of the system clock.
pub fn unix_ns_at(at: Instant) -> u64 {
    let now = Instant::now();
    let now_unix_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    now_unix_ns.saturating_sub(now.saturating_duration_since(at).as_nanos() as u64)
}

/// Reasons the SERVER span of a request counts as failed: a guest fault or a 5xx. Requests the
/// server refused on purpose (4xx: denied, rate limited) and clients that left are not
/// server errors, following the HTTP semantic conventions for SERVER spans.
fn server_error(record: &InvocationRecord) -> bool {
    let refused = matches!(
        record.outcome,
        "ok" | "denied" | "rate_limited" | "rejected" | "client_gone"
    );
    !refused || record.status >= 500
}

/// Appends one finished invocation's spans to `out` as OTLP `ScopeSpans.spans` fields: the
/// SERVER span first, then its children. Returns how many spans it wrote.
pub fn encode_invocation(
    out: &mut Vec<u8>,
    memo: &mut SpanMemo,
    record: &InvocationRecord,
    request: &RequestSpan,
) -> usize {
    let start = request.arrived_unix_ns;
    let end = request
        .finished
        .map_or(start + record.wall_time_us * 1000, |at| request.unix_ns(at))
        .max(start);
    let collected = request.children.take();
    let failed = server_error(record);
    let protocol = request.http.as_ref().map(|head| head.protocol_version);
    let peer = &remade(
        &mut memo.peer,
        |peer| peer.made_from(request),
        || Peer::new(request),
    )
    .attributes;
    let key = SteadyKey::of(record);
    let steady = &remade(
        &mut memo.steady,
        |(made_from, _)| *made_from == key,
        || (key, key.encoded()),
    )
    .1;
    let constants = memo
        .routes
        .get(record, [Some(request.scheme), protocol], || {
            RouteSpans::new(record, request.scheme, protocol)
        });
    // Room for the usual spans, from what varies in their size; a bigger invocation (many
    // attributes on its children) is encoded again with the room it turned out to need.
    let room = 512
        + constants.len()
        + request.http.as_ref().map_or(0, RequestHead::len)
        + 192 * collected.count()
        + record.error.as_ref().map_or(0, |e| 2 * e.len())
        + record.backtrace.as_ref().map_or(0, String::len);
    append(out, room, |encoder| {
        encode_spans(
            encoder,
            (record, request, constants, [peer, steady]),
            &collected,
            (start, end),
            failed,
        )
    })
}

/// What an exporter keeps from one invocation's encoding to the next: the route-constant
/// fields, and the last request's peer attributes and steady figures with what they were made
/// from. A client's requests repeat the peer's (same address, same `Host`, same agent), and a
/// route's mostly repeat the figures (200, `ok`, warm); formatting, parsing and encoding them
/// again cost about 600 instructions.
#[derive(Default)]
pub struct SpanMemo {
    routes: RouteCache<RouteSpans>,
    peer: Option<Peer>,
    steady: Option<(SteadyKey, Box<[u8]>)>,
}

/// `client.address`, `server.address`, `server.port` and `user_agent.original`, encoded, and
/// the addresses and header values they came from.
struct Peer {
    client: std::net::IpAddr,
    local: SocketAddr,
    host: Option<Box<[u8]>>,
    agent: Option<Box<[u8]>>,
    attributes: Box<[u8]>,
}

impl Peer {
    fn new(request: &RequestSpan) -> Peer {
        let head = request.http.as_ref();
        let mut attributes = Vec::new();
        append(&mut attributes, 128, |span| peer_attributes(span, request));
        Peer {
            client: request.remote_addr.ip(),
            local: request.local_addr,
            host: head.and_then(RequestHead::host).map(Into::into),
            agent: head.map(RequestHead::user_agent_bytes).map(Into::into),
            attributes: attributes.into_boxed_slice(),
        }
    }

    fn made_from(&self, request: &RequestSpan) -> bool {
        let head = request.http.as_ref();
        self.client == request.remote_addr.ip()
            && self.local == request.local_addr
            && self.host.as_deref() == head.and_then(RequestHead::host)
            && self.agent.as_deref() == head.map(RequestHead::user_agent_bytes)
    }
}

/// What `last` holds when `same` says it was made from the current input, else what `make`
/// makes, kept for next time. Compared in place: taking the memo out and putting it back
/// moved it twice.
fn remade<T>(last: &mut Option<T>, same: impl FnOnce(&T) -> bool, make: impl FnOnce() -> T) -> &T {
    if !last.as_ref().is_some_and(same) {
        *last = None;
    }
    last.get_or_insert_with(make)
}

/// `client.address`, `server.address` (the host the request named, else the address it came
/// in on), `server.port` and `user_agent.original`.
fn peer_attributes(span: &mut Encoder<'_>, request: &RequestSpan) {
    const A: u32 = field::SPAN_ATTRIBUTES;
    span.attribute_ip(A, "client.address", request.remote_addr.ip());
    let head = request.http.as_ref();
    let named = head.and_then(RequestHead::host).and_then(host_and_port);
    let mut server_port = request.local_addr.port();
    match named {
        Some((host, port)) => {
            // ASCII: `host_and_port` accepts nothing else.
            span.attribute_text(A, "server.address", host);
            if let Some(port) = port {
                server_port = port;
            }
        }
        None => span.attribute_ip(A, "server.address", request.local_addr.ip()),
    }
    span.attribute_int(A, "server.port", i64::from(server_port));
    if let Some(agent) = head.and_then(RequestHead::user_agent_utf8) {
        span.attribute_text(A, "user_agent.original", agent);
    }
}

/// The fields of an invocation's spans that are the same for every request to a route, which
/// the exporter encodes once per route ([`RouteCache`]): the SERVER span's name and route
/// attributes, and the names of the instance's children.
struct RouteSpans {
    server_name: Box<[u8]>,
    attributes: Box<[u8]>,
    instantiate_name: Box<[u8]>,
    execute_name: Box<[u8]>,
}

impl RouteSpans {
    fn new(record: &InvocationRecord, scheme: &str, protocol: Option<&str>) -> RouteSpans {
        let name = |parts: [&str; 2]| {
            let mut field = Vec::new();
            append(&mut field, 64, |encoder| {
                encoder.message(field::SPAN_NAME, |name| {
                    name.put_slice(parts[0].as_bytes());
                    name.put_slice(b" ");
                    name.put_slice(parts[1].as_bytes());
                })
            });
            field.into_boxed_slice()
        };
        let mut attributes = Vec::new();
        append(&mut attributes, 256, |span| {
            route_attributes(span, record, scheme, protocol)
        });
        RouteSpans {
            server_name: name([record.method, &record.route]),
            attributes: attributes.into_boxed_slice(),
            instantiate_name: name(["instantiate", &record.component]),
            execute_name: name(["execute", &record.component]),
        }
    }

    fn len(&self) -> usize {
        self.server_name.len() + self.attributes.len()
    }
}

/// The SERVER span's attributes that are the same for every request to a route.
fn route_attributes(
    span: &mut Encoder<'_>,
    record: &InvocationRecord,
    scheme: &str,
    protocol: Option<&str>,
) {
    const A: u32 = field::SPAN_ATTRIBUTES;
    span.attribute_str(A, "http.request.method", record.method);
    span.attribute_str(A, "http.route", &record.route);
    span.attribute_str(A, "url.scheme", scheme);
    if let Some(protocol) = protocol {
        span.attribute_str(A, "network.protocol.version", protocol);
    }
    span.attribute_str(A, "wasmgate.component", &record.component);
    span.attribute_str(A, "wasmgate.executor", record.executor);
}

/// The SERVER span and its children, as [`encode_invocation`] appends them.
fn encode_spans(
    encoder: &mut Encoder<'_>,
    (record, request, constants, [peer, steady]): (
        &InvocationRecord,
        &RequestSpan,
        &RouteSpans,
        [&[u8]; 2],
    ),
    collected: &Collected,
    (start, end): (u64, u64),
    failed: bool,
) -> usize {
    let trace_id = request.trace.trace_id.0.to_be_bytes();
    let server_id = request.trace.span_id;
    let flags = if request.trace.sampled {
        FLAG_SAMPLED
    } else {
        0
    };
    encoder.message(field::SCOPE_SPANS_SPANS, |span| {
        span.span_ids(
            &trace_id,
            request.trace.span_id,
            request.trace.parent_span_id,
            flags,
        );
        span.put_slice(&constants.server_name);
        span.span_times(KIND_SERVER, start, end);
        span.put_slice(&constants.attributes);
        span.put_slice(peer);
        span.put_slice(steady);
        server_attributes(span, record, request);
        if collected.truncated > 0 {
            span.attribute(
                field::SPAN_ATTRIBUTES,
                "wasmgate.spans_truncated",
                &Value::Int(collected.truncated as i64),
            );
        }
        if failed {
            let error_type = match record.outcome {
                "ok" => Value::Str(record.status.to_string().into()),
                outcome => Value::Str(outcome.into()),
            };
            span.attribute(field::SPAN_ATTRIBUTES, "error.type", &error_type);
            if let Some(message) = &record.error {
                span.message(field::SPAN_EVENTS, |event| {
                    event.fixed64(field::EVENT_TIME, end);
                    event.string(field::EVENT_NAME, "exception");
                    event.attribute_str(field::EVENT_ATTRIBUTES, "exception.message", message);
                    if let Some(backtrace) = &record.backtrace {
                        event.attribute_str(
                            field::EVENT_ATTRIBUTES,
                            "exception.stacktrace",
                            backtrace,
                        );
                    }
                });
            }
            span.message(field::SPAN_STATUS, |status| {
                if let Some(message) = &record.error {
                    status.string(field::STATUS_MESSAGE, message);
                }
                status.uint(field::STATUS_CODE, STATUS_ERROR);
            });
        }
    });

    let child = Child {
        trace_id: &trace_id,
        parent_id: server_id,
        flags,
    };
    let mut count = 1;
    if let Some(instance) = &collected.instance {
        // The record's component, whose names the route's fields hold, unless the runtime
        // said otherwise.
        let cached = Arc::ptr_eq(&instance.component, &record.component);
        let component: &str = &instance.component;
        let name = |operation, field| match cached {
            true => ChildName::Field(field),
            false => ChildName::Joined(operation, component),
        };
        let instantiating = request.unix_ns(instance.instantiating);
        let until = request.unix_ns(instance.ran_until);
        let instantiated = instance.instantiated.map(|at| request.unix_ns(at));
        child.encode(
            encoder,
            None,
            name("instantiate", &constants.instantiate_name),
            SpanKind::Internal,
            (instantiating, instantiated.unwrap_or(until)),
            &[],
            instance.failed.filter(|_| instantiated.is_none()),
        );
        count += 1;
        if let Some(instantiated) = instantiated {
            child.encode(
                encoder,
                None,
                name("execute", &constants.execute_name),
                SpanKind::Internal,
                (instantiated, until),
                &[],
                instance.failed,
            );
            count += 1;
        }
    }
    for span in &collected.spans {
        child.encode(
            encoder,
            span.span_id,
            ChildName::Text(&span.name),
            span.kind,
            (request.unix_ns(span.start), request.unix_ns(span.end)),
            &span.attributes,
            span.error.as_deref(),
        );
        count += 1;
    }
    count
}

/// A child span's name: text, an operation and what it acts on (joined by a space), or an
/// encoded name field made beforehand.
enum ChildName<'a> {
    Text(&'a str),
    Joined(&'a str, &'a str),
    Field(&'a [u8]),
}

/// What every child span of one invocation shares.
struct Child<'a> {
    trace_id: &'a [u8; 16],
    parent_id: u64,
    flags: u32,
}

impl Child<'_> {
    #[allow(clippy::too_many_arguments)]
    fn encode(
        &self,
        encoder: &mut Encoder<'_>,
        span_id: Option<u64>,
        name: ChildName<'_>,
        kind: SpanKind,
        // Unix times in nanoseconds.
        (start, end): (u64, u64),
        attributes: &[(&'static str, Value)],
        error: Option<&str>,
    ) {
        let span_id = span_id.unwrap_or_else(new_span_id);
        encoder.message(field::SCOPE_SPANS_SPANS, |span| {
            span.span_ids(self.trace_id, span_id, Some(self.parent_id), self.flags);
            match name {
                ChildName::Text(text) => span.string(field::SPAN_NAME, text),
                ChildName::Joined(operation, subject) => span.message(field::SPAN_NAME, |name| {
                    name.put_slice(operation.as_bytes());
                    name.put_slice(b" ");
                    name.put_slice(subject.as_bytes());
                }),
                ChildName::Field(field) => span.put_slice(field),
            }
            let kind = match kind {
                SpanKind::Internal => KIND_INTERNAL,
                SpanKind::Client => KIND_CLIENT,
            };
            span.span_times(kind, start, end.max(start));
            for (key, value) in attributes {
                span.attribute(field::SPAN_ATTRIBUTES, key, value);
            }
            if let Some(message) = error {
                span.message(field::SPAN_STATUS, |status| {
                    status.string(field::STATUS_MESSAGE, message);
                    status.uint(field::STATUS_CODE, STATUS_ERROR);
                });
            }
        });
    }
}

/// The HTTP semantic-convention attributes and the invocation record's figures.
fn server_attributes(span: &mut Encoder<'_>, record: &InvocationRecord, request: &RequestSpan) {
    span.local(|span| server_attributes_local(span, record, request));
}

#[inline(always)]
fn server_attributes_local(
    span: &mut Encoder<'_>,
    record: &InvocationRecord,
    request: &RequestSpan,
) {
    const A: u32 = field::SPAN_ATTRIBUTES;
    // The status, the outcome and the other figures that seldom change from request to request
    // are the steady attributes, and the client's, the server's and the agent's the peer's
    // (both in `SpanMemo`).
    span.attribute_uint(A, "client.port", u64::from(request.remote_addr.port()));
    if let Some(head) = &request.http {
        span.attribute_text(A, "url.path", head.path_utf8());
        if let Some(query) = head.query() {
            span.attribute_str(A, "url.query", &redacted_query(query));
        }
        if let Some(original) = &head.method_original {
            span.attribute_str(A, "http.request.method_original", original.as_str());
        }
    }
    span.attribute_uint(A, "http.request.body.size", record.request_bytes);
    span.attribute_uint(A, "http.response.body.size", record.response_bytes);
    span.attribute_uint(A, "wasmgate.invocation_id", record.id);
    span.attribute_uint(
        A,
        "wasmgate.instantiate_time_us",
        record.instantiate_time_us,
    );
    span.attribute_uint(A, "wasmgate.peak_memory_bytes", record.peak_memory_bytes);
    // One call per figure rather than a loop over an array of them: with its key a literal,
    // each attribute's head is written with constant stores instead of a `memcpy` call.
    if let Some(value) = record.guest_cpu_time_us {
        span.attribute_uint(A, "wasmgate.guest_cpu_time_us", value);
    }
    if let Some(value) = record.host_call_time_us {
        span.attribute_uint(A, "wasmgate.host_call_time_us", value);
    }
    if let Some(value) = record.instructions {
        span.attribute_uint(A, "wasmgate.instructions", value);
    }
}

/// The record's figures that are usually the same from one request to a route to the next:
/// status, outcome, cold start, host calls, exit code, output lines.
#[derive(Clone, Copy, PartialEq)]
struct SteadyKey {
    status: u16,
    outcome: &'static str,
    cold_start: bool,
    host_calls: Option<u64>,
    exit_code: Option<i32>,
    output_lines: (u64, u64),
}

impl SteadyKey {
    fn of(record: &InvocationRecord) -> SteadyKey {
        SteadyKey {
            status: record.status,
            outcome: record.outcome,
            cold_start: record.cold_start,
            host_calls: record.host_calls,
            exit_code: record.exit_code,
            output_lines: (record.stdout_lines, record.stderr_lines),
        }
    }

    /// The attributes for these figures.
    fn encode(&self, span: &mut Encoder<'_>) {
        const A: u32 = field::SPAN_ATTRIBUTES;
        if self.status != 0 {
            span.attribute_uint(A, "http.response.status_code", u64::from(self.status));
        }
        span.attribute_str(A, "wasmgate.outcome", self.outcome);
        span.attribute_bool(A, "wasmgate.cold_start", self.cold_start);
        if let Some(value) = self.host_calls {
            span.attribute_uint(A, "wasmgate.host_calls", value);
        }
        if let Some(code) = self.exit_code {
            span.attribute(A, "wasmgate.exit_code", &Value::Int(i64::from(code)));
        }
        span.attribute_uint(A, "wasmgate.stdout_lines", self.output_lines.0);
        span.attribute_uint(A, "wasmgate.stderr_lines", self.output_lines.1);
    }

    fn encoded(&self) -> Box<[u8]> {
        let mut bytes = Vec::new();
        append(&mut bytes, 128, |span| self.encode(span));
        bytes.into_boxed_slice()
    }
}

/// The bytes RFC 3986 allows in a `Host` header's value (a reg-name, an IP literal in
/// brackets, a port): a table, one load per byte.
const HOST_BYTES: [bool; 256] = {
    let allowed =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%:[]";
    let mut table = [false; 256];
    let mut i = 0;
    while i < allowed.len() {
        table[allowed[i] as usize] = true;
        i += 1;
    }
    table
};

/// The host (an IP literal without its brackets) and port a `Host` header names, or `None`
/// when it is not a valid `host[:port]`: RFC 3986's characters, a decimal port that fits 16
/// bits. It runs on every exported request, so it works on the bytes (all ASCII once checked)
/// rather than parsing an `http::uri::Authority`.
fn host_and_port(value: &[u8]) -> Option<(&[u8], Option<u16>)> {
    if value.is_empty() || !value.iter().all(|&b| HOST_BYTES[usize::from(b)]) {
        return None;
    }
    // An IPv6 literal's colons are inside its brackets; the port's colon follows them.
    let host_end = match value.strip_prefix(b"[") {
        Some(rest) => rest.iter().position(|&b| b == b']')? + 2,
        None => value.iter().position(|&b| b == b':').unwrap_or(value.len()),
    };
    let (host, rest) = value.split_at(host_end);
    let host = match host.strip_prefix(b"[") {
        Some(literal) => literal.strip_suffix(b"]")?,
        None if host.iter().any(|&b| b == b'[' || b == b']') => return None,
        None => host,
    };
    if host.is_empty() {
        return None;
    }
    let port = match rest {
        b"" | b":" => None,
        [b':', digits @ ..] => Some(decimal_port(digits)?),
        _ => return None,
    };
    Some((host, port))
}

/// A port written in decimal digits only, when it fits 16 bits.
fn decimal_port(digits: &[u8]) -> Option<u16> {
    let mut port: u32 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        port = port * 10 + u32::from(digit - b'0');
        if port > u32::from(u16::MAX) {
            return None;
        }
    }
    Some(port as u16)
}

/// Query parameters whose values are credentials: those of signed URLs the semantic
/// conventions name, and the usual token and key names. Their values are replaced in
/// `url.query`, as the conventions ask.
const CREDENTIAL_PARAMETERS: [&str; 11] = [
    "AWSAccessKeyId",
    "Signature",
    "sig",
    "X-Goog-Signature",
    "access_token",
    "token",
    "api_key",
    "apikey",
    "password",
    "client_secret",
    "code",
];

/// `url.query` as spans show it: as sent, except credential parameters' values.
fn redacted_query(query: &str) -> std::borrow::Cow<'_, str> {
    let is_credential = |pair: &str| {
        let name = pair.split('=').next().unwrap_or_default();
        CREDENTIAL_PARAMETERS.contains(&name)
    };
    if !query.split('&').any(is_credential) {
        return std::borrow::Cow::Borrowed(query);
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_credential(pair) => format!("{name}=REDACTED"),
            _ => pair.to_string(),
        })
        .collect();
    std::borrow::Cow::Owned(pairs.join("&"))
}

/// `url.full` as spans may show it: no user info, no query (query strings carry tokens and
/// signatures), no fragment.
pub fn redacted_url(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or_default();
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}{}", uri.path()),
        None => format!("{scheme}://{host}{}", uri.path()),
    }
}

/// The variant name of an error's `Debug` form (`Syntax("...")` gives `Syntax`), for span
/// statuses that must not quote the guest's data.
pub fn error_kind(debug: &str) -> String {
    debug
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The operation of an SQL statement (its first keyword, upper-cased), never its text: the
/// text may hold literal values.
pub fn sql_operation(statement: &str) -> &'static str {
    let word: String = statement
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .take(16)
        .collect::<String>()
        .to_ascii_uppercase();
    const KNOWN: [&str; 16] = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "UPSERT", "CREATE", "DROP", "ALTER",
        "BEGIN", "COMMIT", "ROLLBACK", "WITH", "PRAGMA", "TRUNCATE", "SET",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == word)
        .unwrap_or("OTHER")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::TraceId;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value;
    use opentelemetry_proto::tonic::trace::v1::{span, status, Span};
    use prost::Message;

    fn request() -> RequestSpan {
        let trace = TraceContext {
            trace_id: TraceId(0x4bf92f3577b34da6a3ce929d0e0e4736),
            span_id: 0x1111,
            parent_span_id: Some(0x00f067aa0ba902b7),
            sampled: true,
        };
        let now = Instant::now();
        RequestSpan::new(
            trace,
            (now, unix_ns_at(now)),
            "http",
            "127.0.0.1:8080".parse().unwrap(),
            "127.0.0.1:50000".parse().unwrap(),
        )
    }

    /// Encodes the invocation and decodes it back with the OTLP crate's types.
    fn to_otlp(record: &InvocationRecord, request: &RequestSpan) -> Vec<Span> {
        through_memo(&mut SpanMemo::default(), record, request)
    }

    /// [`to_otlp`] through an exporter's `memo`, kept from one invocation to the next.
    fn through_memo(
        memo: &mut SpanMemo,
        record: &InvocationRecord,
        request: &RequestSpan,
    ) -> Vec<Span> {
        let mut spans = Vec::new();
        let count = encode_invocation(&mut spans, memo, record, request);
        let encoded = crate::otlp_encode::export_request(&[], ("wasmgate", "0"), &spans);
        let decoded = ExportTraceServiceRequest::decode(encoded.as_slice()).unwrap();
        let spans = decoded.resource_spans[0].scope_spans[0].spans.clone();
        assert_eq!(spans.len(), count);
        spans
    }

    fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    #[test]
    fn instance_spans_are_the_instantiate_and_execute_children() {
        let component: Arc<str> = "api".into();
        let at = request().arrived + std::time::Duration::from_millis(1);
        let ms = std::time::Duration::from_millis;
        let record = InvocationRecord {
            method: "GET",
            route: "/api/...".into(),
            status: 500,
            outcome: "trap",
            ..Default::default()
        };
        // Instantiated, then the guest trapped: the execute span carries the failure.
        let mut request = request();
        request.arrived = at - ms(1);
        request.children.set_instance(InstanceSpans {
            component: component.clone(),
            instantiating: at,
            instantiated: Some(at + ms(2)),
            ran_until: at + ms(5),
            failed: Some("trap"),
        });
        assert_eq!(request.children.len(), 2);
        let spans = to_otlp(&record, &request);
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["GET /api/...", "instantiate api", "execute api"]);
        let (instantiate, execute) = (&spans[1], &spans[2]);
        assert_eq!(instantiate.parent_span_id, spans[0].span_id);
        assert_eq!(execute.parent_span_id, spans[0].span_id);
        assert_eq!(instantiate.kind, span::SpanKind::Internal as i32);
        assert_eq!(
            instantiate.end_time_unix_nano - instantiate.start_time_unix_nano,
            2_000_000
        );
        assert_eq!(execute.start_time_unix_nano, instantiate.end_time_unix_nano);
        assert_eq!(
            execute.end_time_unix_nano - execute.start_time_unix_nano,
            3_000_000
        );
        assert!(instantiate.status.is_none());
        let status = execute.status.as_ref().unwrap();
        assert_eq!(status.code, status::StatusCode::Error as i32);
        assert_eq!(status.message, "trap");

        // Instantiation never finished: no execute span, and instantiate is the failure.
        let mut request = self::request();
        request.arrived = at - ms(1);
        request.children.set_instance(InstanceSpans {
            component,
            instantiating: at,
            instantiated: None,
            ran_until: at + ms(4),
            failed: Some("timeout"),
        });
        let spans = to_otlp(&record, &request);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[1].name, "instantiate api");
        assert_eq!(spans[1].status.as_ref().unwrap().message, "timeout");
    }

    #[test]
    fn route_constants_are_kept_per_route_and_never_mixed_up() {
        let mut constants = SpanMemo::default();
        let routes: Vec<Arc<str>> = vec!["/a".into(), "/b/{id}".into()];
        let components: Vec<Arc<str>> = vec!["api".into(), "shop".into()];
        // Each route twice, interleaved, on one cache: the second of each is a cached copy.
        for round in 0..4 {
            let which = round % 2;
            let record = InvocationRecord {
                method: ["GET", "POST"][which],
                route: routes[which].clone(),
                component: components[which].clone(),
                executor: ["http", "wagi"][which],
                status: 200,
                outcome: "ok",
                ..Default::default()
            };
            let mut request = request();
            if which == 1 {
                request.scheme = "https";
                request.http = Some(RequestHead::new("/b/7", None, None, "2", None));
            }
            let spans = through_memo(&mut constants, &record, &request);
            let server = &spans[0];
            let text = |s: &str| Some(any_value::Value::StringValue(s.into()));
            let expected = [
                ("http.route", ["/a", "/b/{id}"][which]),
                ("http.request.method", ["GET", "POST"][which]),
                ("wasmgate.component", ["api", "shop"][which]),
                ("wasmgate.executor", ["http", "wagi"][which]),
                ("url.scheme", ["http", "https"][which]),
            ];
            for (key, value) in expected {
                assert_eq!(
                    attribute(server, key).cloned(),
                    text(value),
                    "{key} {round}"
                );
            }
            let protocol = attribute(server, "network.protocol.version").cloned();
            assert_eq!(protocol, [None, text("2")][which].clone(), "{round}");
            let keys: Vec<&str> = server.attributes.iter().map(|kv| kv.key.as_str()).collect();
            let mut unique = keys.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), keys.len(), "no attribute twice: {keys:?}");
        }
        assert_eq!(constants.routes.len(), 2);
    }

    #[test]
    fn an_http1_host_header_is_the_server_address_and_port() {
        let record = InvocationRecord {
            method: "GET",
            route: "/".into(),
            status: 200,
            outcome: "ok",
            ..Default::default()
        };
        let text = |s: &str| any_value::Value::StringValue(s.into());
        for (host, address, port) in [
            ("shop.example:8443", "shop.example", 8443),
            ("shop.example", "shop.example", 8080),
            ("not a host", "127.0.0.1", 8080),
            ("[::1]:9000", "::1", 9000),
            ("[2001:db8::7]", "2001:db8::7", 8080),
            ("shop.example:", "shop.example", 8080),
            ("shop.example:70000", "127.0.0.1", 8080),
            ("shop.example:80:81", "127.0.0.1", 8080),
            ("a]b:80", "127.0.0.1", 8080),
            ("[::1", "127.0.0.1", 8080),
            ("user@shop.example", "127.0.0.1", 8080),
        ] {
            let mut request = request();
            request.http = Some(RequestHead::new(
                "/",
                Some(host.as_bytes()),
                None,
                "1.1",
                None,
            ));
            let spans = to_otlp(&record, &request);
            assert_eq!(
                attribute(&spans[0], "server.address"),
                Some(&text(address)),
                "{host}"
            );
            assert_eq!(
                attribute(&spans[0], "server.port"),
                Some(&any_value::Value::IntValue(port)),
                "{host}"
            );
        }
    }

    #[test]
    fn a_head_gives_back_its_parts() {
        let long_path = format!("/{}", "p".repeat(200));
        for path in ["/short", long_path.as_str()] {
            for host in [None, Some(&b"shop.example:8443"[..])] {
                for agent in [None, Some(&b"curl/8.0"[..])] {
                    let head = RequestHead::new(path, host, agent, "1.1", None);
                    assert_eq!(head.path(), path);
                    assert_eq!(head.host(), host);
                    assert_eq!(head.user_agent().map(str::as_bytes), agent);
                }
            }
        }
    }

    #[test]
    fn steady_figures_follow_each_record_through_one_memo() {
        let mut memo = SpanMemo::default();
        let route: Arc<str> = "/".into();
        let int = |n: i64| Some(any_value::Value::IntValue(n));
        let cases = [
            (200, "ok", false, Some(15), None, 0),
            (200, "ok", false, Some(15), None, 0),
            (500, "trap", false, Some(15), None, 0),
            (200, "ok", true, Some(15), None, 0),
            (200, "ok", false, Some(16), None, 2),
            (200, "ok", false, None, Some(3), 2),
            (200, "ok", false, Some(15), None, 0),
        ];
        for (status, outcome, cold_start, host_calls, exit_code, stdout_lines) in cases {
            let record = InvocationRecord {
                method: "GET",
                route: route.clone(),
                status,
                outcome,
                cold_start,
                host_calls,
                exit_code,
                stdout_lines,
                ..Default::default()
            };
            let spans = through_memo(&mut memo, &record, &request());
            let server = &spans[0];
            let case = format!("{status} {outcome} {cold_start} {host_calls:?} {exit_code:?}");
            let attribute = |key| attribute(server, key).cloned();
            assert_eq!(
                attribute("http.response.status_code"),
                int(i64::from(status)),
                "{case}"
            );
            assert_eq!(
                attribute("wasmgate.outcome"),
                Some(any_value::Value::StringValue(outcome.into())),
                "{case}"
            );
            assert_eq!(
                attribute("wasmgate.cold_start"),
                Some(any_value::Value::BoolValue(cold_start)),
                "{case}"
            );
            assert_eq!(
                attribute("wasmgate.host_calls"),
                host_calls.and_then(|n| int(n as i64)),
                "{case}"
            );
            assert_eq!(
                attribute("wasmgate.exit_code"),
                exit_code.and_then(|n| int(i64::from(n))),
                "{case}"
            );
            assert_eq!(
                attribute("wasmgate.stdout_lines"),
                int(stdout_lines as i64),
                "{case}"
            );
        }
    }

    #[test]
    fn peer_attributes_follow_each_request_through_one_memo() {
        let record = InvocationRecord {
            method: "GET",
            route: "/".into(),
            status: 200,
            outcome: "ok",
            ..Default::default()
        };
        let mut memo = SpanMemo::default();
        let text = |s: &str| Some(any_value::Value::StringValue(s.into()));
        // Client, `Host`, agent; then the client and server addresses and port they give.
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
            &'a str,
            i64,
        );
        let cases: [Case; 7] = [
            (
                "127.0.0.1:5000",
                Some("a.example"),
                Some("curl/8"),
                "127.0.0.1",
                "a.example",
                8080,
            ),
            (
                "127.0.0.1:5001",
                Some("a.example"),
                Some("curl/8"),
                "127.0.0.1",
                "a.example",
                8080,
            ),
            (
                "10.0.0.9:5000",
                Some("a.example"),
                Some("curl/8"),
                "10.0.0.9",
                "a.example",
                8080,
            ),
            (
                "10.0.0.9:5000",
                Some("b.example:81"),
                Some("curl/8"),
                "10.0.0.9",
                "b.example",
                81,
            ),
            (
                "10.0.0.9:5000",
                Some("b.example:81"),
                Some("wrk"),
                "10.0.0.9",
                "b.example",
                81,
            ),
            (
                "10.0.0.9:5000",
                Some("b.example:81"),
                None,
                "10.0.0.9",
                "b.example",
                81,
            ),
            ("10.0.0.9:5000", None, None, "10.0.0.9", "127.0.0.1", 8080),
        ];
        for _ in 0..2 {
            for (client, host, agent, client_address, server_address, port) in cases {
                let mut request = request();
                request.remote_addr = client.parse().unwrap();
                request.http = Some(RequestHead::new(
                    "/",
                    host.map(str::as_bytes),
                    agent.map(str::as_bytes),
                    "1.1",
                    None,
                ));
                let spans = through_memo(&mut memo, &record, &request);
                let server = &spans[0];
                let case = format!("{client} {host:?} {agent:?}");
                assert_eq!(
                    attribute(server, "client.address").cloned(),
                    text(client_address),
                    "{case}"
                );
                assert_eq!(
                    attribute(server, "client.port").cloned(),
                    Some(any_value::Value::IntValue(i64::from(
                        request.remote_addr.port()
                    ))),
                    "{case}"
                );
                assert_eq!(
                    attribute(server, "server.address").cloned(),
                    text(server_address),
                    "{case}"
                );
                assert_eq!(
                    attribute(server, "server.port").cloned(),
                    Some(any_value::Value::IntValue(port)),
                    "{case}"
                );
                assert_eq!(
                    attribute(server, "user_agent.original").cloned(),
                    agent.and_then(text),
                    "{case}"
                );
            }
        }
    }

    #[test]
    fn the_query_is_reported_with_signatures_redacted() {
        let mut memo = SpanMemo::default();
        let record = InvocationRecord {
            method: "GET",
            route: "/...".into(),
            status: 200,
            outcome: "ok",
            ..Default::default()
        };
        let text = |s: &str| Some(any_value::Value::StringValue(s.into()));
        for (target, path, query) in [
            ("/files/a.txt", "/files/a.txt", None),
            ("/files/a.txt?", "/files/a.txt", None),
            ("/search?q=wasm&page=2", "/search", Some("q=wasm&page=2")),
            (
                "/get?X-Goog-Signature=abc&x=1&sig=def",
                "/get",
                Some("X-Goog-Signature=REDACTED&x=1&sig=REDACTED"),
            ),
        ] {
            let mut request = request();
            request.http = Some(RequestHead::new(
                target,
                Some(b"example.com"),
                Some(b"curl/8"),
                "1.1",
                None,
            ));
            let spans = through_memo(&mut memo, &record, &request);
            let server = &spans[0];
            assert_eq!(
                attribute(server, "url.path").cloned(),
                text(path),
                "{target}"
            );
            assert_eq!(
                attribute(server, "url.query").cloned(),
                query.and_then(&text),
                "{target}"
            );
            // The host and agent after the target are still where they were.
            assert_eq!(
                attribute(server, "user_agent.original").cloned(),
                text("curl/8"),
                "{target}"
            );
            assert_eq!(
                attribute(server, "server.address").cloned(),
                text("example.com"),
                "{target}"
            );
        }
    }

    #[test]
    fn the_server_span_continues_the_callers_trace_and_parents_the_children() {
        let mut request = request();
        request.http = Some(RequestHead::new(
            "/api/x",
            Some(b"example.com"),
            Some(b"curl/8"),
            "2",
            None,
        ));
        let started = Instant::now();
        request.children.push(ChildSpan {
            span_id: Some(0x2222),
            name: "GET".into(),
            kind: SpanKind::Client,
            start: started,
            end: started,
            attributes: vec![("http.request.method", "GET".into())],
            error: None,
        });
        let record = InvocationRecord {
            method: "GET",
            route: "/api/...".into(),
            status: 200,
            outcome: "ok",
            guest_cpu_time_us: Some(7),
            ..Default::default()
        };
        let spans = to_otlp(&record, &request);
        assert_eq!(spans.len(), 2);
        let server = &spans[0];
        assert_eq!(server.name, "GET /api/...");
        assert_eq!(server.kind, span::SpanKind::Server as i32);
        assert_eq!(server.parent_span_id, 0x00f067aa0ba902b7u64.to_be_bytes());
        assert_eq!(
            server.trace_id,
            0x4bf92f3577b34da6a3ce929d0e0e4736u128.to_be_bytes()
        );
        assert_eq!(server.flags, 1);
        assert_eq!(server.status.as_ref().map_or(0, |s| s.code), 0);
        let client = &spans[1];
        assert_eq!(client.span_id, 0x2222u64.to_be_bytes());
        assert_eq!(client.parent_span_id, server.span_id);
        assert_eq!(client.kind, span::SpanKind::Client as i32);
        assert!(client.start_time_unix_nano >= server.start_time_unix_nano);
        let text = |s: &str| any_value::Value::StringValue(s.into());
        assert_eq!(
            attribute(server, "http.response.status_code"),
            Some(&any_value::Value::IntValue(200))
        );
        assert_eq!(
            attribute(server, "client.address"),
            Some(&text("127.0.0.1"))
        );
        assert_eq!(
            attribute(server, "server.address"),
            Some(&text("example.com"))
        );
        assert_eq!(
            attribute(server, "server.port"),
            Some(&any_value::Value::IntValue(8080))
        );
        assert_eq!(
            attribute(server, "user_agent.original"),
            Some(&text("curl/8"))
        );
        assert_eq!(
            attribute(server, "wasmgate.guest_cpu_time_us"),
            Some(&any_value::Value::IntValue(7))
        );
        assert_eq!(attribute(server, "wasmgate.instructions"), None);
    }

    #[test]
    fn guest_faults_and_5xx_are_errors_but_refusals_are_not() {
        for (outcome, status, error) in [
            ("trap", 500, true),
            ("ok", 502, true),
            ("ok", 404, false),
            ("denied", 401, false),
            ("rate_limited", 429, false),
            ("timeout", 504, true),
        ] {
            let record = InvocationRecord {
                method: "GET",
                route: "/".into(),
                status,
                outcome,
                error: Some("boom".into()),
                ..Default::default()
            };
            let spans = to_otlp(&record, &request());
            let code = spans[0].status.as_ref().map_or(0, |s| s.code);
            assert_eq!(
                code == status::StatusCode::Error as i32,
                error,
                "{outcome} {status}"
            );
            assert_eq!(!spans[0].events.is_empty(), error, "{outcome} {status}");
        }
    }

    #[test]
    fn urls_lose_their_query_and_statements_their_text() {
        let uri: http::Uri = "https://api.example.com:8443/v1/x?token=secret"
            .parse()
            .unwrap();
        assert_eq!(redacted_url(&uri), "https://api.example.com:8443/v1/x");
        assert_eq!(
            sql_operation("  select * from t where x = 'secret'"),
            "SELECT"
        );
        assert_eq!(sql_operation("insert into t values (1)"), "INSERT");
        assert_eq!(sql_operation("'secret' garbage"), "OTHER");
        assert_eq!(error_kind("Syntax(\"near 'secret'\")"), "Syntax");
    }

    #[test]
    fn child_spans_are_capped() {
        let buffer = SpanBuffer::default();
        let now = Instant::now();
        for _ in 0..MAX_CHILD_SPANS + 5 {
            buffer.push(ChildSpan {
                span_id: None,
                name: "x".into(),
                kind: SpanKind::Internal,
                start: now,
                end: now,
                attributes: Vec::new(),
                error: None,
            });
        }
        let collected = buffer.take();
        assert_eq!(collected.spans.len(), MAX_CHILD_SPANS);
        assert_eq!(collected.truncated, 5);
    }
}

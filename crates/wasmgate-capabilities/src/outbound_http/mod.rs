//! Outbound HTTP (`wasi:http/outgoing-handler`): who a guest may call, and how.
//!
//! - The destination must match one of the component's `allowed_outbound_hosts` patterns
//!   (scheme, host with `*.` subdomain wildcards, port); otherwise `HttpRequestDenied`.
//! - The name is resolved here and every resolved address is checked: private, loopback,
//!   link-local and other non-public addresses are refused (`DestinationIpProhibited`) unless
//!   the matching pattern names the address itself (an IP literal or `localhost`) or the
//!   runtime config sets `outbound_http.allow_private` (local development). The connection
//!   goes to the address that was checked, so DNS cannot answer differently in between
//!   (rebinding).
//! - Connect, first-byte and between-bytes timeouts are the guest's request options clamped
//!   to the component's `limits.timeout` (wasmtime's own default is 600 s); the connect
//!   timeout defaults to the runtime config's `outbound_http.connect_timeout`.
//! - An instance has at most `limits.max_outbound_concurrency` requests in flight, from
//!   connecting until the response head arrives (default [`DEFAULT_MAX_CONCURRENCY`]); further
//!   requests wait for a slot, within the connect timeout, then fail with
//!   `ConnectionLimitReached`.

mod address;
mod send;

pub use address::restriction;

use crate::stats::{Capability, HostCalls};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmgate_manifest::{Component, OutboundHost, OutboundHttpConfig};
use wasmgate_telemetry::spans::{redacted_url, ChildSpan, SpanBuffer, SpanKind};
use wasmgate_telemetry::TraceContext;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

const TRACEPARENT: &str = "traceparent";

/// Outbound requests one instance may have in flight when the manifest does not say.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 16;

/// One component's outbound policy, shared by its instances.
pub struct Policy {
    component: Arc<str>,
    allowed: Vec<OutboundHost>,
    allow_private: bool,
    connect_timeout: Duration,
    /// The component's `limits.timeout`: no outbound wait may outlast the request itself.
    ceiling: Duration,
    max_concurrency: usize,
}

impl Policy {
    pub fn new(component: &Component, config: &OutboundHttpConfig) -> Arc<Policy> {
        Arc::new(Policy {
            component: Arc::from(component.name.as_str()),
            allowed: component.allowed_outbound_hosts.clone(),
            allow_private: config.allow_private,
            connect_timeout: config.connect_timeout,
            ceiling: component.limits.timeout,
            max_concurrency: component
                .max_outbound_concurrency
                .unwrap_or(DEFAULT_MAX_CONCURRENCY) as usize,
        })
    }

    /// A policy that refuses every request.
    pub fn deny_all() -> Arc<Policy> {
        Arc::new(Policy {
            component: Arc::from(""),
            allowed: Vec::new(),
            allow_private: false,
            connect_timeout: Duration::from_secs(1),
            ceiling: Duration::from_secs(1),
            max_concurrency: 1,
        })
    }

    /// The pattern allowing `scheme://host:port`, if any.
    pub fn allows(&self, target: &Target) -> Option<&OutboundHost> {
        self.allowed
            .iter()
            .find(|pattern| pattern.matches(target.scheme(), &target.host, target.port))
    }

    fn timeouts(&self, options: Option<RequestOptions>) -> send::Timeouts {
        let options = options.unwrap_or_default();
        let clamp =
            |asked: Option<Duration>, default: Duration| asked.unwrap_or(default).min(self.ceiling);
        send::Timeouts {
            connect: clamp(options.connect_timeout, self.connect_timeout),
            first_byte: clamp(options.first_byte_timeout, self.ceiling),
            between_bytes: clamp(options.between_bytes_timeout, self.ceiling),
        }
    }

    async fn send(
        self: Arc<Self>,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        permits: Arc<Semaphore>,
    ) -> SendResult {
        let target = Target::of(request.uri())?;
        let Some(pattern) = self.allows(&target) else {
            tracing::warn!(
                component = %self.component,
                destination = %target,
                "outbound HTTP request denied: destination not in allowed_outbound_hosts"
            );
            return Err(Error::HttpRequestDenied);
        };
        let may_reach_private = self.allow_private || pattern.names_private_destination();
        let timeouts = self.timeouts(options);
        let permit = tokio::time::timeout(timeouts.connect, permits.acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(Error::ConnectionLimitReached)?;
        let resolved = resolve(&target, timeouts.connect).await?;
        let mut addresses = Vec::with_capacity(resolved.len());
        let mut refused = None;
        for address in resolved {
            match restriction(address.ip()) {
                Some(kind) if !may_reach_private => refused = Some((address.ip(), kind)),
                _ => addresses.push(address),
            }
        }
        if addresses.is_empty() {
            if let Some((ip, kind)) = refused {
                tracing::warn!(
                    component = %self.component,
                    destination = %target,
                    address = %ip,
                    kind,
                    "outbound HTTP request refused: destination resolves to a non-public address \
                     (name the address in allowed_outbound_hosts, or set \
                     outbound_http.allow_private in the runtime config)"
                );
                return Err(Error::DestinationIpProhibited);
            }
            return Err(Error::DestinationNotFound);
        }
        tracing::debug!(component = %self.component, destination = %target, "outbound HTTP request");
        send::send(request, &target, &addresses, timeouts, permit).await
    }
}

/// Where a request goes: scheme, host (a name, or an IP without brackets) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn of(uri: &http::Uri) -> Result<Target, Error> {
        let tls = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            _ => return Err(Error::HttpProtocolError),
        };
        let host = uri
            .host()
            .ok_or(Error::HttpRequestUriInvalid)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Target { tls, host, port })
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme(), self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme(), self.host, self.port)
        }
    }
}

async fn resolve(target: &Target, timeout: Duration) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(ip) = target.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    match tokio::time::timeout(
        timeout,
        tokio::net::lookup_host((target.host.as_str(), target.port)),
    )
    .await
    {
        Err(_) => Err(Error::DnsTimeout),
        Ok(Err(_)) => Err(Error::DnsError {
            rcode: Some("address not found".to_string()),
            info_code: None,
        }),
        Ok(Ok(addresses)) => Ok(addresses.collect()),
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
)>;

/// The `wasi:http` hooks of one instance: its policy, its in-flight cap, its call tally.
pub struct Hooks {
    policy: Arc<Policy>,
    calls: HostCalls,
    trace: TraceContext,
    /// The caller's `tracestate`, passed on with the trace.
    tracestate: Option<http::HeaderValue>,
    /// Made on the first request, so instances that never call out pay nothing.
    permits: Option<Arc<Semaphore>>,
    /// Where CLIENT spans go, when span export is on.
    spans: Option<SpanBuffer>,
}

impl Hooks {
    pub fn new(
        policy: Arc<Policy>,
        calls: HostCalls,
        trace: TraceContext,
        tracestate: Option<http::HeaderValue>,
    ) -> Hooks {
        Hooks {
            policy,
            calls,
            trace,
            tracestate,
            permits: None,
            spans: None,
        }
    }

    pub fn collect_spans(&mut self, buffer: SpanBuffer) {
        self.spans = Some(buffer);
    }
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        // Continue the trace downstream, unless the guest propagates its own context. The
        // child span is this request's CLIENT span, so the downstream server's spans hang
        // under it.
        let client = self.trace.child();
        if !request.headers().contains_key(TRACEPARENT) {
            if let Ok(value) = http::HeaderValue::from_str(&client.traceparent()) {
                request.headers_mut().insert(TRACEPARENT, value);
                // The vendors' state travels with the trace it belongs to.
                if let Some(state) = &self.tracestate {
                    request
                        .headers_mut()
                        .insert(wasmgate_telemetry::TRACESTATE, state.clone());
                }
            }
        }
        let span = self
            .spans
            .clone()
            .map(|buffer| (buffer, client_span(&request, client.span_id)));
        let max = self.policy.max_concurrency;
        let permits = self
            .permits
            .get_or_insert_with(|| Arc::new(Semaphore::new(max)))
            .clone();
        let policy = self.policy.clone();
        let calls = self.calls.clone();
        // The trace view's name for the call: method, host and port; no user info, path or
        // query (they can carry credentials and the guest's data).
        let uri = request.uri();
        let operation = match (uri.host(), uri.port_u16()) {
            (Some(host), Some(port)) => format!("{} {host}:{port}", request.method()),
            (Some(host), None) => format!("{} {host}", request.method()),
            _ => request.method().to_string(),
        };
        Box::new(async move {
            let started = Instant::now();
            let result = policy.send(request, options, permits).await;
            let failed = match &result {
                Ok((response, _)) => response.status().as_u16() >= 400,
                Err(_) => true,
            };
            calls.record_traced(Capability::OutboundHttp, started, || operation, failed);
            if let Some((buffer, mut span)) = span {
                span.start = started;
                span.end = Instant::now();
                match &result {
                    Ok((response, _)) => {
                        let status = response.status().as_u16();
                        span.attributes
                            .push(("http.response.status_code", i64::from(status).into()));
                        if status >= 400 {
                            span.attributes
                                .push(("error.type", status.to_string().into()));
                            span.error = Some(format!("HTTP {status}"));
                        }
                    }
                    Err(error) => {
                        span.attributes
                            .push(("error.type", format!("{error:?}").into()));
                        span.error = Some(error.to_string());
                    }
                }
                buffer.push(span);
            }
            result
        })
    }
}

/// An outbound request's CLIENT span, before it is sent; times and status are filled in when
/// the response head arrives.
fn client_span(request: &http::Request<WasiBody>, span_id: u64) -> ChildSpan {
    let uri = request.uri();
    let method = request.method().as_str();
    let known = wasmgate_telemetry::method_label(method);
    let mut attributes = vec![
        ("http.request.method", known.into()),
        ("url.full", redacted_url(uri).into()),
    ];
    if known == "_OTHER" {
        attributes.push(("http.request.method_original", method.to_string().into()));
    }
    if let Ok(target) = Target::of(uri) {
        attributes.push(("server.address", target.host.into()));
        attributes.push(("server.port", i64::from(target.port).into()));
    }
    let now = Instant::now();
    ChildSpan {
        span_id: Some(span_id),
        name: known.into(),
        kind: SpanKind::Client,
        start: now,
        end: now,
        attributes,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Target {
        Target::of(&uri.parse().unwrap()).unwrap()
    }

    #[test]
    fn targets_default_ports_and_strip_brackets() {
        assert_eq!(
            target("https://API.example.com/x"),
            Target {
                tls: true,
                host: "api.example.com".into(),
                port: 443
            }
        );
        let v6 = target("http://[::1]:8080/");
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "http://[::1]:8080");
        assert!(Target::of(&"ftp://x/".parse().unwrap()).is_err());
    }

    #[test]
    fn timeouts_are_clamped_to_the_component_timeout() {
        let mut component = test_component();
        component.limits.timeout = Duration::from_secs(5);
        let policy = Policy::new(&component, &OutboundHttpConfig::default());
        let t = policy.timeouts(None);
        assert_eq!(t.connect, Duration::from_secs(5));
        assert_eq!(t.first_byte, Duration::from_secs(5));
        let t = policy.timeouts(Some(RequestOptions {
            connect_timeout: Some(Duration::from_millis(100)),
            first_byte_timeout: Some(Duration::from_secs(600)),
            between_bytes_timeout: None,
        }));
        assert_eq!(t.connect, Duration::from_millis(100));
        assert_eq!(t.first_byte, Duration::from_secs(5));
        assert_eq!(t.between_bytes, Duration::from_secs(5));
    }

    #[test]
    fn only_listed_destinations_are_allowed() {
        let mut component = test_component();
        component.allowed_outbound_hosts = vec![
            OutboundHost::parse("https://*.example.com").unwrap(),
            OutboundHost::parse("http://127.0.0.1:*").unwrap(),
        ];
        let policy = Policy::new(&component, &OutboundHttpConfig::default());
        assert!(policy.allows(&target("https://a.example.com/")).is_some());
        assert!(policy.allows(&target("http://a.example.com/")).is_none());
        assert!(policy.allows(&target("http://127.0.0.1:9/")).is_some());
        assert!(policy.allows(&target("http://127.0.0.2:9/")).is_none());
        assert!(Policy::deny_all()
            .allows(&target("https://a.example.com/"))
            .is_none());
    }

    fn test_component() -> Component {
        Component {
            name: "t".into(),
            source: "t.wasm".into(),
            executor: wasmgate_manifest::Executor::Http,
            environment: Default::default(),
            files: Vec::new(),
            limits: Default::default(),
            wagi: None,
            allowed_outbound_hosts: Vec::new(),
            max_outbound_concurrency: None,
            key_value_stores: Vec::new(),
            sql_databases: Vec::new(),
            variables: Default::default(),
            service: None,
        }
    }
}

//! The reverse-proxy hop: a routed request rewritten for a replica's mapped loopback port and
//! sent over a pool of HTTP/1.1 keep-alive connections.

use crate::record::{Counted, Direction, Pending};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use wasmgate_telemetry::{TraceContext, TRACESTATE};

pub type ProxyBody = Counted<Incoming>;
pub type ProxyClient = Client<HttpConnector, ProxyBody>;

/// Idle upstream connections kept per replica.
const MAX_IDLE_PER_REPLICA: usize = 64;
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

pub fn client() -> ProxyClient {
    let mut connector = HttpConnector::new();
    // Loopback hops of one request: never wait on Nagle.
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(MAX_IDLE_PER_REPLICA)
        .pool_idle_timeout(IDLE_TIMEOUT)
        .build(connector)
}

/// Headers that describe one hop, not the request (RFC 9110 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// The request as the replica at `upstream` gets it. Its `traceparent` names `trace` (this
/// request's SERVER span), so the service's own spans hang under Wasmgate's; `tracestate`
/// goes on only with the caller's trace.
pub fn upstream_request(
    request: http::Request<Incoming>,
    upstream: SocketAddr,
    client: SocketAddr,
    https: bool,
    trace: &TraceContext,
    pending: &Arc<Pending>,
) -> Result<http::Request<ProxyBody>, http::Error> {
    let (mut parts, body) = request.into_parts();
    let tracestate = wasmgate_telemetry::tracestate_to_propagate(trace, &parts.headers);
    parts.headers.remove(TRACESTATE);
    if let Some(state) = tracestate {
        parts.headers.insert(TRACESTATE, state);
    }
    if let Ok(value) = http::HeaderValue::from_str(&trace.traceparent()) {
        parts.headers.insert("traceparent", value);
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    // HTTP/2 clients send the authority in the URI; the guest still wants a Host header.
    if !parts.headers.contains_key(http::header::HOST) {
        if let Some(authority) = parts.uri.authority() {
            if let Ok(value) = http::HeaderValue::from_str(authority.as_str()) {
                parts.headers.insert(http::header::HOST, value);
            }
        }
    }
    let named_in_connection: Vec<String> = parts
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .map(str::to_string)
        .chain(named_in_connection)
    {
        parts.headers.remove(name.as_str());
    }
    if let Ok(value) = http::HeaderValue::from_str(&client.ip().to_string()) {
        parts.headers.append("x-forwarded-for", value);
    }
    parts.headers.insert(
        "x-forwarded-proto",
        http::HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    parts.uri = format!("http://{upstream}{path}").parse()?;
    parts.version = http::Version::HTTP_11;
    Ok(http::Request::from_parts(
        parts,
        Counted::new(body, pending.clone(), Direction::Request),
    ))
}

/// Strips the upstream hop's headers from a response.
pub fn downstream_headers(headers: &mut http::HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

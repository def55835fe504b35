//! The one seam between the server and the runtime: an [`Executor`] takes a request already
//! routed to its component and returns the response. Executors differ only in how a request
//! goes in and a response comes out; limits, instances and error mapping are shared.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use wasmgate_telemetry::TraceContext;

/// Error type of response bodies: a guest's body stream can fail mid-way.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response Wasmgate sends.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

pub type ResponseFuture = Pin<Box<dyn Future<Output = http::Response<ResponseBody>> + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// The route a request matched, shared by every request on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The pattern as written in the manifest (e.g. `/api/...`): logs and metric labels.
    pub pattern: Arc<str>,
    pub path: wasmgate_manifest::RoutePath,
    /// Whether the guest may see the client's `Authorization` header (WAGI).
    pub pass_authorization: bool,
}

/// What the server knows about a request besides the request itself.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub route: Arc<RouteInfo>,
    pub scheme: Scheme,
    pub remote_addr: SocketAddr,
    /// The listener address the request arrived on.
    pub local_addr: SocketAddr,
    /// Unique per request in this process; appears on every log line about it.
    pub invocation_id: u64,
    /// This request's span in its W3C trace.
    pub trace: TraceContext,
}

pub trait Executor: Send + Sync + 'static {
    /// Serves one request. Never fails: guest faults become 5xx responses.
    fn handle(
        self: Arc<Self>,
        request: http::Request<hyper::body::Incoming>,
        context: RequestContext,
    ) -> ResponseFuture;

    /// Whether it can serve now. Executors that start something long-running (services)
    /// answer false until it is up; a hot reload waits for this before switching over.
    fn ready(&self) -> bool {
        true
    }
}

/// A short `text/plain` response, for errors Wasmgate answers itself.
pub fn text_response(
    status: http::StatusCode,
    text: impl Into<Bytes>,
) -> http::Response<ResponseBody> {
    let body = Full::new(text.into())
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

//! One request's way from hyper to an executor: find the route, assign an invocation id, call.

use crate::router::LiveRouter;
use hyper::body::Incoming;
use hyper::service::Service;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use wasmgate_runtime::{text_response, Executor, RequestContext, ResponseBody, Scheme};
use wasmgate_telemetry::Telemetry;
use wasmgate_telemetry::TraceContext;

/// The W3C Trace Context request header.
const TRACEPARENT: &str = "traceparent";

pub struct Dispatcher {
    router: LiveRouter,
    scheme: Scheme,
    next_invocation: AtomicU64,
    telemetry: Option<Arc<Telemetry>>,
}

impl Dispatcher {
    pub fn new(
        router: LiveRouter,
        scheme: Scheme,
        telemetry: Option<Arc<Telemetry>>,
    ) -> Dispatcher {
        Dispatcher {
            router,
            scheme,
            next_invocation: AtomicU64::new(1),
            telemetry,
        }
    }

    pub fn service(
        self: &Arc<Self>,
        remote_addr: SocketAddr,
        local_addr: SocketAddr,
    ) -> ConnectionService {
        ConnectionService {
            dispatcher: self.clone(),
            remote_addr,
            local_addr,
        }
    }

    fn dispatch(
        &self,
        request: http::Request<Incoming>,
        remote_addr: SocketAddr,
        local_addr: SocketAddr,
    ) -> ResponseFuture {
        // HTTP/2 carries the host in the URI's authority, HTTP/1.1 in the Host header.
        let host = request.uri().authority().map(|a| a.as_str()).or_else(|| {
            request
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        });
        let router = self.router.load();
        let Some(route) = router.route(host, request.uri().path()) else {
            let body = format!("no route for {}\n", request.uri().path());
            return Box::pin(async move { Ok(text_response(http::StatusCode::NOT_FOUND, body)) });
        };
        let mut trace = TraceContext::for_request(
            request
                .headers()
                .get(TRACEPARENT)
                .map(http::HeaderValue::as_bytes),
        );
        if let Some(telemetry) = &self.telemetry {
            telemetry.sample(&mut trace);
        }
        let context = RequestContext {
            route: route.info.clone(),
            scheme: self.scheme,
            remote_addr,
            local_addr,
            invocation_id: self.next_invocation.fetch_add(1, Ordering::Relaxed),
            trace,
        };
        let response = route.target.clone().handle(request, context);
        let active = self.telemetry.clone().map(ActiveRequest::new);
        Box::pin(async move {
            let response = response.await;
            drop(active);
            Ok(response)
        })
    }
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<ResponseBody>, Infallible>> + Send>>;

/// The hyper service for one connection: it knows the peer's address.
#[derive(Clone)]
pub struct ConnectionService {
    dispatcher: Arc<Dispatcher>,
    remote_addr: SocketAddr,
    local_addr: SocketAddr,
}

impl Service<http::Request<Incoming>> for ConnectionService {
    type Response = http::Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        self.dispatcher
            .dispatch(request, self.remote_addr, self.local_addr)
    }
}

/// Counts a routed request in `http_server_active_requests` until its response head is ready
/// (or the client gives up and the future is dropped).
struct ActiveRequest(Arc<Telemetry>);

impl ActiveRequest {
    fn new(telemetry: Arc<Telemetry>) -> ActiveRequest {
        telemetry.metrics.request_started();
        ActiveRequest(telemetry)
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.metrics.request_answered();
    }
}

/// WAGI's built-in health check: `GET /healthz` answers `OK`, for apps read from modules.toml.
pub struct Healthz;

impl Executor for Healthz {
    fn handle(
        self: Arc<Self>,
        _request: http::Request<Incoming>,
        _context: RequestContext,
    ) -> wasmgate_runtime::ResponseFuture {
        Box::pin(async { text_response(http::StatusCode::OK, "OK") })
    }
}

//! A route's load protection, as an [`Executor`] wrapped around the route's own: requests over
//! the body size, over a rate limit or past the concurrency queue are answered here and never
//! reach the component. The dispatcher does not know this layer exists.
//!
//! Checks run cheapest first, each refusal answered at once:
//! 1. `Content-Length` over `max_request_body` → 413 (bodies without a length are capped as
//!    they stream, by the executor, through the [`RequestBodyLimit`] set here);
//! 2. the client's bucket (`client_rate_limit`), then the route's (`rate_limit`) → 429 with
//!    `Retry-After`: whole seconds until a token is available;
//! 3. the route's concurrency gate (`max_concurrency`, `queue`, `queue_timeout`) → a short
//!    FIFO wait, else 503 with `Retry-After`.
//!
//! Every refusal is an invocation record (`rejected`, `rate_limited`, `overloaded`), so it
//! shows in `/api/invocations` and `wasm_invocations_total`.

mod queue;
mod rate;

pub use rate::retry_after_secs;

use http_body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use queue::{ConcurrencyGate, Refused};
use rate::{ClientBuckets, SharedBucket};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use wasmgate_manifest::RouteLimits;
use wasmgate_runtime::{
    record_unserved, text_response, Executor, Outcome, RequestBodyLimit, RequestContext,
    ResponseBody, ResponseFuture,
};
use wasmgate_telemetry::Telemetry;

/// Clients whose rate-limit state a route keeps at most (about 100 bytes each).
pub const MAX_TRACKED_CLIENTS: usize = 10_000;

/// Who a client is, for `client_rate_limit`, when something knows better than its address.
///
/// A guard that authenticated the request (an API key's id, a JWT's subject) inserts this into
/// the request's extensions before the request reaches the route's limits (so that guard
/// wraps the one [`RouteLimiter::guard`] makes); each identity then gets its own bucket, wherever it connects from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientIdentity(pub Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClientKey {
    Address(IpAddr),
    Identity(Arc<str>),
}

impl ClientKey {
    fn of(request: &http::Request<Incoming>, context: &RequestContext) -> ClientKey {
        if let Some(identity) = request.extensions().get::<ClientIdentity>() {
            return ClientKey::Identity(identity.0.clone());
        }
        ClientKey::Address(client_network(context.remote_addr.ip()))
    }
}

/// One IPv6 host usually holds a whole /64 and can pick a new address in it per request, so
/// an IPv6 client is its /64; an IPv4-mapped address is the IPv4 client it stands for.
fn client_network(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(network.into())
        }
        v4 => v4,
    }
}

/// The load limits of one `[[route]]` and their state, shared by every executor serving it
/// (a WAGI module's `_routes` add several below one route; they count together).
pub struct RouteLimiter {
    component: Arc<str>,
    telemetry: Option<Arc<Telemetry>>,
    /// What this limiter was made to enforce (see [`RouteLimiter::enforces`]); the body-size
    /// limit is read from here.
    limits: RouteLimits,
    client_rate: Option<ClientBuckets<ClientKey>>,
    route_rate: Option<SharedBucket>,
    gate: Option<Arc<ConcurrencyGate>>,
}

impl RouteLimiter {
    /// The limiter of a route to `component`. Refusals are recorded in `telemetry` when given.
    pub fn new(
        component: &str,
        limits: &RouteLimits,
        telemetry: Option<Arc<Telemetry>>,
    ) -> Arc<RouteLimiter> {
        let now = Instant::now();
        Arc::new(RouteLimiter {
            component: component.into(),
            telemetry,
            limits: *limits,
            client_rate: limits
                .client_rate_limit
                .map(|rate| ClientBuckets::new(&rate, MAX_TRACKED_CLIENTS)),
            route_rate: limits.rate_limit.map(|rate| SharedBucket::new(&rate, now)),
            gate: limits
                .concurrency
                .map(|limit| Arc::new(ConcurrencyGate::new(&limit))),
        })
    }

    /// Whether this limiter enforces `limits` on a route to `component`. A hot reload keeps
    /// such a limiter, with its rate buckets and its concurrency gate, for the new version of
    /// the route: a reload must not hand every client a full bucket, nor let the new
    /// version's requests run beside the old one's in-flight ones as if those were not there.
    pub fn enforces(&self, component: &str, limits: &RouteLimits) -> bool {
        *self.component == *component && self.limits == *limits
    }

    /// `inner`, guarded by these limits.
    pub fn guard(self: &Arc<Self>, inner: Arc<dyn Executor>) -> Arc<dyn Executor> {
        Arc::new(LimitGuard {
            limiter: self.clone(),
            inner,
        })
    }

    /// The checks answered at once, cheapest first: the declared body size, then the client's
    /// and the route's buckets. Returns the refusal, or `None` when the request may go on.
    /// A route with only the default limits reads no clock here, and a body whose exact size
    /// is known and allowed carries no streaming cap: hyper ends a body at its declared
    /// length.
    fn check(
        &self,
        request: &mut http::Request<Incoming>,
        context: &RequestContext,
    ) -> Option<http::Response<ResponseBody>> {
        let size = request.body().size_hint();
        if size.lower() > self.limits.max_request_body {
            let why = format!(
                "request body of {} bytes is over this route's limit of {} bytes",
                size.lower(),
                self.limits.max_request_body
            );
            return Some(self.refuse(
                request.method(),
                context,
                Instant::now(),
                "rejected",
                http::StatusCode::PAYLOAD_TOO_LARGE,
                why,
                None,
            ));
        }
        if self.client_rate.is_some() || self.route_rate.is_some() {
            let now = Instant::now();
            if let Some(clients) = &self.client_rate {
                if let Err(wait) = clients.take(&ClientKey::of(request, context), now) {
                    let why = "too many requests from this client, try again later".to_string();
                    return Some(self.rate_limited(request.method(), context, now, why, wait));
                }
            }
            if let Some(bucket) = &self.route_rate {
                if let Err(wait) = bucket.take(now) {
                    let why = "too many requests for this route, try again later".to_string();
                    return Some(self.rate_limited(request.method(), context, now, why, wait));
                }
            }
        }
        if size.exact().is_none() {
            request
                .extensions_mut()
                .insert(RequestBodyLimit(self.limits.max_request_body));
        }
        None
    }

    fn rate_limited(
        &self,
        method: &http::Method,
        context: &RequestContext,
        started: Instant,
        why: String,
        wait: std::time::Duration,
    ) -> http::Response<ResponseBody> {
        self.refuse(
            method,
            context,
            started,
            Outcome::RateLimited.as_str(),
            http::StatusCode::TOO_MANY_REQUESTS,
            why,
            Some(retry_after_secs(wait)),
        )
    }

    /// Waits for a turn at the route's concurrency `gate` (or refuses with 503), then serves
    /// the admitted `request` through `inner`, holding the slot until the response body ends.
    async fn serve_in_turn(
        &self,
        gate: &ConcurrencyGate,
        inner: Arc<dyn Executor>,
        request: http::Request<Incoming>,
        context: RequestContext,
    ) -> http::Response<ResponseBody> {
        let started = Instant::now();
        let permit = match gate.enter().await {
            Ok(permit) => permit,
            Err(refused) => {
                let why = match refused {
                    Refused::QueueFull => "this route is at capacity and its queue is full",
                    Refused::TimedOut => "this route stayed at capacity for the whole wait",
                };
                // A slot is likely free again within one queue wait.
                let retry = retry_after_secs(gate.queue_timeout());
                return self.refuse(
                    request.method(),
                    &context,
                    started,
                    Outcome::Overloaded.as_str(),
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    format!("{why}, try again later"),
                    Some(retry),
                );
            }
        };
        let response = inner.handle(request, context).await;
        // The slot stays taken while the body streams: the guest may still be running.
        response.map(|body| {
            body.map_frame(move |frame| {
                let _slot = &permit;
                frame
            })
            .boxed_unsync()
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn refuse(
        &self,
        method: &http::Method,
        context: &RequestContext,
        started: Instant,
        outcome: &'static str,
        status: http::StatusCode,
        why: String,
        retry_after: Option<u64>,
    ) -> http::Response<ResponseBody> {
        // Debug, not warn: under a flood this line would be the flood.
        tracing::debug!(
            invocation = context.invocation_id,
            route = %context.route.pattern,
            client = %context.remote_addr.ip(),
            outcome,
            status = status.as_u16(),
            "request refused by the route's limits"
        );
        let mut response = text_response(
            status,
            format!("{why} (invocation {})\n", context.invocation_id),
        );
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
        }
        if let Some(telemetry) = &self.telemetry {
            record_unserved(
                telemetry,
                context,
                &self.component,
                method,
                started,
                outcome,
                status,
                why,
            );
        }
        response
    }
}

/// An executor behind its route's limits: what the router dispatches to.
struct LimitGuard {
    limiter: Arc<RouteLimiter>,
    inner: Arc<dyn Executor>,
}

impl Executor for LimitGuard {
    fn handle(
        self: Arc<Self>,
        mut request: http::Request<Incoming>,
        context: RequestContext,
    ) -> ResponseFuture {
        if let Some(refused) = self.limiter.check(&mut request, &context) {
            return Box::pin(std::future::ready(refused));
        }
        let Some(gate) = self.limiter.gate.clone() else {
            // Nothing left to wait for: the inner executor's future is the whole answer.
            return self.inner.clone().handle(request, context);
        };
        Box::pin(async move {
            self.limiter
                .serve_in_turn(&gate, self.inner.clone(), request, context)
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_their_slash_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_network(a), client_network(b));
        assert_ne!(client_network(a), client_network(c));
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(
            client_network(mapped),
            "127.0.0.2".parse::<IpAddr>().unwrap()
        );
    }
}

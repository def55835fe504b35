//! A route's load protection, validated: how many of its requests run at once, how many may
//! wait for a turn and for how long, how fast they may arrive (for the route and per client),
//! and how large a request body may be. Enforced by the server before a request reaches its
//! component (`wasmgate-server/src/limits/`).

use std::time::Duration;

/// The load limits of one `[[route]]`. The default protects the server without limiting a
/// well-behaved app: no route-level concurrency cap or rate limit, 16 MiB request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLimits {
    /// Requests of this route in flight at once (`max_concurrency`); `None` leaves only the
    /// component's `limits.max_concurrency`.
    pub concurrency: Option<ConcurrencyLimit>,
    /// Requests per time for the whole route (`rate_limit`).
    pub rate_limit: Option<RateLimit>,
    /// Requests per time for each client address, or each identity an auth guard established
    /// (`client_rate_limit`).
    pub client_rate_limit: Option<RateLimit>,
    /// Largest request body accepted, in bytes (`max_request_body`); larger ones get 413.
    pub max_request_body: u64,
}

impl RouteLimits {
    pub const DEFAULT_MAX_REQUEST_BODY: u64 = 16 << 20;
}

impl Default for RouteLimits {
    fn default() -> Self {
        RouteLimits {
            concurrency: None,
            rate_limit: None,
            client_rate_limit: None,
            max_request_body: Self::DEFAULT_MAX_REQUEST_BODY,
        }
    }
}

/// At most `max_in_flight` requests run; up to `queue` more wait in arrival order, each for at
/// most `queue_timeout`; the rest are refused at once with 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcurrencyLimit {
    pub max_in_flight: u32,
    pub queue: u32,
    pub queue_timeout: Duration,
}

impl ConcurrencyLimit {
    /// A short wait: a client is better served by a fast 503 it can retry than by a long hang.
    pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);
}

/// A token bucket: `requests` tokens per `per`, holding at most `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
    pub burst: u32,
}

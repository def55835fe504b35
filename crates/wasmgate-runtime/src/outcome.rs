//! How an invocation ended. One word per kind, stable: logs and (later) metrics use it as a label.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The guest answered (whatever the status it chose).
    Ok,
    /// The guest trapped (panic, unreachable, out-of-bounds access...).
    Trap,
    /// The request's time limit ran out.
    Timeout,
    /// The guest tried to grow memory past its limit and then failed.
    MemoryLimit,
    /// The guest made more host calls than `limits.max_host_calls` and was stopped.
    HostCallLimit,
    /// The guest burned its whole `limits.fuel` budget of instructions and was stopped.
    FuelLimit,
    /// The guest returned without ever setting a response.
    NoResponse,
    /// All instances of the component were busy for the whole time limit.
    Overloaded,
    /// Wasmgate could not create the instance (e.g. the pool is exhausted).
    InstantiateFailed,
    /// A WAGI guest's output was not a valid CGI response (or exceeded its cap).
    BadOutput,
    /// The route's authentication or CORS policy refused the request before the guest ran
    /// (401 or 403, chosen by the policy).
    Denied,
    /// The route's or the client's rate limit refused the request before the guest ran (429).
    RateLimited,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Trap => "trap",
            Outcome::Timeout => "timeout",
            Outcome::MemoryLimit => "memory_limit",
            Outcome::HostCallLimit => "host_call_limit",
            Outcome::FuelLimit => "fuel_limit",
            Outcome::NoResponse => "no_response",
            Outcome::Overloaded => "overloaded",
            Outcome::InstantiateFailed => "instantiate_failed",
            Outcome::BadOutput => "bad_output",
            Outcome::Denied => "denied",
            Outcome::RateLimited => "rate_limited",
        }
    }

    /// The status the client gets when the guest produced no response of its own.
    pub fn status(self) -> http::StatusCode {
        match self {
            Outcome::Ok => http::StatusCode::OK,
            Outcome::Timeout => http::StatusCode::GATEWAY_TIMEOUT,
            Outcome::Overloaded => http::StatusCode::SERVICE_UNAVAILABLE,
            Outcome::BadOutput => http::StatusCode::BAD_GATEWAY,
            Outcome::Denied => http::StatusCode::FORBIDDEN,
            Outcome::RateLimited => http::StatusCode::TOO_MANY_REQUESTS,
            Outcome::Trap
            | Outcome::MemoryLimit
            | Outcome::HostCallLimit
            | Outcome::FuelLimit
            | Outcome::NoResponse
            | Outcome::InstantiateFailed => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

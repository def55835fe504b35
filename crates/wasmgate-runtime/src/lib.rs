//! The Wasmgate runtime: one wasmtime engine per process, compiled components (cached on disk),
//! and the executors that turn an HTTP request into a guest invocation.
//!
//! The runtime knows nothing of listeners or routing. The server hands it a request for a named
//! component through the [`Executor`] trait and gets a response back; every fault inside the
//! guest (trap, timeout, memory limit, no response) becomes a 5xx for that request alone.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use wasmgate_runtime::{Runtime, RuntimeOptions};
//! let manifest = wasmgate_manifest::Manifest::load("wasmgate.toml")?;
//! let runtime = Runtime::load(&manifest, &RuntimeOptions::default())?;
//! let executor = runtime.executor("api").expect("component exists");
//! # Ok(()) }
//! ```

mod body_limit;
mod cache;
mod call_clock;
mod engine;
mod error;
mod executor;
mod fuel;
mod guest_stdio;
mod host;
mod http_executor;
mod limiter;
mod loader;
mod outcome;
mod profiling;
mod record;
mod runtime;
mod service;
mod wagi;

pub use body_limit::RequestBodyLimit;
pub use cache::{default_cache_dir, Artifact, CacheStatus, CompileCache};
pub use engine::{EngineSettings, EpochTicker};
pub use error::LoadError;
pub use executor::{
    text_response, BoxError, Executor, RequestContext, ResponseBody, ResponseFuture, RouteInfo,
    Scheme,
};
pub use outcome::Outcome;
pub use profiling::{
    limits as profile_limits, Lookup as ProfileLookup, ProfileError, ProfileRequest, ProfileTarget,
    Profiles, SessionState as ProfileState, SessionSummary as ProfileSummary,
};
pub use record::{record_unserved, request_span};
pub use runtime::{
    cache_result, LoadedComponent, Runtime, RuntimeOptions, SubRouteExecutor, DEFAULT_HISTORY,
};
pub use wagi::{percent_decode, SubRoute};

/// Parsers exposed for the fuzz targets in `fuzz/` only; not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::wagi::response::{find_head_end, parse_head, Head, HeadError, MAX_HEAD};
}

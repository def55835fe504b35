//! The Wasmgate app manifest (`wasmgate.toml`): its types, parsing and validation.
//!
//! This crate knows nothing of wasmtime or HTTP listeners. It turns a TOML file into a
//! [`Manifest`] whose every value has been checked, or into a [`ManifestError`] that names the
//! file, line, column and field at fault, so a user can fix their manifest without guessing.
//!
//! A WAGI `modules.toml` (`[[module]]` entries mapping routes to WASI modules) is read too,
//! unchanged: [`Manifest::load`] recognises it by its `[[module]]` entries (or its file name)
//! and turns each module into a `wagi` [`Component`] and a [`Route`], with
//! [`App::wagi_compat`] set. [`Manifest::load_wagi`] reads a file as `modules.toml` explicitly.
//! The few places where Wasmgate treats a `modules.toml` differently from WAGI (paths resolved
//! from the file's directory, read-only volumes, no `oci:`/`bindle:` references) are listed in
//! the `wagi` module's source.
//!
//! ```no_run
//! let manifest = wasmgate_manifest::Manifest::load("examples/hello/wasmgate.toml")?;
//! for route in &manifest.routes {
//!     println!("{} -> {}", route.path, route.component);
//! }
//! # Ok::<(), wasmgate_manifest::ManifestError>(())
//! ```

mod auth;
mod error;
mod location;
mod model;
mod outbound;
mod parse;
mod raw;
mod route_limits;
mod runtime_config;
mod units;
mod wagi;

pub use auth::{
    AllowedOrigins, ApiKeyHeader, ApiKeyScheme, AuthConfig, AuthKind, AuthScheme, Cors, JwtKeys,
    JwtScheme, RouteAuth, SecretBytes,
};
pub use error::ManifestError;
pub use model::{
    App, Component, Executor, FileMount, Limits, Manifest, Route, RoutePath, ServiceOptions,
    Template, TemplatePart, Variable, WagiOptions,
};
pub use outbound::{HostPattern, OutboundHost, PortPattern, SchemePattern};
pub use route_limits::{ConcurrencyLimit, RateLimit, RouteLimits};
pub use runtime_config::{
    KeyValueBackend, OutboundHttpConfig, RuntimeConfig, SecretUrl, SqlBackend, DEFAULT_STORE,
};
pub use units::{parse_duration, parse_size};

/// The file name `wasmgate up DIR` looks for inside DIR.
pub const MANIFEST_FILE_NAME: &str = "wasmgate.toml";

/// The conventional name of a WAGI module map. [`Manifest::load`] parses a file with this name
/// as one unless it has an `[app]` table.
pub const WAGI_FILE_NAME: &str = "modules.toml";

//! The validated manifest: what the rest of Wasmgate consumes. Every value here was checked.

use crate::outbound::OutboundHost;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A loaded, validated app manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file this was read from.
    pub path: PathBuf,
    pub app: App,
    pub routes: Vec<Route>,
    /// Components by name, in name order.
    pub components: BTreeMap<String, Component>,
    /// App variables by name; components refer to them in their `variables` templates.
    pub variables: BTreeMap<String, Variable>,
}

/// An app variable. Its value comes from the environment (`WASMGATE_VAR_<NAME>`), then the
/// runtime config, then `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub default: Option<String>,
    /// Loading fails when no value is provided.
    pub required: bool,
    /// Never logged or shown; has no default in the manifest.
    pub secret: bool,
}

/// A component variable's value: literal text and `{{ variable }}` references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    Literal(String),
    Variable(String),
}

impl Template {
    /// The text with each reference replaced by `lookup(name)`; `None` if a lookup fails.
    pub fn render(&self, mut lookup: impl FnMut(&str) -> Option<String>) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Literal(text) => out.push_str(text),
                TemplatePart::Variable(name) => out.push_str(&lookup(name)?),
            }
        }
        Some(out)
    }

    /// Names of the app variables this template refers to.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            TemplatePart::Variable(name) => Some(name.as_str()),
            TemplatePart::Literal(_) => None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    /// The manifest was a WAGI `modules.toml`: serve WAGI's built-in routes too (`/healthz`
    /// answers `OK`). `false` for `wasmgate.toml`.
    pub wagi_compat: bool,
}

/// One `[[route]]`: requests matching `host` (if set) and `path` go to `component`.
#[derive(Debug, Clone)]
pub struct Route {
    pub path: RoutePath,
    pub component: String,
    /// Host to match (lower case, without port); `None` matches any host.
    pub host: Option<String>,
    /// 1-based line of the route's `path` in the manifest, for messages.
    pub line: usize,
    /// Whether the guest may see the client's `Authorization` header (WAGI routes).
    pub pass_authorization: bool,
    /// Credentials a caller must present; `None`: anyone may call.
    pub auth: Option<crate::auth::RouteAuth>,
    /// Cross-origin requests from browsers; `None`: no CORS headers, preflights reach the guest.
    pub cors: Option<crate::auth::Cors>,
    /// Load protection applied before a request reaches the component.
    pub limits: crate::route_limits::RouteLimits,
}

/// A route's path pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoutePath {
    /// Matches this path only.
    Exact(String),
    /// Written `/api/...`: matches `/api`, `/api/` and everything below. Holds the prefix
    /// without the trailing slash (`/api`); the root wildcard `/...` holds an empty prefix.
    Prefix(String),
}

impl fmt::Display for RoutePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoutePath::Exact(path) => f.write_str(path),
            RoutePath::Prefix(prefix) => write!(f, "{prefix}/..."),
        }
    }
}

/// How a component is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executor {
    /// A `wasi:http` 0.2 proxy component, one fresh instance per request.
    Http,
    /// A WASI command (core `wasm32-wasip1` module or `wasi:cli/run` component) run as a CGI
    /// script, as WAGI did: request on stdin and in the environment, response on stdout.
    Wagi,
    /// A long-running program that serves its own sockets; requests are reverse-proxied to it.
    Service,
}

impl fmt::Display for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Executor::Http => f.write_str("http"),
            Executor::Wagi => f.write_str("wagi"),
            Executor::Service => f.write_str("service"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Component {
    pub name: String,
    /// Absolute path of the `.wasm` file.
    pub source: PathBuf,
    pub executor: Executor,
    pub environment: BTreeMap<String, String>,
    pub files: Vec<FileMount>,
    pub limits: Limits,
    /// How a `wagi` component is invoked; `None` for other executors.
    pub wagi: Option<WagiOptions>,
    /// Outbound HTTP destinations the guest may reach (`allowed_outbound_hosts`, or a WAGI
    /// module's `allowed_hosts`). Empty: every outbound request is denied.
    pub allowed_outbound_hosts: Vec<OutboundHost>,
    /// Concurrent outbound HTTP requests one instance may make (`limits.max_outbound_concurrency`,
    /// WAGI's `http_max_concurrency`); `None` means the runtime's default.
    pub max_outbound_concurrency: Option<u32>,
    /// Key-value stores the guest may open, by name.
    pub key_value_stores: Vec<String>,
    /// SQL databases the guest may open, by name.
    pub sql_databases: Vec<String>,
    /// What the guest reads through `wasi:config`, by key.
    pub variables: BTreeMap<String, Template>,
    /// How a `service` component runs; `None` for other executors.
    pub service: Option<ServiceOptions>,
}

/// Settings of a `service` component: a program that binds its own ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOptions {
    /// Ports the program binds, as written in its code; each is mapped to a loopback port the
    /// host chooses. Binding any other port fails in the guest. Never empty; the first is the
    /// one routes are proxied to.
    pub ports: Vec<u16>,
    /// Instances started; requests are balanced across them.
    pub replicas: u32,
}

impl ServiceOptions {
    pub const DEFAULT_REPLICAS: u32 = 1;
    pub const MAX_REPLICAS: u32 = 64;
}

/// Invocation settings of a `wagi` component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WagiOptions {
    /// Exported function to call per request.
    pub entrypoint: String,
    /// Whitespace-separated argv template; `${SCRIPT_NAME}` is replaced by the script's path and
    /// `${ARGS}` expands to the query string's `&`-separated items, one argument each.
    pub argv: String,
}

impl WagiOptions {
    pub const DEFAULT_ENTRYPOINT: &'static str = "_start";
    pub const DEFAULT_ARGV: &'static str = "${SCRIPT_NAME} ${ARGS}";
}

impl Default for WagiOptions {
    fn default() -> Self {
        WagiOptions {
            entrypoint: Self::DEFAULT_ENTRYPOINT.to_string(),
            argv: Self::DEFAULT_ARGV.to_string(),
        }
    }
}

/// A host directory the guest sees at `destination`.
#[derive(Debug, Clone)]
pub struct FileMount {
    /// Absolute host path.
    pub source: PathBuf,
    /// Absolute guest path.
    pub destination: String,
    pub writable: bool,
}

/// Per-component resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory per instance, in bytes.
    pub memory: u64,
    /// Wall-clock time per request.
    pub timeout: Duration,
    /// Instances of this component alive at once.
    pub max_concurrency: u32,
    /// Bytes a WAGI guest may write to stdout for one response (headers and body).
    pub max_output: u64,
    /// Calls into the host (WASI and capabilities) one invocation may make; `None`: no cap
    /// beyond the timeout.
    pub max_host_calls: Option<u64>,
    /// Fuel one invocation may burn (about one unit per Wasm instruction); `None`: the
    /// component runs on the engine without fuel metering, and instructions are not counted.
    pub fuel: Option<u64>,
}

impl Limits {
    pub const DEFAULT_MEMORY: u64 = 128 << 20;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_MAX_CONCURRENCY: u32 = 100;
    pub const DEFAULT_MAX_OUTPUT: u64 = 16 << 20;
    /// 32-bit linear memories cannot exceed 4 GiB.
    pub const MAX_MEMORY: u64 = 4 << 30;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: Self::DEFAULT_MEMORY,
            timeout: Self::DEFAULT_TIMEOUT,
            max_concurrency: Self::DEFAULT_MAX_CONCURRENCY,
            max_output: Self::DEFAULT_MAX_OUTPUT,
            max_host_calls: None,
            fuel: None,
        }
    }
}

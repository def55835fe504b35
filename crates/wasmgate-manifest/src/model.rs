//! The validated manifest: what the rest of Wasmgate consumes. Every value here was checked.

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
}

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
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
}

impl fmt::Display for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Executor::Http => f.write_str("http"),
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
}

impl Limits {
    pub const DEFAULT_MEMORY: u64 = 128 << 20;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_MAX_CONCURRENCY: u32 = 100;
    /// 32-bit linear memories cannot exceed 4 GiB.
    pub const MAX_MEMORY: u64 = 4 << 30;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: Self::DEFAULT_MEMORY,
            timeout: Self::DEFAULT_TIMEOUT,
            max_concurrency: Self::DEFAULT_MAX_CONCURRENCY,
        }
    }
}

//! Command-line interface definition.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Wasmgate serves WebAssembly microservices: wasi:http components, each request in a fresh,
/// sandboxed instance.
#[derive(Debug, Parser)]
#[command(
    name = "wasmgate",
    version,
    propagate_version = true,
    after_help = "Examples:\n  \
        wasmgate up examples/hello                 serve DIR/wasmgate.toml on 127.0.0.1:3000\n  \
        wasmgate up app.toml --listen 0.0.0.0:8080\n  \
        wasmgate inspect app.wasm --wit            show a component's imports, exports and WIT\n  \
        wasmgate logs --follow --outcome trap       watch failing invocations live"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve an app described by a manifest (wasmgate.toml).
    ///
    /// Loads and compiles every component (compiled code is cached on disk), prints where it
    /// listens and which routes it serves, and serves HTTP/1.1 and HTTP/2 (h2c) until SIGINT or
    /// SIGTERM; then it stops accepting, lets in-flight requests finish and exits 0.
    Up(UpArgs),

    /// Describe a WebAssembly file: module or component, sections, imports, exports and, for a
    /// component, its WIT world.
    Inspect(InspectArgs),

    /// Show invocation records of a running server (from its admin listener): the recent ones,
    /// oldest first, or with --follow each one as it happens.
    Logs(LogsArgs),

    /// Profile the next invocations of a route or component on a running server (through its
    /// admin listener) and write one Firefox-profiler file (open it at profiler.firefox.com).
    Profile(ProfileArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["route", "component"]))]
pub struct ProfileArgs {
    /// Profile invocations through this route pattern (as written in the manifest).
    #[arg(long, value_name = "PATTERN")]
    pub route: Option<String>,

    /// Profile invocations of this component, whatever the route.
    #[arg(long, value_name = "NAME")]
    pub component: Option<String>,

    /// How many invocations to profile (at most 100).
    #[arg(short = 'n', long, value_name = "N", default_value_t = 10)]
    pub count: u32,

    /// Sampling interval in milliseconds (0.1 to 10) [default: 1].
    #[arg(long, value_name = "MS")]
    pub interval_ms: Option<f64>,

    /// Give up waiting after this many seconds and write what was profiled [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub timeout_s: Option<f64>,

    /// Where to write the profile.
    #[arg(short, long, value_name = "FILE", default_value = "profile.json")]
    pub output: PathBuf,

    #[command(flatten)]
    pub client: AdminClientArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub client: AdminClientArgs,

    /// Keep printing records as requests finish, until interrupted.
    #[arg(short, long)]
    pub follow: bool,

    /// Only this route pattern (as written in the manifest, e.g. "/api/...").
    #[arg(long, value_name = "PATTERN")]
    pub route: Option<String>,

    /// Only this outcome (ok, trap, timeout, memory_limit, denied, rate_limited, ...).
    #[arg(long, value_name = "OUTCOME")]
    pub outcome: Option<String>,

    /// Only this component.
    #[arg(long, value_name = "NAME")]
    pub component: Option<String>,

    /// How many recent records to show first.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 20)]
    pub limit: usize,

    /// Print each record as one JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// How `wasmgate logs` and `wasmgate profile` reach a server's admin listener.
#[derive(Debug, Clone, Args)]
pub struct AdminClientArgs {
    /// The server's admin listener.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:9464",
        env = "WASMGATE_ADMIN_LISTEN"
    )]
    pub admin: SocketAddr,

    /// Send `Authorization: Bearer <token>`, the token read from FILE.
    #[arg(long, value_name = "FILE", env = "WASMGATE_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Connect over HTTPS, trusting the CA certificates in FILE (PEM).
    #[arg(long, value_name = "FILE", env = "WASMGATE_ADMIN_CA")]
    pub admin_ca: Option<PathBuf>,

    /// The name the admin listener's certificate must carry [default: the --admin IP].
    #[arg(long, value_name = "NAME", requires = "admin_ca")]
    pub admin_server_name: Option<String>,

    /// Client certificate chain (PEM), with --admin-key and --admin-ca.
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["admin_key", "admin_ca"],
        env = "WASMGATE_ADMIN_CLIENT_CERT"
    )]
    pub admin_cert: Option<PathBuf>,

    /// The private key (PEM) of --admin-cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "admin_cert",
        env = "WASMGATE_ADMIN_CLIENT_KEY"
    )]
    pub admin_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The manifest, or a directory containing wasmgate.toml.
    #[arg(value_name = "DIR|FILE", default_value = ".")]
    pub path: PathBuf,

    /// Address to listen on (use port 0 for any free port).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:3000",
        env = "WASMGATE_LISTEN"
    )]
    pub listen: SocketAddr,

    /// Serve HTTPS with this PEM certificate chain; repeat with --tls-key for each certificate.
    /// Each serves the DNS names in its subjectAltName (chosen by SNI); the first is the
    /// default. Files are reloaded when they change.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Vec<PathBuf>,

    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of the --tls-cert in the same position.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Vec<PathBuf>,

    /// Address of the admin listener: /metrics, /api/invocations, /healthz, /readyz. Keep it
    /// off public interfaces.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:9464",
        env = "WASMGATE_ADMIN_LISTEN"
    )]
    pub admin_listen: SocketAddr,

    /// Do not start the admin listener.
    #[arg(long, conflicts_with = "admin_listen")]
    pub no_admin: bool,

    /// Require `Authorization: Bearer <token>` on the admin listener; the token is FILE's
    /// content (surrounding whitespace ignored). /healthz and /readyz stay open for probes.
    #[arg(long, value_name = "FILE", env = "WASMGATE_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Serve the admin listener over HTTPS with this PEM certificate chain (with
    /// --admin-tls-key); reloaded when the files change.
    #[arg(
        long,
        value_name = "FILE",
        requires = "admin_tls_key",
        env = "WASMGATE_ADMIN_TLS_CERT"
    )]
    pub admin_tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --admin-tls-cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "admin_tls_cert",
        env = "WASMGATE_ADMIN_TLS_KEY"
    )]
    pub admin_tls_key: Option<PathBuf>,

    /// Require admin clients to present a certificate signed by a CA in FILE (PEM); needs
    /// --admin-tls-cert. Without one the TLS handshake fails, for probes too.
    #[arg(
        long,
        value_name = "FILE",
        requires = "admin_tls_cert",
        env = "WASMGATE_ADMIN_CLIENT_CA"
    )]
    pub admin_client_ca: Option<PathBuf>,

    /// Allow the admin listener on a non-loopback address with neither a token nor client
    /// certificates (refused otherwise: it exposes invocation records and reload).
    #[arg(long)]
    pub admin_insecure: bool,

    /// Admin connections served at once; past it, new ones wait in the kernel's accept
    /// backlog (the public listener is not affected).
    #[arg(long, value_name = "N", default_value_t = wasmgate_server::AdminServer::DEFAULT_MAX_CONNECTIONS)]
    pub admin_max_connections: usize,

    /// Machine-specific settings: key-value and SQL backends and their credentials, variable
    /// values, outbound HTTP policy (see docs/runtime-config.md). Without it, the `default`
    /// store and database are embedded files under .wasmgate/ next to the manifest.
    #[arg(long, value_name = "FILE", env = "WASMGATE_RUNTIME_CONFIG")]
    pub runtime_config: Option<PathBuf>,

    /// Invocation records kept in memory for /api/invocations.
    #[arg(long, value_name = "N", default_value_t = wasmgate_runtime::DEFAULT_HISTORY)]
    pub invocation_history: usize,

    /// Directory for compiled components [default: $XDG_CACHE_HOME/wasmgate or ~/.cache/wasmgate].
    #[arg(
        long,
        value_name = "DIR",
        env = "WASMGATE_CACHE_DIR",
        conflicts_with = "no_cache"
    )]
    pub cache_dir: Option<PathBuf>,

    /// Compile components in memory only; neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,

    /// Reload the app when the manifest, the runtime config or a component's Wasm file
    /// changes (checked every second). SIGHUP and `POST /api/reload` on the admin listener
    /// reload it too. A version that fails to load is refused and the running one kept.
    #[arg(long)]
    pub watch: bool,

    /// How long in-flight requests may run after a shutdown signal.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: std::time::Duration,

    /// Connections served at once; past it, new ones wait in the kernel's accept backlog.
    #[arg(long, value_name = "N", default_value_t = wasmgate_server::ServerOptions::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Slow-client protection: the time a client has to finish the TLS handshake, then to
    /// send a request's headers (HTTP/1.1 and HTTP/2); also how long a connection may stay
    /// open with no request in flight. Requests that run longer are not cut.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub header_read_timeout: std::time::Duration,

    /// Turn telemetry off: no invocation records, metrics, history, per-invocation log lines,
    /// guest/host timing or span export (`/metrics` and `/api/invocations` stay empty). For
    /// the smallest devices, and to measure what telemetry costs.
    #[arg(long)]
    pub no_telemetry: bool,

    /// Log format: JSON lines, human-readable text, or auto (text on a terminal, else JSON).
    /// The level is set with RUST_LOG (default: info).
    #[arg(long, value_enum, default_value_t = LogFormat::Auto, env = "WASMGATE_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The .wasm file to describe.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Also print the component's complete WIT (every interface and type).
    #[arg(long)]
    pub wit: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    wasmgate_manifest::parse_duration(text)
}

/// A duration that must not be zero (a zero timeout would refuse every client).
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    match parse_duration(text)? {
        zero if zero.is_zero() => Err("must be longer than zero".to_string()),
        timeout => Ok(timeout),
    }
}

//! The manifest exactly as written: serde types that reject unknown keys and keep spans of the
//! values that are checked after parsing (paths, references), so those errors can point at them.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    pub app: RawApp,
    #[serde(default, rename = "route")]
    pub routes: Vec<RawRoute>,
    #[serde(default, rename = "component")]
    pub components: BTreeMap<String, Spanned<RawComponent>>,
    /// App variables: `name = { default = "...", required = true, secret = true }`.
    #[serde(default)]
    pub variables: BTreeMap<String, Spanned<RawVariable>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariable {
    #[serde(default)]
    pub default: Option<Spanned<String>>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    pub name: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub path: Spanned<String>,
    pub component: Spanned<String>,
    #[serde(default)]
    pub host: Option<Spanned<String>>,
    /// WAGI: pass the client's `Authorization` header to the guest as `HTTP_AUTHORIZATION`.
    #[serde(default)]
    pub pass_authorization: Option<Spanned<bool>>,
    /// Who may call the route: a scheme of the runtime config's `[auth]` (see `parse/auth.rs`).
    #[serde(default)]
    pub auth: Option<Spanned<crate::parse::RawRouteAuth>>,
    /// Which web origins may call the route from a browser.
    #[serde(default)]
    pub cors: Option<crate::parse::RawCors>,
    /// Load protection (see `route_limits.rs`): in-flight cap, its wait queue, rate limits,
    /// body size.
    pub max_concurrency: Option<Spanned<i64>>,
    pub queue: Option<Spanned<i64>>,
    pub queue_timeout: Option<Spanned<String>>,
    pub rate_limit: Option<Spanned<RawRateLimit>>,
    pub client_rate_limit: Option<Spanned<RawRateLimit>>,
    pub max_request_body: Option<Spanned<String>>,
}

/// `{ requests = 100, per = "1s", burst = 200 }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub requests: Spanned<i64>,
    pub per: Option<Spanned<String>>,
    pub burst: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawComponent {
    pub source: Spanned<String>,
    #[serde(default)]
    pub executor: RawExecutor,
    #[serde(default)]
    pub environment: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub files: Vec<RawFileMount>,
    #[serde(default)]
    pub limits: RawLimits,
    /// WAGI only: the exported function to call (default `_start`).
    #[serde(default)]
    pub entrypoint: Option<Spanned<String>>,
    /// WAGI only: the argv template (default `${SCRIPT_NAME} ${ARGS}`).
    #[serde(default)]
    pub argv: Option<Spanned<String>>,
    /// `scheme://host[:port]` patterns the guest may send HTTP requests to.
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<Spanned<String>>,
    /// Names of the key-value stores the guest may open.
    #[serde(default)]
    pub key_value_stores: Vec<Spanned<String>>,
    /// Names of the SQL databases the guest may open.
    #[serde(default)]
    pub sql_databases: Vec<Spanned<String>>,
    /// Configuration the guest reads through `wasi:config`: literal text with `{{ variable }}`
    /// references to app variables.
    #[serde(default)]
    pub variables: BTreeMap<String, Spanned<String>>,
    /// Service only: the ports the program binds, as written in its code.
    #[serde(default)]
    pub ports: Option<Spanned<Vec<Spanned<i64>>>>,
    /// Service only: how many instances run at once.
    #[serde(default)]
    pub replicas: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum RawExecutor {
    #[default]
    Http,
    Wagi,
    Service,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileMount {
    pub source: Spanned<String>,
    pub destination: Spanned<String>,
    #[serde(default)]
    pub writable: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub memory: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub max_concurrency: Option<Spanned<i64>>,
    pub max_output: Option<Spanned<String>>,
    pub max_host_calls: Option<Spanned<i64>>,
    pub fuel: Option<Spanned<i64>>,
    pub max_outbound_concurrency: Option<Spanned<i64>>,
}

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
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum RawExecutor {
    #[default]
    Http,
    Wagi,
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
    pub max_outbound_concurrency: Option<Spanned<i64>>,
}

//! The runtime config: what is specific to the machine an app runs on, kept out of the
//! portable `wasmgate.toml`. Which backend serves each key-value store and SQL database (and
//! its credentials), where embedded data lives, variable values, and the outbound-HTTP policy
//! knobs an operator owns.
//!
//! ```toml
//! state_dir = "/var/lib/wasmgate/todo"     # default: .wasmgate next to the manifest
//!
//! [outbound_http]
//! allow_private = false                    # true: guests may reach private addresses
//! connect_timeout = "5s"
//!
//! [key_value_store.default]
//! type = "redis"                           # or "disk" (the default), with `path`
//! url_env = "REDIS_URL"                    # or url = "redis://127.0.0.1:6379"
//!
//! [sql_database.default]
//! type = "postgres"                        # or "mysql", or "sqlite" (the default), with `path`
//! url_env = "DATABASE_URL"
//! max_connections = 16
//!
//! [variables]
//! api_base = "https://api.example.com"
//! ```
//!
//! Without a file, or for names it does not mention, the store and database called `default`
//! are embedded: an on-disk key-value file and a SQLite file under `state_dir`.

use crate::error::ManifestError;
use crate::parse::{is_identifier, is_variable_name, Source};
use crate::units::parse_duration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// The name of the store and database every app gets without configuration.
pub const DEFAULT_STORE: &str = "default";

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The file this came from; `None` for the built-in defaults.
    pub path: Option<PathBuf>,
    /// Where embedded backends keep their files (absolute).
    pub state_dir: PathBuf,
    pub outbound_http: OutboundHttpConfig,
    /// Configured key-value stores by name (the embedded `default` is added when absent).
    pub key_value_stores: BTreeMap<String, KeyValueBackend>,
    /// Configured SQL databases by name (the embedded `default` is added when absent).
    pub sql_databases: BTreeMap<String, SqlBackend>,
    /// Values of app variables.
    pub variables: BTreeMap<String, String>,
    /// Authentication schemes routes may require (`[auth.api_key.NAME]`, `[auth.jwt.NAME]`).
    pub auth: crate::auth::AuthConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundHttpConfig {
    /// Let guests reach private, loopback and link-local addresses through names and wildcard
    /// patterns (local development). Patterns naming an IP address or `localhost` are allowed
    /// regardless.
    pub allow_private: bool,
    pub connect_timeout: Duration,
}

impl Default for OutboundHttpConfig {
    fn default() -> Self {
        OutboundHttpConfig {
            allow_private: false,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// A connection string that may carry a password: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> SecretUrl {
        SecretUrl(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretUrl(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValueBackend {
    /// An embedded store in one file.
    Disk {
        path: PathBuf,
    },
    Redis {
        url: SecretUrl,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlBackend {
    Sqlite {
        path: PathBuf,
    },
    Mysql {
        url: SecretUrl,
        max_connections: u32,
    },
    Postgres {
        url: SecretUrl,
        max_connections: u32,
    },
}

impl SqlBackend {
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
}

impl RuntimeConfig {
    /// The built-in configuration for an app whose manifest is at `manifest_path`.
    pub fn defaults(manifest_path: &Path) -> RuntimeConfig {
        let mut config = RuntimeConfig {
            path: None,
            state_dir: crate::parse::base_dir(manifest_path).join(".wasmgate"),
            outbound_http: OutboundHttpConfig::default(),
            key_value_stores: BTreeMap::new(),
            sql_databases: BTreeMap::new(),
            variables: BTreeMap::new(),
            auth: crate::auth::AuthConfig::default(),
        };
        config.add_defaults();
        config
    }

    /// Reads a runtime config file; relative paths in it are resolved from its directory.
    /// `url_env` settings are read from the process environment now.
    pub fn load(path: impl AsRef<Path>) -> Result<RuntimeConfig, ManifestError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        RuntimeConfig::parse(&text, path, |name| std::env::var(name).ok())
    }

    /// Validates runtime config `text` as if read from `path`; `env` looks up `url_env` names.
    pub fn parse(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<RuntimeConfig, ManifestError> {
        let source = Source { text, path };
        let raw: RawRuntimeConfig = source.deserialize()?;
        let base = crate::parse::base_dir(path);
        let state_dir = match &raw.state_dir {
            Some(dir) => base.join(dir.get_ref()),
            None => base.join(".wasmgate"),
        };
        let mut outbound_http = OutboundHttpConfig::default();
        if let Some(raw_http) = &raw.outbound_http {
            outbound_http.allow_private = raw_http.allow_private;
            if let Some(timeout) = &raw_http.connect_timeout {
                let field = "outbound_http.connect_timeout";
                outbound_http.connect_timeout = parse_duration(timeout.get_ref())
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        source.error(timeout.span(), field, "expected a duration like \"5s\"")
                    })?;
            }
        }
        let mut key_value_stores = BTreeMap::new();
        for (name, store) in &raw.key_value_stores {
            let field = format!("key_value_store.{name}");
            source.check_name(name, store.span(), &field)?;
            let store = store.get_ref();
            let backend = match store.kind.get_ref().as_str() {
                "disk" => KeyValueBackend::Disk {
                    path: match &store.path {
                        Some(p) => base.join(p.get_ref()),
                        None => state_dir.join(format!("key-value-{name}.db")),
                    },
                },
                "redis" => KeyValueBackend::Redis {
                    url: source.url(&store.url, &store.url_env, store.kind.span(), &field, &env)?,
                },
                other => {
                    return Err(source.error(
                        store.kind.span(),
                        &format!("{field}.type"),
                        format!("unknown key-value backend {other:?}; use \"disk\" or \"redis\""),
                    ))
                }
            };
            source.check_backend_fields(store, &backend_kind_fields(&backend), &field)?;
            key_value_stores.insert(name.clone(), backend);
        }
        let mut sql_databases = BTreeMap::new();
        for (name, db) in &raw.sql_databases {
            let field = format!("sql_database.{name}");
            source.check_name(name, db.span(), &field)?;
            let db = db.get_ref();
            let max_connections = match &db.max_connections {
                Some(n) if (1..=1000).contains(n.get_ref()) => *n.get_ref() as u32,
                Some(n) => {
                    return Err(source.error(
                        n.span(),
                        &format!("{field}.max_connections"),
                        "must be between 1 and 1000",
                    ))
                }
                None => SqlBackend::DEFAULT_MAX_CONNECTIONS,
            };
            let backend = match db.kind.get_ref().as_str() {
                "sqlite" => SqlBackend::Sqlite {
                    path: match &db.path {
                        Some(p) => base.join(p.get_ref()),
                        None => state_dir.join(format!("sql-{name}.db")),
                    },
                },
                "mysql" | "mariadb" => SqlBackend::Mysql {
                    url: source.url(&db.url, &db.url_env, db.kind.span(), &field, &env)?,
                    max_connections,
                },
                "postgres" | "postgresql" => SqlBackend::Postgres {
                    url: source.url(&db.url, &db.url_env, db.kind.span(), &field, &env)?,
                    max_connections,
                },
                other => {
                    return Err(source.error(
                        db.kind.span(),
                        &format!("{field}.type"),
                        format!(
                        "unknown SQL backend {other:?}; use \"sqlite\", \"mysql\" or \"postgres\""
                    ),
                    ))
                }
            };
            let allowed = match backend {
                SqlBackend::Sqlite { .. } => &["path"][..],
                _ => &["url", "url_env", "max_connections"][..],
            };
            source.check_backend_fields(db, allowed, &field)?;
            sql_databases.insert(name.clone(), backend);
        }
        let mut variables = BTreeMap::new();
        for (name, value) in &raw.variables {
            if !is_variable_name(name) {
                return Err(source.error(
                    value.span(),
                    &format!("variables.{name}"),
                    "a variable name uses only lowercase letters, digits and '_'",
                ));
            }
            variables.insert(name.clone(), value.get_ref().clone());
        }
        let auth = source.auth_config(&raw.auth.unwrap_or_default(), &base, &env)?;
        let mut config = RuntimeConfig {
            path: Some(path.to_path_buf()),
            state_dir,
            outbound_http,
            key_value_stores,
            sql_databases,
            variables,
            auth,
        };
        config.add_defaults();
        Ok(config)
    }

    fn add_defaults(&mut self) {
        let state_dir = self.state_dir.clone();
        self.key_value_stores
            .entry(DEFAULT_STORE.to_string())
            .or_insert_with(|| KeyValueBackend::Disk {
                path: state_dir.join("key-value-default.db"),
            });
        self.sql_databases
            .entry(DEFAULT_STORE.to_string())
            .or_insert_with(|| SqlBackend::Sqlite {
                path: state_dir.join("sql-default.db"),
            });
    }

    /// Where this config came from, for messages.
    pub fn describe(&self) -> String {
        match &self.path {
            Some(path) => path.display().to_string(),
            None => "the built-in runtime config".to_string(),
        }
    }
}

fn backend_kind_fields(backend: &KeyValueBackend) -> Vec<&'static str> {
    match backend {
        KeyValueBackend::Disk { .. } => vec!["path"],
        KeyValueBackend::Redis { .. } => vec!["url", "url_env"],
    }
}

impl Source<'_> {
    /// Names of stores, databases and auth schemes: identifiers, as component names are.
    pub(crate) fn check_name(
        &self,
        name: &str,
        span: std::ops::Range<usize>,
        field: &str,
    ) -> Result<(), ManifestError> {
        if is_identifier(name) {
            Ok(())
        } else {
            Err(self.error(
                span,
                field,
                "a name must use only letters, digits, '-', '_' and '.'",
            ))
        }
    }

    /// Settings that do not apply to the chosen backend are errors, not silently ignored.
    fn check_backend_fields(
        &self,
        raw: &RawBackend,
        allowed: &[&str],
        field: &str,
    ) -> Result<(), ManifestError> {
        let present = [
            ("path", raw.path.as_ref().map(Spanned::span)),
            ("url", raw.url.as_ref().map(Spanned::span)),
            ("url_env", raw.url_env.as_ref().map(Spanned::span)),
            (
                "max_connections",
                raw.max_connections.as_ref().map(Spanned::span),
            ),
        ];
        for (key, span) in present {
            if let (Some(span), false) = (span, allowed.contains(&key)) {
                return Err(self.error(
                    span,
                    &format!("{field}.{key}"),
                    format!("{key} does not apply to type = {:?}", raw.kind.get_ref()),
                ));
            }
        }
        Ok(())
    }

    fn url(
        &self,
        url: &Option<Spanned<String>>,
        url_env: &Option<Spanned<String>>,
        kind_span: std::ops::Range<usize>,
        field: &str,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<SecretUrl, ManifestError> {
        match (url, url_env) {
            (Some(url), None) => Ok(SecretUrl::new(url.get_ref().clone())),
            (None, Some(name)) => env(name.get_ref()).map(SecretUrl::new).ok_or_else(|| {
                self.error(
                    name.span(),
                    &format!("{field}.url_env"),
                    format!("environment variable {} is not set", name.get_ref()),
                )
            }),
            (Some(_), Some(name)) => Err(self.error(
                name.span(),
                &format!("{field}.url_env"),
                "give url or url_env, not both",
            )),
            (None, None) => Err(self.error(
                kind_span,
                field,
                "this backend needs url (or url_env, naming an environment variable)",
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntimeConfig {
    state_dir: Option<Spanned<String>>,
    outbound_http: Option<RawOutboundHttp>,
    #[serde(default, rename = "key_value_store")]
    key_value_stores: BTreeMap<String, Spanned<RawBackend>>,
    #[serde(default, rename = "sql_database")]
    sql_databases: BTreeMap<String, Spanned<RawBackend>>,
    #[serde(default)]
    variables: BTreeMap<String, Spanned<String>>,
    auth: Option<crate::parse::RawAuth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutboundHttp {
    #[serde(default)]
    allow_private: bool,
    connect_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    path: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    url_env: Option<Spanned<String>>,
    max_connections: Option<Spanned<i64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuntimeConfig, ManifestError> {
        RuntimeConfig::parse(text, Path::new("/etc/app/runtime.toml"), |name| {
            (name == "DB_URL").then(|| "postgres://u:p@db/app".to_string())
        })
    }

    #[test]
    fn defaults_are_embedded() {
        let config = RuntimeConfig::defaults(Path::new("/srv/app/wasmgate.toml"));
        assert_eq!(config.state_dir, Path::new("/srv/app/.wasmgate"));
        assert_eq!(
            config.key_value_stores[DEFAULT_STORE],
            KeyValueBackend::Disk {
                path: "/srv/app/.wasmgate/key-value-default.db".into()
            }
        );
        assert!(matches!(
            config.sql_databases[DEFAULT_STORE],
            SqlBackend::Sqlite { .. }
        ));
    }

    #[test]
    fn backends_and_secrets() {
        let config = parse(
            r#"
state_dir = "data"
[outbound_http]
allow_private = true
connect_timeout = "2s"
[key_value_store.cache]
type = "redis"
url = "redis://127.0.0.1:6379"
[sql_database.default]
type = "postgres"
url_env = "DB_URL"
max_connections = 4
[variables]
api_base = "https://x"
"#,
        )
        .unwrap();
        assert_eq!(config.state_dir, Path::new("/etc/app/data"));
        assert!(config.outbound_http.allow_private);
        assert_eq!(config.outbound_http.connect_timeout, Duration::from_secs(2));
        assert!(matches!(
            config.key_value_stores["cache"],
            KeyValueBackend::Redis { .. }
        ));
        assert!(matches!(
            config.key_value_stores["default"],
            KeyValueBackend::Disk { .. }
        ));
        match &config.sql_databases["default"] {
            SqlBackend::Postgres {
                url,
                max_connections,
            } => {
                assert_eq!(url.expose(), "postgres://u:p@db/app");
                assert_eq!(*max_connections, 4);
                assert!(!format!("{url:?}").contains("u:p"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(config.variables["api_base"], "https://x");
    }

    #[test]
    fn errors_name_the_field() {
        for (text, field) in [
            (
                "[key_value_store.a]\ntype = \"etcd\"",
                "key_value_store.a.type",
            ),
            ("[key_value_store.a]\ntype = \"redis\"", "key_value_store.a"),
            (
                "[key_value_store.a]\ntype = \"disk\"\nurl = \"redis://x\"",
                "key_value_store.a.url",
            ),
            (
                "[sql_database.a]\ntype = \"mysql\"\nurl_env = \"NOPE\"",
                "sql_database.a.url_env",
            ),
            (
                "[sql_database.a]\ntype = \"sqlite\"\nmax_connections = 3",
                "sql_database.a.max_connections",
            ),
            (
                "[sql_database.a]\ntype = \"mysql\"\nurl = \"x\"\nmax_connections = 0",
                "sql_database.a.max_connections",
            ),
            (
                "[outbound_http]\nconnect_timeout = \"soon\"",
                "outbound_http.connect_timeout",
            ),
            ("[variables]\nBad = \"x\"", "variables.Bad"),
            ("typo = 1", "typo"),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.field(), Some(field), "{text}: {err}");
        }
    }
}

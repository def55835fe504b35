//! From TOML text to a validated [`Manifest`]: deserialize strictly, then check what serde
//! cannot (paths exist, routes are well formed and unique, references resolve, limits are sane).

use crate::error::ManifestError;
use crate::location::{excerpt, position};
use crate::model::{
    App, Component, Executor, FileMount, Limits, Manifest, Route, RoutePath, Variable, WagiOptions,
};
use crate::raw::{RawComponent, RawExecutor, RawLimits, RawManifest};
use crate::units::{parse_duration, parse_size};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

impl Manifest {
    /// Reads and validates the manifest at `path`: a `wasmgate.toml`, or a WAGI `modules.toml`
    /// (see [`Manifest::parse`] for how they are told apart). Relative paths inside it are
    /// resolved against the manifest's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::parse(&text, path)
    }

    /// Validates manifest `text` as if it had been read from `path`.
    ///
    /// A WAGI `modules.toml` (`[[module]]` entries and no `[app]` table, or a file named
    /// `modules.toml` without `[app]`) is parsed as [`Manifest::parse_wagi`] does.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let source = Source { text, path };
        if source.detect_format()? == Format::Wagi {
            return Manifest::parse_wagi(text, path);
        }
        let raw: RawManifest = source.deserialize()?;
        source.validate(raw, &base_dir(path))
    }
}

/// The directory relative paths in the manifest at `path` are resolved against, made absolute.
pub(crate) fn base_dir(path: &Path) -> PathBuf {
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    std::path::absolute(&base_dir).unwrap_or(base_dir)
}

/// Which kind of file a manifest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// A `wasmgate.toml`: an `[app]` table, `[[route]]`s and `[component.NAME]` tables.
    Wasmgate,
    /// A WAGI `modules.toml`: `[[module]]` entries only.
    Wagi,
}

/// Just enough of the top level to tell the two formats apart.
#[derive(Deserialize)]
struct FormatProbe {
    app: Option<Spanned<IgnoredAny>>,
    module: Option<Spanned<IgnoredAny>>,
}

/// The manifest text and the file it came from: every error is reported against these.
pub(crate) struct Source<'a> {
    pub(crate) text: &'a str,
    pub(crate) path: &'a Path,
}

impl Source<'_> {
    /// Tells a `wasmgate.toml` from a WAGI `modules.toml` by their top-level keys. Text that is
    /// not valid TOML is left to the parser of the format its file name suggests, which reports
    /// the syntax error.
    pub(crate) fn detect_format(&self) -> Result<Format, ManifestError> {
        let named_modules_toml = self
            .path
            .file_name()
            .is_some_and(|name| name == crate::WAGI_FILE_NAME);
        let Ok(probe) = toml::from_str::<FormatProbe>(self.text) else {
            return Ok(if named_modules_toml {
                Format::Wagi
            } else {
                Format::Wasmgate
            });
        };
        match (probe.app, probe.module) {
            (Some(app), Some(module)) => Err(self.both_formats_error(&app, &module)),
            (None, Some(_)) => Ok(Format::Wagi),
            (None, None) if named_modules_toml => Ok(Format::Wagi),
            _ => Ok(Format::Wasmgate),
        }
    }

    fn both_formats_error(
        &self,
        app: &Spanned<IgnoredAny>,
        module: &Spanned<IgnoredAny>,
    ) -> ManifestError {
        let app_line = position(self.text, app.span().start).line;
        self.error(
            module.span(),
            "module",
            format!(
                "[[module]] entries belong in a WAGI modules.toml, but this file also has the \
                 wasmgate.toml [app] table (line {app_line}); keep one format per file"
            ),
        )
    }

    pub(crate) fn error(
        &self,
        span: Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> ManifestError {
        let pos = position(self.text, span.start);
        ManifestError::Invalid {
            file: self.path.to_path_buf(),
            line: pos.line,
            column: pos.column,
            field: field.to_string(),
            message: message.into(),
            excerpt: excerpt(self.text, span),
        }
    }

    /// Deserializes the whole text into `T`, reporting the first error with its field path.
    pub(crate) fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ManifestError> {
        let deserializer = toml::de::Deserializer::parse(self.text)
            .map_err(|e| self.toml_error(&e, String::new()))?;
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            // Spanned<T> shows up in serde's path as a private key; users never wrote it.
            let field = e
                .path()
                .to_string()
                .replace(".$__serde_spanned_private_value", "");
            self.toml_error(e.inner(), field)
        })
    }

    fn toml_error(&self, error: &toml::de::Error, field: String) -> ManifestError {
        let span = error.span().unwrap_or(0..0);
        let field = if field.is_empty() || field == "." {
            "(manifest)".to_string()
        } else {
            field
        };
        self.error(span, &field, error.message().trim_end())
    }

    fn validate(&self, raw: RawManifest, base_dir: &Path) -> Result<Manifest, ManifestError> {
        let app = App {
            name: self.app_name(&raw.app.name)?,
            wagi_compat: false,
        };
        let variables = self.app_variables(&raw.variables)?;
        let mut components = BTreeMap::new();
        for (name, component) in &raw.components {
            let component = self.component(name, component, base_dir, &variables)?;
            components.insert(name.clone(), component);
        }
        let mut routes = Vec::with_capacity(raw.routes.len());
        let mut seen: HashMap<(Option<String>, RoutePath), usize> = HashMap::new();
        for (index, raw_route) in raw.routes.iter().enumerate() {
            let field = format!("route[{index}]");
            let path = self.route_path(&raw_route.path, &format!("{field}.path"))?;
            let host = match &raw_route.host {
                Some(host) => Some(self.route_host(host, &format!("{field}.host"))?),
                None => None,
            };
            let component = raw_route.component.get_ref();
            if !components.contains_key(component) {
                let known: Vec<&str> = components.keys().map(String::as_str).collect();
                return Err(self.error(
                    raw_route.component.span(),
                    &format!("{field}.component"),
                    format!(
                        "no component named {component:?} (defined: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
            let line = position(self.text, raw_route.path.span().start).line;
            if let Some(first_line) = seen.insert((host.clone(), path.clone()), line) {
                return Err(self.error(
                    raw_route.path.span(),
                    &format!("{field}.path"),
                    format!("route {path} is defined twice (first at line {first_line})"),
                ));
            }
            routes.push(Route {
                path,
                component: component.clone(),
                host,
                line,
                pass_authorization: raw_route
                    .pass_authorization
                    .as_ref()
                    .is_some_and(|flag| *flag.get_ref()),
                limits: self.route_limits(raw_route, &field, &components[component])?,
                auth: match &raw_route.auth {
                    Some(auth) => Some(self.route_auth(auth, &field)?),
                    None => None,
                },
                cors: match &raw_route.cors {
                    Some(cors) => Some(self.route_cors(cors, &field)?),
                    None => None,
                },
            });
        }
        Ok(Manifest {
            path: self.path.to_path_buf(),
            app,
            routes,
            components,
            variables,
        })
    }

    fn app_name(&self, name: &Spanned<String>) -> Result<String, ManifestError> {
        if !is_identifier(name.get_ref()) {
            return Err(self.error(
                name.span(),
                "app.name",
                "must be non-empty and use only letters, digits, '-', '_' and '.'",
            ));
        }
        Ok(name.get_ref().clone())
    }

    pub(crate) fn route_path(
        &self,
        path: &Spanned<String>,
        field: &str,
    ) -> Result<RoutePath, ManifestError> {
        let text = path.get_ref();
        let fail = |message: &str| Err(self.error(path.span(), field, message));
        if !text.starts_with('/') {
            return fail("a route path must start with '/'");
        }
        if text.contains(['?', '#']) {
            return fail("a route path cannot contain a query ('?') or fragment ('#')");
        }
        let (prefix, wildcard) = match text.strip_suffix("/...") {
            Some(prefix) => (prefix, true),
            None => (text.as_str(), false),
        };
        if prefix.contains("...") {
            return fail("'...' is only allowed as a trailing wildcard segment: \"/prefix/...\"");
        }
        if prefix.contains("//") {
            return fail("a route path cannot contain an empty segment ('//')");
        }
        Ok(if wildcard {
            RoutePath::Prefix(prefix.to_string())
        } else {
            RoutePath::Exact(text.clone())
        })
    }

    fn route_host(&self, host: &Spanned<String>, field: &str) -> Result<String, ManifestError> {
        // The router drops a request host's trailing dot (`example.com.` is `example.com`);
        // a route host kept with one would never match.
        let text = host.get_ref().trim().trim_end_matches('.');
        let valid = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !valid {
            return Err(self.error(
                host.span(),
                field,
                "a route host is a DNS name like \"example.com\" (no scheme, port or path)",
            ));
        }
        Ok(text.to_ascii_lowercase())
    }

    fn component(
        &self,
        name: &str,
        raw: &Spanned<RawComponent>,
        base_dir: &Path,
        app_variables: &BTreeMap<String, Variable>,
    ) -> Result<Component, ManifestError> {
        let field = format!("component.{name}");
        if !is_identifier(name) {
            return Err(self.error(
                raw.span(),
                &field,
                "a component name must use only letters, digits, '-', '_' and '.'",
            ));
        }
        let raw_component = raw.get_ref();
        let source = self.existing_path(
            &raw_component.source,
            base_dir,
            &format!("{field}.source"),
            false,
        )?;
        let executor = match raw_component.executor {
            RawExecutor::Http => Executor::Http,
            RawExecutor::Wagi => Executor::Wagi,
            RawExecutor::Service => Executor::Service,
        };
        let wagi = self.wagi_options(raw_component, executor, &field)?;
        let service = self.service_options(raw_component, executor, &field)?;
        let environment =
            self.environment(&raw_component.environment, &format!("{field}.environment"))?;
        let mut files = Vec::with_capacity(raw_component.files.len());
        for (index, mount) in raw_component.files.iter().enumerate() {
            let mount_field = format!("{field}.files[{index}]");
            let source = self.existing_path(
                &mount.source,
                base_dir,
                &format!("{mount_field}.source"),
                true,
            )?;
            let destination = mount.destination.get_ref();
            if !destination.starts_with('/') {
                return Err(self.error(
                    mount.destination.span(),
                    &format!("{mount_field}.destination"),
                    "a destination is an absolute guest path, like \"/static\"",
                ));
            }
            files.push(FileMount {
                source,
                destination: destination.clone(),
                writable: mount.writable,
            });
        }
        let limits = self.limits(&raw_component.limits, &format!("{field}.limits"))?;
        if let (Some(max_output), Executor::Http) = (&raw_component.limits.max_output, executor) {
            return Err(self.error(
                max_output.span(),
                &format!("{field}.limits.max_output"),
                "max_output applies to executor = \"wagi\" only",
            ));
        }
        let grants = self.grants(raw_component, &field, app_variables)?;
        let max_outbound_concurrency = match &raw_component.limits.max_outbound_concurrency {
            Some(value) => Some(self.outbound_concurrency(
                value,
                &format!("{field}.limits.max_outbound_concurrency"),
            )?),
            None => None,
        };
        Ok(Component {
            name: name.to_string(),
            source,
            executor,
            environment,
            files,
            limits,
            wagi,
            allowed_outbound_hosts: grants.allowed_outbound_hosts,
            max_outbound_concurrency,
            key_value_stores: grants.key_value_stores,
            sql_databases: grants.sql_databases,
            variables: grants.variables,
            service,
        })
    }

    /// A cap on concurrent outbound requests per instance (1-10000).
    pub(crate) fn outbound_concurrency(
        &self,
        value: &Spanned<i64>,
        field: &str,
    ) -> Result<u32, ManifestError> {
        let count = *value.get_ref();
        if !(1..=10_000).contains(&count) {
            return Err(self.error(value.span(), field, "must be between 1 and 10000"));
        }
        Ok(count as u32)
    }

    /// Checks environment variable names; `field` names the whole table.
    pub(crate) fn environment(
        &self,
        raw: &BTreeMap<String, Spanned<String>>,
        field: &str,
    ) -> Result<BTreeMap<String, String>, ManifestError> {
        let mut environment = BTreeMap::new();
        for (key, value) in raw {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(self.error(
                    value.span(),
                    field,
                    format!("invalid environment variable name {key:?}"),
                ));
            }
            environment.insert(key.clone(), value.get_ref().clone());
        }
        Ok(environment)
    }

    fn wagi_options(
        &self,
        raw: &RawComponent,
        executor: Executor,
        field: &str,
    ) -> Result<Option<WagiOptions>, ManifestError> {
        if executor != Executor::Wagi {
            for (key, value) in [("entrypoint", &raw.entrypoint), ("argv", &raw.argv)] {
                if let Some(value) = value {
                    return Err(self.error(
                        value.span(),
                        &format!("{field}.{key}"),
                        format!("{key} applies to executor = \"wagi\" only"),
                    ));
                }
            }
            return Ok(None);
        }
        let mut options = WagiOptions::default();
        if let Some(entrypoint) = &raw.entrypoint {
            if entrypoint.get_ref().trim().is_empty() {
                return Err(self.error(
                    entrypoint.span(),
                    &format!("{field}.entrypoint"),
                    "entrypoint must name an exported function",
                ));
            }
            options.entrypoint = entrypoint.get_ref().clone();
        }
        if let Some(argv) = &raw.argv {
            options.argv = argv.get_ref().clone();
        }
        Ok(Some(options))
    }

    fn existing_path(
        &self,
        value: &Spanned<String>,
        base_dir: &Path,
        field: &str,
        want_dir: bool,
    ) -> Result<PathBuf, ManifestError> {
        self.check_path(
            base_dir.join(value.get_ref()),
            value.span(),
            field,
            want_dir,
        )
    }

    /// Checks that `path` is an existing file (or directory, if `want_dir`); errors point at
    /// `span`, where the path was written.
    pub(crate) fn check_path(
        &self,
        path: PathBuf,
        span: Range<usize>,
        field: &str,
        want_dir: bool,
    ) -> Result<PathBuf, ManifestError> {
        let kind = if want_dir { "directory" } else { "file" };
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() == want_dir => Ok(path),
            Ok(_) => Err(self.error(span, field, format!("{} is not a {kind}", path.display()))),
            Err(e) => Err(self.error(
                span,
                field,
                format!("{kind} {} not found ({e})", path.display()),
            )),
        }
    }

    fn limits(&self, raw: &RawLimits, field: &str) -> Result<Limits, ManifestError> {
        let mut limits = Limits::default();
        if let Some(memory) = &raw.memory {
            let f = format!("{field}.memory");
            let bytes =
                parse_size(memory.get_ref()).map_err(|m| self.error(memory.span(), &f, m))?;
            if !(64 << 10..=Limits::MAX_MEMORY).contains(&bytes) {
                return Err(self.error(memory.span(), &f, "memory must be between 64KiB and 4GiB"));
            }
            limits.memory = bytes;
        }
        if let Some(timeout) = &raw.timeout {
            let f = format!("{field}.timeout");
            let duration =
                parse_duration(timeout.get_ref()).map_err(|m| self.error(timeout.span(), &f, m))?;
            if duration.is_zero() {
                return Err(self.error(timeout.span(), &f, "timeout must be greater than zero"));
            }
            limits.timeout = duration;
        }
        if let Some(concurrency) = &raw.max_concurrency {
            let value = *concurrency.get_ref();
            if !(1..=10_000).contains(&value) {
                return Err(self.error(
                    concurrency.span(),
                    &format!("{field}.max_concurrency"),
                    "max_concurrency must be between 1 and 10000",
                ));
            }
            limits.max_concurrency = value as u32;
        }
        if let Some(max_output) = &raw.max_output {
            let f = format!("{field}.max_output");
            let bytes = parse_size(max_output.get_ref())
                .map_err(|m| self.error(max_output.span(), &f, m))?;
            if bytes == 0 {
                return Err(self.error(
                    max_output.span(),
                    &f,
                    "max_output must be greater than zero",
                ));
            }
            limits.max_output = bytes;
        }
        if let Some(calls) = &raw.max_host_calls {
            let value = *calls.get_ref();
            if value < 1 {
                return Err(self.error(
                    calls.span(),
                    &format!("{field}.max_host_calls"),
                    "max_host_calls must be at least 1",
                ));
            }
            limits.max_host_calls = Some(value as u64);
        }
        if let Some(fuel) = &raw.fuel {
            let value = *fuel.get_ref();
            if value < 1 {
                return Err(self.error(
                    fuel.span(),
                    &format!("{field}.fuel"),
                    "fuel must be at least 1 (it counts Wasm instructions; leave it out for no cap)",
                ));
            }
            limits.fuel = Some(value as u64);
        }
        Ok(limits)
    }
}

pub(crate) fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

mod auth;
pub(crate) use auth::{RawAuth, RawCors, RawRouteAuth};
mod grants;
mod limits;
pub(crate) use grants::is_variable_name;
mod service;

#[cfg(test)]
mod tests;

//! WAGI's `modules.toml`, read as it is: each `[[module]]` becomes one `wagi` [`Component`]
//! and one [`Route`].
//!
//! ```toml
//! [[module]]
//! route = "/hello/..."            # required; exact path or "/prefix/..." wildcard
//! module = "hello.wasm"           # required; path, file: URL, or .wat text file
//! entrypoint = "_start"           # exported function to call
//! argv = "${SCRIPT_NAME} ${ARGS}" # argv template
//! volumes = { "/data" = "data" }  # guest path = host directory
//! environment = { KEY = "value" }
//! allowed_hosts = ["https://api.example.com"]
//! http_max_concurrency = 4
//! ```
//!
//! Where Wasmgate differs from WAGI:
//! - Relative paths (`module`, volume host directories) are resolved against the directory of
//!   `modules.toml`; WAGI resolved them against its working directory.
//! - Volumes are mounted read-only; WAGI gave the guest full read-write access to them.
//! - Only files can be loaded: `oci:` and `bindle:` references are refused.
//! - Missing module files and volume directories are errors at load time.
//! - `http_max_concurrency` keeps WAGI's meaning, a cap on the module's concurrent outbound
//!   HTTP requests ([`Component::max_outbound_concurrency`]); it does not limit incoming
//!   requests (that is `limits.max_concurrency` in wasmgate.toml).
//! - Keys WAGI accepted but that mean nothing here (top-level `default_host`, a module's
//!   `bindle_server` and reserved `repository`) are accepted and ignored; any other key is an
//!   error.

mod module_ref;

use crate::error::ManifestError;
use crate::location::position;
use crate::model::{
    App, Component, Executor, FileMount, Limits, Manifest, Route, RoutePath, WagiOptions,
};
use crate::outbound::OutboundHost;
use crate::parse::{base_dir, is_identifier, Source};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A `modules.toml` exactly as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModulesToml {
    #[serde(default, rename = "module")]
    modules: Vec<RawModule>,
    /// Read by early WAGI releases (later ones take `--default-host`); ignored.
    #[serde(default, rename = "default_host")]
    _default_host: Option<String>,
}

/// One `[[module]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    route: Spanned<String>,
    module: Spanned<String>,
    #[serde(default)]
    entrypoint: Option<Spanned<String>>,
    #[serde(default)]
    argv: Option<Spanned<String>>,
    /// Guest path -> host directory.
    #[serde(default)]
    volumes: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    environment: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    allowed_hosts: Vec<Spanned<String>>,
    #[serde(default)]
    http_max_concurrency: Option<Spanned<i64>>,
    /// WAGI used it for `bindle:` references only, which are refused here; ignored.
    #[serde(default, rename = "bindle_server")]
    _bindle_server: Option<String>,
    /// "Reserved for future use" by WAGI; ignored.
    #[serde(default, rename = "repository")]
    _repository: Option<String>,
}

impl Manifest {
    /// Reads and validates the WAGI `modules.toml` at `path`, whatever the file is called.
    pub fn load_wagi(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::parse_wagi(&text, path)
    }

    /// Validates WAGI `modules.toml` `text` as if it had been read from `path`. Relative paths
    /// inside it are resolved against `path`'s directory, whose name becomes the app name.
    pub fn parse_wagi(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let source = Source { text, path };
        // Only for its error when the file mixes both formats.
        source.detect_format()?;
        let raw: RawModulesToml = source.deserialize()?;
        Converter {
            source: &source,
            base_dir: base_dir(path),
        }
        .manifest(raw)
    }
}

struct Converter<'a> {
    source: &'a Source<'a>,
    base_dir: PathBuf,
}

impl Converter<'_> {
    fn manifest(&self, raw: RawModulesToml) -> Result<Manifest, ManifestError> {
        if raw.modules.is_empty() {
            return Err(self.source.error(
                0..0,
                "module",
                "no [[module]] entries; a WAGI modules.toml needs at least one, e.g. \
                 [[module]] route = \"/\" module = \"hello.wasm\"",
            ));
        }
        let mut routes = Vec::with_capacity(raw.modules.len());
        let mut components = BTreeMap::new();
        let mut seen: HashMap<RoutePath, usize> = HashMap::new();
        for (index, module) in raw.modules.iter().enumerate() {
            let field = format!("module[{index}]");
            let path = self
                .source
                .route_path(&module.route, &format!("{field}.route"))?;
            let line = position(self.source.text, module.route.span().start).line;
            if let Some(first_line) = seen.insert(path.clone(), line) {
                return Err(self.source.error(
                    module.route.span(),
                    &format!("{field}.route"),
                    format!("route {path} is defined twice (first at line {first_line})"),
                ));
            }
            let mut component = self.component(module, &field)?;
            component.name = unique_name(&components, &component.source);
            routes.push(Route {
                path,
                component: component.name.clone(),
                host: None,
                line,
                pass_authorization: false,
                limits: Default::default(),
                auth: None,
                cors: None,
            });
            components.insert(component.name.clone(), component);
        }
        Ok(Manifest {
            path: self.source.path.to_path_buf(),
            app: App {
                name: app_name(&self.base_dir),
                wagi_compat: true,
            },
            routes,
            components,
            variables: BTreeMap::new(),
        })
    }

    /// The component of one `[[module]]`, without its name yet.
    fn component(&self, raw: &RawModule, field: &str) -> Result<Component, ManifestError> {
        let module_field = format!("{field}.module");
        let written = module_ref::module_path(raw.module.get_ref())
            .map_err(|message| self.source.error(raw.module.span(), &module_field, message))?;
        let source = self.existing(&written, &raw.module, &module_field, false)?;

        let mut wagi = WagiOptions::default();
        if let Some(entrypoint) = &raw.entrypoint {
            if entrypoint.get_ref().trim().is_empty() {
                return Err(self.source.error(
                    entrypoint.span(),
                    &format!("{field}.entrypoint"),
                    "entrypoint must name an exported function",
                ));
            }
            wagi.entrypoint = entrypoint.get_ref().clone();
        }
        if let Some(argv) = &raw.argv {
            wagi.argv = argv.get_ref().clone();
        }

        let environment = self
            .source
            .environment(&raw.environment, &format!("{field}.environment"))?;

        let mut files = Vec::with_capacity(raw.volumes.len());
        for (guest, host) in &raw.volumes {
            let volume_field = format!("{field}.volumes.{}", guest.get_ref());
            if !guest.get_ref().starts_with('/') {
                return Err(self.source.error(
                    guest.span(),
                    &volume_field,
                    "a volume's guest path (the key) is absolute, like \"/data\"",
                ));
            }
            let source = self.existing(Path::new(host.get_ref()), host, &volume_field, true)?;
            files.push(FileMount {
                source,
                destination: guest.get_ref().clone(),
                // WAGI mounted volumes read-write; Wasmgate mounts them read-only.
                writable: false,
            });
        }

        let mut allowed_outbound_hosts = Vec::with_capacity(raw.allowed_hosts.len());
        for (index, host) in raw.allowed_hosts.iter().enumerate() {
            let pattern = OutboundHost::parse(host.get_ref()).map_err(|message| {
                self.source.error(
                    host.span(),
                    &format!("{field}.allowed_hosts[{index}]"),
                    message,
                )
            })?;
            allowed_outbound_hosts.push(pattern);
        }

        let limits = Limits::default();
        let max_outbound_concurrency = match &raw.http_max_concurrency {
            Some(value) => Some(
                self.source
                    .outbound_concurrency(value, &format!("{field}.http_max_concurrency"))?,
            ),
            None => None,
        };

        Ok(Component {
            name: String::new(),
            source,
            executor: Executor::Wagi,
            environment,
            files,
            limits,
            wagi: Some(wagi),
            allowed_outbound_hosts,
            max_outbound_concurrency,
            key_value_stores: Vec::new(),
            sql_databases: Vec::new(),
            variables: BTreeMap::new(),
            service: None,
        })
    }

    /// Resolves `written` against the modules.toml directory and checks it exists. When it does
    /// not but would relative to the working directory (where WAGI looked), the error says so.
    fn existing(
        &self,
        written: &Path,
        value: &Spanned<String>,
        field: &str,
        want_dir: bool,
    ) -> Result<PathBuf, ManifestError> {
        let resolved = self.base_dir.join(written);
        self.source
            .check_path(resolved, value.span(), field, want_dir)
            .map_err(|mut error| {
                let from_cwd = std::env::current_dir().map(|cwd| cwd.join(written));
                if let (true, Ok(from_cwd), ManifestError::Invalid { message, .. }) =
                    (written.is_relative(), from_cwd, &mut error)
                {
                    if from_cwd.exists() {
                        message.push_str(&format!(
                            "; note: {} exists, but where WAGI resolved relative paths from its \
                             working directory, Wasmgate resolves them from the modules.toml's \
                             directory ({}): write an absolute path or one relative to it",
                            from_cwd.display(),
                            self.base_dir.display()
                        ));
                    }
                }
                error
            })
    }
}

/// A component name from the module file's stem (`hello.wasm` -> `hello`), with characters the
/// identifier rule refuses replaced by `-`, and `-2`, `-3`... appended if already taken.
fn unique_name(taken: &BTreeMap<String, Component>, source: &Path) -> String {
    let stem = source
        .file_stem()
        .map(|stem| sanitize(&stem.to_string_lossy()))
        .filter(|stem| !stem.is_empty())
        .unwrap_or_else(|| "module".to_string());
    if !taken.contains_key(&stem) {
        return stem;
    }
    (2..)
        .map(|n| format!("{stem}-{n}"))
        .find(|name| !taken.contains_key(name))
        .expect("some suffix is free")
}

/// The app name: the name of the directory holding modules.toml, or `wagi`.
fn app_name(base_dir: &Path) -> String {
    let dir = std::fs::canonicalize(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
    dir.file_name()
        .map(|name| sanitize(&name.to_string_lossy()))
        .filter(|name| is_identifier(name))
        .unwrap_or_else(|| "wagi".to_string())
}

/// Replaces every character not allowed in a Wasmgate name with `-`.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;

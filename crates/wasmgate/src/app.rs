//! One load of the app: manifest, runtime config, capabilities, compiled components, and the
//! routing table built from them. Startup makes the first; every hot reload makes another
//! beside the one serving (see `reload.rs`).

use anyhow::Context;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use wasmgate_capabilities::Capabilities;
use wasmgate_manifest::{Manifest, RoutePath, RuntimeConfig, MANIFEST_FILE_NAME};
use wasmgate_runtime::{Executor, RouteInfo, Runtime, RuntimeOptions};
use wasmgate_server::{AuthPolicies, Healthz, RouteLimiter, RouteTarget, Router};
use wasmgate_telemetry::Telemetry;

/// Where the app comes from, and what every load of it shares.
pub struct AppSource {
    pub manifest_path: PathBuf,
    pub runtime_config: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    history: usize,
    /// Made at the first load, named after that load's app, and kept across reloads so
    /// metrics and invocation history continue.
    telemetry: OnceLock<Arc<Telemetry>>,
    /// `--no-telemetry`: the telemetry made at the first load keeps nothing.
    pub telemetry_off: bool,
    /// Guest profile sessions, kept across reloads like the telemetry.
    profiles: Arc<wasmgate_runtime::Profiles>,
}

/// Everything one load produced.
pub struct LoadedApp {
    pub manifest: Manifest,
    pub runtime: Runtime,
    pub router: Router<Arc<dyn Executor>>,
    pub limiters: RouteLimiters,
}

/// The limiters of one load's `[[route]]`s, by host and path. The next load reuses a route's
/// limiter, state and all, when the route's component and limits are unchanged
/// ([`RouteLimiter::enforces`]); otherwise the route starts with a fresh one.
#[derive(Clone, Default)]
pub struct RouteLimiters(HashMap<(Option<String>, RoutePath), Arc<RouteLimiter>>);

impl RouteLimiters {
    /// The limiter for `route`: the kept one if it enforces the same limits, else a new one.
    fn for_route(
        &self,
        route: &wasmgate_manifest::Route,
        telemetry: &Arc<Telemetry>,
    ) -> Arc<RouteLimiter> {
        match self.0.get(&(route.host.clone(), route.path.clone())) {
            Some(kept) if kept.enforces(&route.component, &route.limits) => kept.clone(),
            _ => RouteLimiter::new(&route.component, &route.limits, Some(telemetry.clone())),
        }
    }
}

impl AppSource {
    /// `path` is the manifest or a directory holding wasmgate.toml.
    pub fn new(
        path: &Path,
        runtime_config: Option<PathBuf>,
        cache_dir: Option<PathBuf>,
        history: usize,
    ) -> AppSource {
        let manifest_path = if path.is_dir() {
            path.join(MANIFEST_FILE_NAME)
        } else {
            path.to_path_buf()
        };
        AppSource {
            manifest_path,
            runtime_config,
            cache_dir,
            history,
            telemetry: OnceLock::new(),
            telemetry_off: false,
            profiles: Arc::default(),
        }
    }

    /// Reads and checks every file, opens the backends, compiles the components (services
    /// start) and builds the routes, keeping the `serving` version's route limiters where a
    /// route's limits are unchanged. Blocks while compiling: call it where blocking is fine
    /// (startup, or a blocking task). Backends' pools and services belong to `tokio`.
    pub fn load(
        &self,
        tokio: &tokio::runtime::Handle,
        serving: &RouteLimiters,
    ) -> anyhow::Result<LoadedApp> {
        let manifest = Manifest::load(&self.manifest_path)?;
        let runtime_config = match &self.runtime_config {
            Some(path) => RuntimeConfig::load(path)?,
            None => RuntimeConfig::defaults(&manifest.path),
        };
        // Checked before anything is compiled: a route naming a missing scheme stops here.
        let auth = AuthPolicies::load(&manifest, &runtime_config)?;
        let capabilities = tokio.block_on(Capabilities::open(&manifest, runtime_config))?;
        let telemetry = self
            .telemetry
            .get_or_init(|| {
                Arc::new(match self.telemetry_off {
                    true => Telemetry::off(&manifest.app.name),
                    false => Telemetry::new(&manifest.app.name, self.history),
                })
            })
            .clone();
        let options = RuntimeOptions {
            cache_dir: self.cache_dir.clone(),
            telemetry: Some(telemetry),
            capabilities: Some(Arc::new(capabilities)),
            profiles: Some(self.profiles.clone()),
        };
        let _entered = tokio.enter();
        let runtime = Runtime::load(&manifest, &options)?;
        let (router, limiters) = build_router(&manifest, &runtime, &auth, serving)?;
        Ok(LoadedApp {
            manifest,
            runtime,
            router,
            limiters,
        })
    }

    /// Files whose change changes the app: the manifest, the runtime config and every
    /// component's Wasm file.
    pub fn watched_files(&self, manifest: &Manifest) -> Vec<PathBuf> {
        let mut files = vec![self.manifest_path.clone()];
        files.extend(self.runtime_config.iter().cloned());
        files.extend(manifest.components.values().map(|c| c.source.clone()));
        files.sort();
        files.dedup();
        files
    }
}

/// Routes from the manifest, the sub-routes components add below them (WAGI `_routes`), and
/// WAGI's built-in `/healthz` for apps read from modules.toml.
fn build_router(
    manifest: &Manifest,
    runtime: &Runtime,
    auth: &AuthPolicies,
    serving: &RouteLimiters,
) -> anyhow::Result<(Router<Arc<dyn Executor>>, RouteLimiters)> {
    let mut routes = Vec::with_capacity(manifest.routes.len());
    let mut taken: HashMap<(Option<String>, RoutePath), String> = HashMap::new();
    // One limiter per [[route]]: its sub-routes share the route's limits.
    let limiters: Vec<Arc<RouteLimiter>> = manifest
        .routes
        .iter()
        .map(|r| serving.for_route(r, runtime.telemetry()))
        .collect();
    let kept = RouteLimiters(
        manifest
            .routes
            .iter()
            .zip(&limiters)
            .map(|(r, limiter)| ((r.host.clone(), r.path.clone()), limiter.clone()))
            .collect(),
    );
    for (route, limiter) in manifest.routes.iter().zip(&limiters) {
        let executor = runtime.executor(&route.component).with_context(|| {
            format!(
                "route {} names unknown component {}",
                route.path, route.component
            )
        })?;
        taken.insert(
            (route.host.clone(), route.path.clone()),
            format!("the route at line {}", route.line),
        );
        routes.push(target(
            route.host.clone(),
            route.path.clone(),
            route,
            auth.guard(route, limiter.guard(executor), runtime.telemetry())?,
        ));
    }
    for (route, limiter) in manifest.routes.iter().zip(&limiters) {
        for sub in runtime.sub_routes(&route.component) {
            let path = sub.route.under(&route.path);
            let key = (route.host.clone(), path.clone());
            if let Some(owner) = taken.get(&key) {
                anyhow::bail!(
                    "component `{}` adds route {path} (`_routes` entry {} {}), which {owner} already serves",
                    route.component,
                    sub.route.relative,
                    sub.route.entrypoint
                );
            }
            taken.insert(key, format!("component `{}`'s `_routes`", route.component));
            routes.push(target(
                route.host.clone(),
                path,
                route,
                auth.guard(
                    route,
                    limiter.guard(sub.executor.clone()),
                    runtime.telemetry(),
                )?,
            ));
        }
    }
    let healthz = RoutePath::Exact("/healthz".into());
    if manifest.app.wagi_compat && !taken.contains_key(&(None, healthz.clone())) {
        routes.push(RouteTarget {
            host: None,
            info: Arc::new(RouteInfo {
                pattern: healthz.to_string().into(),
                path: healthz.clone(),
                pass_authorization: false,
            }),
            path: healthz,
            component: "(built-in health check)".into(),
            target: Arc::new(Healthz),
        });
    }
    Ok((Router::new(routes), kept))
}

fn target(
    host: Option<String>,
    path: RoutePath,
    route: &wasmgate_manifest::Route,
    executor: Arc<dyn Executor>,
) -> RouteTarget<Arc<dyn Executor>> {
    RouteTarget {
        host,
        info: Arc::new(RouteInfo {
            pattern: path.to_string().into(),
            path: path.clone(),
            pass_authorization: route.pass_authorization,
        }),
        path,
        component: route.component.clone(),
        target: executor,
    }
}

/// Routes as people read them: `(pattern with host, component)`, sorted.
pub fn route_table(router: &Router<Arc<dyn Executor>>) -> Vec<(String, String)> {
    let mut routes: Vec<(String, String)> = router
        .routes()
        .iter()
        .map(|r| {
            let pattern = match &r.host {
                Some(host) => format!("{host}{}", r.info.pattern),
                None => r.info.pattern.to_string(),
            };
            (pattern, r.component.clone())
        })
        .collect();
    routes.sort();
    routes
}

//! [`Runtime`]: the engine, its epoch ticker, and every component of an app ready to serve.

use crate::cache::{default_cache_dir, CacheStatus, CompileCache};
use crate::engine::{EngineSettings, EpochTicker};
use crate::error::LoadError;
use crate::executor::Executor;
use crate::host::HostState;
use crate::http_executor::HttpExecutor;
use crate::loader::{http_linker, load_http_component};
use crate::profiling::Profiles;
use crate::wagi::{self, SubRoute, WagiState};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmgate_capabilities::{Capabilities, Grant};
use wasmgate_manifest::{Executor as ExecutorKind, Manifest};
use wasmgate_telemetry::{CacheResult, Telemetry};
use wasmtime::component::Linker;
use wasmtime::Engine;

/// Where compiled artifacts go and where invocation records are sent.
#[derive(Clone)]
pub struct RuntimeOptions {
    /// `None` turns the compile cache off.
    pub cache_dir: Option<PathBuf>,
    /// Where invocation records go; `None` makes one for the app with a default history size.
    pub telemetry: Option<Arc<Telemetry>>,
    /// The app's opened backends; `None` grants components nothing (every capability denied).
    pub capabilities: Option<Arc<Capabilities>>,
    /// Guest profile sessions (kept across reloads); `None` makes one for this runtime.
    pub profiles: Option<Arc<Profiles>>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            cache_dir: default_cache_dir(),
            telemetry: None,
            capabilities: None,
            profiles: None,
        }
    }
}

/// Invocation records kept for the admin API unless configured otherwise.
pub const DEFAULT_HISTORY: usize = 1024;

/// What loading did for one component, for the startup report.
#[derive(Debug, Clone)]
pub struct LoadedComponent {
    pub name: String,
    pub executor: ExecutorKind,
    pub size: usize,
    pub cache: CacheStatus,
    pub load_time: Duration,
}

/// A route a component adds by itself (WAGI's `_routes`), below each route that names it.
#[derive(Clone)]
pub struct SubRouteExecutor {
    pub route: SubRoute,
    pub executor: Arc<dyn Executor>,
}

pub struct Runtime {
    /// The engine of components without fuel metering.
    engine: Engine,
    telemetry: Arc<Telemetry>,
    executors: BTreeMap<String, Arc<dyn Executor>>,
    sub_routes: BTreeMap<String, Vec<SubRouteExecutor>>,
    loaded: Vec<LoadedComponent>,
    profiles: Arc<Profiles>,
    _tickers: Vec<EpochTicker>,
}

/// An engine with its epoch ticker and the linkers that are built per engine.
struct EngineSlot {
    engine: Engine,
    http: Linker<HostState>,
    modules: wasmtime::Linker<WagiState>,
    ticker: EpochTicker,
}

impl EngineSlot {
    fn build(manifest: &Manifest, fuel: bool) -> Result<EngineSlot, LoadError> {
        let settings = EngineSettings::from_manifest(manifest, fuel);
        let engine = settings.build_engine().map_err(|e| {
            let message = format!("{e:#}");
            if message.contains("pool") {
                LoadError::Pool {
                    instances: settings.instances,
                    message,
                }
            } else {
                LoadError::Engine(e)
            }
        })?;
        Ok(EngineSlot {
            ticker: EpochTicker::start(&engine).map_err(|e| LoadError::Engine(e.into()))?,
            http: http_linker(&engine).map_err(LoadError::Engine)?,
            modules: wagi::module_linker(&engine).map_err(LoadError::Engine)?,
            engine,
        })
    }
}

impl Runtime {
    /// Builds the engines sized for `manifest` and loads every component. Fails on the first
    /// component that cannot be served, naming it.
    pub fn load(manifest: &Manifest, options: &RuntimeOptions) -> Result<Runtime, LoadError> {
        let plain = EngineSlot::build(manifest, false)?;
        // Only built when some component asks for fuel: it has its own instance pool.
        let metered = match manifest
            .components
            .values()
            .any(|c| c.limits.fuel.is_some())
        {
            true => Some(EngineSlot::build(manifest, true)?),
            false => None,
        };
        let cache = CompileCache::new(options.cache_dir.clone());
        let telemetry = options
            .telemetry
            .clone()
            .unwrap_or_else(|| Arc::new(Telemetry::new(&manifest.app.name, DEFAULT_HISTORY)));
        let profiles = options.profiles.clone().unwrap_or_default();
        let service_linker = crate::service::linker(&plain.engine).map_err(LoadError::Engine)?;
        let allow_private = options
            .capabilities
            .as_ref()
            .is_some_and(|c| c.config().outbound_http.allow_private);

        let mut executors: BTreeMap<String, Arc<dyn Executor>> = BTreeMap::new();
        let mut sub_routes: BTreeMap<String, Vec<SubRouteExecutor>> = BTreeMap::new();
        let mut loaded = Vec::new();
        for (name, component) in &manifest.components {
            let started = std::time::Instant::now();
            let grant = match &options.capabilities {
                Some(capabilities) => capabilities.grant(component)?,
                None => Grant::none(component),
            };
            let slot = match (&metered, component.limits.fuel) {
                (Some(metered), Some(_)) => metered,
                _ => &plain,
            };
            let (engine, linker, module_linker) = (&slot.engine, &slot.http, &slot.modules);
            let (executor, size, cache_status) = match component.executor {
                ExecutorKind::Http => {
                    let compiled = load_http_component(engine, linker, &cache, component)?;
                    crate::loader::check_pool_fits(compiled.pre.instance_pre().component(), name);
                    let executor = HttpExecutor::new(
                        Arc::new(component.clone()),
                        compiled.pre,
                        grant,
                        telemetry.clone(),
                        profiles.clone(),
                    );
                    (
                        Arc::new(executor) as Arc<dyn Executor>,
                        compiled.size,
                        compiled.cache,
                    )
                }
                ExecutorKind::Wagi => {
                    let loaded_wagi = wagi::load(
                        module_linker,
                        linker,
                        &cache,
                        component,
                        grant,
                        &telemetry,
                        &profiles,
                    )?;
                    let extra = loaded_wagi
                        .sub_routes
                        .into_iter()
                        .map(|(route, executor)| SubRouteExecutor {
                            route,
                            executor: executor as Arc<dyn Executor>,
                        })
                        .collect();
                    sub_routes.insert(name.clone(), extra);
                    let executor = loaded_wagi.executor as Arc<dyn Executor>;
                    (executor, loaded_wagi.size, loaded_wagi.cache)
                }
                ExecutorKind::Service => {
                    let service = crate::service::load(
                        engine,
                        &service_linker,
                        &cache,
                        component,
                        allow_private,
                        &telemetry,
                    )?;
                    let executor = service.executor as Arc<dyn Executor>;
                    (executor, service.size, service.cache)
                }
            };
            if let CacheStatus::Rebuilt(why) = &cache_status {
                tracing::warn!(component = %name, reason = %why, "compile cache entry was invalid; rebuilt it");
            }
            telemetry.metrics.component_loaded(
                name,
                component.limits.max_concurrency,
                cache_result(&cache_status),
            );
            loaded.push(LoadedComponent {
                name: name.clone(),
                executor: component.executor,
                size,
                cache: cache_status,
                load_time: started.elapsed(),
            });
            executors.insert(name.clone(), executor);
        }
        profiles.set_targets(crate::profiling::Targets::of(manifest, &sub_routes));
        let mut tickers = vec![plain.ticker];
        tickers.extend(metered.map(|slot| slot.ticker));
        Ok(Runtime {
            engine: plain.engine,
            telemetry,
            executors,
            sub_routes,
            loaded,
            profiles,
            _tickers: tickers,
        })
    }

    /// The executor serving component `name`.
    pub fn executor(&self, name: &str) -> Option<Arc<dyn Executor>> {
        self.executors.get(name).cloned()
    }

    /// Routes component `name` adds below each of its manifest routes (WAGI `_routes`).
    pub fn sub_routes(&self, name: &str) -> &[SubRouteExecutor] {
        self.sub_routes.get(name).map_or(&[], Vec::as_slice)
    }

    /// One entry per component, in name order, describing how it was loaded.
    pub fn loaded(&self) -> &[LoadedComponent] {
        &self.loaded
    }

    /// Components whose executor cannot serve yet (services still starting), in name order.
    pub fn not_ready(&self) -> Vec<&str> {
        self.executors
            .iter()
            .filter(|(_, executor)| !executor.ready())
            .map(|(name, _)| name.as_str())
            .collect()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Guest profile sessions for this runtime's components.
    pub fn profiles(&self) -> &Arc<Profiles> {
        &self.profiles
    }

    /// Where this runtime's invocation records go.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }
}

/// How `status` is counted in metrics (and named in reload reports).
pub fn cache_result(status: &CacheStatus) -> CacheResult {
    match status {
        CacheStatus::Hit => CacheResult::Hit,
        CacheStatus::Miss => CacheResult::Miss,
        CacheStatus::Rebuilt(_) => CacheResult::Rebuilt,
        CacheStatus::Disabled => CacheResult::Disabled,
    }
}

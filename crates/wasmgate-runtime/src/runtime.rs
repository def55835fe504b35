//! [`Runtime`]: the engine, its epoch ticker, and every component of an app ready to serve.

use crate::cache::{default_cache_dir, CacheStatus, CompileCache};
use crate::engine::{EngineSettings, EpochTicker};
use crate::error::LoadError;
use crate::executor::Executor;
use crate::http_executor::HttpExecutor;
use crate::loader::{http_linker, load_http_component};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmgate_manifest::{Executor as ExecutorKind, Manifest};
use wasmtime::Engine;

/// Where compiled artifacts go.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// `None` turns the compile cache off.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            cache_dir: default_cache_dir(),
        }
    }
}

/// What loading did for one component, for the startup report.
#[derive(Debug, Clone)]
pub struct LoadedComponent {
    pub name: String,
    pub executor: ExecutorKind,
    pub size: usize,
    pub cache: CacheStatus,
    pub load_time: Duration,
}

pub struct Runtime {
    engine: Engine,
    executors: BTreeMap<String, Arc<dyn Executor>>,
    loaded: Vec<LoadedComponent>,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine sized for `manifest` and loads every component. Fails on the first
    /// component that cannot be served, naming it.
    pub fn load(manifest: &Manifest, options: &RuntimeOptions) -> Result<Runtime, LoadError> {
        let settings = EngineSettings::from_manifest(manifest);
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
        let ticker = EpochTicker::start(&engine).map_err(|e| LoadError::Engine(e.into()))?;
        let cache = CompileCache::new(options.cache_dir.clone());
        let linker = http_linker(&engine).map_err(LoadError::Engine)?;

        let mut executors: BTreeMap<String, Arc<dyn Executor>> = BTreeMap::new();
        let mut loaded = Vec::new();
        for (name, component) in &manifest.components {
            let started = std::time::Instant::now();
            match component.executor {
                ExecutorKind::Http => {
                    let compiled = load_http_component(&engine, &linker, &cache, component)?;
                    crate::loader::check_pool_fits(compiled.pre.instance_pre().component(), name);
                    if let CacheStatus::Rebuilt(why) = &compiled.cache {
                        tracing::warn!(component = %name, reason = %why, "compile cache entry was invalid; rebuilt it");
                    }
                    loaded.push(LoadedComponent {
                        name: name.clone(),
                        executor: component.executor,
                        size: compiled.size,
                        cache: compiled.cache,
                        load_time: started.elapsed(),
                    });
                    let executor = HttpExecutor::new(Arc::new(component.clone()), compiled.pre);
                    executors.insert(name.clone(), Arc::new(executor));
                }
            }
        }
        Ok(Runtime {
            engine,
            executors,
            loaded,
            _ticker: ticker,
        })
    }

    /// The executor serving component `name`.
    pub fn executor(&self, name: &str) -> Option<Arc<dyn Executor>> {
        self.executors.get(name).cloned()
    }

    /// One entry per component, in name order, describing how it was loaded.
    pub fn loaded(&self) -> &[LoadedComponent] {
        &self.loaded
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

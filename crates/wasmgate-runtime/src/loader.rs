//! Turning a manifest component into something that can serve: read the file, compile it (or
//! take it from the cache), check its imports against what Wasmgate provides, and make the
//! `InstancePre` every request instantiates from.

use crate::cache::{CacheStatus, CompileCache};
use crate::engine::EngineSettings;
use crate::error::LoadError;
use crate::host::HostState;
use wasmgate_manifest::Component as ManifestComponent;
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// The linker shared by every `http` component: WASI 0.2 (`wasi:cli`, `wasi:filesystem`,
/// `wasi:clocks`, `wasi:random`, `wasi:io`, sockets) and `wasi:http`. Rust std guests import
/// `wasi:cli/environment` and `wasi:cli/exit` even when they only serve HTTP.
pub fn http_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    wasmgate_capabilities::add_to_linker(&mut linker)?;
    Ok(linker)
}

pub struct Compiled {
    pub pre: ProxyPre<HostState>,
    pub cache: CacheStatus,
    pub size: usize,
}

pub fn load_http_component(
    engine: &Engine,
    linker: &Linker<HostState>,
    cache: &CompileCache,
    component: &ManifestComponent,
) -> Result<Compiled, LoadError> {
    let name = &component.name;
    let wasm = std::fs::read(&component.source).map_err(|source| LoadError::Read {
        component: name.clone(),
        path: component.source.clone(),
        source,
    })?;
    let (compiled, status) =
        cache
            .load_or_compile(engine, &wasm)
            .map_err(|e| LoadError::Compile {
                component: name.clone(),
                path: component.source.clone(),
                message: format!("{e:#}"),
            })?;
    let instance_pre = linker
        .instantiate_pre(&compiled)
        .map_err(|e| LoadError::Link {
            component: name.clone(),
            message: format!("{e:#}"),
        })?;
    let pre = ProxyPre::new(instance_pre).map_err(|e| LoadError::NotAProxy {
        component: name.clone(),
        message: format!("{e:#}"),
    })?;
    Ok(Compiled {
        pre,
        cache: status,
        size: wasm.len(),
    })
}

pub fn check_pool_fits(component: &Component, name: &str) {
    if let Some(needed) = component.resources_required() {
        if needed.num_memories > EngineSettings::MEMORIES_PER_INSTANCE
            || needed.num_tables > EngineSettings::TABLES_PER_INSTANCE
        {
            tracing::warn!(
                component = name,
                memories = needed.num_memories,
                tables = needed.num_tables,
                "component needs more memories or tables per instance than the pool reserves"
            );
        }
    }
}

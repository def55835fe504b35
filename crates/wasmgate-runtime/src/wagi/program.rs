//! Loading a WAGI program: a core `wasm32-wasip1` command module (the common case, with an
//! entrypoint and optional `_routes`) or a `wasi:cli/run` component. Both are compiled through
//! the cache and pre-instantiated once, so a request only instantiates.

use crate::cache::{CacheStatus, CompileCache};
use crate::call_clock::{CallClock, HasCallClock};
use crate::error::LoadError;
use crate::host::HostState;
use crate::limiter::MemoryLimiter;
use crate::wagi::routes::{parse_routes, SubRoute};
use wasmgate_manifest::Component as ManifestComponent;
use wasmtime::component::{Component, Linker as ComponentLinker};
use wasmtime::{Engine, ExternType, InstancePre, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// Store data of a core-module WAGI instance.
pub struct WagiState {
    pub wasi: WasiP1Ctx,
    pub limiter: MemoryLimiter,
    pub clock: CallClock,
}

impl HasCallClock for WagiState {
    fn call_clock(&mut self) -> &mut CallClock {
        &mut self.clock
    }
}

pub enum Program {
    Module(InstancePre<WagiState>),
    Command(CommandPre<HostState>),
}

pub struct LoadedProgram {
    pub program: Program,
    pub sub_routes: Vec<SubRoute>,
    pub cache: CacheStatus,
    pub size: usize,
}

/// The linker for core modules: WASI preview 1, implemented by wasmtime-wasi over its p2 context.
pub fn module_linker(engine: &Engine) -> wasmtime::Result<Linker<WagiState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state: &mut WagiState| &mut state.wasi)?;
    Ok(linker)
}

pub fn load(
    engine: &Engine,
    modules: &Linker<WagiState>,
    components: &ComponentLinker<HostState>,
    cache: &CompileCache,
    component: &ManifestComponent,
    entrypoint: &str,
) -> Result<LoadedProgram, LoadError> {
    let name = &component.name;
    let source = std::fs::read(&component.source).map_err(|source| LoadError::Read {
        component: name.clone(),
        path: component.source.clone(),
        source,
    })?;
    let compile_error = |message: String| LoadError::Compile {
        component: name.clone(),
        path: component.source.clone(),
        message,
    };
    // WAGI's modules.toml may name `.wat` text; everything else is binary.
    let wasm = if source.starts_with(b"\0asm") {
        source
    } else {
        wat::parse_bytes(&source)
            .map_err(|e| compile_error(format!("{e}")))?
            .into_owned()
    };
    let size = wasm.len();
    let link_error = |message: String| LoadError::Link {
        component: name.clone(),
        message,
    };

    if wasmparser::Parser::is_component(&wasm) {
        if entrypoint != wasmgate_manifest::WagiOptions::DEFAULT_ENTRYPOINT {
            return Err(link_error(format!(
                "entrypoint {entrypoint:?} applies to core modules; a wasi:cli/run component starts at `run`"
            )));
        }
        let (compiled, cache_status) = cache
            .load_or_compile::<Component>(engine, &wasm)
            .map_err(|e| compile_error(format!("{e:#}")))?;
        let pre = components
            .instantiate_pre(&compiled)
            .map_err(|e| link_error(format!("{e:#}")))?;
        let command = CommandPre::new(pre).map_err(|e| LoadError::NotAProxy {
            component: name.clone(),
            message: format!("a wagi component must export wasi:cli/run: {e:#}"),
        })?;
        return Ok(LoadedProgram {
            program: Program::Command(command),
            sub_routes: Vec::new(),
            cache: cache_status,
            size,
        });
    }

    let (module, cache_status) = cache
        .load_or_compile::<Module>(engine, &wasm)
        .map_err(|e| compile_error(format!("{e:#}")))?;
    check_entrypoint(&module, entrypoint).map_err(link_error)?;
    let pre = modules
        .instantiate_pre(&module)
        .map_err(|e| link_error(format!("{e:#}")))?;
    let sub_routes = match module.get_export("_routes") {
        Some(_) => {
            check_entrypoint(&module, "_routes").map_err(link_error)?;
            let output = run_routes_export(&pre, component)
                .map_err(|e| link_error(format!("calling `_routes` failed: {e:#}")))?;
            let routes = parse_routes(&output).map_err(link_error)?;
            for route in &routes {
                check_entrypoint(&module, &route.entrypoint)
                    .map_err(|e| link_error(format!("_routes names {}: {e}", route.relative)))?;
            }
            routes
        }
        None => Vec::new(),
    };
    Ok(LoadedProgram {
        program: Program::Module(pre),
        sub_routes,
        cache: cache_status,
        size,
    })
}

fn check_entrypoint(module: &Module, entrypoint: &str) -> Result<(), String> {
    match module.get_export(entrypoint) {
        Some(ExternType::Func(ty)) if ty.params().len() == 0 && ty.results().len() == 0 => Ok(()),
        Some(ExternType::Func(_)) => Err(format!(
            "entrypoint `{entrypoint}` must take no parameters and return nothing"
        )),
        Some(_) => Err(format!("export `{entrypoint}` is not a function")),
        None => Err(format!(
            "the module does not export `{entrypoint}` (set `entrypoint` in the manifest)"
        )),
    }
}

/// Runs `_routes` once, at load, and returns what it printed. It runs on its own thread with
/// its own small runtime because loading happens before (and outside) the server's runtime.
fn run_routes_export(
    pre: &InstancePre<WagiState>,
    component: &ManifestComponent,
) -> wasmtime::Result<String> {
    let stdout = MemoryOutputPipe::new(1 << 20);
    let mut wasi = crate::host::wasi_builder(component)?;
    wasi.stdout(stdout.clone()).arg("_routes");
    for (key, value) in &component.environment {
        wasi.env(key, value);
    }
    let state = WagiState {
        wasi: wasi.build_p1(),
        limiter: MemoryLimiter::new(component.limits.memory),
        clock: CallClock::default(),
    };
    let timeout = component.limits.timeout;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()?;
                runtime.block_on(async {
                    let mut store = Store::new(pre.module().engine(), state);
                    crate::fuel::FuelBudget::new(component.limits.fuel).fill(&mut store)?;
                    store.limiter(|s| &mut s.limiter);
                    crate::engine::yield_every_tick(&mut store);
                    let call = async {
                        let instance = pre.instantiate_async(&mut store).await?;
                        let routes = instance.get_typed_func::<(), ()>(&mut store, "_routes")?;
                        routes.call_async(&mut store, ()).await
                    };
                    match tokio::time::timeout(timeout, call).await {
                        Ok(result) => result,
                        Err(_) => Err(wasmtime::format_err!("did not finish within {timeout:?}")),
                    }
                })
            })
            .join()
            .map_err(|_| wasmtime::format_err!("the _routes thread panicked"))?
    })?;
    Ok(String::from_utf8_lossy(&stdout.contents()).into_owned())
}

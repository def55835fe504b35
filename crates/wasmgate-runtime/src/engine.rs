//! The one wasmtime [`Engine`] of the process, configured for serving many short-lived
//! instances, and the single epoch ticker that keeps guests from monopolising a thread.
//!
//! Settings and why (measured on 2-vCPU machines, see BENCHMARKS.md):
//! - pooling allocator: instantiation in microseconds instead of tens of microseconds;
//! - keep-resident (64 KiB) with `PAGEMAP_SCAN`: a slot's hot pages are reset in place instead
//!   of `madvise`d away and faulted back in by the next request (about 17 µs a request);
//! - `concurrency_support(false)`: WASI 0.2 guests do not need the component-model-async
//!   machinery, which otherwise costs about 12 µs on every call;
//! - epoch interruption: a guest burning CPU yields back to tokio every tick, so one busy guest
//!   cannot starve other requests and the per-request timeout can fire.
//!
//! Fuel metering is a property of compiled code: a component with `limits.fuel` runs on a
//! second engine built with `consume_fuel`, so components without it pay nothing for it.

use std::thread::JoinHandle;
use std::time::Duration;
use wasmgate_manifest::{Limits, Manifest};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; a CPU-bound guest yields at most this long after it should.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Resident bytes kept per pool slot between instances (see module docs).
const KEEP_RESIDENT: usize = 64 << 10;

/// Pool dimensions, derived from the manifest's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSettings {
    /// Component instances alive at once across all components.
    pub instances: u32,
    /// Largest linear memory any instance may have, in bytes.
    pub max_memory: u64,
    /// Compile fuel checks into guest code (for components with `limits.fuel`).
    pub fuel: bool,
}

impl EngineSettings {
    /// Core modules, memories and tables a component instance may use. Rust `wasm32-wasip2`
    /// components use one memory and one or two tables; the factors leave room for toolchains
    /// that compose several modules (componentize-py, jco).
    pub(crate) const MEMORIES_PER_INSTANCE: u32 = 4;
    pub(crate) const TABLES_PER_INSTANCE: u32 = 4;
    const CORE_INSTANCES_PER_INSTANCE: u32 = 16;

    /// The engine for the manifest's components with (`fuel`) or without fuel metering.
    pub fn from_manifest(manifest: &Manifest, fuel: bool) -> EngineSettings {
        let components = || {
            manifest
                .components
                .values()
                .filter(move |c| c.limits.fuel.is_some() == fuel)
        };
        let instances: u32 = components()
            // A service's replicas each hold an instance for as long as they run.
            .map(|c| {
                let replicas = c.service.as_ref().map_or(0, |s| s.replicas);
                c.limits.max_concurrency.max(replicas)
            })
            .sum();
        let max_memory = components()
            .map(|c| c.limits.memory)
            .max()
            .unwrap_or(Limits::DEFAULT_MEMORY);
        EngineSettings {
            instances: instances.max(1),
            max_memory,
            fuel,
        }
    }

    pub fn build_engine(&self) -> wasmtime::Result<Engine> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(self.instances)
            .total_stacks(self.instances)
            .total_memories(self.instances.saturating_mul(Self::MEMORIES_PER_INSTANCE))
            .total_tables(self.instances.saturating_mul(Self::TABLES_PER_INSTANCE))
            .total_core_instances(
                self.instances
                    .saturating_mul(Self::CORE_INSTANCES_PER_INSTANCE),
            )
            .max_memories_per_component(Self::MEMORIES_PER_INSTANCE)
            .max_tables_per_component(Self::TABLES_PER_INSTANCE)
            .max_memory_size(usize::try_from(self.max_memory).unwrap_or(usize::MAX))
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .async_stack_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(Enabled::Auto);

        let mut config = Config::new();
        config
            .concurrency_support(false)
            .epoch_interruption(true)
            .consume_fuel(self.fuel)
            .memory_init_cow(true)
            .wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        Engine::new(&config)
    }
}

/// Advances an engine's epoch every [`EPOCH_TICK`] on one thread, for as long as the engine
/// lives. The thread holds only a weak reference and ends by itself once the engine is gone:
/// after a hot reload the old engine lives on in its in-flight requests (their instances hold
/// it), and those guests still need ticks for their timeouts to fire.
pub struct EpochTicker {
    _thread: JoinHandle<()>,
}

impl EpochTicker {
    pub fn start(engine: &Engine) -> std::io::Result<EpochTicker> {
        let weak = engine.weak();
        let thread = std::thread::Builder::new()
            .name("wasmgate-epoch".into())
            .spawn(move || loop {
                // EPOCH_TICK, or finer while a guest profile is being collected.
                std::thread::sleep(crate::profiling::fine_tick::current());
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            })?;
        Ok(EpochTicker { _thread: thread })
    }
}

/// Makes a store's guest yield to tokio at every epoch tick, so a CPU-bound guest shares its
/// worker thread and the request deadline (a tokio timeout) can fire.
///
/// The yield is `tokio::task::yield_now`, which puts the guest back only after its worker has
/// polled the I/O driver. wasmtime's own async yield wakes the task at once; a worker that
/// always has a ready task looks at sockets only every 61 polls, each a 10 ms slice of guest,
/// so with four spinning guests on two cores a quick request to another route waited up to
/// 780 ms.
pub fn yield_every_tick<T: 'static>(store: &mut wasmtime::Store<T>) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(yield_at_tick()));
}

/// What the epoch callback answers at each tick (see [`yield_every_tick`]).
pub(crate) fn yield_at_tick() -> wasmtime::UpdateDeadline {
    wasmtime::UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
}

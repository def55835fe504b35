//! The per-instance host state a guest's store holds: its WASI context (environment, files,
//! stdout/stderr feeding the invocation's output log), its HTTP context, its resource table and its memory limiter.
//!
//! A guest gets only what its manifest entry grants: the capabilities in [`InstanceCaps`] were
//! built from the component's grant, and outbound HTTP goes through their policy hooks.

use crate::call_clock::{CallClock, HasCallClock};
use crate::guest_stdio::OutputPipe;
use crate::limiter::MemoryLimiter;
use wasmgate_capabilities::{CapabilityHost, CapsView, InstanceCaps};
use wasmgate_manifest::Component;
use wasmgate_telemetry::guest_output::{GuestOutput, Stream};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub caps: InstanceCaps,
    pub limiter: MemoryLimiter,
    pub clock: CallClock,
}

impl HostState {
    /// State for one invocation of `component`; its stdout and stderr go to `output`.
    pub fn new(
        component: &Component,
        caps: InstanceCaps,
        output: &GuestOutput,
    ) -> wasmtime::Result<HostState> {
        let mut wasi = wasi_builder(component)?;
        wasi.stdout(OutputPipe::new(output, Stream::Stdout))
            .stderr(OutputPipe::new(output, Stream::Stderr));
        for (key, value) in &component.environment {
            wasi.env(key, value);
        }
        Ok(HostState::from_wasi(
            wasi.build(),
            component.limits.memory,
            caps,
        ))
    }

    /// State around a WASI context the caller configured (stdio, environment, args).
    pub fn from_wasi(wasi: WasiCtx, memory_limit: u64, caps: InstanceCaps) -> HostState {
        HostState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            caps,
            limiter: MemoryLimiter::new(memory_limit),
            clock: CallClock::default(),
        }
    }
}

/// A WASI context builder with the component's granted directories preopened; the caller adds
/// stdio, environment and arguments.
pub fn wasi_builder(component: &Component) -> wasmtime::Result<WasiCtxBuilder> {
    let mut wasi = WasiCtx::builder();
    for mount in &component.files {
        let perms = if mount.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        wasi.preopened_dir(&mount.source, &mount.destination, perms)?;
    }
    Ok(wasi)
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.caps.outbound,
        }
    }
}

impl HasCallClock for HostState {
    fn call_clock(&mut self) -> &mut CallClock {
        &mut self.clock
    }
}

impl CapabilityHost for HostState {
    fn caps(&mut self) -> CapsView<'_> {
        CapsView {
            caps: &mut self.caps,
            table: &mut self.table,
        }
    }
}

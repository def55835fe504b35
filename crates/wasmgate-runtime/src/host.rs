//! The per-instance host state a guest's store holds: its WASI context (environment, files,
//! captured stdout/stderr), its HTTP context, its resource table and its memory limiter.
//!
//! A guest gets only what its manifest entry grants. Outbound HTTP is granted by a later
//! capability; until a component is granted hosts, every outgoing request is denied.

use crate::limiter::MemoryLimiter;
use std::future::Future;
use wasmgate_manifest::Component;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// Bytes of guest stdout and of stderr kept per invocation; the rest is dropped.
pub const CAPTURED_OUTPUT_CAP: usize = 64 << 10;

pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: DenyOutbound,
    pub limiter: MemoryLimiter,
}

/// Handles to what the guest printed, readable after the store is gone.
#[derive(Clone)]
pub struct CapturedOutput {
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
}

impl HostState {
    pub fn new(component: &Component) -> wasmtime::Result<(HostState, CapturedOutput)> {
        let output = CapturedOutput {
            stdout: MemoryOutputPipe::new(CAPTURED_OUTPUT_CAP),
            stderr: MemoryOutputPipe::new(CAPTURED_OUTPUT_CAP),
        };
        let mut wasi = wasi_builder(component)?;
        wasi.stdout(output.stdout.clone())
            .stderr(output.stderr.clone());
        for (key, value) in &component.environment {
            wasi.env(key, value);
        }
        Ok((
            HostState::from_wasi(wasi.build(), component.limits.memory),
            output,
        ))
    }

    /// State around a WASI context the caller configured (stdio, environment, args).
    pub fn from_wasi(wasi: WasiCtx, memory_limit: u64) -> HostState {
        HostState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: DenyOutbound,
            limiter: MemoryLimiter::new(memory_limit),
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
            hooks: &mut self.hooks,
        }
    }
}

/// Outgoing-request policy for components granted no outbound hosts: refuse everything.
struct DenyOutbound;

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
)>;

impl WasiHttpHooks for DenyOutbound {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        tracing::info!(uri = %request.uri(), "outbound HTTP request denied: no hosts granted");
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

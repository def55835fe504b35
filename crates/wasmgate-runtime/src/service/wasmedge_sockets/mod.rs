//! WasmEdge's socket extension of `wasi_snapshot_preview1`, implemented on wasmtime 48 for
//! `wasm32-wasip1` programs built with the `wasmedge_wasi_socket` family of crates (`tokio_wasi`,
//! `hyper_wasi`, `mysql_async_wasi`).
//!
//! The module is linked with wasmtime-wasi's preview 1 first; the socket functions are then
//! defined over it (shadowing is required: WasmEdge's `sock_accept` takes one argument fewer
//! than preview 1's, and preview 1's socket functions know only wasmtime-wasi's descriptors).
//! `fd_close`, `fd_fdstat_get`, `fd_fdstat_set_flags`, `fd_read`, `fd_write` and `poll_oneoff`
//! see socket descriptors first and hand every other descriptor to wasmtime-wasi (so a program
//! may also read and write a socket as a file).
//!
//! Every call that waits awaits tokio readiness on the calling task: no thread per guest, and
//! an epoch tick or a shutdown can always interrupt a guest, even one in a "blocking" call.
//!
//! UDP datagrams with addresses (`sock_send_to`, `sock_recv_from`) are in [`datagram`].
//! Not provided: `MSG_PEEK`; a module importing a socket function that is not implemented
//! fails at load, naming it.

mod abi;
mod addrinfo;
mod datagram;
mod ops;
mod poll;
mod table;

pub use table::SocketTable;

use super::policy::{ResolvedNames, SocketPolicy};
use super::port_map::PortMap;
use crate::limiter::MemoryLimiter;
use abi::Mem;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::{AsContextMut, Caller, Extern, Linker, Memory, Module};
use wasmtime_wasi::p1::WasiP1Ctx;

const MODULE: &str = "wasi_snapshot_preview1";

/// What a socket-using instance's descriptors may do, shared by its calls.
pub struct NetContext {
    pub policy: SocketPolicy,
    pub ports: PortMap,
}

/// Store data of one service instance.
pub struct ServiceState {
    pub wasi: WasiP1Ctx,
    pub limiter: MemoryLimiter,
    pub sockets: SocketTable,
    pub net: Arc<NetContext>,
    pub resolved: ResolvedNames,
    /// Origin of the guest's monotonic clock (installed into its WASI context), so absolute
    /// clock subscriptions in `poll_oneoff` convert to host instants exactly.
    pub clock_origin: Instant,
    /// The buffer `sock_recv` reads into before copying to the guest's iovecs, kept between
    /// calls: a zeroed buffer of the guest's read size on every call (hyper asks for tens of
    /// KiB) was about 9k instructions a request. At most `MAX_IO` bytes.
    pub recv_buffer: Vec<u8>,
}

/// The WasmEdge functions implemented here; any other `sock_*` import fails the load.
pub const IMPLEMENTED: &[&str] = &[
    "sock_open",
    "sock_bind",
    "sock_listen",
    "sock_accept",
    "sock_connect",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
    "sock_setsockopt",
    "sock_getsockopt",
    "sock_getlocaladdr",
    "sock_getpeeraddr",
    "sock_getaddrinfo",
    "sock_send_to",
    "sock_recv_from",
];

/// WasmEdge extension names wasmtime-wasi's preview 1 would otherwise satisfy with a different
/// signature or a stub, or not at all.
const WASMEDGE_EXTENSIONS: &[&str] = &[
    "sock_recv_from",
    "sock_send_to",
    "sock_getaddrinfo",
    "epoll_oneoff",
    "sock_accept",
    "sock_open",
];

/// Names the first WasmEdge socket function `module` imports that is not implemented here.
pub fn unsupported_import(module: &Module) -> Option<String> {
    module.imports().find_map(|import| {
        let name = import.name();
        let wasmedge = name.starts_with("sock_") || WASMEDGE_EXTENSIONS.contains(&name);
        (import.module() == MODULE && wasmedge && !IMPLEMENTED.contains(&name))
            .then(|| format!("{MODULE}::{name}"))
    })
}

/// The guest's monotonic clock: nanoseconds since its instance's origin.
pub struct GuestClock(pub Instant);

impl wasmtime_wasi::HostMonotonicClock for GuestClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Preview 1 plus the socket extension.
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<ServiceState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state: &mut ServiceState| {
        &mut state.wasi
    })?;
    linker.allow_shadowing(true);

    macro_rules! define {
        ($name:literal, $f:path, ($($arg:ident),*)) => {
            linker.func_wrap_async(
                MODULE,
                $name,
                |mut caller: Caller<'_, ServiceState>, ($($arg,)*): ($(define!(@ty $arg),)*)| {
                    Box::new(async move { $f(&mut caller, $($arg),*).await })
                },
            )?;
        };
        (@ty $arg:ident) => { i32 };
    }
    define!("sock_open", ops::sock_open, (a, b, c));
    define!("sock_bind", ops::sock_bind, (a, b, c));
    define!("sock_listen", ops::sock_listen, (a, b));
    define!("sock_accept", ops::sock_accept, (a, b));
    define!("sock_connect", ops::sock_connect, (a, b, c));
    define!("sock_recv", ops::sock_recv, (a, b, c, d, e, f));
    define!("sock_send", ops::sock_send, (a, b, c, d, e));
    define!("sock_shutdown", ops::sock_shutdown, (a, b));
    define!("sock_setsockopt", ops::sock_setsockopt, (a, b, c, d, e));
    define!("sock_getsockopt", ops::sock_getsockopt, (a, b, c, d, e));
    define!("sock_getlocaladdr", ops::sock_getlocaladdr, (a, b, c, d));
    define!("sock_getpeeraddr", ops::sock_getpeeraddr, (a, b, c, d));
    define!(
        "sock_getaddrinfo",
        addrinfo::sock_getaddrinfo,
        (a, b, c, d, e, f, g, h)
    );
    define!(
        "sock_send_to",
        datagram::sock_send_to,
        (a, b, c, d, e, f, g)
    );
    define!(
        "sock_recv_from",
        datagram::sock_recv_from,
        (a, b, c, d, e, f, g, h)
    );
    define!("fd_read", ops::fd_read, (a, b, c, d));
    define!("fd_write", ops::fd_write, (a, b, c, d));
    define!("fd_close", ops::fd_close, (a));
    define!("fd_fdstat_get", ops::fd_fdstat_get, (a, b));
    define!("fd_fdstat_set_flags", ops::fd_fdstat_set_flags, (a, b));
    define!("poll_oneoff", poll::poll_oneoff, (a, b, c, d));
    Ok(linker)
}

/// The calling instance's exported memory.
fn memory(caller: &mut Caller<'_, ServiceState>) -> wasmtime::Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => wasmtime::bail!("the module does not export its memory as `memory`"),
    }
}

/// Runs `f` over the guest's memory and the store state at once.
fn with_memory<R>(
    caller: &mut Caller<'_, ServiceState>,
    f: impl FnOnce(&mut Mem<'_>, &mut ServiceState) -> R,
) -> wasmtime::Result<R> {
    let memory = memory(caller)?;
    let (data, state) = memory.data_and_store_mut(caller);
    Ok(f(&mut Mem(data), state))
}

/// The guest's memory and its preview 1 context, for handing a call to wasmtime-wasi the way
/// its own generated wrappers do: they first give the context the store's hostcall fuel, and
/// without it every call that reads a guest array (iovecs, subscriptions) fails with ENOMEM.
fn p1_parts<'a>(
    caller: &'a mut Caller<'_, ServiceState>,
) -> wasmtime::Result<(wiggle::GuestMemory<'a>, &'a mut WasiP1Ctx)> {
    use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1;
    let memory = memory(caller)?;
    let fuel = caller.as_context_mut().hostcall_fuel();
    let (data, state) = memory.data_and_store_mut(caller);
    state.wasi.set_hostcall_fuel(fuel);
    Ok((wiggle::GuestMemory::Unshared(data), &mut state.wasi))
}

/// Collapses "errno or value" into the errno the guest gets back.
fn errno_of(result: Result<(), i32>) -> i32 {
    result.err().unwrap_or(abi::errno::SUCCESS)
}

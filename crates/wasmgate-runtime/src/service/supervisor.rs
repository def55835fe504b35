//! One replica's life: start the program, find out when it is ready, restart it with
//! exponential backoff when it exits or traps, and say so loudly when it keeps crashing.
//!
//! Ready means the guest listens on its first declared port *and* the mapped host port accepts
//! a connection; the proxy sends requests to a replica only then. A replica that stays up for
//! [`STABLE_AFTER`] is healthy again: its backoff starts over.

use super::port_map::PortMap;
use super::wasi_sockets::ComponentState;
use super::wasmedge_sockets::{GuestClock, NetContext, ServiceState, SocketTable};
use super::ServiceStats;
use crate::limiter::MemoryLimiter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;
use wasmgate_manifest::Component;
use wasmtime::{InstancePre, Store};
use wasmtime_wasi::cli::AsyncStdoutStream;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

/// First restart delay; doubled on each consecutive failure up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Consecutive failures after which the replica is reported as crash-looping.
pub const CRASH_LOOP_AFTER: u32 = 5;
/// Running this long resets the failure count.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Bytes buffered between the guest's stdout/stderr and the log.
const OUTPUT_PIPE: usize = 64 << 10;
/// A guest line longer than this is logged in pieces.
const MAX_LINE: usize = 4096;

/// What the proxy needs to know about one replica.
pub struct Replica {
    pub index: usize,
    pub ports: PortMap,
    /// The first declared port: the one routes are proxied to.
    pub primary: u16,
    ready: AtomicBool,
}

impl Replica {
    pub fn new(index: usize, ports: PortMap, primary: u16) -> Replica {
        Replica {
            index,
            ports,
            primary,
            ready: AtomicBool::new(false),
        }
    }

    /// Where to send requests, if the replica is ready.
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        if self.ready.load(Ordering::Acquire) {
            self.ports.current(self.primary)
        } else {
            None
        }
    }
}

/// The program a replica runs, linked once at load.
#[derive(Clone)]
pub enum Program {
    /// A `wasm32-wasip1` command using WasmEdge's socket extension.
    Module(InstancePre<ServiceState>),
    /// A WASI 0.2 `wasi:cli/run` component using `wasi:sockets`.
    Component(CommandPre<ComponentState>),
}

pub struct Supervisor {
    pub component: Arc<Component>,
    pub program: Program,
    pub net: Arc<NetContext>,
    pub replica: Arc<Replica>,
    pub stats: Arc<ServiceStats>,
    pub stop: watch::Receiver<bool>,
}

/// How one run of the program ended.
enum RunEnd {
    Exited(i32),
    Trapped(String),
    Failed(String),
}

impl Supervisor {
    pub async fn run(mut self) {
        let name = self.component.name.clone();
        let index = self.replica.index;
        let mut failures: u32 = 0;
        loop {
            let started = Instant::now();
            let end = {
                let mut stop = self.stop.clone();
                tokio::select! {
                    end = self.run_once() => Some(end),
                    _ = stop.wait_for(|stopping| *stopping) => None,
                }
            };
            self.replica.ready.store(false, Ordering::Release);
            self.replica.ports.reset();
            let Some(end) = end else {
                tracing::info!(component = %name, replica = index, "service stopped");
                return;
            };
            if started.elapsed() >= STABLE_AFTER {
                failures = 0;
            }
            failures += 1;
            self.stats.restarts.inc();
            let backoff = INITIAL_BACKOFF
                .saturating_mul(1 << (failures - 1).min(16))
                .min(MAX_BACKOFF);
            match &end {
                RunEnd::Exited(code) => tracing::warn!(
                    component = %name, replica = index, exit_code = code,
                    restart_in_ms = backoff.as_millis() as u64,
                    "service exited; restarting"
                ),
                RunEnd::Trapped(error) => tracing::error!(
                    component = %name, replica = index, error = %error,
                    restart_in_ms = backoff.as_millis() as u64,
                    "service trapped; restarting"
                ),
                RunEnd::Failed(error) => tracing::error!(
                    component = %name, replica = index, error = %error,
                    restart_in_ms = backoff.as_millis() as u64,
                    "service could not start; restarting"
                ),
            }
            if failures == CRASH_LOOP_AFTER {
                self.stats.crash_looping.inc();
                tracing::error!(
                    component = %name, replica = index, failures,
                    "service is crash-looping: it keeps exiting or trapping; restarts continue \
                     with backoff up to {}s",
                    MAX_BACKOFF.as_secs()
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.wait_for(|stopping| *stopping) => return,
            }
        }
    }

    async fn run_once(&self) -> RunEnd {
        let origin = Instant::now();
        let (stdout_reader, stdout) = tokio::io::duplex(OUTPUT_PIPE);
        let (stderr_reader, stderr) = tokio::io::duplex(OUTPUT_PIPE);
        let mut wasi = match crate::host::wasi_builder(&self.component) {
            Ok(builder) => builder,
            Err(e) => return RunEnd::Failed(format!("{e:#}")),
        };
        wasi.arg(&self.component.name)
            .stdout(AsyncStdoutStream::new(OUTPUT_PIPE, stdout))
            .stderr(AsyncStdoutStream::new(OUTPUT_PIPE, stderr))
            .monotonic_clock(GuestClock(origin));
        for (key, value) in &self.component.environment {
            wasi.env(key, value);
        }
        let index = self.replica.index;
        tokio::spawn(log_lines(
            stdout_reader,
            self.component.name.clone(),
            index,
            "stdout",
        ));
        tokio::spawn(log_lines(
            stderr_reader,
            self.component.name.clone(),
            index,
            "stderr",
        ));

        let readiness = self.become_ready();
        let (result, hit_memory_limit) = tokio::select! {
            ended = self.run_program(wasi, origin) => ended,
            never = readiness => match never {},
        };
        match result {
            Err(end) => end,
            Ok(Ok(())) => RunEnd::Exited(0),
            Ok(Err(error)) => match error.downcast_ref::<I32Exit>() {
                Some(exit) => RunEnd::Exited(exit.0),
                None if hit_memory_limit => RunEnd::Trapped(format!(
                    "{error:#} (after reaching limits.memory = {} bytes)",
                    self.component.limits.memory
                )),
                None => RunEnd::Trapped(format!("{error:?}")),
            },
        }
    }

    /// Instantiates and runs the program to its end: how the call ended (or why it could not
    /// start), and whether the memory limit was reached on the way.
    async fn run_program(
        &self,
        wasi: WasiCtxBuilder,
        origin: Instant,
    ) -> (Result<wasmtime::Result<()>, RunEnd>, bool) {
        let failed = |e: wasmtime::Error| RunEnd::Failed(format!("{e:#}"));
        match &self.program {
            Program::Module(pre) => {
                let mut wasi = wasi;
                let state = ServiceState {
                    wasi: wasi.build_p1(),
                    limiter: MemoryLimiter::new(self.component.limits.memory),
                    sockets: SocketTable::default(),
                    net: self.net.clone(),
                    resolved: Default::default(),
                    clock_origin: origin,
                    recv_buffer: Vec::new(),
                };
                let mut store = Store::new(pre.module().engine(), state);
                store.limiter(|state| &mut state.limiter);
                // A service guest runs for its whole life, so a busy one is always ready to
                // run: the yield must let the worker poll sockets (see `yield_every_tick`).
                crate::engine::yield_every_tick(&mut store);
                let result = async {
                    let instance = pre.instantiate_async(&mut store).await.map_err(failed)?;
                    let start = instance
                        .get_typed_func::<(), ()>(&mut store, "_start")
                        .map_err(failed)?;
                    Ok(start.call_async(&mut store, ()).await)
                }
                .await;
                (result, store.data().limiter.hit_limit())
            }
            Program::Component(pre) => {
                let state =
                    ComponentState::new(wasi, self.net.clone(), self.component.limits.memory);
                let mut store = Store::new(pre.engine(), state);
                store.limiter(|state| &mut state.limiter);
                crate::engine::yield_every_tick(&mut store);
                let result = async {
                    let command = pre.instantiate_async(&mut store).await.map_err(failed)?;
                    // `run` returning `err` is a failed exit without a code: report it as 1,
                    // as `wasmtime run` does.
                    Ok(match command.wasi_cli_run().call_run(&mut store).await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(())) => Err(wasmtime::Error::new(I32Exit(1))),
                        Err(trap) => Err(trap),
                    })
                }
                .await;
                (result, store.data().limiter.hit_limit())
            }
        }
    }

    /// Marks the replica ready once its primary port accepts connections; never returns.
    async fn become_ready(&self) -> std::convert::Infallible {
        let Some(mut listening) = self.replica.ports.watch(self.replica.primary) else {
            return std::future::pending().await;
        };
        loop {
            let address = {
                let seen = listening.wait_for(Option::is_some).await;
                seen.ok().and_then(|address| *address)
            };
            let Some(address) = address else {
                return std::future::pending().await;
            };
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                self.replica.ready.store(true, Ordering::Release);
                tracing::info!(
                    component = %self.component.name,
                    replica = self.replica.index,
                    guest_port = self.replica.primary,
                    host_address = %address,
                    "service ready"
                );
                return std::future::pending().await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Copies one of the guest's output streams into the log, a line per event.
async fn log_lines(
    mut reader: impl AsyncRead + Unpin,
    component: String,
    replica: usize,
    stream: &'static str,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 8192];
    loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            emit(&component, replica, stream, &line[..line.len() - 1]);
        }
        if pending.len() > MAX_LINE {
            emit(&component, replica, stream, &pending);
            pending.clear();
        }
    }
    if !pending.is_empty() {
        emit(&component, replica, stream, &pending);
    }
}

fn emit(component: &str, replica: usize, stream: &'static str, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r');
    tracing::info!(target: "wasmgate::guest", component, replica, stream, "{text}");
}

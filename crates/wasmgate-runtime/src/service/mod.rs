//! The `service` executor: guests that run their own servers.
//!
//! A service component is a long-running program started `replicas` times at load: a
//! `wasm32-wasip1` module built for WasmEdge's socket extension ([`wasmedge_sockets`]), or a
//! WASI 0.2 `wasi:cli/run` component listening with `wasi:sockets` ([`wasi_sockets`]). Each
//! binds the ports its code names; the host maps them to loopback ports of its own
//! ([`port_map`]), so replicas never collide and no guest holds a public socket. A [`supervisor::Supervisor`] per replica
//! restarts it with backoff and marks it ready once its first port accepts connections.
//!
//! Per request (this file): a concurrency permit, a ready replica (round robin; 503 when none
//! is), then the request is reverse-proxied over a keep-alive pool ([`proxy`]) under the
//! component's timeout, with an invocation record like every other executor's.

mod policy;
mod port_map;
mod proxy;
mod supervisor;
mod wasi_sockets;
mod wasmedge_sockets;

pub use wasmedge_sockets::ServiceState;

use crate::cache::{CacheStatus, CompileCache};
use crate::error::LoadError;
use crate::executor::{
    text_response, Executor, RequestContext, ResponseBody, ResponseFuture, Scheme,
};
use crate::outcome::Outcome;
use crate::record::{Counted, Direction, Pending};
use http_body_util::BodyExt;
use policy::SocketPolicy;
use port_map::PortMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use supervisor::{Program, Replica, Supervisor};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use wasmedge_sockets::NetContext;
use wasmgate_manifest::Component;
use wasmgate_telemetry::{Counter, Telemetry};
use wasmtime::{Engine, Linker, Module};

/// The linkers service programs are instantiated with, one per kind, built once per engine.
pub struct ServiceLinkers {
    module: Linker<ServiceState>,
    component: wasmtime::component::Linker<wasi_sockets::ComponentState>,
}

pub fn linker(engine: &Engine) -> wasmtime::Result<ServiceLinkers> {
    Ok(ServiceLinkers {
        module: wasmedge_sockets::linker(engine)?,
        component: wasi_sockets::linker(engine)?,
    })
}

/// Counters about a service's replicas, exported as metrics.
pub struct ServiceStats {
    /// Replica restarts since load (`wasm_service_restarts_total`).
    pub restarts: Counter,
    /// Times a replica crossed the crash-loop threshold (`wasm_service_crash_loops_total`).
    pub crash_looping: Counter,
}

pub struct ServiceExecutor {
    component: Arc<Component>,
    name: Arc<str>,
    replicas: Vec<Arc<Replica>>,
    next: AtomicUsize,
    client: proxy::ProxyClient,
    permits: Arc<Semaphore>,
    /// Requests holding a slot (`wasm_instances_in_use`, against `max_concurrency`).
    in_use: wasmgate_telemetry::Gauge,
    telemetry: Arc<Telemetry>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

pub struct LoadedService {
    pub executor: Arc<ServiceExecutor>,
    pub size: usize,
    pub cache: CacheStatus,
}

/// Compiles the program, checks its imports, and starts its replicas on the current tokio
/// runtime.
pub fn load(
    engine: &Engine,
    linkers: &ServiceLinkers,
    cache: &CompileCache,
    component: &Component,
    allow_private: bool,
    telemetry: &Arc<Telemetry>,
) -> Result<LoadedService, LoadError> {
    let name = &component.name;
    let link_error = |message: String| LoadError::Link {
        component: name.clone(),
        message,
    };
    let options = component
        .service
        .clone()
        .ok_or_else(|| link_error("executor = \"service\" without its settings".into()))?;
    let wasm = std::fs::read(&component.source).map_err(|source| LoadError::Read {
        component: name.clone(),
        path: component.source.clone(),
        source,
    })?;
    let size = wasm.len();
    let compile_error = |e: wasmtime::Error| LoadError::Compile {
        component: name.clone(),
        path: component.source.clone(),
        message: format!("{e:#}"),
    };
    let (program, cache_status) = if wasmparser::Parser::is_component(&wasm) {
        let (compiled, cache_status) = cache
            .load_or_compile::<wasmtime::component::Component>(engine, &wasm)
            .map_err(compile_error)?;
        let is_command = compiled
            .component_type()
            .exports(engine)
            .any(|(name, _)| name.starts_with("wasi:cli/run@"));
        if !is_command {
            return Err(link_error(
                "a service component must export wasi:cli/run (a command, such as a Rust \
                 program with `main` built for wasm32-wasip2)"
                    .into(),
            ));
        }
        let pre = linkers
            .component
            .instantiate_pre(&compiled)
            .map_err(|e| link_error(format!("{e:#}")))?;
        let command = wasmtime_wasi::p2::bindings::CommandPre::new(pre).map_err(|e| {
            link_error(format!(
                "a service component must export wasi:cli/run (a command): {e:#}"
            ))
        })?;
        (Program::Component(command), cache_status)
    } else {
        let (module, cache_status) = cache
            .load_or_compile::<Module>(engine, &wasm)
            .map_err(compile_error)?;
        if let Some(import) = wasmedge_sockets::unsupported_import(&module) {
            return Err(link_error(format!(
                "it imports {import}, a WasmEdge socket function Wasmgate does not implement"
            )));
        }
        let pre = linkers
            .module
            .instantiate_pre(&module)
            .map_err(|e| link_error(format!("{e:#}")))?;
        match module.get_export("_start") {
            Some(wasmtime::ExternType::Func(_)) => {}
            _ => {
                return Err(link_error(
                    "a service module must export `_start` (a command)".into(),
                ))
            }
        }
        (Program::Module(pre), cache_status)
    };
    let handle = tokio::runtime::Handle::try_current().map_err(|_| {
        link_error("service components must be loaded inside a tokio runtime".into())
    })?;

    let component = Arc::new(component.clone());
    let (restarts, crash_looping) = telemetry.metrics.service_counters(name);
    let stats = Arc::new(ServiceStats {
        restarts,
        crash_looping,
    });
    let (stop, stop_rx) = watch::channel(false);
    let primary = options.ports[0];
    let mut replicas = Vec::new();
    let mut tasks = Vec::new();
    for index in 0..options.replicas as usize {
        let ports = PortMap::new(&options.ports);
        let replica = Arc::new(Replica::new(index, ports.clone(), primary));
        let net = Arc::new(NetContext {
            policy: SocketPolicy::new(
                name,
                component.allowed_outbound_hosts.clone(),
                allow_private,
            ),
            ports,
        });
        let supervisor = Supervisor {
            component: component.clone(),
            program: program.clone(),
            net,
            replica: replica.clone(),
            stats: stats.clone(),
            stop: stop_rx.clone(),
        };
        tasks.push(handle.spawn(supervisor.run()));
        replicas.push(replica);
    }
    let executor = ServiceExecutor {
        name: Arc::from(name.as_str()),
        permits: Arc::new(Semaphore::new(component.limits.max_concurrency as usize)),
        in_use: telemetry.metrics.instances_gauge(&component.name),
        component,
        replicas,
        next: AtomicUsize::new(0),
        client: proxy::client(),
        telemetry: telemetry.clone(),
        stop,
        tasks,
    };
    Ok(LoadedService {
        executor: Arc::new(executor),
        size,
        cache: cache_status,
    })
}

impl ServiceExecutor {
    /// The next ready replica's address, round robin.
    fn pick(&self) -> Option<std::net::SocketAddr> {
        let count = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count).find_map(|i| self.replicas[(start + i) % count].address())
    }

    async fn serve(
        self: Arc<Self>,
        request: http::Request<hyper::body::Incoming>,
        context: RequestContext,
    ) -> http::Response<ResponseBody> {
        let started = Instant::now();
        let pending = Pending::for_request(
            &self.telemetry,
            &context,
            &self.name,
            "service",
            &request,
            started,
        );
        let deadline = tokio::time::Instant::from_std(started + self.component.limits.timeout);
        let Ok(Ok(permit)) =
            tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned()).await
        else {
            return self.fault(&context, &pending, Outcome::Overloaded, "all slots busy");
        };
        let _slot = crate::http_executor::InstanceGuard::new(permit, &self.in_use);
        let Some(upstream) = self.pick() else {
            return self.fault(&context, &pending, Outcome::Overloaded, "service not ready");
        };
        let request = match proxy::upstream_request(
            request,
            upstream,
            context.remote_addr,
            context.scheme == Scheme::Https,
            &context.trace,
            &pending,
        ) {
            Ok(request) => request,
            Err(e) => {
                return self.fault(&context, &pending, Outcome::BadOutput, &e.to_string());
            }
        };
        match tokio::time::timeout_at(deadline, self.client.request(request)).await {
            Ok(Ok(response)) => {
                let status = response.status().as_u16();
                pending.update(|r| r.status = status);
                let (mut parts, body) = response.into_parts();
                proxy::downstream_headers(&mut parts.headers);
                let body = Counted::new(body, pending, Direction::Response)
                    .map_err(|e| Box::new(e) as crate::executor::BoxError)
                    .boxed_unsync();
                http::Response::from_parts(parts, body)
            }
            Ok(Err(e)) => self.fault(
                &context,
                &pending,
                Outcome::NoResponse,
                &format!("the service did not answer: {e}"),
            ),
            Err(_) => self.fault(&context, &pending, Outcome::Timeout, "no response in time"),
        }
    }

    fn fault(
        &self,
        context: &RequestContext,
        pending: &Pending,
        outcome: Outcome,
        detail: &str,
    ) -> http::Response<ResponseBody> {
        let status = match outcome {
            Outcome::Overloaded => http::StatusCode::SERVICE_UNAVAILABLE,
            Outcome::Timeout => http::StatusCode::GATEWAY_TIMEOUT,
            _ => http::StatusCode::BAD_GATEWAY,
        };
        tracing::warn!(
            invocation = context.invocation_id,
            component = %self.name,
            route = %context.route.pattern,
            outcome = outcome.as_str(),
            detail,
            "service request failed"
        );
        pending.update(|r| {
            r.outcome = outcome.as_str();
            r.status = status.as_u16();
            r.error = Some(detail.to_string());
        });
        let mut response = text_response(
            status,
            format!("{detail} (invocation {})\n", context.invocation_id),
        );
        if outcome == Outcome::Overloaded {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

impl Executor for ServiceExecutor {
    fn handle(
        self: Arc<Self>,
        request: http::Request<hyper::body::Incoming>,
        context: RequestContext,
    ) -> ResponseFuture {
        Box::pin(self.serve(request, context))
    }

    /// Ready once every replica has come up at least once (each answers on its port).
    fn ready(&self) -> bool {
        self.replicas.iter().all(|r| r.address().is_some())
    }
}

impl Drop for ServiceExecutor {
    /// Stops the replicas: each guest's future is dropped at its next await or epoch tick,
    /// closing its sockets.
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

//! The `wagi` executor: WASI command programs as CGI scripts, compatible with Deis Labs' WAGI.
//!
//! Per request: wait for a concurrency permit, read the request body (CGI needs its length),
//! build the CGI environment and argv, start a fresh instance with the body on stdin and a pipe
//! on stdout, and call the entrypoint on its own task. The response head is parsed as soon as
//! the guest has written it; the body then streams as the guest writes. Malformed output, a
//! trap or a non-zero exit without output answers 502; a timeout 504; the memory limit 500.

mod argv;
mod body;
mod cgi_env;
mod program;
pub(crate) mod response;
mod routes;

pub use cgi_env::percent_decode;
pub use program::{module_linker, WagiState};
pub use routes::SubRoute;

use crate::cache::{CacheStatus, CompileCache};
use crate::call_clock::CallClock;
use crate::error::LoadError;
use crate::executor::{text_response, Executor, RequestContext, ResponseBody, ResponseFuture};
use crate::guest_stdio::OutputPipe;
use crate::host::HostState;
use crate::http_executor::{fault_response, InstanceGuard};
use crate::limiter::MemoryLimiter;
use crate::outcome::Outcome;
use crate::record::{Counted, Direction, InstanceTimes, Pending};
use body::CgiBody;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Limited};
use program::Program;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use wasmgate_capabilities::{Grant, HostCalls, InvocationInfo};
use wasmgate_manifest::Component;
use wasmgate_telemetry::guest_output::{GuestOutput, Stream};
use wasmgate_telemetry::spans::SpanBuffer;
use wasmgate_telemetry::{Gauge, Telemetry};
use wasmtime::component::Linker as ComponentLinker;
use wasmtime::{Linker, Store};
use wasmtime_wasi::cli::AsyncStdoutStream;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::I32Exit;

/// Largest request body a WAGI guest is given; CGI needs the whole body before the guest
/// starts (CONTENT_LENGTH), so it is held in memory.
pub const MAX_REQUEST_BODY: usize = 64 << 20;

/// How much stdout the guest may write ahead of the client before it blocks.
const STDOUT_PIPE: usize = 64 << 10;

/// One program shared by the executors of its route and of its `_routes` sub-routes.
struct Shared {
    component: Arc<Component>,
    /// The manifest's argv template, resolved once at load.
    argv_template: String,
    /// The component's name, shared by every record.
    name: Arc<str>,
    instances: Gauge,
    program: Program,
    permits: Arc<Semaphore>,
    cold: AtomicBool,
    telemetry: Arc<Telemetry>,
    /// Capabilities of `wasi:cli/run` components (core modules import none of them).
    grant: Grant,
    profiles: Arc<crate::profiling::Profiles>,
}

pub struct WagiExecutor {
    shared: Arc<Shared>,
    entrypoint: String,
}

/// A loaded WAGI component: the executor for its own route and one per `_routes` entry.
pub struct LoadedWagi {
    pub executor: Arc<WagiExecutor>,
    pub sub_routes: Vec<(SubRoute, Arc<WagiExecutor>)>,
    pub cache: CacheStatus,
    pub size: usize,
}

pub fn load(
    modules: &Linker<WagiState>,
    components: &ComponentLinker<HostState>,
    cache: &CompileCache,
    component: &Component,
    grant: Grant,
    telemetry: &Arc<Telemetry>,
    profiles: &Arc<crate::profiling::Profiles>,
) -> Result<LoadedWagi, LoadError> {
    let options = component.wagi.clone().unwrap_or_default();
    let loaded = program::load(
        modules.engine(),
        modules,
        components,
        cache,
        component,
        &options.entrypoint,
    )?;
    if matches!(loaded.program, Program::Module(_)) && !component.allowed_outbound_hosts.is_empty()
    {
        // WAGI modules reached the network through the wasi_experimental_http ABI, which
        // Wasmgate does not provide; wasi:cli/run components get wasi:http under the policy.
        tracing::warn!(
            component = %component.name,
            "allowed_hosts is recorded, but core WAGI modules cannot make outbound HTTP requests \
             (wasi_experimental_http is not provided); build the guest as a wasi:cli/run \
             component to use wasi:http"
        );
    }
    let shared = Arc::new(Shared {
        argv_template: options.argv.clone(),
        name: component.name.as_str().into(),
        instances: telemetry.metrics.instances_gauge(&component.name),
        component: Arc::new(component.clone()),
        program: loaded.program,
        permits: Arc::new(Semaphore::new(component.limits.max_concurrency as usize)),
        cold: AtomicBool::new(true),
        telemetry: telemetry.clone(),
        grant,
        profiles: profiles.clone(),
    });
    let executor = |entrypoint: &str| {
        Arc::new(WagiExecutor {
            shared: shared.clone(),
            entrypoint: entrypoint.to_string(),
        })
    };
    let sub_routes = loaded
        .sub_routes
        .into_iter()
        .map(|route| {
            let sub = executor(&route.entrypoint);
            (route, sub)
        })
        .collect();
    Ok(LoadedWagi {
        executor: executor(&options.entrypoint),
        sub_routes,
        cache: loaded.cache,
        size: loaded.size,
    })
}

/// How a guest run ended, as the request side needs to know it.
#[derive(Debug, Clone, Copy)]
pub struct Verdict {
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
}

impl Verdict {
    /// A task that panicked.
    const ABORTED: Verdict = Verdict {
        outcome: Outcome::BadOutput,
        exit_code: None,
    };

    /// Exited with status 0.
    pub fn clean(&self) -> bool {
        self.outcome == Outcome::Ok && self.exit_code == Some(0)
    }
}

/// What one run of the guest produced.
struct Run {
    end: RunEnd,
    hit_memory_limit: bool,
    peak_memory: usize,
    instantiate_us: u64,
    /// When the instance was created and ran, for its spans.
    times: InstanceTimes,
    /// Host capability calls (components only; core modules have none).
    host_calls: Option<HostCalls>,
    /// Guest and host time, all host calls.
    clock: CallClock,
    /// Instructions executed, for components with a fuel budget.
    instructions: Option<u64>,
}

/// How the guest run ended.
enum RunEnd {
    Exited(i32),
    Failed(wasmtime::Error),
    TimedOut,
    /// The request side stopped the guest: its output was not a CGI response, or too long.
    Stopped(&'static str),
}

/// Stops a guest whose output the request side has given up on. Unlike aborting its task,
/// the task still ends the run itself, so the record keeps the run's figures and the guest's
/// stderr is still logged.
#[derive(Default)]
pub(crate) struct Stop {
    reason: std::sync::OnceLock<&'static str>,
    signal: tokio::sync::Notify,
}

impl Stop {
    /// Asks the guest to stop; the first reason given is the one recorded.
    pub(crate) fn stop(&self, reason: &'static str) {
        let _ = self.reason.set(reason);
        // `notify_one` keeps a permit if the run is not waiting yet, so the stop is not lost.
        self.signal.notify_one();
    }

    async fn stopped(&self) -> &'static str {
        self.signal.notified().await;
        self.reason
            .get()
            .copied()
            .unwrap_or("stopped by the gateway")
    }
}

/// When a guest run must end, if it has not ended by itself: at the request's deadline, or
/// when the request side stops it.
#[derive(Clone, Copy)]
struct Until<'a> {
    deadline: tokio::time::Instant,
    stop: &'a Stop,
}

impl Until<'_> {
    /// Runs `call` until it ends, the deadline passes, or the request side stops it.
    async fn run(self, call: impl std::future::Future<Output = wasmtime::Result<i32>>) -> RunEnd {
        tokio::select! {
            ended = tokio::time::timeout_at(self.deadline, call) => match ended {
                Ok(result) => exit_of(result),
                Err(_) => RunEnd::TimedOut,
            },
            reason = self.stop.stopped() => RunEnd::Stopped(reason),
        }
    }
}

impl Executor for WagiExecutor {
    fn handle(
        self: Arc<Self>,
        request: http::Request<hyper::body::Incoming>,
        context: RequestContext,
    ) -> ResponseFuture {
        Box::pin(self.serve(request, context))
    }
}

impl WagiExecutor {
    fn component(&self) -> &Component {
        &self.shared.component
    }

    async fn serve(
        self: Arc<Self>,
        request: http::Request<hyper::body::Incoming>,
        context: RequestContext,
    ) -> http::Response<ResponseBody> {
        let started = Instant::now();
        let telemetry = &self.shared.telemetry;
        let pending = Pending::for_request(
            telemetry,
            &context,
            &self.shared.name,
            "wagi",
            &request,
            started,
        );
        let limits = self.component().limits;
        let deadline = tokio::time::Instant::from_std(started + limits.timeout);
        let permits = self.shared.permits.clone();
        let permit = match tokio::time::timeout_at(deadline, permits.acquire_owned()).await {
            Ok(Ok(permit)) => InstanceGuard::new(permit, &self.shared.instances),
            _ => {
                return self.fault(
                    &context,
                    &pending,
                    Outcome::Overloaded,
                    "all instances busy",
                )
            }
        };

        let (parts, body) = request.into_parts();
        let body_limit = parts
            .extensions
            .get::<crate::RequestBodyLimit>()
            .map_or(MAX_REQUEST_BODY, |l| {
                l.0.min(MAX_REQUEST_BODY as u64) as usize
            });
        let collecting = Limited::new(body, body_limit).collect();
        let body = match tokio::time::timeout_at(deadline, collecting).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                let why = format!("request body over {body_limit} bytes");
                return self.refuse(&pending, http::StatusCode::PAYLOAD_TOO_LARGE, why);
            }
            Ok(Err(_)) => {
                let why = "could not read the request body".to_string();
                return self.refuse(&pending, http::StatusCode::BAD_REQUEST, why);
            }
            Err(_) => {
                let why = "request body not received in time".to_string();
                return self.refuse(&pending, http::StatusCode::REQUEST_TIMEOUT, why);
            }
        };
        pending.add_request_bytes(body.len() as u64);

        let vars = cgi_env::cgi_variables(&cgi_env::CgiRequest {
            parts: &parts,
            body_len: body.len(),
            context: &context,
        });
        let script_name = cgi_env::script_name(&context.route.path);
        let argv = argv::expand(
            &self.shared.argv_template,
            script_name,
            parts.uri.query().unwrap_or(""),
        );

        let (mut reader, writer) = tokio::io::duplex(STDOUT_PIPE);
        // stdout is the CGI response; stderr is the guest's log.
        let output = GuestOutput::new(
            self.shared.name.clone(),
            context.invocation_id,
            context.trace.trace_id,
        );
        let mut wasi = match crate::host::wasi_builder(self.component()) {
            Ok(wasi) => wasi,
            Err(e) => {
                return self.fault(
                    &context,
                    &pending,
                    Outcome::InstantiateFailed,
                    &format!("{e:#}"),
                )
            }
        };
        wasi.envs(&vars);
        // The component's own variables, unless they would shadow a CGI variable: the guest
        // must be able to trust what CGI tells it about the request.
        for (key, value) in &self.component().environment {
            if !vars.iter().any(|(name, _)| name == key) {
                wasi.env(key, value);
            }
        }
        wasi.args(&argv)
            .stdin(MemoryInputPipe::new(body))
            .stdout(AsyncStdoutStream::new(STDOUT_PIPE, writer))
            .stderr(OutputPipe::new(&output, Stream::Stderr));

        let cold = self.shared.cold.swap(false, Ordering::Relaxed);
        let profile = self.shared.profiles.select(&context, &self.shared.name);
        let spans = pending.span_buffer().cloned();
        let executor = self.clone();
        let task_context = context.clone();
        let task_pending = pending.clone();
        let stop = Arc::new(Stop::default());
        let tracestate =
            wasmgate_telemetry::tracestate_to_propagate(&context.trace, &parts.headers);
        let task_stop = stop.clone();
        let guest = tokio::spawn(async move {
            let _permit = permit;
            let run = executor
                .run(
                    wasi,
                    Until {
                        deadline,
                        stop: &task_stop,
                    },
                    InvocationInfo {
                        invocation_id: task_context.invocation_id,
                        trace: task_context.trace,
                        tracestate,
                    },
                    spans,
                    &output,
                    profile,
                )
                .await;
            executor.finish(&task_context, &task_pending, run, started, cold, &output)
        });

        // Read the head: everything up to the first blank line, which must come within
        // MAX_HEAD bytes. Only that much is searched: one read can bring in more than that,
        // and a longer head must be refused however the output was split into reads.
        let mut head = BytesMut::with_capacity(4096);
        let head_end = loop {
            let window = &head[..head.len().min(response::MAX_HEAD)];
            if let Some(end) = response::find_head_end(window) {
                break Some(end);
            }
            if head.len() >= response::MAX_HEAD {
                stop.stop("no blank line after the headers");
                return self.bad_output(
                    &context,
                    &pending,
                    &format!(
                        "no blank line within the first {} KiB of output",
                        response::MAX_HEAD >> 10
                    ),
                );
            }
            match reader.read_buf(&mut head).await {
                Ok(0) | Err(_) => break None,
                Ok(_) => {}
            }
        };
        if head.len() as u64 > limits.max_output {
            stop.stop("output exceeded max_output");
            return self.bad_output(&context, &pending, "output exceeded max_output");
        }
        let Some(head_end) = head_end else {
            // The guest finished without a complete head: its ending says what went wrong.
            let verdict = guest.await.unwrap_or(Verdict::ABORTED);
            return match (verdict.clean(), head.len()) {
                (true, 0) => self.bad_output(&context, &pending, "the guest wrote no output"),
                (true, _) => self.bad_output(&context, &pending, "no blank line after the headers"),
                (false, _) => self.failed_run_response(&context, &pending, verdict),
            };
        };
        let mut leftover = head.split_off(head_end).freeze();
        let parsed = match response::parse_head(&head) {
            Ok(parsed) => parsed,
            Err(e) => {
                stop.stop("the response head is not valid CGI");
                return self.bad_output(&context, &pending, &e.to_string());
            }
        };
        let remaining = limits.max_output - head.len() as u64;
        if leftover.len() as u64 > remaining {
            leftover = Bytes::new();
        }
        let body = CgiBody::new(reader, leftover, remaining, guest, stop);
        pending.update(|r| r.status = parsed.status.as_u16());
        let body = Counted::new(body, pending, Direction::Response);
        let mut response = http::Response::new(body.boxed_unsync());
        *response.status_mut() = parsed.status;
        *response.headers_mut() = parsed.headers;
        response
    }

    /// Instantiates and runs the program until it exits, fails or the deadline passes.
    async fn run(
        &self,
        wasi: wasmtime_wasi::WasiCtxBuilder,
        until: Until<'_>,
        invocation: InvocationInfo,
        spans: Option<SpanBuffer>,
        output: &GuestOutput,
        profile: Option<crate::profiling::Ticket>,
    ) -> Run {
        let mut wasi = wasi;
        let memory = self.component().limits.memory;
        let fuel = crate::fuel::FuelBudget::new(self.component().limits.fuel);
        match &self.shared.program {
            Program::Module(pre) => {
                let mut store = Store::new(
                    pre.module().engine(),
                    WagiState {
                        wasi: wasi.build_p1(),
                        limiter: MemoryLimiter::new(memory),
                        clock: CallClock::default(),
                    },
                );
                let filled = fuel.fill(&mut store);
                store.limiter(|state| &mut state.limiter);
                crate::call_clock::install(
                    &mut store,
                    self.component().limits.max_host_calls,
                    self.shared.telemetry.enabled(),
                );
                crate::engine::yield_every_tick(&mut store);
                let _profile = profile.and_then(|t| t.attach_module(&mut store, pre.module()));
                let mut instantiate_us = 0;
                let instantiating = Instant::now();
                let mut instantiated = None;
                let call = async {
                    filled?;
                    let instance = pre.instantiate_async(&mut store).await?;
                    instantiated = Some(Instant::now());
                    instantiate_us = instantiating.elapsed().as_micros() as u64;
                    let entry = instance.get_typed_func::<(), ()>(&mut store, &self.entrypoint)?;
                    entry.call_async(&mut store, ()).await
                };
                let end = until.run(async { call.await.map(|()| 0) }).await;
                Run {
                    end,
                    hit_memory_limit: store.data().limiter.hit_limit(),
                    peak_memory: store.data().limiter.peak(),
                    instantiate_us,
                    times: InstanceTimes {
                        instantiating,
                        instantiated,
                        ran_until: Instant::now(),
                    },
                    host_calls: None,
                    clock: std::mem::take(&mut store.data_mut().clock).settled(),
                    instructions: fuel.used(&store),
                }
            }
            Program::Command(pre) => {
                let mut caps = self.shared.grant.instance(invocation);
                if let Some(spans) = spans {
                    caps.collect_spans(spans);
                }
                caps.keep_output(output.clone());
                let mut store = Store::new(
                    pre.engine(),
                    HostState::from_wasi(wasi.build(), memory, caps),
                );
                let filled = fuel.fill(&mut store);
                store.limiter(|state| &mut state.limiter);
                crate::call_clock::install(
                    &mut store,
                    self.component().limits.max_host_calls,
                    self.shared.telemetry.enabled(),
                );
                crate::engine::yield_every_tick(&mut store);
                let component = pre.instance_pre().component();
                let _profile = profile.and_then(|t| t.attach_component(&mut store, component));
                let mut instantiate_us = 0;
                let instantiating = Instant::now();
                let mut instantiated = None;
                let call = async {
                    filled?;
                    let command = pre.instantiate_async(&mut store).await?;
                    instantiated = Some(Instant::now());
                    instantiate_us = instantiating.elapsed().as_micros() as u64;
                    let status = command.wasi_cli_run().call_run(&mut store).await?;
                    Ok(if status.is_ok() { 0 } else { 1 })
                };
                let end = until.run(call).await;
                Run {
                    end,
                    hit_memory_limit: store.data().limiter.hit_limit(),
                    peak_memory: store.data().limiter.peak(),
                    instantiate_us,
                    times: InstanceTimes {
                        instantiating,
                        instantiated,
                        ran_until: Instant::now(),
                    },
                    host_calls: Some(store.data().caps.calls.clone()),
                    clock: std::mem::take(&mut store.data_mut().clock).settled(),
                    instructions: fuel.used(&store),
                }
            }
        }
    }

    /// Logs how the run ended and returns the verdict.
    fn finish(
        &self,
        context: &RequestContext,
        pending: &Pending,
        run: Run,
        started: Instant,
        cold: bool,
        output: &GuestOutput,
    ) -> Verdict {
        let Run {
            end,
            hit_memory_limit,
            peak_memory,
            instantiate_us,
            times,
            host_calls,
            clock,
            instructions,
        } = run;
        let component = self.component().name.as_str();
        let transcript = output.finish();
        let elapsed_us = started.elapsed().as_micros() as u64;
        let route = &*context.route.pattern;
        let entrypoint = self.entrypoint.as_str();
        let outcome = match &end {
            RunEnd::Exited(_) => Outcome::Ok,
            RunEnd::TimedOut => Outcome::Timeout,
            RunEnd::Stopped(_) => Outcome::BadOutput,
            RunEnd::Failed(_) if hit_memory_limit => Outcome::MemoryLimit,
            RunEnd::Failed(e) if e.is::<crate::call_clock::HostCallLimitExceeded>() => {
                Outcome::HostCallLimit
            }
            RunEnd::Failed(e) if crate::fuel::ran_out(e) => Outcome::FuelLimit,
            RunEnd::Failed(_) => Outcome::Trap,
        };
        let exit_code = match &end {
            RunEnd::Exited(code) => Some(*code),
            _ => None,
        };
        if let Some(spans) = pending.span_buffer() {
            crate::record::instance_spans(spans, &self.shared.name, times, outcome);
        }
        let (message, backtrace) = match &end {
            RunEnd::Failed(error) => {
                let (message, backtrace) = crate::http_executor::describe_error(error);
                (Some(message), Some(backtrace).filter(|b| !b.is_empty()))
            }
            RunEnd::TimedOut => (
                Some(format!(
                    "timed out after {:?}",
                    self.component().limits.timeout
                )),
                None,
            ),
            RunEnd::Stopped(reason) => (Some((*reason).to_string()), None),
            RunEnd::Exited(_) => (None, None),
        };
        pending.update(|r| {
            // The request side may already have judged the output (bad_output); keep that.
            if r.outcome == "ok" {
                r.outcome = outcome.as_str();
            }
            r.exit_code = exit_code;
            r.error = r.error.take().or(message);
            r.backtrace = backtrace;
            r.instantiate_time_us = instantiate_us;
            if let Some(calls) = &host_calls {
                crate::record::fill_host_calls(r, calls, started);
            }
            crate::record::fill_call_clock(r, &clock);
            r.peak_memory_bytes = peak_memory as u64;
            r.cold_start = cold;
            r.instructions = instructions;
            crate::record::fill_output(r, transcript);
        });
        match end {
            RunEnd::Exited(0) => {
                tracing::debug!(
                    invocation = context.invocation_id,
                    component,
                    route,
                    entrypoint,
                    elapsed_us,
                    cold_start = cold,
                    outcome = "ok",
                    "invocation finished"
                );
            }
            RunEnd::Exited(code) => {
                tracing::warn!(
                    invocation = context.invocation_id,
                    component,
                    route,
                    entrypoint,
                    elapsed_us,
                    cold_start = cold,
                    exit_code = code,
                    "guest exited with a non-zero status"
                );
            }
            RunEnd::TimedOut | RunEnd::Stopped(_) => {
                tracing::warn!(
                    invocation = context.invocation_id,
                    component,
                    route,
                    entrypoint,
                    elapsed_us,
                    cold_start = cold,
                    outcome = outcome.as_str(),
                    "invocation failed"
                );
            }
            RunEnd::Failed(error) => {
                let (message, backtrace) = crate::http_executor::describe_error(&error);
                tracing::error!(invocation = context.invocation_id, component, route, entrypoint, elapsed_us, cold_start = cold, outcome = outcome.as_str(), error = %message, backtrace = %backtrace, "invocation failed");
            }
        }
        Verdict { outcome, exit_code }
    }

    /// The answer when the guest ended without writing a complete head.
    fn failed_run_response(
        &self,
        context: &RequestContext,
        pending: &Pending,
        verdict: Verdict,
    ) -> http::Response<ResponseBody> {
        let response = match verdict.outcome {
            Outcome::Trap
            | Outcome::Timeout
            | Outcome::MemoryLimit
            | Outcome::HostCallLimit
            | Outcome::FuelLimit => {
                let mut response = fault_response(verdict.outcome, context.invocation_id);
                if verdict.outcome == Outcome::Trap {
                    // WAGI answers a crashed script with 502, like any CGI gateway.
                    *response.status_mut() = http::StatusCode::BAD_GATEWAY;
                }
                response
            }
            _ => {
                // An exit without a response is a CGI script that failed: no valid output.
                let what = format!(
                    "the guest exited with status {} without a response",
                    verdict.exit_code.unwrap_or(-1)
                );
                let response = text_response(
                    http::StatusCode::BAD_GATEWAY,
                    format!("{what} (invocation {})\n", context.invocation_id),
                );
                pending.update(|r| {
                    r.outcome = Outcome::BadOutput.as_str();
                    r.error = Some(what);
                });
                response
            }
        };
        pending.update(|r| r.status = response.status().as_u16());
        response
    }

    fn bad_output(
        &self,
        context: &RequestContext,
        pending: &Pending,
        what: &str,
    ) -> http::Response<ResponseBody> {
        pending.update(|r| {
            r.outcome = Outcome::BadOutput.as_str();
            r.status = 502;
            r.error = Some(what.to_string());
        });
        tracing::warn!(
            invocation = context.invocation_id,
            component = %self.component().name,
            route = %context.route.pattern,
            outcome = Outcome::BadOutput.as_str(),
            problem = what,
            "guest output is not a valid CGI response"
        );
        text_response(
            http::StatusCode::BAD_GATEWAY,
            format!(
                "bad gateway: {what} (invocation {})\n",
                context.invocation_id
            ),
        )
    }

    fn fault(
        &self,
        context: &RequestContext,
        pending: &Pending,
        outcome: Outcome,
        detail: &str,
    ) -> http::Response<ResponseBody> {
        pending.update(|r| {
            r.outcome = outcome.as_str();
            r.status = outcome.status().as_u16();
            r.error = Some(detail.to_string());
        });
        tracing::warn!(
            invocation = context.invocation_id,
            component = %self.component().name,
            route = %context.route.pattern,
            outcome = outcome.as_str(),
            detail,
            "request not run"
        );
        fault_response(outcome, context.invocation_id)
    }
}

impl WagiExecutor {
    /// Answers a request the guest never saw (body too large or too slow).
    fn refuse(
        &self,
        pending: &Pending,
        status: http::StatusCode,
        why: String,
    ) -> http::Response<ResponseBody> {
        pending.update(|r| {
            r.outcome = "rejected";
            r.status = status.as_u16();
            r.error = Some(why.clone());
        });
        text_response(status, format!("{why}\n"))
    }
}

fn exit_of(result: wasmtime::Result<i32>) -> RunEnd {
    match result {
        Ok(code) => RunEnd::Exited(code),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => RunEnd::Exited(exit.0),
            None => RunEnd::Failed(e),
        },
    }
}

//! The `http` executor: a `wasi:http` 0.2 proxy component, one fresh instance per request.
//!
//! Per request: wait for a concurrency permit, build a store from the component's grants and
//! limits, instantiate from the `ProxyPre` made at load time, and run `incoming-handler.handle`
//! on its own task. The response goes back as soon as the guest sets it; the body streams while
//! the guest keeps writing. The task owns the store and ends with one log line saying how the
//! invocation went, so a guest that traps after sending headers is still reported.

use crate::call_clock::{CallClock, HostCallLimitExceeded};
use crate::executor::{
    text_response, Executor, RequestContext, ResponseBody, ResponseFuture, Scheme,
};
use crate::host::HostState;
use crate::outcome::Outcome;
use crate::record::{Counted, Direction, Pending};
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{oneshot, Semaphore};
use wasmgate_capabilities::{Grant, HostCalls, InvocationInfo};
use wasmgate_manifest::Component;
use wasmgate_telemetry::{Gauge, GuestOutput, Telemetry};
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme as WasiScheme};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

pub struct HttpExecutor {
    component: Arc<Component>,
    /// The component's name, shared by every record.
    name: Arc<str>,
    instances: Gauge,
    pre: ProxyPre<HostState>,
    grant: Grant,
    permits: Arc<Semaphore>,
    /// Still true until the first instance since load has been created.
    cold: AtomicBool,
    telemetry: Arc<Telemetry>,
    profiles: Arc<crate::profiling::Profiles>,
}

type GuestResponse = Result<http::Response<HyperOutgoingBody>, ErrorCode>;

/// How the guest task ended, before classification.
enum TaskEnd {
    Finished,
    InstantiateFailed(wasmtime::Error),
    Failed(wasmtime::Error),
    TimedOut,
}

impl HttpExecutor {
    pub fn new(
        component: Arc<Component>,
        pre: ProxyPre<HostState>,
        grant: Grant,
        telemetry: Arc<Telemetry>,
        profiles: Arc<crate::profiling::Profiles>,
    ) -> HttpExecutor {
        let permits = Arc::new(Semaphore::new(component.limits.max_concurrency as usize));
        HttpExecutor {
            name: component.name.as_str().into(),
            instances: telemetry.metrics.instances_gauge(&component.name),
            component,
            pre,
            grant,
            permits,
            cold: AtomicBool::new(true),
            telemetry,
            profiles,
        }
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
            "http",
            &request,
            started,
        );
        let deadline = tokio::time::Instant::from_std(started + self.component.limits.timeout);
        let permit =
            match tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => InstanceGuard::new(permit, &self.instances),
                _ => {
                    return self.answer_fault(
                        &context,
                        &pending,
                        Outcome::Overloaded,
                        "all instances busy",
                    )
                }
            };

        let mut caps = self.grant.instance(InvocationInfo {
            invocation_id: context.invocation_id,
            trace: context.trace,
            tracestate: wasmgate_telemetry::tracestate_to_propagate(
                &context.trace,
                request.headers(),
            ),
        });
        if let Some(spans) = pending.span_buffer() {
            caps.collect_spans(spans.clone());
        }
        let output = GuestOutput::new(
            self.name.clone(),
            context.invocation_id,
            context.trace.trace_id,
        );
        caps.keep_output(output.clone());
        let state = match HostState::new(&self.component, caps, &output) {
            Ok(built) => built,
            Err(e) => {
                return self.answer_fault(
                    &context,
                    &pending,
                    Outcome::InstantiateFailed,
                    &format!("{e:#}"),
                );
            }
        };
        let mut store = Store::new(self.pre.engine(), state);
        let fuel = crate::fuel::FuelBudget::new(self.component.limits.fuel);
        if let Err(e) = fuel.fill(&mut store) {
            return self.answer_fault(
                &context,
                &pending,
                Outcome::InstantiateFailed,
                &format!("{e:#}"),
            );
        }
        store.limiter(|state| &mut state.limiter);
        crate::call_clock::install(
            &mut store,
            self.component.limits.max_host_calls,
            self.telemetry.enabled(),
        );
        crate::engine::yield_every_tick(&mut store);
        let component = self.pre.instance_pre().component();
        let ticket = self.profiles.select(&context, &self.name);
        let profile = ticket.and_then(|t| t.attach_component(&mut store, component));

        let scheme = match context.scheme {
            Scheme::Http => WasiScheme::Http,
            Scheme::Https => WasiScheme::Https,
        };
        let (sender, receiver) = oneshot::channel::<GuestResponse>();
        let status = Arc::new(AtomicU16::new(0));
        let seen_status = status.clone();
        let body_limit = crate::body_limit::RequestBodyLimit::of(&request);
        let (parts, body) = request.into_parts();
        let body = Counted::new(body, pending.clone(), Direction::Request);
        let (body, body_exceeded) = crate::body_limit::CappedBody::new(body, body_limit);
        let request = http::Request::from_parts(parts, body);
        let prepared = store
            .data_mut()
            .http()
            .new_incoming_request(scheme, request)
            .and_then(|req| {
                let out = store
                    .data_mut()
                    .http()
                    .new_response_outparam_from_callback(move |response: GuestResponse| {
                        if let Ok(response) = &response {
                            seen_status.store(response.status().as_u16(), Ordering::Relaxed);
                        }
                        // The receiver is gone only if the client already went away.
                        let _ = sender.send(response);
                    })?;
                Ok((req, out))
            });
        let (req, out) = match prepared {
            Ok(handles) => handles,
            Err(e) => {
                return self.answer_fault(
                    &context,
                    &pending,
                    Outcome::InstantiateFailed,
                    &format!("{e:#}"),
                );
            }
        };

        let cold = self.cold.swap(false, Ordering::Relaxed);
        let executor = self.clone();
        let task_context = context.clone();
        let task_pending = pending.clone();
        let task = tokio::spawn(async move {
            let _permit = permit;
            let _profile = profile;
            let pre = executor.pre.clone();
            let mut instantiate_us = 0;
            let instantiating = Instant::now();
            let mut instantiated = None;
            let run = async {
                let proxy = match pre.instantiate_async(&mut store).await {
                    Ok(proxy) => proxy,
                    Err(e) => return TaskEnd::InstantiateFailed(e),
                };
                instantiated = Some(Instant::now());
                instantiate_us = instantiating.elapsed().as_micros() as u64;
                match proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
                {
                    Ok(()) => TaskEnd::Finished,
                    Err(e) => TaskEnd::Failed(e),
                }
            };
            let end = tokio::time::timeout_at(deadline, run)
                .await
                .unwrap_or(TaskEnd::TimedOut);
            let ran_until = Instant::now();
            let hit_memory_limit = store.data().limiter.hit_limit();
            let peak_memory = store.data().limiter.peak();
            let host_calls = store.data().caps.calls.clone();
            let clock = std::mem::take(&mut store.data_mut().clock).settled();
            let instructions = fuel.used(&store);
            drop(store);
            let status = status.load(Ordering::Relaxed);
            let usage = Usage {
                hit_memory_limit,
                peak_memory,
                status,
                started,
                cold,
                instantiate_us,
                host_calls,
                clock,
                instructions,
            };
            let outcome = executor.finish(&task_context, &task_pending, end, usage, &output);
            if let Some(spans) = task_pending.span_buffer() {
                let times = crate::record::InstanceTimes {
                    instantiating,
                    instantiated,
                    ran_until,
                };
                crate::record::instance_spans(spans, &executor.name, times, outcome);
            }
            outcome
        });

        let answer = receiver.await;
        if body_exceeded.get() {
            // Whatever the guest answered was about a body it never fully got; its record is
            // final once the task ends.
            drop(answer);
            let _ = task.await;
            return crate::body_limit::too_large(&pending, body_limit, context.invocation_id);
        }
        match answer {
            Ok(Ok(response)) => response.map(|body| {
                Counted::new(body, pending, Direction::Response)
                    .map_err(Into::into)
                    .boxed_unsync()
            }),
            Ok(Err(code)) => {
                tracing::warn!(
                    invocation = context.invocation_id,
                    component = %self.component.name,
                    error = ?code,
                    "guest answered with an error code instead of a response"
                );
                pending.update(|r| {
                    r.status = 500;
                    r.error = Some(format!("guest error code: {code:?}"));
                });
                text_response(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "guest error: {code:?} (invocation {})\n",
                        context.invocation_id
                    ),
                )
            }
            // The guest never set a response: the task's outcome says why.
            Err(_) => {
                let outcome = task.await.unwrap_or(Outcome::Trap);
                let outcome = if outcome == Outcome::Ok {
                    Outcome::NoResponse
                } else {
                    outcome
                };
                let response = fault_response(outcome, context.invocation_id);
                pending.update(|r| {
                    r.outcome = outcome.as_str();
                    r.status = response.status().as_u16();
                });
                response
            }
        }
    }

    /// Classifies and logs how the invocation ended, fills the record; returns the outcome.
    fn finish(
        &self,
        context: &RequestContext,
        pending: &Pending,
        end: TaskEnd,
        usage: Usage,
        output: &GuestOutput,
    ) -> Outcome {
        let Usage {
            hit_memory_limit,
            peak_memory,
            status,
            started,
            cold,
            instantiate_us,
            host_calls,
            clock,
            instructions,
        } = usage;
        let elapsed_us = started.elapsed().as_micros() as u64;
        let (outcome, error) = match end {
            TaskEnd::Finished if status == 0 => (Outcome::NoResponse, None),
            TaskEnd::Finished => (Outcome::Ok, None),
            TaskEnd::TimedOut => (Outcome::Timeout, None),
            TaskEnd::InstantiateFailed(e) if e.is::<wasmtime::PoolConcurrencyLimitError>() => {
                (Outcome::Overloaded, Some(e))
            }
            TaskEnd::InstantiateFailed(e) if hit_memory_limit => (Outcome::MemoryLimit, Some(e)),
            TaskEnd::InstantiateFailed(e) if crate::fuel::ran_out(&e) => {
                (Outcome::FuelLimit, Some(e))
            }
            TaskEnd::InstantiateFailed(e) => (Outcome::InstantiateFailed, Some(e)),
            TaskEnd::Failed(e) if hit_memory_limit => (Outcome::MemoryLimit, Some(e)),
            TaskEnd::Failed(e) if e.is::<HostCallLimitExceeded>() => {
                (Outcome::HostCallLimit, Some(e))
            }
            TaskEnd::Failed(e) if crate::fuel::ran_out(&e) => (Outcome::FuelLimit, Some(e)),
            TaskEnd::Failed(e) => (Outcome::Trap, Some(e)),
        };
        let transcript = output.finish();
        let (message, backtrace) = match &error {
            Some(error) => {
                let (message, backtrace) = describe_error(error);
                (Some(message), Some(backtrace))
            }
            None if outcome == Outcome::Timeout => (
                Some(format!(
                    "timed out after {:?}",
                    self.component.limits.timeout
                )),
                None,
            ),
            None if outcome == Outcome::NoResponse => (
                Some("the handler returned without setting a response".to_string()),
                None,
            ),
            None => (None, None),
        };
        pending.update(|r| {
            r.outcome = outcome.as_str();
            if status != 0 {
                r.status = status;
            }
            // A guest that answered with an error code has its message set by the request
            // side, which may get there first; that message says more.
            r.error = r.error.take().or_else(|| message.clone());
            r.backtrace = backtrace.clone().filter(|b| !b.is_empty());
            r.instantiate_time_us = instantiate_us;
            r.peak_memory_bytes = peak_memory as u64;
            r.cold_start = cold;
            r.instructions = instructions;
            crate::record::fill_host_calls(r, &host_calls, started);
            crate::record::fill_call_clock(r, &clock);
            crate::record::fill_output(r, transcript);
        });
        let component = &*self.component.name;
        let route = &*context.route.pattern;
        match (&outcome, message) {
            (Outcome::Ok, _) => {}
            (Outcome::Timeout, _) | (_, None) => tracing::warn!(
                invocation = context.invocation_id,
                component,
                route,
                status,
                elapsed_us,
                cold_start = cold,
                outcome = outcome.as_str(),
                timeout_ms = self.component.limits.timeout.as_millis() as u64,
                "invocation failed"
            ),
            (_, Some(message)) => tracing::error!(
                invocation = context.invocation_id, component, route, status,
                elapsed_us, peak_memory, cold_start = cold, outcome = outcome.as_str(),
                error = %message, backtrace = %backtrace.unwrap_or_default(),
                "invocation failed"
            ),
        }
        outcome
    }

    fn answer_fault(
        &self,
        context: &RequestContext,
        pending: &Pending,
        outcome: Outcome,
        detail: &str,
    ) -> http::Response<ResponseBody> {
        tracing::warn!(
            invocation = context.invocation_id,
            component = %self.component.name,
            route = %context.route.pattern,
            outcome = outcome.as_str(),
            detail,
            "request not run"
        );
        let response = fault_response(outcome, context.invocation_id);
        pending.update(|r| {
            r.outcome = outcome.as_str();
            r.status = response.status().as_u16();
            r.error = Some(detail.to_string());
        });
        response
    }
}

/// What the task measured about one invocation.
struct Usage {
    hit_memory_limit: bool,
    peak_memory: usize,
    status: u16,
    started: Instant,
    cold: bool,
    instantiate_us: u64,
    host_calls: HostCalls,
    clock: CallClock,
    /// Instructions executed, for components with a fuel budget.
    instructions: Option<u64>,
}

/// The trap message and the symbolized guest backtrace of a failed call.
pub(crate) fn describe_error(error: &wasmtime::Error) -> (String, String) {
    let backtrace = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|bt| bt.to_string())
        .unwrap_or_default();
    let message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{:#}", error.root_cause()),
    };
    (message, backtrace)
}

/// A concurrency permit that also keeps the instances-in-use gauge.
pub(crate) struct InstanceGuard {
    _permit: tokio::sync::OwnedSemaphorePermit,
    gauge: Gauge,
}

impl InstanceGuard {
    pub(crate) fn new(permit: tokio::sync::OwnedSemaphorePermit, gauge: &Gauge) -> InstanceGuard {
        gauge.inc();
        InstanceGuard {
            _permit: permit,
            gauge: gauge.clone(),
        }
    }
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl Executor for HttpExecutor {
    fn handle(
        self: Arc<Self>,
        request: http::Request<hyper::body::Incoming>,
        context: RequestContext,
    ) -> ResponseFuture {
        Box::pin(self.serve(request, context))
    }
}

/// The short body a client gets when the guest produced no response; the invocation id lets
/// an operator find the matching log line.
pub(crate) fn fault_response(outcome: Outcome, invocation_id: u64) -> http::Response<ResponseBody> {
    let what = match outcome {
        Outcome::Trap => "the guest trapped",
        Outcome::Timeout => "the guest did not answer in time",
        Outcome::MemoryLimit => "the guest exceeded its memory limit",
        Outcome::HostCallLimit => "the guest made too many host calls",
        Outcome::FuelLimit => "the guest ran out of fuel (instructions)",
        Outcome::NoResponse => "the guest returned without a response",
        Outcome::Overloaded => "all instances are busy, try again later",
        Outcome::InstantiateFailed => "the guest could not be started",
        Outcome::BadOutput => "the guest's output was not a valid response",
        Outcome::Denied => "the request was denied",
        Outcome::RateLimited => "too many requests, try again later",
        Outcome::Ok => "ok",
    };
    let mut response = text_response(
        outcome.status(),
        format!("{what} (invocation {invocation_id})\n"),
    );
    if outcome == Outcome::Overloaded {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
    }
    response
}

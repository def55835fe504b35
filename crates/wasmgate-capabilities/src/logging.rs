//! `wasi:logging`: guest log records go to the host's structured logs (target
//! `wasmgate::guest`), tagged with the component and invocation id.
//!
//! Records are capped per invocation so a chatty guest cannot flood the host's log; the count
//! of dropped records is logged once when the instance goes away.

use crate::stats::Capability;
use crate::{CapabilityHost, CapsView, InvocationInfo};
use std::sync::Arc;
use std::time::Instant;
use wasmgate_telemetry::{GuestOutput, TraceId};
use wasmtime::component::{HasData, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/deps/logging",
        world: "wasi:logging/imports",
    });
}

use bindings::wasi::logging::logging::{Host, Level};

/// Records one invocation may log; later ones are counted and dropped.
pub const MAX_RECORDS_PER_INVOCATION: u32 = 1000;
/// Longest message kept per record, in bytes; longer ones are cut at a character boundary.
pub const MAX_MESSAGE_BYTES: usize = 8 << 10;

pub struct State {
    component: Arc<str>,
    invocation_id: u64,
    trace_id: TraceId,
    emitted: u32,
    dropped: u32,
    /// Where the invocation's record keeps its first log records.
    output: Option<GuestOutput>,
}

impl State {
    pub fn new(component: Arc<str>, invocation: &InvocationInfo) -> State {
        State {
            component,
            invocation_id: invocation.invocation_id,
            trace_id: invocation.trace.trace_id,
            emitted: 0,
            dropped: 0,
            output: None,
        }
    }

    pub(crate) fn keep_output(&mut self, output: GuestOutput) {
        self.output = Some(output);
    }

    /// Records the guest logged (emitted, dropped over the cap).
    pub fn counts(&self) -> (u32, u32) {
        (self.emitted, self.dropped)
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if self.dropped > 0 {
            tracing::warn!(
                target: "wasmgate::guest",
                component = %self.component,
                invocation = self.invocation_id,
                dropped = self.dropped,
                "guest log records over the per-invocation cap were dropped"
            );
        }
    }
}

impl Host for CapsView<'_> {
    fn log(&mut self, level: Level, context: String, message: String) {
        let started = Instant::now();
        let state = &mut self.caps.logging;
        if state.emitted >= MAX_RECORDS_PER_INVOCATION {
            state.dropped = state.dropped.saturating_add(1);
        } else {
            state.emitted += 1;
            let message = truncate(&message, MAX_MESSAGE_BYTES);
            if let Some(output) = &state.output {
                output.keep_log_record(level_name(level), message);
            }
            let component = &*state.component;
            let invocation_id = state.invocation_id;
            let trace_id = state.trace_id;
            // tracing levels are fixed at compile time per call site, hence one arm each.
            macro_rules! emit {
                ($level:ident) => {
                    tracing::$level!(
                        target: "wasmgate::guest",
                        component,
                        invocation = invocation_id,
                        trace_id = %trace_id,
                        context = %context,
                        "{message}"
                    )
                };
            }
            match level {
                Level::Trace => emit!(trace),
                Level::Debug => emit!(debug),
                Level::Info => emit!(info),
                Level::Warn => emit!(warn),
                Level::Error | Level::Critical => emit!(error),
            }
        }
        self.caps.calls.record(Capability::Logging, started);
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
        Level::Critical => "critical",
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

struct HasLogging;

impl HasData for HasLogging {
    type Data<'a> = CapsView<'a>;
}

pub fn add_to_linker<T: CapabilityHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    bindings::wasi::logging::logging::add_to_linker::<T, HasLogging>(linker, T::caps)
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}

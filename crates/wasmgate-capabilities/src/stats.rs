//! Counting and timing host calls per capability, for the invocation record and metrics.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    OutboundHttp,
    KeyValue,
    Sql,
    Variables,
    Logging,
}

impl Capability {
    pub const ALL: [Capability; 5] = [
        Capability::OutboundHttp,
        Capability::KeyValue,
        Capability::Sql,
        Capability::Variables,
        Capability::Logging,
    ];

    /// The label used in metrics and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::OutboundHttp => "outbound_http",
            Capability::KeyValue => "key_value",
            Capability::Sql => "sql",
            Capability::Variables => "variables",
            Capability::Logging => "logging",
        }
    }
}

/// Calls and time spent in one capability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCallStats {
    pub count: u64,
    pub duration: Duration,
}

/// Calls kept one by one per invocation, for its trace view; later ones are only counted.
pub const MAX_TRACED_CALLS: usize = 32;

/// One call into a capability that talks to something outside (outbound HTTP, key-value,
/// SQL), kept for the invocation record's trace view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedCall {
    pub capability: Capability,
    /// What the call did, as its span is named: `GET host:port`, `get store`,
    /// `SELECT database`... never keys, values or statement text.
    pub operation: String,
    pub started: Instant,
    pub duration: Duration,
    pub failed: bool,
}

/// Per-instance host-call tally. Shared with futures that finish after the call returns
/// (an outbound response arriving later), hence the `Arc`.
#[derive(Debug, Clone, Default)]
pub struct HostCalls {
    inner: Arc<Mutex<Tally>>,
}

#[derive(Debug, Default)]
struct Tally {
    stats: [HostCallStats; 5],
    traced: Vec<TracedCall>,
    /// Traced calls past `MAX_TRACED_CALLS`.
    untraced: u64,
}

impl HostCalls {
    pub fn record(&self, capability: Capability, started: Instant) {
        let elapsed = started.elapsed();
        if let Ok(mut tally) = self.inner.lock() {
            let entry = &mut tally.stats[capability as usize];
            entry.count += 1;
            entry.duration += elapsed;
        }
    }

    /// Counts a call like [`HostCalls::record`] and keeps it for the trace view, named by
    /// `operation` (made only while there is room).
    pub fn record_traced(
        &self,
        capability: Capability,
        started: Instant,
        operation: impl FnOnce() -> String,
        failed: bool,
    ) {
        let duration = started.elapsed();
        if let Ok(mut tally) = self.inner.lock() {
            let entry = &mut tally.stats[capability as usize];
            entry.count += 1;
            entry.duration += duration;
            if tally.traced.len() < MAX_TRACED_CALLS {
                tally.traced.push(TracedCall {
                    capability,
                    operation: operation(),
                    started,
                    duration,
                    failed,
                });
            } else {
                tally.untraced += 1;
            }
        }
    }

    /// What the instance called, taken once it is done: totals for each capability called
    /// at least once, and the calls kept one by one in the order they started (with how
    /// many more there were). `None` when it called no capability, which most requests do
    /// not: then nothing is allocated.
    pub fn take_summary(&self) -> Option<CallSummary> {
        let Ok(mut tally) = self.inner.lock() else {
            return None;
        };
        if tally.stats.iter().all(|s| s.count == 0) {
            return None;
        }
        let by_capability = Capability::ALL
            .into_iter()
            .zip(tally.stats.iter().copied())
            .filter(|(_, s)| s.count > 0)
            .collect();
        let mut traced = std::mem::take(&mut tally.traced);
        // Outbound calls are recorded when they end; a trace reads in start order.
        traced.sort_by_key(|call| call.started);
        Some(CallSummary {
            by_capability,
            traced,
            untraced: tally.untraced,
        })
    }
}

/// What one instance called ([`HostCalls::take_summary`]).
#[derive(Debug)]
pub struct CallSummary {
    pub by_capability: Vec<(Capability, HostCallStats)>,
    pub traced: Vec<TracedCall>,
    /// Traced calls past `MAX_TRACED_CALLS`.
    pub untraced: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traced_calls_are_kept_up_to_the_cap_and_all_are_counted() {
        let calls = HostCalls::default();
        let started = Instant::now();
        for i in 0..MAX_TRACED_CALLS + 5 {
            calls.record_traced(
                Capability::KeyValue,
                started,
                || format!("get s{i}"),
                i == 1,
            );
        }
        calls.record(Capability::Logging, started);
        let summary = calls.take_summary().unwrap();
        let (traced, untraced) = (&summary.traced, summary.untraced);
        assert_eq!((traced.len(), untraced), (MAX_TRACED_CALLS, 5));
        assert_eq!(traced[1].operation, "get s1");
        assert!(traced[1].failed && !traced[0].failed);
        let totals = &summary.by_capability;
        assert_eq!(totals[0].0, Capability::KeyValue);
        assert_eq!(totals[0].1.count, MAX_TRACED_CALLS as u64 + 5);
        assert_eq!(totals[1].0, Capability::Logging);
    }

    #[test]
    fn an_instance_that_called_nothing_has_no_summary() {
        assert!(HostCalls::default().take_summary().is_none());
    }
}

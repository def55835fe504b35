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

/// Per-instance host-call tally. Shared with futures that finish after the call returns
/// (an outbound response arriving later), hence the `Arc`.
#[derive(Debug, Clone, Default)]
pub struct HostCalls {
    inner: Arc<Mutex<[HostCallStats; 5]>>,
}

impl HostCalls {
    pub fn record(&self, capability: Capability, started: Instant) {
        let elapsed = started.elapsed();
        if let Ok(mut stats) = self.inner.lock() {
            let entry = &mut stats[capability as usize];
            entry.count += 1;
            entry.duration += elapsed;
        }
    }

    /// Calls so far, for each capability that was called at least once.
    pub fn snapshot(&self) -> Vec<(Capability, HostCallStats)> {
        let Ok(stats) = self.inner.lock() else {
            return Vec::new();
        };
        Capability::ALL
            .into_iter()
            .zip(stats.iter().copied())
            .filter(|(_, s)| s.count > 0)
            .collect()
    }
}

//! How often the epoch ticker ticks. While a session collects it ticks at the finest
//! interval any collecting session asked for; the demand carries the latest deadline, so
//! ticking goes back to normal by itself even if nobody looks at the registry again.
//!
//! Process-wide because the tickers belong to engines and the registry to the app; one
//! process serves one app. Every guest on the engine then yields at the finer tick too: a
//! CPU-bound guest pays one `yield_now` (a few µs) per tick instead of per 10 ms.

use super::{Session, SessionState};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static INTERVAL_NANOS: AtomicU64 = AtomicU64::new(0);
static UNTIL_UNIX_MS: AtomicU64 = AtomicU64::new(0);

/// The tick the epoch ticker should sleep now.
pub(crate) fn current() -> Duration {
    let until = UNTIL_UNIX_MS.load(Ordering::Relaxed);
    let nanos = INTERVAL_NANOS.load(Ordering::Relaxed);
    if nanos == 0 || until <= now_ms() {
        return crate::engine::EPOCH_TICK;
    }
    Duration::from_nanos(nanos).min(crate::engine::EPOCH_TICK)
}

pub(super) fn demand(sessions: &VecDeque<Session>) {
    let collecting = sessions
        .iter()
        .filter(|s| s.state == SessionState::Collecting);
    let interval = collecting.clone().map(|s| s.interval).min();
    let until = collecting
        .map(|s| {
            s.deadline
                .saturating_duration_since(std::time::Instant::now())
        })
        .max()
        .unwrap_or_default();
    let nanos = interval.map_or(0, |i| i.as_nanos() as u64);
    UNTIL_UNIX_MS.store(now_ms() + until.as_millis() as u64, Ordering::Relaxed);
    INTERVAL_NANOS.store(nanos, Ordering::Relaxed);
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

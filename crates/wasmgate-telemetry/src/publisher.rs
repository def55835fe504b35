//! Publishing finished records off the request path.
//!
//! Turning a record into metrics and a history entry takes a mutex per histogram and several
//! atomics on lines every worker thread writes; with two workers serving hello requests that
//! cost about 12% of a request's CPU, twice what its instructions suggest. With a publisher
//! running, a request only queues its record (one short lock) and the publisher thread
//! publishes the queue every [`PUBLISH_INTERVAL`], in order, on one thread. Readers of
//! metrics and history call [`Inbox::settle`] first, so what they see includes every record
//! emitted before they asked. A request's spans travel with its record, so handing them to
//! the span exporter (its queue's lock, a copy of the record) is the publisher's work too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How often the publisher thread publishes what was queued.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(10);

/// Records queued at most; the request that finds the queue this full publishes it itself, so
/// a stalled publisher slows requests down instead of losing records or growing memory.
const QUEUE_LIMIT: usize = 8192;

pub(crate) struct Inbox<T> {
    queued: Mutex<Vec<T>>,
    /// Held while a batch is taken and published, so batches are published in order; the
    /// vector is the spare buffer the queue is swapped with.
    publishing: Mutex<Vec<T>>,
    /// Whether a publisher thread runs; without one, records are published as they come.
    piped: AtomicBool,
}

impl<T> Default for Inbox<T> {
    fn default() -> Inbox<T> {
        Inbox {
            queued: Mutex::new(Vec::new()),
            publishing: Mutex::new(Vec::new()),
            piped: AtomicBool::new(false),
        }
    }
}

impl<T> Inbox<T> {
    pub(crate) fn piped(&self) -> bool {
        self.piped.load(Ordering::Relaxed)
    }

    pub(crate) fn set_piped(&self) {
        self.piped.store(true, Ordering::Relaxed);
    }

    /// Queues `record`; returns true when the queue is full and the caller must settle.
    pub(crate) fn queue(&self, record: T) -> bool {
        let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        queued.push(record);
        queued.len() >= QUEUE_LIMIT
    }

    /// Takes everything queued so far and hands it to `publish`, in order.
    pub(crate) fn settle(&self, publish: impl FnOnce(std::vec::Drain<'_, T>)) {
        let mut batch = self.publishing.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
            if queued.is_empty() {
                return;
            }
            std::mem::swap(&mut *queued, &mut *batch);
        }
        publish(batch.drain(..));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64) -> u64 {
        id
    }

    #[test]
    fn settling_publishes_everything_queued_in_order() {
        let inbox = Inbox::<u64>::default();
        for id in 0..5 {
            assert!(!inbox.queue(record(id)));
        }
        let mut seen = Vec::new();
        inbox.settle(|batch| seen.extend(batch));
        assert_eq!(seen, [0, 1, 2, 3, 4]);
        inbox.settle(|batch| seen.extend(batch));
        assert_eq!(seen.len(), 5, "nothing is published twice");
    }

    #[test]
    fn a_full_queue_asks_the_caller_to_settle() {
        let inbox = Inbox::<u64>::default();
        let full = (0..QUEUE_LIMIT as u64).map(|id| inbox.queue(record(id)));
        assert_eq!(full.filter(|f| *f).count(), 1);
    }
}

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
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::Duration;

/// How often the publisher thread publishes what was queued while records come in.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(10);

/// The longest the publisher rests when no records come: each empty look doubles the rest up
/// to this, so an idle server's publisher wakes a few times a second instead of a hundred.
/// The first record after the quiet spell wakes it ([`Doze`]), so batches stay as small as
/// at the busy pace (a follower's feed holds only so many records).
pub const IDLE_INTERVAL: Duration = Duration::from_millis(500);

/// A thread that rests longer than its busy pace while no work comes, and is woken by the
/// first work that does. Producers pay one relaxed load of a flag that changes only when the
/// thread starts or ends such a rest.
#[derive(Default)]
pub struct Doze {
    resting: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Doze {
    /// The thread that rests; set once, when it is started.
    pub fn set_thread(&self, thread: Thread) {
        let _ = self.thread.set(thread);
    }

    /// After adding work: wakes the thread if it is resting.
    #[inline]
    pub fn nudge(&self) {
        if self.resting.load(Ordering::Relaxed) && self.resting.swap(false, Ordering::SeqCst) {
            if let Some(thread) = self.thread.get() {
                thread.unpark();
            }
        }
    }

    /// On the resting thread: waits up to `rest` unless `has_work` finds work already there.
    /// At the busy pace ([`PUBLISH_INTERVAL`]) producers are not asked to wake it: a plain
    /// wait (which [`Thread::unpark`] still ends). Longer, `has_work` must take the lock
    /// producers add work under: either it sees their work, or they see the flag set before it
    /// and wake the thread.
    pub fn rest(&self, rest: Duration, has_work: impl FnOnce() -> bool) {
        if rest <= PUBLISH_INTERVAL {
            std::thread::park_timeout(rest);
            return;
        }
        self.resting.store(true, Ordering::SeqCst);
        if !has_work() {
            std::thread::park_timeout(rest);
        }
        self.resting.store(false, Ordering::SeqCst);
    }
}

/// The rest after a look that `found` work, given the rest before it: the busy pace again, or
/// twice as long up to [`IDLE_INTERVAL`].
pub fn next_rest(rest: Duration, found: bool) -> Duration {
    if found {
        PUBLISH_INTERVAL
    } else {
        (rest * 2).min(IDLE_INTERVAL)
    }
}

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
    /// The publisher thread, woken by the first record after a quiet spell.
    pub(crate) doze: Doze,
}

impl<T> Default for Inbox<T> {
    fn default() -> Inbox<T> {
        Inbox {
            queued: Mutex::new(Vec::new()),
            publishing: Mutex::new(Vec::new()),
            piped: AtomicBool::new(false),
            doze: Doze::default(),
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
        let full = {
            let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
            queued.push(record);
            queued.len() >= QUEUE_LIMIT
        };
        self.doze.nudge();
        full
    }

    /// Whether records are waiting (under the queue's lock, as [`Doze::rest`] needs).
    pub(crate) fn has_queued(&self) -> bool {
        !self
            .queued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Takes everything queued so far and hands it to `publish`, in order; false when there
    /// was nothing.
    pub(crate) fn settle(&self, publish: impl FnOnce(std::vec::Drain<'_, T>)) -> bool {
        let mut batch = self.publishing.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
            if queued.is_empty() {
                return false;
            }
            std::mem::swap(&mut *queued, &mut *batch);
        }
        publish(batch.drain(..));
        true
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
        assert!(inbox.settle(|batch| seen.extend(batch)));
        assert_eq!(seen, [0, 1, 2, 3, 4]);
        assert!(!inbox.settle(|batch| seen.extend(batch)));
        assert_eq!(seen.len(), 5, "nothing is published twice");
    }

    #[test]
    fn an_idle_publisher_rests_longer_up_to_a_limit_and_is_brisk_again_with_work() {
        let mut rest = PUBLISH_INTERVAL;
        let mut rests = Vec::new();
        for _ in 0..10 {
            rest = next_rest(rest, false);
            rests.push(rest);
        }
        assert_eq!(rests[0], PUBLISH_INTERVAL * 2);
        assert!(rests.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*rests.last().unwrap(), IDLE_INTERVAL);
        assert_eq!(next_rest(IDLE_INTERVAL, true), PUBLISH_INTERVAL);
    }

    #[test]
    fn a_resting_thread_is_woken_by_the_first_record() {
        let inbox = std::sync::Arc::new(Inbox::<u64>::default());
        let resting = inbox.clone();
        let thread = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            resting
                .doze
                .rest(Duration::from_secs(30), || resting.has_queued());
            started.elapsed()
        });
        inbox.doze.set_thread(thread.thread().clone());
        std::thread::sleep(Duration::from_millis(50));
        inbox.queue(record(1));
        let rested = thread.join().unwrap();
        assert!(rested < Duration::from_secs(10), "rested {rested:?}");
        // Work already waiting: no rest at all.
        let started = std::time::Instant::now();
        inbox
            .doze
            .rest(Duration::from_secs(30), || inbox.has_queued());
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_full_queue_asks_the_caller_to_settle() {
        let inbox = Inbox::<u64>::default();
        let full = (0..QUEUE_LIMIT as u64).map(|id| inbox.queue(record(id)));
        assert_eq!(full.filter(|f| *f).count(), 1);
    }
}

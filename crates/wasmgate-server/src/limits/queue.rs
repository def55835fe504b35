//! A route's concurrency cap with a bounded wait queue: the front door that turns a burst
//! into a short wait (backpressure) instead of errors, and past its bounds into an immediate
//! 503 rather than an ever-growing pile of waiting requests.
//!
//! tokio's semaphore hands permits out in the order they were asked for, which makes the
//! queue FIFO; the count of waiters is kept beside it so the queue's length is bounded.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmgate_manifest::ConcurrencyLimit;

pub struct ConcurrencyGate {
    permits: Arc<Semaphore>,
    waiting: AtomicU32,
    queue: u32,
    queue_timeout: Duration,
}

/// Why a request was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot busy and the queue full: refused without waiting.
    QueueFull,
    /// Waited the whole `queue_timeout` without getting a slot.
    TimedOut,
}

impl ConcurrencyGate {
    pub fn new(limit: &ConcurrencyLimit) -> ConcurrencyGate {
        ConcurrencyGate {
            permits: Arc::new(Semaphore::new(limit.max_in_flight as usize)),
            waiting: AtomicU32::new(0),
            queue: limit.queue,
            queue_timeout: limit.queue_timeout,
        }
    }

    pub fn queue_timeout(&self) -> Duration {
        self.queue_timeout
    }

    /// A slot, held until the permit is dropped: at once if one is free, else after waiting
    /// in line.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, Refused> {
        // Free permits exist only when nobody waits (they go to waiters first), so this
        // cannot jump the line.
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let in_line = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _place = InLine(&self.waiting);
        if in_line >= self.queue {
            return Err(Refused::QueueFull);
        }
        match tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it as a timeout all the same.
            Ok(Err(_)) | Err(_) => Err(Refused::TimedOut),
        }
    }

    /// Requests waiting for a slot now.
    #[cfg(test)]
    fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Acquire)
    }
}

/// A place in the queue, given up when the wait ends in any way (the client leaving too).
struct InLine<'a>(&'a AtomicU32);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(max: u32, queue: u32, timeout_ms: u64) -> Arc<ConcurrencyGate> {
        Arc::new(ConcurrencyGate::new(&ConcurrencyLimit {
            max_in_flight: max,
            queue,
            queue_timeout: Duration::from_millis(timeout_ms),
        }))
    }

    #[tokio::test]
    async fn past_the_cap_and_the_queue_requests_are_refused_at_once() {
        let gate = gate(1, 1, 1000);
        let running = gate.enter().await.unwrap();
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.map(drop) }
        });
        tokio::task::yield_now().await;
        assert_eq!(gate.waiting(), 1);
        assert_eq!(gate.enter().await.unwrap_err(), Refused::QueueFull);
        drop(running);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test]
    async fn a_waiter_gives_up_after_the_queue_timeout() {
        let gate = gate(1, 5, 200);
        let _running = gate.enter().await.unwrap();
        let started = std::time::Instant::now();
        assert_eq!(gate.enter().await.unwrap_err(), Refused::TimedOut);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(5));
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test]
    async fn waiters_are_served_in_arrival_order() {
        let gate = gate(1, 10, 10_000);
        let running = gate.enter().await.unwrap();
        let (order_tx, mut order_rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..5 {
            let gate = gate.clone();
            let order_tx = order_tx.clone();
            tokio::spawn(async move {
                let permit = gate.enter().await.unwrap();
                order_tx.send(i).unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
                drop(permit);
            });
            // Each joins the line before the next is spawned.
            tokio::task::yield_now().await;
        }
        drop(running);
        drop(order_tx);
        let mut order = Vec::new();
        while let Some(i) = order_rx.recv().await {
            order.push(i);
        }
        assert_eq!(order, vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_waiter_that_goes_away_frees_its_place() {
        let gate = gate(1, 1, 10_000);
        let _running = gate.enter().await.unwrap();
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.map(drop) }
        });
        tokio::task::yield_now().await;
        assert_eq!(gate.waiting(), 1);
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(gate.waiting(), 0);
    }
}

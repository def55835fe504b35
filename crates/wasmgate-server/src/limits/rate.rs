//! Token buckets: one for a whole route, and a bounded set of them keyed by client.
//!
//! Time is always passed in (`now`), never read here, so the arithmetic is tested without
//! sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wasmgate_manifest::RateLimit;

/// `rate` tokens per second, at most `capacity` saved up; a request takes one.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

/// The fixed parameters of a bucket, shared by all the buckets of a limit.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    per_second: f64,
    capacity: f64,
}

impl Rate {
    pub fn new(limit: &RateLimit) -> Rate {
        Rate {
            per_second: f64::from(limit.requests) / limit.per.as_secs_f64(),
            capacity: f64::from(limit.burst),
        }
    }

    /// How long an empty bucket takes to fill up again; a bucket idle that long is as good as
    /// a new one.
    fn time_to_fill(&self) -> Duration {
        Duration::from_secs_f64(self.capacity / self.per_second)
    }
}

impl TokenBucket {
    /// A full bucket: a new client may use its whole burst.
    pub fn full(rate: &Rate, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: rate.capacity,
            updated: now,
        }
    }

    /// Takes a token, or says how long until one is available.
    pub fn take(&mut self, rate: &Rate, now: Instant) -> Result<(), Duration> {
        // A clock that seems to go back (an earlier `now` from a racing caller) adds nothing.
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.capacity);
        self.updated = self.updated.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / rate.per_second,
            ))
        }
    }

    fn is_full_at(&self, rate: &Rate, now: Instant) -> bool {
        now.saturating_duration_since(self.updated) >= rate.time_to_fill()
    }
}

/// One bucket for everyone: a route's `rate_limit`.
pub struct SharedBucket {
    rate: Rate,
    bucket: Mutex<TokenBucket>,
}

impl SharedBucket {
    pub fn new(limit: &RateLimit, now: Instant) -> SharedBucket {
        let rate = Rate::new(limit);
        SharedBucket {
            bucket: Mutex::new(TokenBucket::full(&rate, now)),
            rate,
        }
    }

    pub fn take(&self, now: Instant) -> Result<(), Duration> {
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        bucket.take(&self.rate, now)
    }
}

/// A bucket per client, at most `capacity` of them.
///
/// Memory stays bounded whatever the number of distinct clients: a bucket idle long enough
/// to have refilled is dropped (a new one would be identical), and when the set is full of
/// active clients the least recently seen eighth goes, so a flood of new addresses costs
/// amortized constant time per request. An evicted client starts again with a full burst:
/// under such a flood the per-client limit loosens, but the route's own limit still holds.
pub struct ClientBuckets<K> {
    rate: Rate,
    capacity: usize,
    buckets: Mutex<HashMap<K, TokenBucket>>,
}

impl<K: Hash + Eq + Clone> ClientBuckets<K> {
    pub fn new(limit: &RateLimit, capacity: usize) -> ClientBuckets<K> {
        ClientBuckets {
            rate: Rate::new(limit),
            capacity: capacity.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn take(&self, client: &K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = buckets.get_mut(client) {
            return bucket.take(&self.rate, now);
        }
        if buckets.len() >= self.capacity {
            self.make_room(&mut buckets, now);
        }
        let mut bucket = TokenBucket::full(&self.rate, now);
        let taken = bucket.take(&self.rate, now);
        buckets.insert(client.clone(), bucket);
        taken
    }

    /// Clients with a bucket now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn make_room(&self, buckets: &mut HashMap<K, TokenBucket>, now: Instant) {
        let rate = self.rate;
        buckets.retain(|_, bucket| !bucket.is_full_at(&rate, now));
        if buckets.len() < self.capacity {
            return;
        }
        let evict = (self.capacity / 8).max(1);
        let mut seen: Vec<Instant> = buckets.values().map(|b| b.updated).collect();
        let (_, cutoff, _) = seen.select_nth_unstable(evict - 1);
        let cutoff = *cutoff;
        let mut left = evict;
        buckets.retain(|_, bucket| {
            if left > 0 && bucket.updated <= cutoff {
                left -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// Whole seconds until a token is available, for `Retry-After`: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(requests: u32, per_ms: u64, burst: u32) -> RateLimit {
        RateLimit {
            requests,
            per: Duration::from_millis(per_ms),
            burst,
        }
    }

    #[test]
    fn a_full_bucket_allows_its_burst_then_refuses_with_the_wait() {
        let t0 = Instant::now();
        let rate = Rate::new(&limit(10, 1000, 3));
        let mut bucket = TokenBucket::full(&rate, t0);
        for _ in 0..3 {
            assert_eq!(bucket.take(&rate, t0), Ok(()));
        }
        let wait = bucket.take(&rate, t0).unwrap_err();
        assert!(
            (wait.as_secs_f64() - 0.1).abs() < 1e-6,
            "one token every 100 ms: {wait:?}"
        );
    }

    #[test]
    fn tokens_come_back_at_the_rate_and_never_past_the_burst() {
        let t0 = Instant::now();
        let rate = Rate::new(&limit(2, 1000, 2));
        let mut bucket = TokenBucket::full(&rate, t0);
        bucket.take(&rate, t0).unwrap();
        bucket.take(&rate, t0).unwrap();
        assert!(bucket.take(&rate, t0 + Duration::from_millis(400)).is_err());
        assert_eq!(bucket.take(&rate, t0 + Duration::from_millis(500)), Ok(()));
        // An hour idle saves up only the burst.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(bucket.take(&rate, later), Ok(()));
        assert_eq!(bucket.take(&rate, later), Ok(()));
        assert!(bucket.take(&rate, later).is_err());
    }

    #[test]
    fn an_earlier_now_does_not_refill() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let rate = Rate::new(&limit(1, 1000, 1));
        let mut bucket = TokenBucket::full(&rate, t0);
        bucket.take(&rate, t0).unwrap();
        assert!(bucket.take(&rate, t0 - Duration::from_secs(5)).is_err());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn clients_have_separate_buckets() {
        let t0 = Instant::now();
        let clients = ClientBuckets::new(&limit(1, 1000, 1), 100);
        assert_eq!(clients.take(&"a", t0), Ok(()));
        assert!(clients.take(&"a", t0).is_err());
        assert_eq!(clients.take(&"b", t0), Ok(()));
    }

    #[test]
    fn a_flood_of_distinct_clients_stays_within_capacity() {
        let t0 = Instant::now();
        let clients = ClientBuckets::new(&limit(1, 60_000, 1), 1000);
        for i in 0..100_000u32 {
            // All active: none has had time to refill, so eviction has to make the room.
            let now = t0 + Duration::from_micros(u64::from(i));
            assert_eq!(clients.take(&i, now), Ok(()));
            assert!(clients.len() <= 1000);
        }
        // The most recent clients are still limited.
        assert!(clients
            .take(&99_999, t0 + Duration::from_millis(200))
            .is_err());
    }

    #[test]
    fn idle_clients_are_dropped_first() {
        let t0 = Instant::now();
        let clients = ClientBuckets::new(&limit(1, 1000, 1), 4);
        clients.take(&1, t0).unwrap();
        clients.take(&2, t0).unwrap();
        let later = t0 + Duration::from_secs(5);
        clients.take(&3, later).unwrap();
        clients.take(&4, later).unwrap();
        // Full: 1 and 2 have refilled, so they make room, and 3 and 4 keep their state.
        clients.take(&5, later).unwrap();
        assert_eq!(clients.len(), 3);
        assert!(clients.take(&3, later).is_err());
    }
}

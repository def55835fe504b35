//! The recent-invocations ring: the last N records, newest first, filtered on query. Bounded so
//! a busy server's memory does not grow with its traffic.

use crate::publisher::Doze;
use crate::record::InvocationRecord;
use serde::Deserialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

pub struct History {
    capacity: usize,
    records: Mutex<VecDeque<Arc<InvocationRecord>>>,
    /// Every record as it is pushed, for followers (`wasmgate logs --follow`).
    live: tokio::sync::broadcast::Sender<Arc<InvocationRecord>>,
    /// Records for the access log, which takes them a batch at a time ([`History::take_logged`]).
    logged: Mutex<Logged>,
    /// The access log's thread, which rests between drains, woken by the first record after a
    /// quiet spell: resting longer, it would let more pile up than the feed holds.
    follower: Doze,
}

/// The access log's feed. A batch of records is handed over under one lock; through the
/// broadcast channel each record cost a slot lock, a wake-list walk and a receive (about 180
/// instructions a request).
#[derive(Default)]
struct Logged {
    /// Whether an access log takes records ([`History::start_logging`]).
    on: bool,
    records: Vec<Arc<InvocationRecord>>,
    /// Records not kept because the feed was full, since the last take.
    dropped: u64,
}

/// `GET /api/invocations?route=&outcome=&component=&limit=`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvocationQuery {
    pub route: Option<String>,
    pub outcome: Option<String>,
    pub component: Option<String>,
    pub limit: Option<usize>,
}

impl InvocationQuery {
    pub const DEFAULT_LIMIT: usize = 100;

    /// Whether `record` passes every filter that is set (the limit aside).
    pub fn matches(&self, record: &InvocationRecord) -> bool {
        self.route
            .as_deref()
            .is_none_or(|route| &*record.route == route)
            && self
                .outcome
                .as_deref()
                .is_none_or(|outcome| record.outcome == outcome)
            && self
                .component
                .as_deref()
                .is_none_or(|c| &*record.component == c)
    }
}

/// Records a live follower may fall behind by before it skips ahead.
pub const LIVE_BUFFER: usize = 1024;

impl History {
    pub fn new(capacity: usize) -> History {
        History {
            capacity,
            records: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
            live: tokio::sync::broadcast::channel(LIVE_BUFFER).0,
            logged: Mutex::new(Logged::default()),
            follower: Doze::default(),
        }
    }

    pub fn push(&self, record: Arc<InvocationRecord>) {
        self.push_all(vec![record]);
    }

    /// Adds `records` (oldest first) to the ring, the access log's feed and the live followers'
    /// feed, taking each lock once.
    pub fn push_all(&self, records: Vec<Arc<InvocationRecord>>) {
        // Live followers are rare; without any, this is one atomic load.
        if self.live.receiver_count() > 0 {
            for record in &records {
                let _ = self.live.send(record.clone());
            }
        }
        let logging = {
            let mut logged = self
                .logged
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if logged.on {
                let room = LIVE_BUFFER.saturating_sub(logged.records.len());
                let kept = records.len().min(room);
                logged.records.extend(records.iter().take(kept).cloned());
                logged.dropped += (records.len() - kept) as u64;
            }
            logged.on
        };
        if logging && !records.is_empty() {
            self.follower.nudge();
        }
        if self.capacity == 0 {
            return;
        }
        let mut ring = self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for record in records {
            if ring.len() == self.capacity {
                ring.pop_back();
            }
            ring.push_front(record);
        }
    }

    /// Starts keeping records for an access log to take ([`History::take_logged`]); until
    /// then, none are kept. At most [`LIVE_BUFFER`] wait; more are counted as dropped.
    pub fn start_logging(&self) {
        self.logged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .on = true;
    }

    /// Moves the records pushed since the last take into `into` (oldest first), swapping
    /// buffers so neither side allocates in the steady state. Returns how many were dropped
    /// because the feed was full.
    pub fn take_logged(&self, into: &mut Vec<Arc<InvocationRecord>>) -> u64 {
        let mut logged = self
            .logged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        into.clear();
        std::mem::swap(&mut logged.records, into);
        std::mem::take(&mut logged.dropped)
    }

    /// Whether records wait for the access log.
    pub fn has_logged(&self) -> bool {
        self.logged
            .lock()
            .is_ok_and(|logged| !logged.records.is_empty())
    }

    /// How the access log's thread rests and is woken (see [`Doze`]).
    pub fn follower_doze(&self) -> &Doze {
        &self.follower
    }

    /// Records as they are pushed from now on. A follower that falls more than
    /// [`LIVE_BUFFER`] records behind skips the ones it missed (it is told how many).
    pub fn follow(&self) -> tokio::sync::broadcast::Receiver<Arc<InvocationRecord>> {
        self.live.subscribe()
    }

    /// Matching records, newest first.
    pub fn query(&self, query: &InvocationQuery) -> Vec<Arc<InvocationRecord>> {
        let limit = query.limit.unwrap_or(InvocationQuery::DEFAULT_LIMIT);
        let records = self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        records
            .iter()
            .filter(|r| query.matches(r))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The record with this invocation id, while it is still in the ring.
    pub fn get(&self, id: u64) -> Option<Arc<InvocationRecord>> {
        let records = self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        records.iter().find(|r| r.id == id).cloned()
    }

    /// Every record in the ring, newest first: cheap (reference counts only), so the lock is
    /// held for a moment whatever the caller then computes.
    pub fn snapshot(&self) -> Vec<Arc<InvocationRecord>> {
        let records = self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        records.iter().cloned().collect()
    }

    /// How many records the ring keeps (`--invocation-history`).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.records.lock().map_or(0, |r| r.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64, route: &str, outcome: &'static str) -> InvocationRecord {
        InvocationRecord {
            id,
            route: route.into(),
            outcome,
            ..Default::default()
        }
    }

    #[test]
    fn keeps_the_newest_up_to_capacity() {
        let history = History::new(3);
        for id in 1..=5 {
            history.push(Arc::new(record(id, "/a", "ok")));
        }
        let ids: Vec<u64> = history
            .query(&InvocationQuery::default())
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, [5, 4, 3]);
    }

    #[test]
    fn filters_by_route_outcome_and_limit() {
        let history = History::new(10);
        history.push(Arc::new(record(1, "/a", "ok")));
        history.push(Arc::new(record(2, "/b", "trap")));
        history.push(Arc::new(record(3, "/a", "trap")));
        history.push(Arc::new(record(4, "/a", "ok")));
        let query = InvocationQuery {
            route: Some("/a".into()),
            outcome: Some("trap".into()),
            ..Default::default()
        };
        assert_eq!(
            history
                .query(&query)
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>(),
            [3]
        );
        let query = InvocationQuery {
            limit: Some(2),
            ..Default::default()
        };
        assert_eq!(
            history
                .query(&query)
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>(),
            [4, 3]
        );
    }

    #[test]
    fn the_access_log_feed_hands_over_batches_in_order_and_counts_what_it_could_not_hold() {
        let history = History::new(2);
        history.push(Arc::new(record(1, "/a", "ok")));
        let mut taken = Vec::new();
        assert_eq!(history.take_logged(&mut taken), 0);
        assert!(taken.is_empty(), "kept before logging started");
        history.start_logging();
        history.push_all((2..=4).map(|id| Arc::new(record(id, "/a", "ok"))).collect());
        assert!(history.has_logged());
        assert_eq!(history.take_logged(&mut taken), 0);
        assert_eq!(taken.iter().map(|r| r.id).collect::<Vec<_>>(), [2, 3, 4]);
        assert!(!history.has_logged());
        let ids: Vec<u64> = history.snapshot().iter().map(|r| r.id).collect();
        assert_eq!(ids, [4, 3], "the ring is newest first, up to capacity");

        let many = LIVE_BUFFER as u64 + 5;
        history.push_all(
            (0..many)
                .map(|id| Arc::new(record(id, "/a", "ok")))
                .collect(),
        );
        assert_eq!(history.take_logged(&mut taken), 5);
        assert_eq!(taken.len(), LIVE_BUFFER);
        assert_eq!(taken.first().map(|r| r.id), Some(0));
        assert_eq!(history.take_logged(&mut taken), 0);
        assert!(taken.is_empty());
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let history = History::new(0);
        history.push(Arc::new(record(1, "/a", "ok")));
        assert!(history.is_empty());
    }
}

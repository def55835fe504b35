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
    /// A follower thread that rests between drains (the access log), woken by the first record
    /// after a quiet spell: resting longer, it would miss what the feed cannot hold.
    follower: Doze,
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
            follower: Doze::default(),
        }
    }

    pub fn push(&self, record: Arc<InvocationRecord>) {
        // Followers are rare; without any, this is one atomic load.
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(record.clone());
            self.follower.nudge();
        }
        if self.capacity == 0 {
            return;
        }
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if records.len() == self.capacity {
            records.pop_back();
        }
        records.push_front(record);
    }

    /// How a follower thread rests and is woken (see [`Doze`]).
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
    fn zero_capacity_keeps_nothing() {
        let history = History::new(0);
        history.push(Arc::new(record(1, "/a", "ok")));
        assert!(history.is_empty());
    }
}

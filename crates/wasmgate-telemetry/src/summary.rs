//! Per-route figures for the dashboard (`GET /api/routes`): request rate, wall-time
//! percentiles, error rate by outcome, last seen.
//!
//! Computed when asked, from the records in the history ring, not kept up to date per request:
//! the request path already pays for the ring, and cumulative per-route percentiles would add a
//! lock or a sketch update to every request for a page an operator opens now and then. The
//! price is that every figure describes the ring's records only (the last
//! `--invocation-history` requests across all routes, 1024 by default), so a busy route can
//! push a quiet one's history out. Long-run figures are what `/metrics` is for.

use crate::record::InvocationRecord;
use crate::Telemetry;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The window `rate_per_s` counts requests over, ending now.
pub const RATE_WINDOW_MS: u64 = 60_000;

/// What `GET /api/routes` answers.
#[derive(Debug, Serialize)]
pub struct RoutesSummary {
    pub app: Arc<str>,
    /// When the summary was computed (Unix milliseconds).
    pub now_ms: u64,
    /// Records the figures come from, and how many the ring can hold.
    pub records: usize,
    pub capacity: usize,
    /// Arrival of the oldest record in the ring: the figures cover `oldest_ms..now_ms`.
    pub oldest_ms: Option<u64>,
    /// The span `rate_per_s` is measured over: [`RATE_WINDOW_MS`], shortened when the ring is
    /// full and its oldest record is more recent than that (older requests are gone), but
    /// never under 0.1 s.
    pub rate_window_s: f64,
    /// One entry per route pattern and component, sorted by route then component.
    pub routes: Vec<RouteSummary>,
}

#[derive(Debug, Serialize)]
pub struct RouteSummary {
    pub route: Arc<str>,
    pub component: Arc<str>,
    pub executor: &'static str,
    /// Records of this route in the ring.
    pub requests: u64,
    /// Requests a second over the last `rate_window_s`.
    pub rate_per_s: f64,
    pub wall_time_us: Percentiles,
    /// Over the records that measured guest CPU time; `None` when none did.
    pub guest_cpu_time_us: Option<Percentiles>,
    /// Records whose outcome is anything but `ok`.
    pub errors: u64,
    /// `errors / requests`, 0 to 1.
    pub error_rate: f64,
    /// Records by outcome (`ok`, `trap`, `timeout`...).
    pub outcomes: BTreeMap<&'static str, u64>,
    pub cold_starts: u64,
    /// Arrival of the newest record (Unix milliseconds).
    pub last_seen_ms: u64,
}

/// Nearest-rank percentiles (each one an observed value) and the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

impl Percentiles {
    /// `None` for no values.
    pub fn of(mut values: Vec<u64>) -> Option<Percentiles> {
        values.sort_unstable();
        let max = *values.last()?;
        let rank = |p: usize| {
            // Nearest rank: the smallest value with at least p% of values at or below it.
            let index = (p * values.len()).div_ceil(100).max(1) - 1;
            values[index]
        };
        Some(Percentiles {
            p50: rank(50),
            p95: rank(95),
            p99: rank(99),
            max,
        })
    }
}

impl Telemetry {
    /// Per-route figures over the history ring, as of now.
    pub fn route_summary(&self) -> RoutesSummary {
        self.settle();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        summarize(
            self.app().clone(),
            &self.history.snapshot(),
            self.history.capacity(),
            now_ms,
        )
    }
}

/// The summary of `records` (newest first, as the ring holds them) at `now_ms`.
pub fn summarize(
    app: Arc<str>,
    records: &[Arc<InvocationRecord>],
    capacity: usize,
    now_ms: u64,
) -> RoutesSummary {
    let oldest_ms = records.iter().map(|r| r.started_at_ms).min();
    let mut window_start = now_ms.saturating_sub(RATE_WINDOW_MS);
    if records.len() >= capacity {
        if let Some(oldest) = oldest_ms {
            window_start = window_start.max(oldest);
        }
    }
    // A ring that filled within a few milliseconds gives a real but noisy rate; below a tenth
    // of a second (or at zero) it would be noise only.
    let rate_window_ms = now_ms.saturating_sub(window_start).max(100);

    let mut groups: BTreeMap<(&str, &str), Vec<&InvocationRecord>> = BTreeMap::new();
    for record in records {
        groups
            .entry((&record.route, &record.component))
            .or_default()
            .push(record);
    }
    let routes = groups
        .into_values()
        .map(|group| route_summary(&group, window_start, rate_window_ms))
        .collect();
    RoutesSummary {
        app,
        now_ms,
        records: records.len(),
        capacity,
        oldest_ms,
        rate_window_s: rate_window_ms as f64 / 1000.0,
        routes,
    }
}

/// One route's figures; `group` is non-empty.
fn route_summary(
    group: &[&InvocationRecord],
    window_start: u64,
    rate_window_ms: u64,
) -> RouteSummary {
    let first = group[0];
    let requests = group.len() as u64;
    let mut outcomes = BTreeMap::new();
    for record in group {
        *outcomes.entry(record.outcome).or_insert(0) += 1;
    }
    let errors = group.iter().filter(|r| r.outcome != "ok").count() as u64;
    let recent = group
        .iter()
        .filter(|r| r.started_at_ms >= window_start)
        .count();
    RouteSummary {
        route: first.route.clone(),
        component: first.component.clone(),
        executor: first.executor,
        requests,
        rate_per_s: recent as f64 * 1000.0 / rate_window_ms as f64,
        wall_time_us: Percentiles::of(group.iter().map(|r| r.wall_time_us).collect()).unwrap_or(
            Percentiles {
                p50: 0,
                p95: 0,
                p99: 0,
                max: 0,
            },
        ),
        guest_cpu_time_us: Percentiles::of(
            group.iter().filter_map(|r| r.guest_cpu_time_us).collect(),
        ),
        errors,
        error_rate: errors as f64 / requests as f64,
        outcomes,
        cold_starts: group.iter().filter(|r| r.cold_start).count() as u64,
        last_seen_ms: group.iter().map(|r| r.started_at_ms).max().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn record(route: &str, outcome: &'static str, wall: u64, age_ms: u64) -> Arc<InvocationRecord> {
        Arc::new(InvocationRecord {
            route: route.into(),
            component: "c".into(),
            executor: "http",
            outcome,
            wall_time_us: wall,
            started_at_ms: NOW - age_ms,
            ..Default::default()
        })
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=100).collect();
        let p = Percentiles::of(values).unwrap();
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50, 95, 99, 100));
        let p = Percentiles::of(vec![7]).unwrap();
        assert_eq!((p.p50, p.p99, p.max), (7, 7, 7));
        // With few values the tail percentiles are the slowest request, not an interpolation.
        let p = Percentiles::of(vec![30, 10, 20]).unwrap();
        assert_eq!((p.p50, p.p95, p.max), (20, 30, 30));
        assert_eq!(Percentiles::of(Vec::new()), None);
    }

    #[test]
    fn routes_are_grouped_with_error_rate_and_outcomes() {
        let records = vec![
            record("/b", "ok", 10, 0),
            record("/a", "trap", 400, 1_000),
            record("/a", "ok", 100, 2_000),
            record("/a", "ok", 200, 3_000),
            record("/a", "timeout", 300, 4_000),
        ];
        let summary = summarize("app".into(), &records, 100, NOW);
        assert_eq!(summary.records, 5);
        assert_eq!(summary.oldest_ms, Some(NOW - 4_000));
        let routes: Vec<&str> = summary.routes.iter().map(|r| &*r.route).collect();
        assert_eq!(routes, ["/a", "/b"]);
        let a = &summary.routes[0];
        assert_eq!(a.requests, 4);
        assert_eq!(a.errors, 2);
        assert_eq!(a.error_rate, 0.5);
        assert_eq!(a.outcomes["ok"], 2);
        assert_eq!(a.outcomes["trap"], 1);
        assert_eq!(a.outcomes["timeout"], 1);
        assert_eq!(a.wall_time_us.p50, 200);
        assert_eq!(a.wall_time_us.max, 400);
        assert_eq!(a.last_seen_ms, NOW - 1_000);
        assert_eq!(a.guest_cpu_time_us, None);
    }

    #[test]
    fn rate_counts_the_last_minute_only() {
        let records = vec![
            record("/a", "ok", 1, 1_000),
            record("/a", "ok", 1, 2_000),
            record("/a", "ok", 1, 120_000),
        ];
        let summary = summarize("app".into(), &records, 100, NOW);
        assert_eq!(summary.rate_window_s, 60.0);
        assert_eq!(summary.routes[0].rate_per_s, 2.0 / 60.0);
    }

    #[test]
    fn a_full_ring_shortens_the_rate_window_to_what_it_still_holds() {
        // Ten requests in the last 5 s filled the ring: older ones in the minute are gone.
        let records: Vec<_> = (0..10)
            .map(|i| record("/a", "ok", 1, 500 * i + 500))
            .collect();
        let summary = summarize("app".into(), &records, 10, NOW);
        assert_eq!(summary.rate_window_s, 5.0);
        assert_eq!(summary.routes[0].rate_per_s, 2.0);
    }

    #[test]
    fn a_ring_filled_in_a_burst_reports_the_burst_rate() {
        let records: Vec<_> = (0..10).map(|i| record("/a", "ok", 1, i * 20)).collect();
        let summary = summarize("app".into(), &records, 10, NOW);
        // 180 ms between the oldest record and now.
        assert_eq!(summary.rate_window_s, 0.18);
        let records: Vec<_> = (0..10).map(|_| record("/a", "ok", 1, 0)).collect();
        let summary = summarize("app".into(), &records, 10, NOW);
        assert_eq!(summary.rate_window_s, 0.1);
        assert_eq!(summary.routes[0].rate_per_s, 100.0);
    }

    #[test]
    fn an_empty_ring_has_no_routes() {
        let summary = summarize("app".into(), &[], 10, NOW);
        assert!(summary.routes.is_empty());
        assert_eq!(summary.oldest_ms, None);
    }
}

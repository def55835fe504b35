//! A classic Prometheus histogram whose observation is a short scan and two relaxed atomic
//! updates, for prometheus-client's registry and encoders.
//!
//! prometheus-client's own `Histogram` takes a mutex, walks its buckets from the first and
//! checks for native-histogram state on every observation: about 80 instructions, six times
//! per request (a twentieth of what telemetry costs a hello request). Scrapes are rare and
//! observations are not, so this one keeps a counter per bucket and adds them up when
//! encoded. A scrape that runs alongside an observation may see its bucket but not yet its
//! sum; `_count` is the buckets' total, so it always agrees with `+Inf`.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Histogram {
    inner: Arc<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    /// Upper bounds, ascending, ending with `+Inf`.
    bounds: Box<[f64]>,
    /// Observations per bucket (not cumulative), one per bound.
    counts: Box<[AtomicU64]>,
    /// The sum of observations, as `f64` bits.
    sum: AtomicU64,
}

impl Histogram {
    /// A histogram with these finite upper bounds (ascending) and `+Inf`.
    pub fn new(bounds: impl IntoIterator<Item = f64>) -> Histogram {
        let bounds: Box<[f64]> = bounds
            .into_iter()
            .filter(|bound| bound.is_finite())
            .chain(std::iter::once(f64::INFINITY))
            .collect();
        let counts = bounds.iter().map(|_| AtomicU64::new(0)).collect();
        Histogram {
            inner: Arc::new(Buckets {
                bounds,
                counts,
                sum: AtomicU64::new(0f64.to_bits()),
            }),
        }
    }

    /// Counts `value` in the first bucket whose bound is at least `value` (`le`); NaN goes to
    /// `+Inf`.
    #[inline]
    pub fn observe(&self, value: f64) {
        let buckets = &*self.inner;
        // From the first bucket up: most of a server's observations (small bodies, short
        // requests) land in the first few, where this is a handful of comparisons; a binary
        // search took about 40 instructions wherever the value fell. NaN, which no comparison
        // places, goes to `+Inf`.
        let index = buckets
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(buckets.bounds.len() - 1);
        if let Some(count) = buckets.counts.get(index) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let mut sum = buckets.sum.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(sum) + value).to_bits();
            match buckets
                .sum
                .compare_exchange_weak(sum, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(current) => sum = current,
            }
        }
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets = &*self.inner;
        let counts: Vec<(f64, u64)> = buckets
            .bounds
            .iter()
            .zip(buckets.counts.iter())
            .map(|(bound, count)| (*bound, count.load(Ordering::Relaxed)))
            .collect();
        let total = counts.iter().map(|(_, count)| count).sum();
        let sum = f64::from_bits(buckets.sum.load(Ordering::Relaxed));
        encoder.encode_histogram::<NoLabelSet>(sum, total, &counts, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;

    fn text(metric: impl EncodeMetric + Send + Sync + std::fmt::Debug + 'static) -> String {
        let mut registry = Registry::default();
        registry.register("latency", "Request latency", metric);
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn exposition_matches_prometheus_clients_histogram() {
        let bounds = [0.001, 0.01, 0.1, 1.0];
        let ours = Histogram::new(bounds);
        let theirs = prometheus_client::metrics::histogram::Histogram::new(bounds);
        for value in [0.0, 0.0005, 0.001, 0.002, 0.01, 0.5, 1.0, 1.5, 250.0] {
            ours.observe(value);
            theirs.observe(value);
        }
        assert_eq!(text(ours), text(theirs));
    }

    #[test]
    fn a_value_on_a_bound_counts_in_that_bucket_and_the_count_is_the_buckets_total() {
        let histogram = Histogram::new([1.0, 2.0]);
        histogram.observe(1.0);
        histogram.observe(2.0);
        histogram.observe(3.0);
        histogram.observe(f64::NAN);
        let out = text(histogram.clone());
        assert!(out.contains("latency_bucket{le=\"1.0\"} 1\n"), "{out}");
        assert!(out.contains("latency_bucket{le=\"2.0\"} 2\n"), "{out}");
        assert!(out.contains("latency_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("latency_count 4\n"), "{out}");
    }

    #[test]
    fn observations_from_many_threads_are_all_counted() {
        let histogram = Histogram::new([10.0]);
        std::thread::scope(|threads| {
            for _ in 0..4 {
                let histogram = histogram.clone();
                threads.spawn(move || {
                    for _ in 0..10_000 {
                        histogram.observe(1.0);
                    }
                });
            }
        });
        let out = text(histogram);
        assert!(out.contains("latency_sum 40000.0\n"), "{out}");
        assert!(out.contains("latency_count 40000\n"), "{out}");
    }
}

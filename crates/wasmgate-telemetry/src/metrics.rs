//! Prometheus metrics. HTTP figures follow OpenTelemetry's HTTP server conventions in
//! Prometheus form (`http_server_request_duration_seconds`); Wasm figures live under `wasm_`.
//! Labels are route patterns, component names and small enums, never raw paths.

use crate::histogram::Histogram;
use crate::record::InvocationRecord;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    http_route: Arc<str>,
    http_request_method: &'static str,
    http_response_status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    http_route: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabels {
    component: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    component: Arc<str>,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CapabilityLabels {
    component: Arc<str>,
    capability: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    component: Arc<str>,
    result: &'static str,
}

/// How a component's compiled code was obtained at load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheResult {
    Hit,
    Miss,
    Rebuilt,
    Disabled,
}

impl CacheResult {
    /// The label value: `hit`, `miss`, `rebuilt`, `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
            CacheResult::Rebuilt => "rebuilt",
            CacheResult::Disabled => "disabled",
        }
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The series every invocation of one route, method and status class touches, looked up once.
/// Recording through the labelled families costs a SipHash of the labels and a lock per
/// metric, about 2k instructions of a hello request; through this, one lookup keyed by the
/// addresses of the record's shared names.
#[derive(Clone)]
struct InvocationSeries {
    /// Kept so the addresses in the key stay theirs.
    _names: (Arc<str>, Arc<str>),
    duration: Histogram,
    request_body: Histogram,
    response_body: Histogram,
    ok: Counter,
    instantiate: Histogram,
    peak_memory: Histogram,
    guest_time: Histogram,
    cold_starts: Counter,
}

/// Route, component, method and status class, by address. The same names at other addresses
/// (a reload's new route table) get an entry of their own pointing at the same series. A
/// tuple, not an array: an array of words is hashed as one byte string.
type SeriesKey = (usize, usize, usize, usize);

/// A multiplicative hash of a few words: the keys are addresses, so SipHash's protection
/// against chosen keys buys nothing here.
#[derive(Default)]
struct WordHasher(u64);

impl std::hash::Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

const MAX_CACHED_SERIES: usize = 4096;

type SeriesMap = HashMap<SeriesKey, InvocationSeries, std::hash::BuildHasherDefault<WordHasher>>;

pub struct Metrics {
    registry: Registry,
    request_duration: HistogramFamily<HttpLabels>,
    active_requests: Gauge,
    request_body_size: HistogramFamily<RouteLabels>,
    response_body_size: HistogramFamily<RouteLabels>,
    invocations: Family<OutcomeLabels, Counter>,
    instantiate_duration: HistogramFamily<ComponentLabels>,
    peak_memory: HistogramFamily<ComponentLabels>,
    guest_time: HistogramFamily<ComponentLabels>,
    instructions: HistogramFamily<ComponentLabels>,
    cold_starts: Family<ComponentLabels, Counter>,
    instances_in_use: Family<ComponentLabels, Gauge>,
    instances_capacity: Family<ComponentLabels, Gauge>,
    compile_cache: Family<CacheLabels, Counter>,
    host_calls: Family<CapabilityLabels, Counter>,
    service_restarts: Family<ComponentLabels, Counter>,
    service_crash_loops: Family<ComponentLabels, Counter>,
    host_call_seconds: Family<CapabilityLabels, Counter<f64, AtomicU64>>,
    reloads: Family<ResultLabels, Counter>,
    app_generation: Gauge,
    log_lines_dropped: Counter,
    spans_exported: Counter,
    spans_dropped: Family<ReasonLabels, Counter>,
    /// Filled at the first invocation of each route, method and status class.
    series: RwLock<SeriesMap>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

fn duration_histogram() -> Histogram {
    // Wasm invocations are often well under a millisecond: start at 100 µs.
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ])
}

fn size_histogram() -> Histogram {
    // 64 B ... 64 MiB.
    Histogram::new(exponential_buckets(64.0, 4.0, 11))
}

fn instructions_histogram() -> Histogram {
    // 10 thousand ... 10 billion instructions, a step per factor of ten.
    Histogram::new(exponential_buckets(1e4, 10.0, 7))
}

fn memory_histogram() -> Histogram {
    // 64 KiB (one Wasm page) ... 4 GiB.
    Histogram::new(exponential_buckets(65536.0, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let metrics = Metrics {
            request_duration: Family::new_with_constructor(duration_histogram),
            active_requests: Gauge::default(),
            request_body_size: Family::new_with_constructor(size_histogram),
            response_body_size: Family::new_with_constructor(size_histogram),
            invocations: Family::default(),
            instantiate_duration: Family::new_with_constructor(duration_histogram),
            peak_memory: Family::new_with_constructor(memory_histogram),
            guest_time: Family::new_with_constructor(duration_histogram),
            instructions: Family::new_with_constructor(instructions_histogram),
            cold_starts: Family::default(),
            instances_in_use: Family::default(),
            instances_capacity: Family::default(),
            compile_cache: Family::default(),
            host_calls: Family::default(),
            service_restarts: Family::default(),
            service_crash_loops: Family::default(),
            host_call_seconds: Family::default(),
            reloads: Family::default(),
            app_generation: Gauge::default(),
            log_lines_dropped: Counter::default(),
            spans_exported: Counter::default(),
            spans_dropped: Family::default(),
            series: RwLock::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests that reached a component",
            metrics.request_duration.clone(),
        );
        registry.register(
            "http_server_active_requests",
            "Requests being handled (until the response head is sent)",
            metrics.active_requests.clone(),
        );
        registry.register(
            "http_server_request_body_size_bytes",
            "Size of request bodies given to components",
            metrics.request_body_size.clone(),
        );
        registry.register(
            "http_server_response_body_size_bytes",
            "Size of response bodies sent by components",
            metrics.response_body_size.clone(),
        );
        registry.register(
            "wasm_invocations",
            "Component invocations by outcome (ok, trap, timeout, memory_limit, ...)",
            metrics.invocations.clone(),
        );
        registry.register(
            "wasm_instantiate_duration_seconds",
            "Time to create a component instance",
            metrics.instantiate_duration.clone(),
        );
        registry.register(
            "wasm_peak_memory_bytes",
            "Largest linear memory an invocation reached",
            metrics.peak_memory.clone(),
        );
        registry.register(
            "wasm_guest_time_seconds",
            "Time an invocation spent executing guest code (host calls excluded)",
            metrics.guest_time.clone(),
        );
        registry.register(
            "wasm_instructions",
            "Wasm instructions an invocation executed (components with limits.fuel only)",
            metrics.instructions.clone(),
        );
        registry.register(
            "wasm_cold_starts",
            "Invocations that created the first instance of a component since load",
            metrics.cold_starts.clone(),
        );
        registry.register(
            "wasm_instances_in_use",
            "Instances of a component alive now",
            metrics.instances_in_use.clone(),
        );
        registry.register(
            "wasm_instances_capacity",
            "Instances of a component that may be alive at once (limits.max_concurrency)",
            metrics.instances_capacity.clone(),
        );
        registry.register(
            "wasm_compile_cache",
            "Component loads by compile-cache result (hit, miss, rebuilt, disabled)",
            metrics.compile_cache.clone(),
        );
        registry.register(
            "wasm_host_calls",
            "Calls guests made into host capabilities (key_value, sql, outbound_http, logging)",
            metrics.host_calls.clone(),
        );
        registry.register(
            "wasm_host_call_seconds",
            "Time guests spent waiting in host capability calls",
            metrics.host_call_seconds.clone(),
        );
        registry.register(
            "wasm_service_restarts",
            "Times a service replica was restarted after it exited, trapped or failed to start",
            metrics.service_restarts.clone(),
        );
        registry.register(
            "wasm_service_crash_loops",
            "Times a service replica kept failing past the crash-loop threshold",
            metrics.service_crash_loops.clone(),
        );
        registry.register(
            "wasmgate_reloads",
            "Hot reloads of the app, by result (ok, or failed and the running version kept)",
            metrics.reloads.clone(),
        );
        registry.register(
            "wasmgate_log_lines_dropped",
            "Invocation log lines skipped because the log writer fell behind",
            metrics.log_lines_dropped.clone(),
        );
        registry.register(
            "wasmgate_app_generation",
            "Which load of the app is serving: 1 at start, one more per successful reload",
            metrics.app_generation.clone(),
        );
        registry.register(
            "wasmgate_spans_exported",
            "Spans sent to the OTLP collector",
            metrics.spans_exported.clone(),
        );
        registry.register(
            "wasmgate_spans_dropped",
            "Spans not exported: the export queue was full (queue_full) or the collector failed \
             (export_failed)",
            metrics.spans_dropped.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Records a finished invocation.
    pub fn observe(&self, record: &InvocationRecord) {
        let status_class = record.status_class();
        let [route, component, _executor, method] = record.name_addresses();
        let key = (route, component, method, status_class.as_ptr() as usize);
        let cached = self.series.read().unwrap_or_else(|p| p.into_inner());
        match cached.get(&key) {
            Some(series) => self.observe_series(series, record),
            None => {
                drop(cached);
                let series = self.invocation_series(record, status_class);
                self.observe_series(&series, record);
                let mut map = self.series.write().unwrap_or_else(|p| p.into_inner());
                // Each reload's route table brings new addresses; the entries of old ones are
                // only a cache, so they are dropped rather than kept forever.
                if map.len() >= MAX_CACHED_SERIES {
                    map.clear();
                }
                map.insert(key, series);
            }
        }
        for calls in &record.host_calls_by_capability {
            let labels = CapabilityLabels {
                component: record.component.clone(),
                capability: calls.capability,
            };
            self.host_calls.get_or_create(&labels).inc_by(calls.count);
            self.host_call_seconds
                .get_or_create(&labels)
                .inc_by(calls.time_us as f64 / 1e6);
        }
    }

    fn invocation_series(
        &self,
        record: &InvocationRecord,
        status_class: &'static str,
    ) -> InvocationSeries {
        let route = RouteLabels {
            http_route: record.route.clone(),
        };
        let component = ComponentLabels {
            component: record.component.clone(),
        };
        InvocationSeries {
            _names: (record.route.clone(), record.component.clone()),
            duration: self
                .request_duration
                .get_or_create(&HttpLabels {
                    http_route: record.route.clone(),
                    http_request_method: record.method,
                    http_response_status_class: status_class,
                })
                .clone(),
            request_body: self.request_body_size.get_or_create(&route).clone(),
            response_body: self.response_body_size.get_or_create(&route).clone(),
            ok: self
                .invocations
                .get_or_create(&OutcomeLabels {
                    component: record.component.clone(),
                    outcome: "ok",
                })
                .clone(),
            instantiate: self.instantiate_duration.get_or_create(&component).clone(),
            peak_memory: self.peak_memory.get_or_create(&component).clone(),
            guest_time: self.guest_time.get_or_create(&component).clone(),
            cold_starts: self.cold_starts.get_or_create(&component).clone(),
        }
    }

    fn observe_series(&self, series: &InvocationSeries, record: &InvocationRecord) {
        series.duration.observe(record.wall_time_us as f64 / 1e6);
        series.request_body.observe(record.request_bytes as f64);
        series.response_body.observe(record.response_bytes as f64);
        if record.outcome == "ok" {
            series.ok.inc();
        } else {
            self.invocations
                .get_or_create(&OutcomeLabels {
                    component: record.component.clone(),
                    outcome: record.outcome,
                })
                .inc();
        }
        if record.instantiate_time_us > 0 {
            series
                .instantiate
                .observe(record.instantiate_time_us as f64 / 1e6);
        }
        if record.peak_memory_bytes > 0 {
            series.peak_memory.observe(record.peak_memory_bytes as f64);
        }
        if let Some(guest_us) = record.guest_cpu_time_us {
            series.guest_time.observe(guest_us as f64 / 1e6);
        }
        if let Some(instructions) = record.instructions {
            self.instructions
                .get_or_create(&ComponentLabels {
                    component: record.component.clone(),
                })
                .observe(instructions as f64);
        }
        if record.cold_start {
            series.cold_starts.inc();
        }
    }

    pub fn request_started(&self) {
        self.active_requests.inc();
    }

    pub fn request_answered(&self) {
        self.active_requests.dec();
    }

    /// The instances-in-use gauge of `component`; executors keep it and move it up and down
    /// around each instance, so no label lookup happens per request.
    pub fn instances_gauge(&self, component: &str) -> Gauge {
        self.instances_in_use
            .get_or_create(&ComponentLabels {
                component: component.into(),
            })
            .clone()
    }

    /// The restart and crash-loop counters of service `component`, for its supervisors.
    pub fn service_counters(&self, component: &str) -> (Counter, Counter) {
        let labels = ComponentLabels {
            component: component.into(),
        };
        (
            self.service_restarts.get_or_create(&labels).clone(),
            self.service_crash_loops.get_or_create(&labels).clone(),
        )
    }

    /// A hot reload finished: switched over (`ok`), or refused with the old version kept.
    pub fn reload_finished(&self, ok: bool) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "failed" },
            })
            .inc();
    }

    /// The counter of access-log lines the writer had to skip.
    pub fn log_lines_dropped(&self) -> Counter {
        self.log_lines_dropped.clone()
    }

    /// Which load of the app serves now (1 at start).
    pub fn generation_serving(&self, generation: u64) {
        self.app_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    /// The counters span export keeps.
    pub fn span_counters(&self) -> crate::otlp::ExportCounters {
        let dropped = |reason| {
            self.spans_dropped
                .get_or_create(&ReasonLabels { reason })
                .clone()
        };
        crate::otlp::ExportCounters {
            exported: self.spans_exported.clone(),
            dropped_queue_full: dropped("queue_full"),
            dropped_export_failed: dropped("export_failed"),
        }
    }

    /// Called once per component at load.
    pub fn component_loaded(&self, component: &str, capacity: u32, cache: CacheResult) {
        let labels = ComponentLabels {
            component: component.into(),
        };
        self.instances_capacity
            .get_or_create(&labels)
            .set(i64::from(capacity));
        drop(self.instances_in_use.get_or_create(&labels));
        self.compile_cache
            .get_or_create(&CacheLabels {
                component: component.into(),
                result: cache.as_str(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_invocations_add_up_through_the_component_cache() {
        let metrics = Metrics::new();
        for (outcome, cold) in [("ok", true), ("ok", false), ("trap", false), ("ok", false)] {
            metrics.observe(&InvocationRecord {
                route: "/".into(),
                component: "web".into(),
                method: "GET",
                status: 200,
                outcome,
                instantiate_time_us: 20,
                cold_start: cold,
                ..Default::default()
            });
        }
        let text = metrics.encode();
        for line in [
            "wasm_invocations_total{component=\"web\",outcome=\"ok\"} 3",
            "wasm_invocations_total{component=\"web\",outcome=\"trap\"} 1",
            "wasm_cold_starts_total{component=\"web\"} 1",
            "wasm_instantiate_duration_seconds_count{component=\"web\"} 4",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn cached_series_keep_methods_status_classes_and_routes_apart() {
        let metrics = Metrics::new();
        let (shop, cart, web): (Arc<str>, Arc<str>, Arc<str>) =
            ("/shop".into(), "/cart".into(), "web".into());
        let requests = [
            (&shop, "GET", 200),
            (&shop, "GET", 200),
            (&shop, "GET", 503),
            (&shop, "POST", 201),
            (&cart, "GET", 200),
        ];
        for (route, method, status) in requests {
            metrics.observe(&InvocationRecord {
                route: route.clone(),
                component: web.clone(),
                method,
                status,
                outcome: "ok",
                response_bytes: 10,
                ..Default::default()
            });
        }
        // A reload's route table: equal names at new addresses add to the same series.
        metrics.observe(&InvocationRecord {
            route: "/shop".into(),
            component: "web".into(),
            method: "GET",
            status: 204,
            outcome: "ok",
            ..Default::default()
        });
        let text = metrics.encode();
        let duration = |route: &str, method: &str, class: &str| {
            format!(
                "http_server_request_duration_seconds_count{{http_route=\"{route}\",\
                 http_request_method=\"{method}\",http_response_status_class=\"{class}\"}}"
            )
        };
        for line in [
            format!("{} 3", duration("/shop", "GET", "2xx")),
            format!("{} 1", duration("/shop", "GET", "5xx")),
            format!("{} 1", duration("/shop", "POST", "2xx")),
            format!("{} 1", duration("/cart", "GET", "2xx")),
            "http_server_response_body_size_bytes_sum{http_route=\"/shop\"} 40.0".to_string(),
            "wasm_invocations_total{component=\"web\",outcome=\"ok\"} 6".to_string(),
        ] {
            assert!(text.contains(&line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn an_invocation_shows_up_in_the_exposition() {
        let metrics = Metrics::new();
        metrics.component_loaded("api", 8, CacheResult::Miss);
        metrics.observe(&InvocationRecord {
            route: "/api/...".into(),
            component: "api".into(),
            method: "GET",
            status: 500,
            outcome: "trap",
            wall_time_us: 1200,
            instantiate_time_us: 15,
            peak_memory_bytes: 1 << 20,
            cold_start: true,
            guest_cpu_time_us: Some(700),
            instructions: Some(2_500_000),
            ..Default::default()
        });
        let text = metrics.encode();
        assert!(
            text.contains("wasm_instructions_bucket{le=\"10000000.0\",component=\"api\"} 1")
                && text.contains("wasm_instructions_bucket{le=\"1000000.0\",component=\"api\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("wasm_guest_time_seconds_sum{component=\"api\"} 0.0007"),
            "{text}"
        );
        assert!(
            text.contains("wasm_invocations_total{component=\"api\",outcome=\"trap\"} 1"),
            "{text}"
        );
        assert!(text.contains("http_server_request_duration_seconds_count{http_route=\"/api/...\",http_request_method=\"GET\",http_response_status_class=\"5xx\"} 1"), "{text}");
        assert!(
            text.contains("wasm_cold_starts_total{component=\"api\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("wasm_instances_capacity{component=\"api\"} 8"),
            "{text}"
        );
        assert!(
            text.contains("wasm_compile_cache_total{component=\"api\",result=\"miss\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn instance_gauge_goes_up_and_down() {
        let metrics = Metrics::new();
        let gauge = metrics.instances_gauge("a");
        gauge.inc();
        gauge.inc();
        gauge.dec();
        assert!(metrics
            .encode()
            .contains("wasm_instances_in_use{component=\"a\"} 1"));
    }
}

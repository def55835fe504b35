//! OTLP span export, configured by the standard `OTEL_*` environment variables.
//!
//! Requests hand their finished invocation to [`SpanExport::submit`], which only pushes it on
//! a bounded queue (a short mutex hold, no task wake-up unless a batch is due): when the
//! exporter lags and the queue is full the spans are dropped and counted
//! (`wasmgate_spans_dropped_total{reason="queue_full"}`), never waited for. One task encodes
//! queued invocations as OTLP and sends them in batches, every `OTEL_BSP_SCHEDULE_DELAY` or as
//! soon as a batch's worth is queued; [`SpanExport::flush`] sends what is left at shutdown.
//!
//! Export is off unless an endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_TRACES_EXPORTER=otlp` for the default
//! endpoint); `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off.

use crate::otlp_encode::RequestFrame;
use crate::otlp_transport::{Protocol, Transport};
use crate::record::InvocationRecord;
use crate::spans::{encode_invocation, RequestSpan, SpanMemo};
use prometheus_client::metrics::counter::Counter;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

/// A configuration variable with an unusable value.
#[derive(Debug, thiserror::Error)]
#[error("{variable}={value:?}: {reason}")]
pub struct OtlpConfigError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    pub protocol: Protocol,
    /// For `http/protobuf` the full URL spans are POSTed to; for `grpc` the server's base URL.
    pub endpoint: http::Uri,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub timeout: Duration,
    pub resource: Vec<(String, String)>,
    pub schedule_delay: Duration,
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
    /// Which requests' spans are exported (`OTEL_TRACES_SAMPLER`).
    pub sampler: crate::sampler::Sampler,
    /// TLS to an `https://` collector (`OTEL_EXPORTER_OTLP_CERTIFICATE`, `..._CLIENT_*`).
    pub tls: crate::otlp_tls::OtlpTls,
}

impl OtlpConfig {
    /// The configuration the environment asks for (`lookup` reads a variable), or `None` when
    /// export is off. `service_name` is used when `OTEL_SERVICE_NAME` does not name one.
    pub fn from_env(
        lookup: impl Fn(&str) -> Option<String>,
        service_name: &str,
    ) -> Result<Option<OtlpConfig>, OtlpConfigError> {
        let var = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let exporters = var("OTEL_TRACES_EXPORTER");
        let mut wants_otlp = false;
        if let Some(list) = &exporters {
            for exporter in list.split(',').map(str::trim) {
                match exporter {
                    "none" => return Ok(None),
                    "otlp" => wants_otlp = true,
                    other => {
                        return Err(OtlpConfigError {
                            variable: "OTEL_TRACES_EXPORTER",
                            value: list.clone(),
                            reason: format!(
                                "exporter {other:?} is not supported (Wasmgate exports `otlp`, \
                                 or `none`)"
                            ),
                        })
                    }
                }
            }
        }
        let traces_endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let base_endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT");
        if traces_endpoint.is_none() && base_endpoint.is_none() && !wants_otlp {
            return Ok(None);
        }

        let (protocol_variable, protocol) = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
            Some(p) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", Some(p)),
            None => (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                var("OTEL_EXPORTER_OTLP_PROTOCOL"),
            ),
        };
        let protocol = match protocol.as_deref() {
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("grpc") => Protocol::Grpc,
            Some(other) => {
                return Err(OtlpConfigError {
                    variable: protocol_variable,
                    value: other.to_string(),
                    reason: "supported protocols are `grpc` and `http/protobuf`".into(),
                })
            }
        };

        // The signal-specific endpoint is used as given; the base one gets the signal's path
        // for OTLP/HTTP (gRPC has a fixed method path on any base).
        let (variable, url) = match (traces_endpoint, base_endpoint) {
            (Some(url), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url),
            (None, Some(url)) if protocol == Protocol::HttpProtobuf => (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("{}/v1/traces", url.trim_end_matches('/')),
            ),
            (None, Some(url)) => ("OTEL_EXPORTER_OTLP_ENDPOINT", url),
            (None, None) => match protocol {
                Protocol::HttpProtobuf => ("", "http://localhost:4318/v1/traces".to_string()),
                Protocol::Grpc => ("", "http://localhost:4317".to_string()),
            },
        };
        let endpoint = parse_endpoint(&url).map_err(|reason| OtlpConfigError {
            variable: if variable.is_empty() {
                "OTEL_TRACES_EXPORTER"
            } else {
                variable
            },
            value: url.clone(),
            reason,
        })?;

        let mut headers = Vec::new();
        for variable in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            if let Some(list) = var(variable) {
                for (name, value) in parse_headers(&list).map_err(|reason| OtlpConfigError {
                    variable,
                    // Header values are often credentials: never echo them.
                    value: "...".into(),
                    reason,
                })? {
                    headers.retain(|(n, _)| *n != name);
                    headers.push((name, value));
                }
            }
        }

        let millis = |variable: &'static str, default: u64| -> Result<Duration, OtlpConfigError> {
            match var(variable) {
                None => Ok(Duration::from_millis(default)),
                Some(v) => {
                    v.parse::<u64>()
                        .map(Duration::from_millis)
                        .map_err(|_| OtlpConfigError {
                            variable,
                            value: v,
                            reason: "expected a number of milliseconds".into(),
                        })
                }
            }
        };
        let count = |variable: &'static str, default: usize| -> Result<usize, OtlpConfigError> {
            match var(variable) {
                None => Ok(default),
                Some(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(OtlpConfigError {
                        variable,
                        value: v,
                        reason: "expected a positive count".into(),
                    }),
            }
        };
        let timeout = match var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") {
            Some(_) => millis("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 10_000)?,
            None => millis("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000)?,
        };

        let mut resource = match var("OTEL_RESOURCE_ATTRIBUTES") {
            Some(list) => parse_pairs(&list).map_err(|reason| OtlpConfigError {
                variable: "OTEL_RESOURCE_ATTRIBUTES",
                value: list.clone(),
                reason,
            })?,
            None => Vec::new(),
        };
        let service = var("OTEL_SERVICE_NAME")
            .or_else(|| {
                resource
                    .iter()
                    .find(|(k, _)| k == "service.name")
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| service_name.to_string());
        resource.retain(|(k, _)| k != "service.name");
        resource.insert(0, ("service.name".into(), service));
        resource.push(("telemetry.sdk.name".into(), "wasmgate".into()));
        resource.push(("telemetry.sdk.language".into(), "rust".into()));
        resource.push((
            "telemetry.sdk.version".into(),
            env!("CARGO_PKG_VERSION").into(),
        ));

        Ok(Some(OtlpConfig {
            protocol,
            endpoint,
            headers,
            timeout,
            resource,
            schedule_delay: millis("OTEL_BSP_SCHEDULE_DELAY", 5_000)?.max(Duration::from_millis(1)),
            max_queue_size: count("OTEL_BSP_MAX_QUEUE_SIZE", 2048)?,
            max_export_batch_size: count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)?,
            sampler: crate::sampler::Sampler::from_env(var)?,
            tls: crate::otlp_tls::OtlpTls::from_env(|specific, general| {
                var(specific)
                    .map(|v| (specific, v))
                    .or_else(|| var(general).map(|v| (general, v)))
            })?,
        }))
    }
}

fn parse_endpoint(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("not a URL ({e}); expected e.g. http://localhost:4318"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err("the URL must start with http:// or https://".into()),
    }
    if uri.host().is_none() {
        return Err("the URL has no host".into());
    }
    Ok(uri)
}

/// `key=value,key2=value2` with percent-encoded values (the W3C Baggage format the OTel spec
/// uses for headers and resource attributes).
fn parse_pairs(list: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            return Err(format!("{item:?} is not key=value"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err("an entry has an empty key".into());
        }
        pairs.push((key.to_string(), percent_decode(value.trim())?));
    }
    Ok(pairs)
}

fn parse_headers(list: &str) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, String> {
    parse_pairs(list)?
        .into_iter()
        .map(|(name, value)| {
            let header = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a valid header name"))?;
            let value = http::HeaderValue::from_str(&value)
                .map_err(|_| format!("the value of {name:?} is not a valid header value"))?;
            Ok((header, value))
        })
        .collect()
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a value has a bad percent-escape".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a value does not decode to UTF-8".to_string())
}

type Finished = (Arc<InvocationRecord>, Box<RequestSpan>);

/// The queue between requests and the export task.
struct Queue {
    pending: Mutex<Vec<Finished>>,
    capacity: usize,
    /// Woken when a batch's worth is queued, and for flushes.
    wake: Notify,
    flushes: Mutex<Vec<oneshot::Sender<()>>>,
    batch_invocations: usize,
}

/// The request path's handle on span export. Cheap to clone.
#[derive(Clone)]
pub struct SpanExport {
    queue: Arc<Queue>,
    dropped_queue_full: Counter,
    sampler: crate::sampler::Sampler,
}

/// Counters the exporter keeps (registered in [`crate::Metrics`]).
pub struct ExportCounters {
    pub exported: Counter,
    pub dropped_queue_full: Counter,
    pub dropped_export_failed: Counter,
}

impl SpanExport {
    /// Starts the export task on the current tokio runtime.
    pub fn start(config: OtlpConfig, counters: ExportCounters) -> SpanExport {
        let queue = Arc::new(Queue {
            pending: Mutex::new(Vec::with_capacity(config.max_queue_size.min(4096))),
            capacity: config.max_queue_size,
            wake: Notify::new(),
            flushes: Mutex::new(Vec::new()),
            // A SERVER span and two children is the usual invocation.
            batch_invocations: (config.max_export_batch_size / 3).max(1),
        });
        let dropped_queue_full = counters.dropped_queue_full.clone();
        let sampler = config.sampler;
        tokio::spawn(run(config, queue.clone(), counters));
        SpanExport {
            queue,
            dropped_queue_full,
            sampler,
        }
    }

    pub fn sampler(&self) -> &crate::sampler::Sampler {
        &self.sampler
    }

    /// Opens the export queue to add finished invocations (each with its request's spans);
    /// the exporter is woken, if a batch's worth is waiting, when the sink is dropped.
    pub fn sink(&self) -> SpanSink<'_> {
        let pending = self.queue.pending.lock().unwrap_or_else(|p| p.into_inner());
        SpanSink {
            was: pending.len(),
            pending,
            export: self,
            dropped: 0,
        }
    }

    /// Sends everything queued so far; returns when it is sent or `timeout` passed.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (done, sent) = oneshot::channel();
        self.queue
            .flushes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(done);
        self.queue.wake.notify_one();
        tokio::time::timeout(timeout, sent)
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// The export queue, locked for a batch of additions (see [`SpanExport::sink`]).
pub struct SpanSink<'a> {
    pending: std::sync::MutexGuard<'a, Vec<Finished>>,
    export: &'a SpanExport,
    /// Invocations queued before this sink was opened.
    was: usize,
    /// Spans dropped because the queue was full.
    dropped: u64,
}

impl SpanSink<'_> {
    /// Queues one invocation's spans, or drops and counts them when the queue is full.
    pub fn push(&mut self, record: Arc<InvocationRecord>, request: Box<RequestSpan>) {
        if self.pending.len() < self.export.queue.capacity {
            self.pending.push((record, request));
        } else {
            self.dropped += 1 + request.children.len() as u64;
        }
    }
}

impl Drop for SpanSink<'_> {
    fn drop(&mut self) {
        let batch = self.export.queue.batch_invocations;
        // Wake the exporter once a batch's worth is waiting, not for every invocation.
        let due = self.was < batch && self.pending.len() >= batch;
        if self.dropped > 0 {
            self.export.dropped_queue_full.inc_by(self.dropped);
        }
        if due {
            self.export.queue.wake.notify_one();
        }
    }
}

async fn run(config: OtlpConfig, queue: Arc<Queue>, counters: ExportCounters) {
    let transport = Transport::new(&config);
    let frame = RequestFrame::new(&config.resource, ("wasmgate", env!("CARGO_PKG_VERSION")));
    let mut exporter = Exporter {
        headroom: frame.headroom(transport.prefix_len()),
        frame,
        transport,
        max_batch: config.max_export_batch_size,
        counters,
        failures_logged: 0,
        buf: Vec::new(),
        memo: SpanMemo::default(),
    };
    let mut taken = Vec::new();
    loop {
        // The queue is only ever waited on here: a lost wake-up costs at most one delay.
        let _ = tokio::time::timeout(config.schedule_delay, queue.wake.notified()).await;
        let flushes = std::mem::take(&mut *queue.flushes.lock().unwrap_or_else(|p| p.into_inner()));
        std::mem::swap(
            &mut taken,
            &mut *queue.pending.lock().unwrap_or_else(|p| p.into_inner()),
        );
        exporter.send(&mut taken).await;
        for done in flushes {
            let _ = done.send(());
        }
    }
}

struct Exporter {
    transport: Transport,
    frame: RequestFrame,
    /// Bytes kept free at the front of `buf` for the request's head and the transport's prefix.
    headroom: usize,
    /// The batch being encoded, kept from one export to the next: a fresh buffer of a batch's
    /// size (hundreds of KiB) would be fresh pages, faulted in on every export.
    buf: Vec<u8>,
    /// What one invocation's encoding leaves for the next (route attributes, addresses).
    memo: SpanMemo,
    max_batch: usize,
    counters: ExportCounters,
    failures_logged: u64,
}

impl Exporter {
    /// Encodes and sends `finished`, in requests of about `max_batch` spans. A failed request's
    /// spans are dropped and counted: retrying would let a dead collector hold the queue full.
    async fn send(&mut self, finished: &mut Vec<Finished>) {
        let mut count = 0;
        let mut invocations = finished.drain(..).peekable();
        while let Some((record, request)) = invocations.next() {
            if count == 0 {
                self.buf.clear();
                self.buf.resize(self.headroom, 0);
            }
            count += encode_invocation(&mut self.buf, &mut self.memo, &record, &request) as u64;
            if count as usize >= self.max_batch || invocations.peek().is_none() {
                self.export(count).await;
                count = 0;
            }
        }
    }

    /// Sends the batch in `buf` and takes the buffer back once the transport is done with it.
    async fn export(&mut self, count: u64) {
        let mut buf = std::mem::take(&mut self.buf);
        let head_start = self.frame.write_head(&mut buf, self.headroom);
        let start = self.transport.write_prefix(&mut buf, head_start);
        let whole = bytes::Bytes::from(buf);
        let result = self.transport.export(whole.slice(start..)).await;
        // The transport has dropped its handle by now, so this is normally the same allocation
        // back (a copy otherwise).
        self.buf = Vec::from(whole);
        match result {
            Ok(()) => {
                self.counters.exported.inc_by(count);
            }
            Err(error) => {
                self.counters.dropped_export_failed.inc_by(count);
                // The first failures say why; after that one line in a hundred is enough.
                if self.failures_logged < 3 || self.failures_logged.is_multiple_of(100) {
                    tracing::warn!(
                        endpoint = %self.transport.endpoint(),
                        spans = count,
                        %error,
                        "OTLP span export failed; spans dropped"
                    );
                }
                self.failures_logged += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Option<OtlpConfig>, OtlpConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OtlpConfig::from_env(|name| vars.get(name).cloned(), "app")
    }

    #[test]
    fn tls_files_that_cannot_be_used_stop_the_configuration_naming_the_variable() {
        let dir = std::env::temp_dir().join(format!("wasmgate-otlp-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let missing = dir.join("missing.pem");
        let endpoint = (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://collector.internal:4318",
        );
        let empty_path = empty.to_str().unwrap();
        let missing_path = missing.to_str().unwrap();
        for (vars, variable) in [
            (
                vec![endpoint, ("OTEL_EXPORTER_OTLP_CERTIFICATE", missing_path)],
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ),
            (
                vec![
                    endpoint,
                    ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", empty_path),
                ],
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            ),
            (
                vec![
                    endpoint,
                    ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", empty_path),
                ],
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            ),
            (
                vec![
                    endpoint,
                    ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", empty_path),
                    ("OTEL_EXPORTER_OTLP_CLIENT_KEY", missing_path),
                ],
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            ),
        ] {
            let error = config(&vars).unwrap_err();
            assert_eq!(error.variable, variable, "{vars:?}: {error}");
        }
        // Without files: the public web PKI and no client certificate.
        let plain = config(&[endpoint]).unwrap().unwrap();
        assert!(plain.tls.is_default());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn export_is_off_unless_an_endpoint_is_set() {
        assert!(config(&[]).unwrap().is_none());
        assert!(config(&[("OTEL_SERVICE_NAME", "x")]).unwrap().is_none());
        let on = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")];
        assert!(config(&on).unwrap().is_some());
        let disabled = [on[0], ("OTEL_SDK_DISABLED", "true")];
        assert!(config(&disabled).unwrap().is_none());
        let none = [on[0], ("OTEL_TRACES_EXPORTER", "none")];
        assert!(config(&none).unwrap().is_none());
        let default = config(&[("OTEL_TRACES_EXPORTER", "otlp")])
            .unwrap()
            .unwrap();
        assert_eq!(default.endpoint, "http://localhost:4318/v1/traces");
        assert!(config(&[("OTEL_TRACES_EXPORTER", "zipkin")]).is_err());
    }

    #[test]
    fn endpoints_follow_the_spec() {
        let http = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(http.protocol, Protocol::HttpProtobuf);
        assert_eq!(http.endpoint, "http://collector:4318/v1/traces");
        let exact = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:1"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c:443/custom"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(exact.endpoint, "https://c:443/custom");
        let grpc = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(grpc.protocol, Protocol::Grpc);
        assert_eq!(grpc.endpoint, "http://collector:4317/");
        let bad = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]);
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("OTEL_EXPORTER_OTLP_PROTOCOL"));
        assert!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]).is_err());
    }

    #[test]
    fn headers_service_name_and_batching_are_read() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b, x-team=core"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-team=edge"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ])
        .unwrap()
        .unwrap();
        let header = |name: &str| {
            c.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(header("api-key").as_deref(), Some("a b"));
        assert_eq!(header("x-team").as_deref(), Some("edge"));
        assert_eq!(c.resource[0], ("service.name".into(), "app".into()));
        assert!(c
            .resource
            .contains(&("deployment.environment".into(), "prod".into())));
        assert_eq!(c.schedule_delay, Duration::from_millis(100));
        let named = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SERVICE_NAME", "edge-api"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(named.resource[0].1, "edge-api");
        let secret = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%zzsecret",
            ),
        ]);
        assert!(!secret.unwrap_err().to_string().contains("secret"));
    }
}

//! Wasmgate's metrics as Prometheus sees them: `promtool check metrics` accepts the classic
//! text, and a real Prometheus server scrapes the admin listener and answers queries about the
//! request-duration histogram.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{fixture_manifest, get, Server};

#[tokio::test]
async fn promtool_accepts_the_classic_text() {
    let server = Server::start(&fixture_manifest(""));
    for path in ["/ok", "/status/404", "/trap", "/fetch/1"] {
        get(server.addr, path).await;
    }
    let metrics = get(server.admin, "/metrics").await.text();
    assert!(
        metrics.contains("# TYPE wasm_invocations_total counter"),
        "{metrics}"
    );
    let promtool =
        wasmgate_testsupport::find_binary(&["promtool", "/usr/bin/promtool"], "prometheus");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // promtool exits non-zero for errors and also prints lint findings; allow neither.
    assert!(output.status.success(), "promtool: {report}\n{metrics}");
    assert!(report.trim().is_empty(), "promtool findings: {report}");
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_request_histogram() {
    let server = Server::start(&fixture_manifest(""));
    for _ in 0..5 {
        assert_eq!(get(server.addr, "/ok").await.status, 200);
    }
    let prometheus = wasmgate_testsupport::prometheus::Prometheus::start(server.admin);
    let query =
        "sum(http_server_request_duration_seconds_count{job=\"wasmgate\",http_route=\"/...\"})";
    let started = Instant::now();
    loop {
        let body = prometheus.query(query);
        if body.contains("\"value\":[") && body.contains("\"5\"") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "Prometheus never reported 5 requests: {body}\nup: {}",
            prometheus.query("up")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The buckets arrived as a real histogram: cumulative series by `le`, the last one
    // (+Inf) holding every request, and a median computed from them that is a duration.
    let buckets =
        "http_server_request_duration_seconds_bucket{job=\"wasmgate\",http_route=\"/...\"}";
    let count = scalar(&prometheus.query(&format!("count({buckets})")));
    assert!(count >= 10.0, "{count} buckets");
    assert_eq!(scalar(&prometheus.query(&format!("max({buckets})"))), 5.0);
    let infinite = prometheus.query(&buckets.replace('}', ",le=\"+Inf\"}"));
    assert_eq!(scalar(&infinite), 5.0, "{infinite}");
    let median =
        scalar(&prometheus.query(&format!("histogram_quantile(0.5, sum by (le) ({buckets}))")));
    assert!(
        median.is_finite() && median > 0.0 && median < 1.0,
        "the median of five quick requests, in seconds: {median}"
    );
    let up = prometheus.query("up{job=\"wasmgate\"}");
    assert!(up.contains("\"1\"]"), "{up}");
}

/// The value of a query that returns one sample.
fn scalar(body: &str) -> f64 {
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(parsed["status"], "success", "{body}");
    let result = parsed["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "one sample: {body}");
    result[0]["value"][1].as_str().unwrap().parse().unwrap()
}

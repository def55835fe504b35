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
    // Buckets arrive as a real histogram: a quantile can be computed from them.
    let body = prometheus.query(
        "histogram_quantile(0.5, sum by (le) (rate(http_server_request_duration_seconds_bucket[1m])))",
    );
    assert!(body.contains("\"status\":\"success\""), "{body}");
    let up = prometheus.query("up{job=\"wasmgate\"}");
    assert!(up.contains("\"1\"]"), "{up}");
}

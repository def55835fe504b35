//! Observability: the admin listener, invocation records, metrics and the per-invocation log
//! line, checked against the real binary over HTTP.

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::{fixture_manifest, get, invocations, wagi_fixture_wasm, Client, Protocol, Server};

/// The fixture on every path, with tight limits so faults are quick.
fn manifest() -> String {
    fixture_manifest("[component.fixture.limits]\nmemory = \"32MiB\"\ntimeout = \"1s\"\n")
}

#[tokio::test]
async fn admin_endpoints_live_on_their_own_listener() {
    let server = Server::start(&manifest());
    assert_ne!(server.admin, server.addr);
    // On the public listener these paths belong to the app (the fixture answers 404 itself).
    for path in ["/metrics", "/api/invocations"] {
        let public = get(server.addr, path).await;
        assert_eq!(public.status, 404, "{path}");
        assert!(
            public.text().contains("fixture: unknown path"),
            "{path}: {}",
            public.text()
        );
    }
    assert_eq!(get(server.admin, "/healthz").await.text(), "ok\n");
    assert_eq!(get(server.admin, "/readyz").await.text(), "ready\n");
    let metrics = get(server.admin, "/metrics").await;
    assert_eq!(metrics.status, 200);
    // Without an Accept asking for OpenMetrics, the classic Prometheus text format.
    assert_eq!(
        metrics.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(!metrics.text().contains("# EOF"));
    let text = metrics.text();
    assert!(
        text.contains("wasm_instances_capacity{component=\"fixture\"} 100"),
        "{text}"
    );
    assert!(
        text.contains("wasm_compile_cache_total{component=\"fixture\""),
        "{text}"
    );
}

#[tokio::test]
async fn every_outcome_is_recorded_with_its_figures() {
    let server = Server::start(&manifest());
    let admin = server.admin;
    for path in ["/ok", "/trap", "/loop", "/hog", "/no-response"] {
        get(server.addr, path).await;
    }
    let expected = [
        ("ok", 200),
        ("trap", 500),
        ("timeout", 504),
        ("memory_limit", 500),
        ("no_response", 500),
    ];
    for (outcome, status) in expected {
        let records = invocations(admin, &format!("outcome={outcome}"), 1).await;
        assert_eq!(records.len(), 1, "{outcome}: {records:?}");
        let record = &records[0];
        assert_eq!(record["status"], status, "{outcome}: {record}");
        assert_eq!(record["route"], "/...", "route pattern, not the raw path");
        assert_eq!(record["component"], "fixture");
        assert_eq!(record["executor"], "http");
        assert_eq!(record["method"], "GET");
        assert_eq!(record["app"], "test");
        assert!(record["wall_time_us"].as_u64().unwrap() > 0, "{record}");
        assert!(
            record["started_at_ms"].as_u64().unwrap() > 1_700_000_000_000,
            "{record}"
        );
    }
    let trap = &invocations(admin, "outcome=trap", 1).await[0];
    assert!(
        trap["error"].as_str().unwrap().contains("unreachable"),
        "{trap}"
    );
    assert!(
        trap["backtrace"]
            .as_str()
            .unwrap()
            .contains("deliberately_trap"),
        "{trap}"
    );
    assert!(trap["stderr_lines"].as_u64().unwrap() >= 1, "{trap}");
    let hog = &invocations(admin, "outcome=memory_limit", 1).await[0];
    assert!(
        hog["peak_memory_bytes"].as_u64().unwrap() > 16 << 20,
        "{hog}"
    );
    let ok = &invocations(admin, "outcome=ok", 1).await[0];
    assert!(ok["instantiate_time_us"].as_u64().unwrap() > 0, "{ok}");
    assert_eq!(ok["response_bytes"], 2, "{ok}");
    // Guest and host time from the call hooks: a handler makes WASI calls (fields, body,
    // streams) and runs some code of its own.
    assert!(ok["host_calls"].as_u64().unwrap() >= 3, "{ok}");
    assert!(ok["guest_cpu_time_us"].is_u64(), "{ok}");
    assert!(ok["host_call_time_us"].is_u64(), "{ok}");
    // A CPU-bound guest stopped by the deadline spent about the whole second in guest code.
    let spin = &invocations(admin, "outcome=timeout", 1).await[0];
    let guest_us = spin["guest_cpu_time_us"].as_u64().unwrap();
    assert!(guest_us > 500_000, "{spin}");
    assert!(guest_us <= spin["wall_time_us"].as_u64().unwrap(), "{spin}");

    let metrics = get(admin, "/metrics").await.text();
    for outcome in ["ok", "trap", "timeout", "memory_limit", "no_response"] {
        let line =
            format!("wasm_invocations_total{{component=\"fixture\",outcome=\"{outcome}\"}} 1");
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    assert!(
        metrics.contains("http_server_request_duration_seconds_count{http_route=\"/...\",http_request_method=\"GET\",http_response_status_class=\"5xx\"} 4"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("\"/ok\"") && !metrics.contains("\"/trap\""),
        "raw paths must not be labels"
    );
    server.wait_for_log(
        &["\"message\":\"invocation\"", "\"outcome\":\"memory_limit\""],
        Duration::from_secs(5),
    );
}

#[tokio::test]
async fn records_count_bytes_output_and_cold_starts() {
    let server = Server::start(&manifest());
    let mut client = Client::connect(server.addr, Protocol::Http1).await;
    client.send("POST", "/echo", "x".repeat(1000)).await;
    client.send("GET", "/stdout", "").await;
    let records = invocations(server.admin, "limit=2", 2).await;
    let (stdout, echo) = (&records[0], &records[1]);
    assert_eq!(echo["request_bytes"], 1000, "{echo}");
    assert!(echo["response_bytes"].as_u64().unwrap() > 1000, "{echo}");
    assert_eq!(
        echo["cold_start"], true,
        "first instance since load: {echo}"
    );
    assert_eq!(stdout["cold_start"], false, "{stdout}");
    assert_eq!(stdout["stdout_lines"], 1, "{stdout}");
    assert_eq!(stdout["stderr_lines"], 1, "{stdout}");
    assert!(stdout["stdout_bytes"].as_u64().unwrap() > 10, "{stdout}");
    // The lines themselves are kept for the invocation's log view.
    assert_eq!(
        stdout["output"],
        serde_json::json!([
            {"source": "stdout", "text": "fixture says hello on stdout"},
            {"source": "stderr", "text": "fixture says hello on stderr"},
        ]),
        "{stdout}"
    );
    assert!(
        echo.get("output").is_none(),
        "nothing written, nothing kept: {echo}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_output_is_logged_line_by_line_while_the_guest_runs() {
    let server = Server::start(&fixture_manifest(
        "[component.fixture.limits]\ntimeout = \"10s\"\n",
    ));
    let addr = server.addr;
    let slow = tokio::spawn(async move { get(addr, "/sleep/5000").await });
    // The fixture says it is going to sleep, then sleeps: the line is in the log long before
    // the invocation ends.
    let line = tokio::task::block_in_place(|| {
        server.wait_for_log(
            &["fixture: sleeping 5000 ms", "\"stream\":\"stderr\""],
            Duration::from_secs(4),
        )
    });
    assert!(
        !slow.is_finished(),
        "logged only after the invocation: {line}"
    );
    assert_eq!(slow.await.unwrap().status, 200);
    let logged: Value = serde_json::from_str(&line).unwrap();
    let record = &invocations(server.admin, "limit=1", 1).await[0];
    assert_eq!(logged["target"], "wasmgate::guest", "{logged}");
    assert_eq!(logged["invocation"], record["id"], "{logged}");
    assert_eq!(logged["trace_id"], record["trace_id"], "{logged}");
    assert_eq!(logged["component"], "fixture", "{logged}");
}

#[tokio::test]
async fn a_guest_printing_megabytes_is_not_stopped_and_its_log_is_capped() {
    let server = Server::start(&manifest());
    // 4 MiB of stdout in 64 KiB lines: all counted, a bounded part logged and kept.
    let reply = get(server.addr, "/flood/4").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "flooded"));
    let record = &invocations(server.admin, "limit=1", 1).await[0];
    assert_eq!(record["outcome"], "ok", "{record}");
    assert_eq!(record["stdout_bytes"], 4 << 20, "{record}");
    assert_eq!(record["stdout_lines"], 64, "{record}");
    let kept = record["output"].as_array().unwrap();
    assert_eq!(
        kept.len(),
        2,
        "8 KiB of lines kept, cut at 4 KiB each: {record}"
    );
    assert_eq!(kept[0]["text"].as_str().unwrap().len(), 4096);
    assert_eq!(record["output_left_out"], 62, "{record}");
    server.wait_for_log(
        &[
            "guest output lines past the per-invocation log budget",
            "\"lines\":48",
        ],
        Duration::from_secs(5),
    );
    let logged = server
        .stderr()
        .lines()
        .filter(|l| l.contains("\"stream\":\"stdout\"") && l.contains("xxxx"))
        .count();
    assert_eq!(logged, 16, "64 KiB of the guest's lines are logged");
}

#[tokio::test]
async fn a_client_that_leaves_mid_body_is_recorded_as_client_gone() {
    let server = Server::start(&manifest());
    support::leave_mid_body(server.addr).await;
    let records = invocations(server.admin, "outcome=client_gone", 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0]["response_bytes"].as_u64().unwrap() < 50_000_000);
}

#[tokio::test]
async fn invocation_queries_filter_and_reject_unknown_parameters() {
    let wasm = wagi_fixture_wasm().display().to_string();
    let text = format!(
        "{}\n[[route]]\npath = \"/cgi/...\"\ncomponent = \"cgi\"\n[component.cgi]\nsource = {wasm:?}\nexecutor = \"wagi\"\n",
        manifest()
    );
    let server = Server::start(&text);
    for _ in 0..3 {
        get(server.addr, "/ok").await;
    }
    get(server.addr, "/cgi/bad-status").await;
    get(server.addr, "/cgi/status").await;
    let all = invocations(server.admin, "", 5).await;
    assert_eq!(all.len(), 5);
    assert!(
        all[0]["id"].as_u64() > all[4]["id"].as_u64(),
        "newest first"
    );
    let cgi = invocations(server.admin, "route=%2Fcgi%2F...", 2).await;
    assert_eq!(cgi.len(), 2);
    assert!(cgi.iter().all(|r| r["executor"] == "wagi"));
    let bad = invocations(server.admin, "outcome=bad_output", 1).await;
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["status"], 502);
    assert!(
        bad[0]["error"].as_str().unwrap().contains("invalid Status"),
        "{}",
        bad[0]
    );
    let status = invocations(server.admin, "component=cgi&outcome=ok", 1).await;
    assert_eq!(status[0]["status"], 404);
    assert_eq!(status[0]["exit_code"], 0);
    assert_eq!(invocations(server.admin, "limit=2", 2).await.len(), 2);
    let rejected = get(server.admin, "/api/invocations?colour=red").await;
    assert_eq!(rejected.status, 400);
    assert!(rejected.text().contains("colour"));
}

#[tokio::test]
async fn the_history_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir, &manifest(), &["--invocation-history", "3"]);
    for _ in 0..6 {
        get(server.addr, "/ok").await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(invocations(server.admin, "", 3).await.len(), 3);
}

#[tokio::test]
async fn wasmgate_logs_shows_recent_records_and_follows_new_ones() {
    use std::io::{BufRead, BufReader};
    let server = Server::start(&manifest());
    for path in ["/ok", "/status/404"] {
        get(server.addr, path).await;
    }
    invocations(server.admin, "", 2).await;
    let admin = server.admin.to_string();
    let (code, stdout, stderr) = support::run_wasmgate(&["logs", "--admin", &admin, "-n", "5"]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    // Oldest first, one readable line each.
    assert!(lines[0].contains(" GET /... fixture 200 ok "), "{stdout}");
    assert!(lines[1].contains(" 404 ok "), "{stdout}");
    assert!(lines[0].contains(" trace="), "{stdout}");

    // Follow only traps, as JSON.
    let mut follower = support::wasmgate()
        .args(["logs", "--admin", &admin, "--follow", "--outcome", "trap"])
        .args(["--json", "-n", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The follower subscribes when its request arrives; keep sending until it reports.
    let started = Instant::now();
    let line = loop {
        get(server.addr, "/ok").await;
        get(server.addr, "/trap").await;
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(200)) {
            break line;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the follower printed nothing"
        );
    };
    let record: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["outcome"], "trap", "{record}");
    assert_eq!(record["status"], 500, "{record}");
    // Only traps come through the filter.
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(300)) {
        let record: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(record["outcome"], "trap", "{record}");
    }
    follower.kill().unwrap();
    let _ = follower.wait();

    // No server there: a clear error, not a hang.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let (code, _, stderr) = support::run_wasmgate(&["logs", "--admin", &closed_addr]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("cannot reach the admin listener"),
        "{stderr}"
    );
}

#[tokio::test]
async fn no_telemetry_serves_requests_and_keeps_no_records() {
    let dir = tempfile::tempdir().unwrap();
    let shared = support::repo_root().join("target/wasmgate-test-cache");
    let server = Server::start_in(
        dir,
        &manifest(),
        &["--cache-dir", shared.to_str().unwrap(), "--no-telemetry"],
    );
    for _ in 0..3 {
        assert_eq!(get(server.addr, "/ok").await.status, 200);
    }
    assert_eq!(get(server.addr, "/trap").await.status, 500);
    // Still logged as a fault: the error log is not telemetry.
    server.wait_for_log(&["\"outcome\":\"trap\""], Duration::from_secs(5));
    server.wait_for_log(&["telemetry is off"], Duration::from_secs(5));
    let reply = get(server.admin, "/api/invocations?limit=10").await;
    let records: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        records["invocations"].as_array().map(Vec::len),
        Some(0),
        "{records}"
    );
    let metrics = get(server.admin, "/metrics").await.text();
    assert!(!metrics.contains("wasm_invocations_total{"), "{metrics}");
    assert!(!server.stderr().contains("\"message\":\"invocation\""));
}

#[tokio::test]
async fn the_last_requests_are_logged_before_a_graceful_exit() {
    let mut server = Server::start(&manifest());
    for _ in 0..20 {
        assert_eq!(get(server.addr, "/ok").await.status, 200);
    }
    // At once: the lines are still queued (publisher and access log work in 10 ms steps).
    server.terminate();
    assert_eq!(server.wait_exit(Duration::from_secs(30)), Some(0));
    // The process is gone; its last output may still be in the pipe for a moment.
    let count = || {
        server
            .stderr()
            .lines()
            .filter(|l| {
                l.contains("\"message\":\"invocation\"") && l.contains("\"route\":\"/...\"")
            })
            .count()
    };
    let read_until = Instant::now() + Duration::from_secs(2);
    while count() < 20 && Instant::now() < read_until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(count(), 20, "{}", server.stderr());
}

/// Voluntary context switches (wake-ups) so far of process `pid`'s threads named `name`.
fn wakeups(pid: u32, name: &str) -> u64 {
    let mut total = 0;
    let mut found = false;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        // The kernel keeps the first 15 bytes of a thread's name.
        if comm.trim() != &name[..name.len().min(15)] {
            continue;
        }
        found = true;
        let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap();
    }
    assert!(found, "no thread named {name}");
    total
}

#[tokio::test]
async fn an_idle_server_lets_its_telemetry_threads_rest_and_wakes_them_with_work() {
    let server = Server::start(&manifest());
    assert_eq!(get(server.addr, "/ok").await.status, 200);
    let pid = server.child.id();
    // Both threads look every 10 ms while records come, and double their rest after each
    // empty look, up to half a second.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let threads = ["wasmgate-telemetry", "wasmgate-access-log"];
    let before: Vec<u64> = threads.iter().map(|t| wakeups(pid, t)).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (thread, before) in threads.iter().zip(before) {
        let woken = wakeups(pid, thread) - before;
        // About 4 at 500 ms; 200 at the busy pace.
        assert!(woken <= 8, "{thread} woke {woken} times in 2 s of idleness");
    }
    // A request after the quiet spell still gets its log line promptly.
    let lines = || {
        server
            .stderr()
            .lines()
            .filter(|l| l.contains("\"message\":\"invocation\""))
            .count()
    };
    assert_eq!(lines(), 1, "{}", server.stderr());
    assert_eq!(get(server.addr, "/ok").await.status, 200);
    let started = Instant::now();
    while lines() < 2 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(lines(), 2, "{}", server.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the line took {:?}",
        started.elapsed()
    );

    // A burst after another quiet spell: the first record wakes both threads, so no batch
    // outgrows the log thread's feed (1,024 records) and no line is dropped.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (connections, each) = (16, 150);
    let mut burst = Vec::new();
    for _ in 0..connections {
        let addr = server.addr;
        burst.push(tokio::spawn(async move {
            let mut client = Client::connect(addr, Protocol::Http1).await;
            for _ in 0..each {
                assert_eq!(client.send("GET", "/ok", "").await.status, 200);
            }
        }));
    }
    for task in burst {
        task.await.unwrap();
    }
    let want = 2 + connections * each;
    let started = Instant::now();
    while lines() < want && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lines(), want);
    let metrics = get(server.admin, "/metrics").await.text();
    assert!(
        metrics.contains("wasmgate_log_lines_dropped_total 0"),
        "{metrics}"
    );
}

/// The value of the series `name{labels}` in a classic text exposition.
fn series(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels))
        .and_then(|rest| rest.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn every_wasm_and_http_series_counts_the_invocations() {
    // A cache of its own, outliving the first server's directory.
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = cache.path().to_str().unwrap().to_string();
    let server = Server::start_in(
        tempfile::tempdir().unwrap(),
        &manifest(),
        &["--cache-dir", &cache_arg],
    );
    let mut client = Client::connect(server.addr, Protocol::Http1).await;
    assert_eq!(
        client.send("POST", "/echo", "x".repeat(1000)).await.status,
        200
    );
    assert_eq!(client.send("POST", "/log/warn", "hello").await.status, 200);
    assert_eq!(client.send("GET", "/ok", "").await.status, 200);
    invocations(server.admin, "", 3).await;
    let metrics = get(server.admin, "/metrics").await.text();
    let value =
        |key: &str| series(&metrics, key).unwrap_or_else(|| panic!("no {key} in\n{metrics}"));
    let route = "{http_route=\"/...\"}";
    let component = "{component=\"fixture\"}";
    assert_eq!(
        value(&format!("http_server_request_body_size_bytes_count{route}")),
        3.0
    );
    assert_eq!(
        value(&format!("http_server_request_body_size_bytes_sum{route}")),
        1005.0
    );
    assert_eq!(
        value(&format!(
            "http_server_response_body_size_bytes_count{route}"
        )),
        3.0
    );
    assert!(value(&format!("http_server_response_body_size_bytes_sum{route}")) > 1000.0);
    assert_eq!(value("http_server_active_requests"), 0.0);
    for histogram in [
        "wasm_instantiate_duration_seconds",
        "wasm_peak_memory_bytes",
        "wasm_guest_time_seconds",
    ] {
        assert_eq!(
            value(&format!("{histogram}_count{component}")),
            3.0,
            "{histogram}"
        );
        assert!(
            value(&format!("{histogram}_sum{component}")) > 0.0,
            "{histogram}"
        );
    }
    assert!(value(&format!("wasm_peak_memory_bytes_sum{component}")) >= 3.0 * 65536.0);
    assert_eq!(value(&format!("wasm_cold_starts_total{component}")), 1.0);
    assert_eq!(value(&format!("wasm_instances_in_use{component}")), 0.0);
    let logging = "{component=\"fixture\",capability=\"logging\"}";
    assert_eq!(value(&format!("wasm_host_calls_total{logging}")), 1.0);
    assert!(value(&format!("wasm_host_call_seconds_total{logging}")) > 0.0);
    assert_eq!(
        value("wasm_compile_cache_total{component=\"fixture\",result=\"miss\"}"),
        1.0
    );
    drop(server);

    // The next start finds the compiled code in the cache.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir, &manifest(), &["--cache-dir", &cache_arg]);
    let metrics = get(server.admin, "/metrics").await.text();
    assert_eq!(
        series(
            &metrics,
            "wasm_compile_cache_total{component=\"fixture\",result=\"hit\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
}

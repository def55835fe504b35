//! Misbehaving guests and clients: each fault answers its own request with a 5xx (or hyper's
//! 4xx for malformed HTTP) and the server keeps serving everyone else.

mod support;

use std::time::{Duration, Instant};
use support::{fixture_manifest, get, Client, Protocol, Server};

const LIMITS: &str =
    "[component.fixture.limits]\nmemory = \"32MiB\"\ntimeout = \"1s\"\nmax_concurrency = 16\n";

#[tokio::test]
async fn a_trap_is_a_500_with_the_backtrace_in_the_log() {
    let server = Server::start(&fixture_manifest(LIMITS));
    let reply = get(server.addr, "/trap").await;
    assert_eq!(reply.status, 500);
    assert!(reply.text().contains("trapped"), "{}", reply.text());
    let line = server.wait_for_log(&["\"outcome\":\"trap\""], Duration::from_secs(5));
    assert!(line.contains("wasm trap"), "trap message missing: {line}");
    assert!(
        line.contains("deliberately_trap"),
        "symbolized backtrace missing: {line}"
    );
    // The guest's panic message went to its stderr, which is logged too.
    server.wait_for_log(&["fixture trap requested"], Duration::from_secs(5));
    assert_eq!(
        get(server.addr, "/ok").await.status,
        200,
        "server must keep serving"
    );
}

#[tokio::test]
async fn an_endless_loop_times_out_with_504_without_starving_others() {
    // A 3 s timeout: a server that let looping guests hold its threads would answer `/ok` only
    // after they time out; one that yields answers within a small fraction of that.
    let limits = LIMITS.replace("timeout = \"1s\"", "timeout = \"3s\"");
    let server = Server::start(&fixture_manifest(&limits));
    let addr = server.addr;
    let started = Instant::now();
    // More looping guests than this machine has cores: epoch yields must keep others served.
    let loops: Vec<_> = (0..4)
        .map(|_| tokio::spawn(async move { get(addr, "/loop").await }))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let quick = Instant::now();
    assert_eq!(get(addr, "/ok").await.status, 200);
    assert!(
        quick.elapsed() < Duration::from_millis(1500),
        "a looping guest starved others: {:?}",
        quick.elapsed()
    );
    for task in loops {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, 504, "{}", reply.text());
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(8),
        "{elapsed:?}"
    );
    server.wait_for_log(&["\"outcome\":\"timeout\""], Duration::from_secs(5));
    assert_eq!(get(addr, "/ok").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn spinning_guests_leave_the_workers_free_to_serve_others_quickly() {
    let limits = LIMITS.replace("timeout = \"1s\"", "timeout = \"4s\"");
    let server = Server::start(&fixture_manifest(&limits));
    let addr = server.addr;
    let loops: Vec<_> = (0..4)
        .map(|_| tokio::spawn(async move { get(addr, "/loop").await }))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Ten requests one after another while four guests spin on two cores. When a guest's
    // yield woke it straight back up, workers polled their sockets only every 61 slices of
    // 10 ms and these took 3.6 s in all; yielding behind the I/O driver, about 0.2 s.
    let started = Instant::now();
    for _ in 0..10 {
        assert_eq!(get(addr, "/ok").await.status, 200);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "ten quick requests took {took:?}"
    );
    for task in loops {
        assert_eq!(task.await.unwrap().status, 504);
    }
}

#[tokio::test]
async fn a_guest_waiting_on_the_host_also_times_out() {
    let server = Server::start(&fixture_manifest(LIMITS));
    let reply = get(server.addr, "/sleep/5000").await;
    assert_eq!(reply.status, 504);
    assert_eq!(get(server.addr, "/sleep/10").await.text(), "slept");
}

#[tokio::test]
async fn hitting_the_memory_limit_is_a_500_logged_as_memory_limit() {
    let server = Server::start(&fixture_manifest(LIMITS));
    let reply = get(server.addr, "/hog").await;
    assert_eq!(reply.status, 500);
    assert!(reply.text().contains("memory limit"), "{}", reply.text());
    server.wait_for_log(&["\"outcome\":\"memory_limit\""], Duration::from_secs(5));
    assert_eq!(get(server.addr, "/ok").await.status, 200);
}

#[tokio::test]
async fn a_guest_that_never_responds_is_a_500() {
    let server = Server::start(&fixture_manifest(LIMITS));
    let reply = get(server.addr, "/no-response").await;
    assert_eq!(reply.status, 500);
    assert!(
        reply.text().contains("without a response"),
        "{}",
        reply.text()
    );
    assert_eq!(get(server.addr, "/ok").await.status, 200);
}

#[tokio::test]
async fn faults_over_http2_only_fail_their_own_stream() {
    let server = Server::start(&fixture_manifest(LIMITS));
    let mut client = Client::connect(server.addr, Protocol::Http2).await;
    assert_eq!(client.send("GET", "/trap", "").await.status, 500);
    assert_eq!(client.send("GET", "/hog", "").await.status, 500);
    assert_eq!(client.send("GET", "/ok", "").await.status, 200);
}

#[tokio::test]
async fn malformed_http_gets_hyper_answer_and_no_crash() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(&fixture_manifest(LIMITS));
    for garbage in [
        &b"THIS IS NOT HTTP\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
        b"\x00\x01\x02\x03\xff\xfe",
    ] {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(garbage).await.unwrap();
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply)).await;
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 4"),
            "{reply}"
        );
    }
    assert_eq!(get(server.addr, "/ok").await.status, 200);
    assert!(
        server.stderr().find("panicked").is_none(),
        "{}",
        server.stderr()
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_request_does_not_hurt_others() {
    let server = Server::start(&fixture_manifest(LIMITS));
    for _ in 0..5 {
        let addr = server.addr;
        let task = tokio::spawn(async move { get(addr, "/sleep/300").await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        task.abort();
    }
    assert_eq!(get(server.addr, "/ok").await.status, 200);
}

#[tokio::test]
async fn a_guest_past_its_host_call_limit_is_stopped_alone() {
    let server = Server::start(&fixture_manifest(
        "[component.fixture.limits]\nmax_host_calls = 200\n",
    ));
    let addr = server.addr;
    // A plain answer needs a few dozen host calls; 16 MiB of stdout in 64 KiB writes, hundreds.
    assert_eq!(get(addr, "/ok").await.status, 200);
    let reply = get(addr, "/flood/16").await;
    assert_eq!(reply.status, 500, "{}", reply.text());
    let records = get(
        server.admin,
        "/api/invocations?outcome=host_call_limit&limit=5",
    )
    .await;
    let records: serde_json::Value = serde_json::from_slice(&records.body).unwrap();
    let record = &records["invocations"][0];
    assert_eq!(record["status"], 500, "{records}");
    assert!(
        record["error"]
            .as_str()
            .is_some_and(|e| e.contains("more than 200 host calls")),
        "{record}"
    );
    assert!(
        record["host_calls"].as_u64().is_some_and(|n| n == 201),
        "{record}"
    );
    assert_eq!(get(addr, "/ok").await.status, 200);
}

/// The admin API's latest record with `outcome`.
async fn last_record(server: &Server, outcome: &str) -> serde_json::Value {
    let reply = get(
        server.admin,
        &format!("/api/invocations?outcome={outcome}&limit=1"),
    )
    .await;
    let records: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    records["invocations"][0].clone()
}

#[tokio::test]
async fn a_guest_past_its_fuel_budget_is_stopped_at_once_and_others_are_counted() {
    // A 10 s timeout: the loop must be stopped by fuel, long before the clock.
    let server = Server::start(&fixture_manifest(
        "[component.fixture.limits]\ntimeout = \"10s\"\nfuel = 50_000_000\n",
    ));
    let addr = server.addr;
    assert_eq!(get(addr, "/ok").await.status, 200);
    let ok = last_record(&server, "ok").await;
    let instructions = ok["instructions"].as_u64().expect("instructions counted");
    assert!(
        (1_000..50_000_000).contains(&instructions),
        "{instructions}"
    );

    let started = Instant::now();
    let reply = get(addr, "/loop").await;
    assert_eq!(reply.status, 500, "{}", reply.text());
    assert!(reply.text().contains("ran out of fuel"), "{}", reply.text());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let stopped = last_record(&server, "fuel_limit").await;
    assert_eq!(stopped["status"], 500, "{stopped}");
    assert_eq!(stopped["instructions"], 50_000_000, "{stopped}");
    assert!(
        stopped["error"]
            .as_str()
            .is_some_and(|e| e.contains("fuel")),
        "{stopped}"
    );
    server.wait_for_log(&["\"outcome\":\"fuel_limit\""], Duration::from_secs(5));

    // Every request gets its own budget: the next one is not short of fuel.
    assert_eq!(get(addr, "/ok").await.status, 200);
    let metrics = get(server.admin, "/metrics").await.text();
    assert!(
        metrics.contains("wasm_instructions_count{component=\"fixture\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wasm_invocations_total{component=\"fixture\",outcome=\"fuel_limit\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn without_a_fuel_budget_instructions_are_not_counted() {
    let server = Server::start(&fixture_manifest(LIMITS));
    assert_eq!(get(server.addr, "/ok").await.status, 200);
    let ok = last_record(&server, "ok").await;
    assert!(ok["instructions"].is_null(), "{ok}");
    assert!(ok["guest_cpu_time_us"].is_u64(), "{ok}");
}

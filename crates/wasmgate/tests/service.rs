//! `executor = "service"`: a hyper server built for WasmEdge's sockets (hyper_wasi + tokio_wasi,
//! `examples/service-hyper-wasmedge`), run unchanged and reverse-proxied by `wasmgate up`.
//!
//! All traffic stays on loopback: the test talks to Wasmgate's listener, and (for the hostile
//! client tests) to the guest's mapped loopback port, which the "service ready" log line names.

mod support;

use bytes::Bytes;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::{cpu_ticks, fixture_wasm, get, raw_get, repo_root, Client, Protocol, Server};

fn service_wasm() -> PathBuf {
    fixture_wasm();
    repo_root().join(
        "examples/service-hyper-wasmedge/target/wasm32-wasip1/release/service-hyper-wasmedge.wasm",
    )
}

/// A manifest routing `/...` to the example service, with `extra` lines in its component.
fn manifest(extra: &str) -> String {
    format!(
        "[app]\nname = \"svc\"\n\n[[route]]\npath = \"/...\"\ncomponent = \"shop\"\n\n\
         [component.shop]\nsource = {:?}\nexecutor = \"service\"\nports = [8080]\n{extra}",
        service_wasm().display().to_string()
    )
}

/// Starts the server and waits until `replicas` replicas reported ready; returns their mapped
/// loopback addresses.
fn start_ready(extra: &str, replicas: usize) -> (Server, Vec<SocketAddr>) {
    let server = Server::start(&manifest(extra));
    let started = Instant::now();
    loop {
        let logs = server.stderr();
        let ready: Vec<SocketAddr> = logs
            .lines()
            .filter(|l| l.contains("service ready"))
            .filter_map(|l| {
                let value: serde_json::Value = serde_json::from_str(l).ok()?;
                value["host_address"].as_str()?.parse().ok()
            })
            .collect();
        if ready.len() >= replicas {
            return (server, ready);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "service not ready in 60 s; logs:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn get_and_post_are_proxied_and_the_guest_sees_the_port_it_bound() {
    let (server, _) = start_ready("", 1);
    runtime().block_on(async {
        let reply = get(server.addr, "/").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        // Trap 3: the accepted socket's local address is the guest's own port, not the host's.
        assert!(reply.text().contains("local port 8080"), "{}", reply.text());

        let body: Vec<u8> = (0..(4 << 20)).map(|i| (i % 251) as u8).collect();
        let mut client = Client::connect(server.addr, Protocol::Http1).await;
        let echoed = client.send("POST", "/echo", body.clone()).await;
        assert_eq!(echoed.status, 200);
        assert_eq!(echoed.body.len(), body.len());
        assert!(echoed.body == body, "the echoed 4 MiB body differs");

        let missing = client.send("GET", "/nope", Bytes::new()).await;
        assert_eq!(missing.status, 404);

        let h2 = Client::connect(server.addr, Protocol::Http2)
            .await
            .send("POST", "/echo", "over h2")
            .await;
        assert_eq!(h2.text(), "over h2");
    });
    // Each proxied request is an invocation like any other executor's.
    let line = server.wait_for_log(&["\"executor\":\"service\""], Duration::from_secs(5));
    assert!(line.contains("\"component\":\"shop\""), "{line}");
}

#[test]
fn keep_alive_requests_do_not_stall_on_nagle() {
    // Trap 2: hyper_wasi writes head and body in two sends and cannot set TCP_NODELAY; without
    // the host setting it, each keep-alive response waits ~40 ms (100 requests: 4 s).
    let (server, _) = start_ready("", 1);
    runtime().block_on(async {
        let mut client = Client::connect(server.addr, Protocol::Http1).await;
        client.send("GET", "/", Bytes::new()).await;
        let started = Instant::now();
        for _ in 0..100 {
            let reply = client.send("POST", "/echo", "x".repeat(100)).await;
            assert_eq!(reply.status, 200);
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "100 keep-alive requests took {took:?}"
        );
    });
}

#[test]
fn fifty_parallel_clients_are_served() {
    let (server, _) = start_ready("", 1);
    let started = Instant::now();
    runtime().block_on(async {
        let mut tasks = Vec::new();
        for client_index in 0..50 {
            let addr = server.addr;
            tasks.push(tokio::spawn(async move {
                let mut client = Client::connect(addr, Protocol::Http1).await;
                for i in 0..10 {
                    let body = format!("client {client_index} request {i} ").repeat(200);
                    let reply = client.send("POST", "/echo", body.clone()).await;
                    assert_eq!(reply.status, 200);
                    assert_eq!(reply.text(), body);
                }
            }));
        }
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("a client did not finish in 60 s")
                .expect("a client failed");
        }
    });
    let took = started.elapsed();
    assert!(took < Duration::from_secs(60), "500 requests took {took:?}");
}

#[test]
fn hostile_clients_do_not_take_the_service_down() {
    use std::io::Write;
    let (server, mapped) = start_ready("", 1);
    let guest = mapped[0];
    // Trap 1: clients that reset right after connecting, before the guest accepts; the
    // guest's `accept().await?` must not fail because the peer is gone.
    for _ in 0..50 {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_linger(Some(Duration::ZERO)).unwrap();
        socket.connect(&guest.into()).unwrap();
        drop(socket);
    }
    // Garbage straight to the guest, and a request cut off in the middle of its body.
    let mut garbage = std::net::TcpStream::connect(guest).unwrap();
    let _ = garbage.write_all(b"\x16\x03\x01 NOT HTTP AT ALL\r\n\r\n");
    drop(garbage);
    let mut half = std::net::TcpStream::connect(server.addr).unwrap();
    half.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial body",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(half);
    let mut half_direct = std::net::TcpStream::connect(guest).unwrap();
    half_direct
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        .unwrap();
    drop(half_direct);
    std::thread::sleep(Duration::from_millis(200));
    runtime().block_on(async {
        for _ in 0..5 {
            let reply = get(server.addr, "/").await;
            assert_eq!(reply.status, 200, "{}", reply.text());
        }
    });
    assert!(
        !server.stderr().contains("service trapped") && !server.stderr().contains("service exited"),
        "the service went down:\n{}",
        server.stderr()
    );
}

#[test]
fn binding_an_undeclared_port_fails_with_eacces_and_is_logged() {
    let (server, _) = start_ready("", 1);
    let reply = runtime().block_on(get(server.addr, "/bind?9999"));
    assert!(reply.text().contains("errno=2"), "{}", reply.text());
    assert!(
        reply.text().contains("PermissionDenied"),
        "{}",
        reply.text()
    );
    server.wait_for_log(&["not declared in `ports`", "9999"], Duration::from_secs(5));
}

#[test]
fn connections_outside_allowed_outbound_hosts_fail_with_eacces() {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed = upstream.local_addr().unwrap();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let denied = other.local_addr().unwrap();
    let (server, _) = start_ready(
        &format!(
            "allowed_outbound_hosts = [\"tcp://127.0.0.1:{}\", \"mysql://db.invalid:3306\"]\n",
            allowed.port()
        ),
        1,
    );
    runtime().block_on(async {
        let ok = get(server.addr, &format!("/connect?{allowed}")).await;
        assert_eq!(ok.text(), "connected\n");
        let refused = get(server.addr, &format!("/connect?{denied}")).await;
        assert!(refused.text().contains("errno=2"), "{}", refused.text());
        // A name no pattern mentions is not even looked up (tokio_wasi reports no addresses).
        let lookup = get(server.addr, "/lookup?example.com:80").await;
        assert_eq!(lookup.text().trim(), "", "{}", lookup.text());
    });
    server.wait_for_log(&["lookup refused", "example.com"], Duration::from_secs(5));
    server.wait_for_log(
        &["connection refused (EACCES)", &denied.to_string()],
        Duration::from_secs(5),
    );
}

#[test]
fn a_crashing_service_is_restarted() {
    let (server, _) = start_ready("", 1);
    let crash = runtime().block_on(get(server.addr, "/crash"));
    assert_eq!(
        crash.status,
        502,
        "{}\nlogs:\n{}",
        crash.text(),
        server.stderr()
    );
    server.wait_for_log(&["service trapped; restarting"], Duration::from_secs(5));
    let started = Instant::now();
    runtime().block_on(async {
        loop {
            let reply = get(server.addr, "/").await;
            if reply.status == 200 {
                break;
            }
            assert_eq!(reply.status, 503, "{}", reply.text());
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "not restarted in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

#[test]
fn a_service_that_never_listens_gets_503_and_its_output_is_logged() {
    let server = Server::start(&manifest(
        "environment = { SERVICE_MODE = \"never-ready\" }\n",
    ));
    let line = server.wait_for_log(&["never-ready mode"], Duration::from_secs(30));
    assert!(line.contains("\"component\":\"shop\""), "{line}");
    assert!(line.contains("stdout"), "{line}");
    let reply = runtime().block_on(get(server.addr, "/"));
    assert_eq!(reply.status, 503);
    assert!(reply.text().contains("not ready"), "{}", reply.text());
}

#[test]
fn a_crash_loop_is_reported() {
    let server = Server::start(&manifest("environment = { SERVICE_MODE = \"exit\" }\n"));
    let line = server.wait_for_log(&["crash-looping"], Duration::from_secs(30));
    assert!(line.contains("\"component\":\"shop\""), "{line}");
    let exited = server.wait_for_log(&["service exited; restarting"], Duration::from_secs(1));
    assert!(exited.contains("\"exit_code\":3"), "{exited}");
    // Also visible to monitoring, not only in the log.
    let metrics = runtime().block_on(get(server.admin, "/metrics")).text();
    assert!(
        metrics.contains("wasm_service_crash_loops_total{component=\"shop\"} "),
        "{metrics}"
    );
    let restarts = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wasm_service_restarts_total{component=\"shop\"} "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no restart counter:\n{metrics}"));
    assert!(restarts >= 5.0, "{restarts}");
}

#[test]
fn replicas_get_their_own_ports_and_share_the_requests() {
    let (server, mapped) = start_ready("replicas = 3\n", 3);
    let mut distinct = mapped.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{mapped:?}");
    assert!(mapped.iter().all(|a| a.ip().is_loopback()), "{mapped:?}");
    let instances: std::collections::BTreeSet<String> = runtime().block_on(async {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..12 {
            let reply = get(server.addr, "/").await;
            assert_eq!(reply.status, 200);
            let text = reply.text();
            seen.insert(text.split("instance ").nth(1).unwrap_or("").to_string());
        }
        seen
    });
    assert_eq!(instances.len(), 3, "{instances:?}");
}

#[test]
fn a_module_importing_an_unimplemented_wasmedge_function_fails_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = wat::parse_str(
        r#"(module
            (import "wasi_snapshot_preview1" "epoll_oneoff"
                (func (param i32 i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start")))"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("udp.wasm"), wasm).unwrap();
    std::fs::write(
        dir.path().join("wasmgate.toml"),
        "[app]\nname = \"udp\"\n\n[component.udp]\nsource = \"udp.wasm\"\n\
         executor = \"service\"\nports = [53]\n",
    )
    .unwrap();
    let (code, _, stderr) = support::run_wasmgate(&[
        "up",
        dir.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--no-admin",
        "--no-cache",
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("epoll_oneoff") && stderr.contains("udp"),
        "{stderr}"
    );
}

#[test]
fn an_idle_service_uses_no_cpu() {
    // A socket registered with the reactor before it listens reports hang-up for good; the
    // guest's accept loop then spun at 100% CPU while idle.
    let (server, _) = start_ready("replicas = 2\n", 2);
    runtime().block_on(async {
        assert_eq!(get(server.addr, "/").await.status, 200);
    });
    let before = cpu_ticks(server.child.id());
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(server.child.id()) - before;
    assert!(used < 20, "an idle server used {used} ticks of CPU in 1 s");
}

#[test]
fn shutdown_lets_an_in_flight_service_request_finish_then_exits_0() {
    let (mut server, _) = start_ready("", 1);
    let addr = server.addr;
    let in_flight = std::thread::spawn(move || runtime().block_on(get(addr, "/sleep?1500")));
    // The request has reached the guest (which sleeps 1.5 s) before the signal.
    std::thread::sleep(Duration::from_millis(400));
    let signalled = Instant::now();
    server.terminate();
    let reply = in_flight.join().expect("the in-flight request failed");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "slept 1500 ms\n");
    // Well inside the default 30 s grace: shutdown waits for the request, not the grace.
    let code = server.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "logs:\n{}", server.stderr());
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(5), "exit took {took:?}");
    assert!(
        took >= Duration::from_millis(900),
        "exited after {took:?}, before the request could finish"
    );
}

#[test]
fn a_service_allocating_past_its_memory_limit_traps_and_is_restarted() {
    let (server, _) = start_ready("[component.shop.limits]\nmemory = \"64MiB\"\n", 1);
    runtime().block_on(async {
        let small = get(server.addr, "/alloc?16").await;
        assert_eq!(small.text(), "allocated 16 MiB\n");
        let big = get(server.addr, "/alloc?100").await;
        assert_eq!(big.status, 502, "{}", big.text());
    });
    let line = server.wait_for_log(&["service trapped; restarting"], Duration::from_secs(5));
    assert!(
        line.contains("after reaching limits.memory = 67108864 bytes"),
        "{line}"
    );
    let started = Instant::now();
    runtime().block_on(async {
        loop {
            let reply = get(server.addr, "/").await;
            if reply.status == 200 {
                break;
            }
            assert_eq!(reply.status, 503, "{}", reply.text());
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "not restarted in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

#[test]
fn a_busy_service_does_not_starve_other_routes() {
    let hello = support::hello_wasm();
    // One spinning replica per core: enough to occupy every worker thread of the server's
    // runtime if busy guests did not give their threads back.
    let busy = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let (server, _) = start_ready(
        &format!(
            "replicas = {busy}\n\n[[route]]\npath = \"/hello/...\"\ncomponent = \"hello\"\n\n\
             [component.hello]\nsource = {:?}\n",
            hello.display().to_string()
        ),
        busy,
    );
    runtime().block_on(async {
        // Round robin sends one to each replica.
        let spinners: Vec<_> = (0..busy)
            .map(|_| tokio::spawn(get(server.addr, "/spin?3000")))
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut took = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            let reply = get(server.addr, "/hello/world").await;
            assert_eq!(reply.status, 200, "{}", reply.text());
            took.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let slowest = took.iter().max().copied().unwrap_or_default();
        assert!(
            spinners.iter().all(|s| !s.is_finished()),
            "a spinning request ended before the other route was timed"
        );
        for spinner in spinners {
            let reply = spinner.await.unwrap();
            assert!(reply.text().starts_with("spun 3000 ms"), "{}", reply.text());
        }
        // Each hello answers within a few epoch ticks (measured: at
        // most ~20 ms; 70-470 ms when a busy guest's yield did not let the I/O driver run).
        assert!(
            slowest < Duration::from_millis(250),
            "the slowest request to another route took {slowest:?}; all: {took:?}"
        );
    });
}

#[test]
fn the_service_continues_the_callers_trace_under_wasmgates_span() {
    let (server, _) = start_ready("", 1);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let seen = raw_get(
        server.addr,
        "/headers",
        &format!(
            "traceparent: 00-{trace_id}-00f067aa0ba902b7-01\r\ntracestate: congo=t61rcWkgMzE\r\n"
        ),
    );
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    let header = |name: &str| {
        seen.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_string)
    };
    let traceparent = header("traceparent").unwrap_or_else(|| panic!("{seen}"));
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[1], trace_id, "{traceparent}");
    // The parent is Wasmgate's SERVER span, not the caller's span passed through.
    assert_ne!(parts[2], "00f067aa0ba902b7", "{traceparent}");
    assert_eq!(parts[3], "01");
    assert_eq!(header("tracestate").as_deref(), Some("congo=t61rcWkgMzE"));

    // A tracestate without a traceparent belongs to no trace: the service gets a new trace
    // and no tracestate.
    let seen = raw_get(server.addr, "/headers", "tracestate: congo=t61rcWkgMzE\r\n");
    let traceparent = seen
        .lines()
        .find_map(|l| l.strip_prefix("traceparent: "))
        .unwrap_or_else(|| panic!("{seen}"));
    assert!(!traceparent.contains(trace_id), "{traceparent}");
    assert!(!seen.contains("tracestate:"), "{seen}");
}

#[test]
fn requests_in_flight_show_as_instances_in_use() {
    let (server, _) = start_ready("", 1);
    runtime().block_on(async {
        let addr = server.addr;
        let slow = tokio::spawn(async move { get(addr, "/sleep?2000").await });
        let gauge = |metrics: &str| {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix("wasm_instances_in_use{component=\"shop\"} "))
                .map(str::to_string)
        };
        let started = Instant::now();
        loop {
            let metrics = get(server.admin, "/metrics").await.text();
            if gauge(&metrics).as_deref() == Some("1") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_millis(1800),
                "the in-flight request never showed: {metrics}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(slow.await.unwrap().status, 200);
        let metrics = get(server.admin, "/metrics").await.text();
        assert_eq!(gauge(&metrics).as_deref(), Some("0"), "{metrics}");
    });
}

//! `executor = "service"` with a WASI 0.2 component: a server written with Rust std's
//! `TcpListener` (`examples/service-std-wasip2`, i.e. `wasi:sockets`), run and reverse-proxied by
//! `wasmgate up` under the same port mapping, policy and supervision as the WasmEdge path.
//!
//! All traffic stays on loopback: the test talks to Wasmgate's listener; the guest's `/bind` and
//! `/connect` paths report what the sandbox let it do.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::{built_guest, cpu_ticks, get, hello_wasm, Client, Protocol, Server};

fn service_wasm() -> PathBuf {
    built_guest("examples/service-std-wasip2/target/wasm32-wasip2/release/service-std-wasip2.wasm")
}

/// A manifest routing `/...` to the example component, with `extra` lines in its entry.
fn manifest(extra: &str) -> String {
    format!(
        "[app]\nname = \"p2\"\n\n[[route]]\npath = \"/...\"\ncomponent = \"web\"\n\n\
         [component.web]\nsource = {:?}\nexecutor = \"service\"\nports = [8080]\n{extra}",
        service_wasm().display().to_string()
    )
}

/// The host addresses named by "service ready" log lines so far.
fn ready_addresses(server: &Server) -> Vec<SocketAddr> {
    server
        .stderr()
        .lines()
        .filter(|l| l.contains("service ready"))
        .filter_map(|l| {
            let value: serde_json::Value = serde_json::from_str(l).ok()?;
            value["host_address"].as_str()?.parse().ok()
        })
        .collect()
}

/// Starts the server and waits until `replicas` replicas reported ready; returns their mapped
/// loopback addresses.
fn start_ready(extra: &str, replicas: usize) -> (Server, Vec<SocketAddr>) {
    let server = Server::start(&manifest(extra));
    let started = Instant::now();
    loop {
        let ready = ready_addresses(&server);
        if ready.len() >= replicas {
            return (server, ready);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "service not ready in 60 s; logs:\n{}",
            server.stderr()
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
fn get_and_post_are_served_through_the_gateway_with_keep_alive() {
    let (server, _) = start_ready("", 1);
    runtime().block_on(async {
        let mut client = Client::connect(server.addr, Protocol::Http1).await;
        let hello = client.send("GET", "/", bytes::Bytes::new()).await;
        assert_eq!(hello.status, 200, "{}", hello.text());
        assert!(
            hello.text().contains("WASI 0.2 component"),
            "{}",
            hello.text()
        );

        let body: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
        let started = Instant::now();
        for _ in 0..20 {
            let echoed = client.send("POST", "/echo", body.clone()).await;
            assert_eq!(echoed.status, 200);
            assert!(echoed.body == body, "the echoed 1 MiB body differs");
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "20 echoes of 1 MiB took {:?}",
            started.elapsed()
        );
        let missing = client.send("GET", "/nope", bytes::Bytes::new()).await;
        assert_eq!(missing.status, 404);
    });
    // Each proxied request is an invocation; the guest's stdout is logged with its name.
    let line = server.wait_for_log(&["\"executor\":\"service\""], Duration::from_secs(5));
    assert!(line.contains("\"component\":\"web\""), "{line}");
    let printed = server.wait_for_log(&["listening on 0.0.0.0:8080"], Duration::from_secs(5));
    assert!(printed.contains("\"component\":\"web\""), "{printed}");
    assert!(printed.contains("stdout"), "{printed}");
}

#[test]
fn two_replicas_listen_on_their_own_loopback_ports_and_both_answer() {
    let (server, mapped) = start_ready("replicas = 2\n", 2);
    assert_eq!(mapped.len(), 2, "{mapped:?}");
    assert_ne!(mapped[0], mapped[1]);
    assert!(mapped.iter().all(|a| a.ip().is_loopback()), "{mapped:?}");
    let seen: std::collections::BTreeSet<SocketAddr> = runtime().block_on(async {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..12 {
            let reply = get(server.addr, "/whoami").await;
            assert_eq!(reply.status, 200, "{}", reply.text());
            // `local-address` reports the real (mapped) address, not the guest's 0.0.0.0:8080.
            let address = reply.text().trim().parse().unwrap_or_else(|_| {
                panic!("not an address: {:?}", reply.text());
            });
            seen.insert(address);
        }
        seen
    });
    let expected: std::collections::BTreeSet<SocketAddr> = mapped.into_iter().collect();
    assert_eq!(seen, expected);
}

#[test]
fn binding_an_undeclared_port_fails_with_access_denied_and_is_logged() {
    let (server, _) = start_ready("", 1);
    let reply = runtime().block_on(get(server.addr, "/bind?port=9999"));
    assert_eq!(reply.status, 200);
    assert!(
        reply.text().starts_with("error PermissionDenied"),
        "{}",
        reply.text()
    );
    let line = server.wait_for_log(&["not declared in `ports`", "9999"], Duration::from_secs(5));
    assert!(line.contains("\"component\":\"web\""), "{line}");
    // The declared port is still in use by the listener: a second bind is refused as a real OS
    // would, and nothing else changed.
    let again = runtime().block_on(get(server.addr, "/bind?port=8080"));
    assert!(
        again.text().starts_with("error AddrInUse"),
        "{}",
        again.text()
    );
    assert_eq!(runtime().block_on(get(server.addr, "/")).status, 200);
}

#[test]
fn connections_outside_allowed_outbound_hosts_are_denied_and_logged() {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed = upstream.local_addr().unwrap();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let denied = other.local_addr().unwrap();
    let (server, _) = start_ready(
        &format!(
            "allowed_outbound_hosts = [\"tcp://127.0.0.1:{}\", \"tcp://localhost:{}\"]\n",
            allowed.port(),
            allowed.port()
        ),
        1,
    );
    runtime().block_on(async {
        let ok = get(server.addr, &format!("/connect?addr={allowed}")).await;
        assert_eq!(ok.text(), format!("ok {allowed}\n"));
        // A name the patterns mention is looked up, and its address is judged by that name.
        let path = format!("/connect?addr=localhost:{}", allowed.port());
        let by_name = get(server.addr, &path).await.text();
        assert!(by_name.starts_with("ok "), "{by_name}");

        let refused = get(server.addr, &format!("/connect?addr={denied}")).await;
        assert!(
            refused.text().starts_with("error PermissionDenied"),
            "{}",
            refused.text()
        );
        // A name no pattern mentions is not even looked up.
        let lookup = get(server.addr, "/connect?addr=example.com:80").await;
        assert!(lookup.text().starts_with("error "), "{}", lookup.text());
    });
    server.wait_for_log(
        &["service connect denied", &denied.to_string()],
        Duration::from_secs(5),
    );
    server.wait_for_log(
        &["name lookup denied", "example.com"],
        Duration::from_secs(5),
    );
}

#[test]
fn udp_datagrams_go_only_where_allowed_outbound_hosts_allows() {
    let allowed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    allowed
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let allowed_addr = allowed.local_addr().unwrap();
    let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    other
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let denied_addr = other.local_addr().unwrap();
    let (server, _) = start_ready(
        &format!(
            "allowed_outbound_hosts = [\"udp://127.0.0.1:{}\"]\n",
            allowed_addr.port()
        ),
        1,
    );
    let sent = runtime().block_on(get(server.addr, &format!("/udp?addr={allowed_addr}")));
    assert!(sent.text().starts_with("ok "), "{}", sent.text());
    let mut buffer = [0u8; 16];
    let (n, _) = allowed.recv_from(&mut buffer).expect("no datagram arrived");
    assert_eq!(&buffer[..n], b"ping");

    let refused = runtime().block_on(get(server.addr, &format!("/udp?addr={denied_addr}")));
    assert!(
        refused.text().starts_with("error PermissionDenied"),
        "{}",
        refused.text()
    );
    assert!(
        other.recv_from(&mut buffer).is_err(),
        "a denied datagram arrived"
    );
    server.wait_for_log(
        &["service UDP send denied", &denied_addr.to_string()],
        Duration::from_secs(5),
    );
}

#[test]
fn idle_replicas_use_little_cpu() {
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
fn a_guest_that_exits_is_restarted() {
    let (server, first) = start_ready("", 1);
    let reply = runtime().block_on(get(server.addr, "/exit?code=3"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let exited = server.wait_for_log(&["service exited; restarting"], Duration::from_secs(5));
    // WASI 0.2's `exit` carries only success or failure: any failing code is reported as 1.
    assert!(exited.contains("\"exit_code\":1"), "{exited}");
    let started = Instant::now();
    loop {
        if ready_addresses(&server).len() > first.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not ready again in 10 s; logs:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let again = runtime().block_on(get(server.addr, "/"));
    assert_eq!(again.status, 200, "{}", again.text());
}

#[test]
fn shutdown_lets_an_in_flight_request_finish_then_stops_the_guest() {
    let (mut server, _) = start_ready("", 1);
    let addr = server.addr;
    let in_flight = std::thread::spawn(move || runtime().block_on(get(addr, "/sleep?ms=1500")));
    // The request has reached the guest (which sleeps 1.5 s) before the signal.
    std::thread::sleep(Duration::from_millis(400));
    let signalled = Instant::now();
    server.terminate();
    let reply = in_flight.join().expect("the in-flight request failed");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "slept 1500 ms\n");
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
fn a_component_that_is_not_a_command_fails_at_load_naming_wasi_cli_run() {
    // The hello example is a wasi:http component: it has no `wasi:cli/run` to start.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wasmgate.toml"),
        format!(
            "[app]\nname = \"not-a-command\"\n\n[component.web]\nsource = {:?}\n\
             executor = \"service\"\nports = [8080]\n",
            hello_wasm().display().to_string()
        ),
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
        stderr.contains("wasi:cli/run") && stderr.contains("web"),
        "{stderr}"
    );
}

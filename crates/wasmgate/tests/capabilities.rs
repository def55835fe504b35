//! Capabilities a guest is granted in the manifest, seen from outside: outbound HTTP (allow-list,
//! private-address refusal, timeouts), variables through wasi:config, and wasi:logging.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{fixture_manifest, get, raw_get, Server};

/// A loopback HTTP/1.1 server that answers every request with
/// `upstream {METHOD} {path} host={Host}` and counts the connections it accepted.
struct Upstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Upstream {
    fn start() -> Upstream {
        Upstream::spawn(true)
    }

    /// Accepts connections and reads requests but never answers.
    fn silent() -> Upstream {
        Upstream::spawn(false)
    }

    fn spawn(answer: bool) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(64) {
                let Ok(mut stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
                        match stream.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    if !answer {
                        std::thread::sleep(Duration::from_secs(10));
                        return;
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let request_line = head.lines().next().unwrap_or_default();
                    let mut parts = request_line.split(' ');
                    let method = parts.next().unwrap_or_default();
                    let path = parts.next().unwrap_or_default();
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix(&format!("{name}:"))
                                    .map(|h| h.trim().to_string())
                            })
                            .unwrap_or_default()
                    };
                    let host = header("host");
                    let mut body = format!("upstream {method} {path} host={host}");
                    let traceparent = header("traceparent");
                    if path.contains("trace") {
                        body.push_str(&format!(" traceparent={traceparent}"));
                        body.push_str(&format!(" tracestate=[{}]", header("tracestate")));
                    }
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Upstream { addr, connections }
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.addr.port())
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn fetch_path(url: &str) -> String {
    format!("/fetch-url?url={}", encode(url))
}

fn with_hosts(hosts: &[String]) -> String {
    fixture_manifest(&format!("allowed_outbound_hosts = {hosts:?}\n"))
}

#[tokio::test]
async fn an_allowed_host_is_reached_with_its_host_header() {
    let upstream = Upstream::start();
    let port = upstream.addr.port();
    for pattern in [
        format!("http://127.0.0.1:{port}"),
        "http://127.0.0.1:*".to_string(),
        "*://127.0.0.1:*".to_string(),
    ] {
        let server = Server::start(&with_hosts(std::slice::from_ref(&pattern)));
        let reply = get(
            server.addr,
            &fetch_path(&upstream.url("127.0.0.1", "/hi?x=1")),
        )
        .await;
        assert_eq!(reply.status, 200, "{pattern}: {}", reply.text());
        assert_eq!(
            reply.text(),
            format!("outbound status 200: upstream GET /hi?x=1 host=127.0.0.1:{port}"),
            "{pattern}"
        );
    }
}

#[tokio::test]
async fn hosts_outside_the_list_are_denied_before_any_connection() {
    let upstream = Upstream::start();
    let other_port = upstream.addr.port().wrapping_add(1).max(1);
    let server = Server::start(&with_hosts(&[
        format!("http://127.0.0.1:{other_port}"),
        format!("https://127.0.0.1:{}", upstream.addr.port()),
        "http://*.example.com".to_string(),
    ]));
    let reply = get(server.addr, &fetch_path(&upstream.url("127.0.0.1", "/"))).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(
        reply.text().ends_with("HttpRequestDenied"),
        "{}",
        reply.text()
    );
    assert_eq!(upstream.connections(), 0, "the guest reached the upstream");
    server.wait_for_log(
        &[
            "destination not in allowed_outbound_hosts",
            &format!("http://127.0.0.1:{}", upstream.addr.port()),
        ],
        Duration::from_secs(5),
    );
    assert_eq!(get(server.addr, "/ok").await.status, 200);
}

#[tokio::test]
async fn private_addresses_need_an_explicit_grant() {
    let upstream = Upstream::start();
    let port = upstream.addr.port();
    // A wildcard matches, but a name or address that turns out to be loopback is refused:
    // the guest cannot reach the operator's network by guessing.
    let server = Server::start(&with_hosts(&["http://*:*".to_string()]));
    for host in ["localhost", "127.0.0.1"] {
        let reply = get(server.addr, &fetch_path(&upstream.url(host, "/"))).await;
        assert_eq!(reply.status, 502, "{host}: {}", reply.text());
        assert!(
            reply.text().ends_with("DestinationIpProhibited"),
            "{host}: {}",
            reply.text()
        );
    }
    assert_eq!(upstream.connections(), 0);
    server.wait_for_log(&["non-public address", "loopback"], Duration::from_secs(5));
    drop(server);

    // Naming the destination is an explicit grant.
    let server = Server::start(&with_hosts(&[format!("http://localhost:{port}")]));
    let reply = get(
        server.addr,
        &fetch_path(&upstream.url("localhost", "/named")),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    drop(server);

    // So is the operator's opt-in for local development.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runtime.toml");
    std::fs::write(&config, "[outbound_http]\nallow_private = true\n").unwrap();
    let cache = support::repo_root().join("target/wasmgate-test-cache");
    let server = Server::start_in(
        dir,
        &with_hosts(&["http://*:*".to_string()]),
        &[
            "--runtime-config",
            config.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
    );
    let reply = get(server.addr, &fetch_path(&upstream.url("localhost", "/dev"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        reply.text().contains("upstream GET /dev"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn a_silent_upstream_times_out_for_that_request_only() {
    let upstream = Upstream::silent();
    let server = Server::start(&with_hosts(&["http://127.0.0.1:*".to_string()]));
    let started = Instant::now();
    let path = format!(
        "{}&first_byte_ms=300",
        fetch_path(&upstream.url("127.0.0.1", "/slow"))
    );
    let reply = get(server.addr, &path).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(
        reply.text().ends_with("ConnectionReadTimeout"),
        "{}",
        reply.text()
    );
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(get(server.addr, "/ok").await.status, 200);
}

#[tokio::test]
async fn a_guest_asking_for_a_long_wait_is_held_to_its_timeout() {
    // The guest asks for no first-byte limit (wasmtime would wait 600 s); the component's
    // timeout bounds the request instead.
    let upstream = Upstream::silent();
    let server = Server::start(&fixture_manifest(
        "allowed_outbound_hosts = [\"http://127.0.0.1:*\"]\n[component.fixture.limits]\ntimeout = \"1s\"\n",
    ));
    let started = Instant::now();
    let reply = get(server.addr, &fetch_path(&upstream.url("127.0.0.1", "/"))).await;
    assert!(
        reply.status == 504 || reply.text().ends_with("ConnectionReadTimeout"),
        "{} {}",
        reply.status,
        reply.text()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

const VARIABLES: &str = r#"
[variables]
greeting = { default = "hello" }
api_token = { secret = true }
region = { required = true }

[component.fixture.variables]
message = "{{ greeting }}, world"
token = "{{ api_token }}"
where = "region={{region}}"
"#;

fn variables_manifest() -> String {
    let manifest = fixture_manifest("");
    // [variables] must be a top-level table: put it before the component's table.
    manifest.replacen(
        "[component.fixture]",
        &format!("{VARIABLES}\n[component.fixture]"),
        1,
    )
}

#[tokio::test]
async fn variables_resolve_from_environment_config_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runtime.toml");
    std::fs::write(&config, "[variables]\nregion = \"eu-west\"\n").unwrap();
    let cache = support::repo_root().join("target/wasmgate-test-cache");
    let server = Server::start_with_env(
        dir,
        &variables_manifest(),
        &[
            "--runtime-config",
            config.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        &[("WASMGATE_VAR_API_TOKEN", "s3cr3t-value")],
    );
    for (key, want) in [
        ("message", "hello, world"),
        ("token", "s3cr3t-value"),
        ("where", "region=eu-west"),
    ] {
        let reply = get(server.addr, &format!("/config/{key}")).await;
        assert_eq!((reply.status, reply.text().as_str()), (200, want), "{key}");
    }
    // App variables themselves are not visible, only the component's table.
    assert_eq!(get(server.addr, "/config/greeting").await.status, 404);
    assert_eq!(get(server.addr, "/config/api_token").await.status, 404);
    // The environment wins over the runtime config and the default.
    drop(server);
    let dir = tempfile::tempdir().unwrap();
    let cache = support::repo_root().join("target/wasmgate-test-cache");
    let server = Server::start_with_env(
        dir,
        &variables_manifest(),
        &["--cache-dir", cache.to_str().unwrap()],
        &[
            ("WASMGATE_VAR_API_TOKEN", "t"),
            ("WASMGATE_VAR_REGION", "us"),
            ("WASMGATE_VAR_GREETING", "hi"),
        ],
    );
    assert_eq!(
        get(server.addr, "/config/message").await.text(),
        "hi, world"
    );
    assert_eq!(get(server.addr, "/config/where").await.text(), "region=us");
    let logs = format!("{}{}", server.stdout(), server.stderr());
    assert!(!logs.contains("s3cr3t"), "a secret was printed:\n{logs}");
}

#[test]
fn a_missing_required_variable_stops_startup_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wasmgate.toml"), variables_manifest()).unwrap();
    let output = support::wasmgate()
        .args([
            "up",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--no-admin", "--no-cache"])
        .env("WASMGATE_VAR_API_TOKEN", "t")
        .env_remove("WASMGATE_VAR_REGION")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\"region\" is required") && stderr.contains("WASMGATE_VAR_REGION"),
        "{stderr}"
    );
}

#[tokio::test]
async fn guest_log_records_reach_the_host_log_with_the_invocation() {
    let server = Server::start(&fixture_manifest(""));
    let mut client = support::Client::connect(server.addr, support::Protocol::Http1).await;
    let reply = client
        .send("POST", "/log/warn", "disk almost full\nsecond line")
        .await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "logged 2"));
    let line = server.wait_for_log(&["disk almost full"], Duration::from_secs(5));
    let record: serde_json::Value = serde_json::from_str(
        line.lines()
            .find(|l| l.contains("disk almost full"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["level"], "WARN", "{record}");
    assert_eq!(record["target"], "wasmgate::guest", "{record}");
    assert_eq!(record["component"], "fixture", "{record}");
    assert_eq!(record["context"], "fixture", "{record}");
    assert!(record["invocation"].is_u64(), "{record}");
    assert!(
        record["trace_id"].as_str().is_some_and(|t| t.len() == 32),
        "{record}"
    );
    server.wait_for_log(&["second line"], Duration::from_secs(5));
    // Debug records are below the server's log level here and do not appear.
    let reply = client.send("POST", "/log/debug", "quiet detail").await;
    assert_eq!(reply.status, 200);
    let reply = client.send("POST", "/log/loud", "x").await;
    assert_eq!(reply.status, 400);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!server.stderr().contains("quiet detail"));

    // Host calls are counted per capability in the invocation record and the metrics.
    let reply = get(server.admin, "/api/invocations?limit=10").await;
    let parsed: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let first = parsed["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host_calls_by_capability"][0]["count"] == 2)
        .unwrap_or_else(|| panic!("no record with 2 capability calls: {parsed}"))
        .clone();
    assert_eq!(
        first["host_calls_by_capability"][0]["capability"], "logging",
        "{first}"
    );
    // The records are kept in the invocation's record, for its log view, with their level.
    assert_eq!(first["id"], record["invocation"], "{first}");
    assert_eq!(
        first["output"],
        serde_json::json!([
            {"source": "log", "level": "warn", "text": "disk almost full"},
            {"source": "log", "level": "warn", "text": "second line"},
        ]),
        "{first}"
    );
    // Every host call counts in the total, WASI's included.
    assert!(first["host_calls"].as_u64().unwrap() > 2, "{first}");
    assert!(first["host_call_time_us"].is_u64(), "{first}");
    let metrics = get(server.admin, "/metrics").await.text();
    assert!(
        metrics.contains("wasm_host_calls_total{component=\"fixture\",capability=\"logging\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_trace_continues_through_outbound_requests() {
    let upstream = Upstream::start();
    let server = Server::start(&with_hosts(&["http://127.0.0.1:*".to_string()]));
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let path = fetch_path(&upstream.url("127.0.0.1", "/trace"));
    let response = raw_get(
        server.addr,
        &path,
        &format!(
            "traceparent: 00-{trace_id}-00f067aa0ba902b7-01\r\n\
             tracestate: congo=t61rcwkgmze\r\ntracestate: rojo=00f067aa0ba902b7\r\n"
        ),
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // The caller's tracestate goes on with its trace, its two headers as one list.
    assert!(
        response.contains(" tracestate=[congo=t61rcwkgmze,rojo=00f067aa0ba902b7]"),
        "{response}"
    );
    let sent = response
        .split("traceparent=")
        .nth(1)
        .unwrap_or_else(|| panic!("no traceparent reached the upstream: {response}"))
        .get(..55)
        .unwrap_or_default();
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], trace_id, "the upstream got another trace");
    assert_ne!(
        parts[2], "00f067aa0ba902b7",
        "the caller's span was passed on as is"
    );
    assert_eq!(parts[3], "01");

    // The invocation record carries the trace id too, and the call for its trace view:
    // method, host and port, no path.
    let reply = get(server.admin, "/api/invocations?limit=5").await;
    let parsed: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let record = parsed["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["trace_id"] == trace_id)
        .unwrap_or_else(|| panic!("no record of trace {trace_id}: {parsed}"));
    let call = &record["calls"][0];
    assert_eq!(call["capability"], "outbound_http", "{record}");
    assert_eq!(
        call["operation"],
        format!("GET {}", upstream.addr),
        "{record}"
    );
    assert_eq!(call["failed"], false, "{record}");
    assert!(call["duration_us"].as_u64() > Some(0), "{record}");

    // Without a caller's context, a new trace is started and still propagated; a
    // tracestate without its traceparent belongs to no trace and is dropped.
    let response = raw_get(server.addr, &path, "tracestate: congo=t61rcwkgmze\r\n");
    assert!(response.contains(" tracestate=[]"), "{response}");
    let sent = response.split("traceparent=").nth(1).unwrap();
    assert!(
        is_traceparent(&sent[..55]),
        "not a valid traceparent: {sent}"
    );
    assert!(!sent.contains(trace_id));
}

fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() == 4
        && parts[1].len() == 32
        && parts[2].len() == 16
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test]
async fn an_instance_has_at_most_its_cap_of_outbound_requests_in_flight() {
    // An upstream that holds each request 300 ms and tracks how many it holds at once.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let current = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (current_in, peak_in) = (current.clone(), peak.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            let (current, peak) = (current_in.clone(), peak_in.clone());
            std::thread::spawn(move || {
                let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                std::thread::sleep(Duration::from_millis(300));
                current.fetch_sub(1, Ordering::SeqCst);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            });
        }
    });
    let server = Server::start(&fixture_manifest(
        "allowed_outbound_hosts = [\"http://127.0.0.1:*\"]\n\
         [component.fixture.limits]\nmax_outbound_concurrency = 2\n",
    ));
    let started = Instant::now();
    let reply = get(server.addr, &format!("/fetch-many?port={port}&n=6")).await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "statuses 200 200 200 200 200 200")
    );
    assert_eq!(peak.load(Ordering::SeqCst), 2, "in flight at once");
    // Six requests two at a time, 300 ms each.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

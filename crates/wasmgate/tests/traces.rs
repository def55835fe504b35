//! Traces, seen from a collector: the real binary exports spans over OTLP (HTTP/protobuf and
//! gRPC) to a receiver on a loopback port, configured only by `OTEL_*` variables. A request's
//! SERVER span continues the caller's trace; instantiation, guest execution and host calls are
//! its children; an outbound call's CLIENT span is the parent the downstream server is told.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{fixture_manifest, get, Server};
use wasmgate_testsupport::otlp::{attribute, hex, OtlpReceiver, Received, Transport};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const STATUS_ERROR: i32 = 2;
const WAIT: Duration = Duration::from_secs(15);

/// `OTEL_*` variables exporting to `receiver` with `protocol`, flushing every 50 ms.
fn otel_env(receiver: &OtlpReceiver, protocol: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_string()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_string()),
        ("OTEL_SERVICE_NAME", "edge-api".to_string()),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-team=edge".to_string()),
    ]
}

fn start(manifest: &str, env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let shared = support::repo_root().join("target/wasmgate-test-cache");
    Server::start_with_env(
        tempfile::tempdir().unwrap(),
        manifest,
        &["--cache-dir", shared.to_str().unwrap()],
        &env,
    )
}

/// A loopback HTTP/1.1 server that answers 200 and keeps the `traceparent` of each request.
struct Downstream {
    addr: SocketAddr,
    traceparents: Arc<Mutex<Vec<String>>>,
}

impl Downstream {
    fn start() -> Downstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let traceparents = Arc::new(Mutex::new(Vec::new()));
        let seen = traceparents.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(16) {
                let Ok(mut stream) = stream else { continue };
                let head = read_head(&mut stream);
                if let Some(value) = head.lines().find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("traceparent:")
                        .map(|v| v.trim().to_string())
                }) {
                    seen.lock().unwrap().push(value);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\ndown",
                );
            }
        });
        Downstream { addr, traceparents }
    }
}

fn read_head(stream: &mut std::net::TcpStream) -> String {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// `GET path` over HTTP/1.1 carrying a `traceparent` from a caller and a user agent.
fn get_traced(addr: SocketAddr, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nuser-agent: trace-test/1.0\r\n\
         traceparent: 00-{TRACE_ID}-{CALLER_SPAN}-01\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
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

fn server_span(spans: &[Received]) -> Option<&Received> {
    spans.iter().find(|r| r.span.kind == SERVER)
}

fn attr(received: &Received, key: &str) -> Option<String> {
    attribute(&received.span.attributes, key)
}

fn named<'a>(spans: &'a [Received], name: &str) -> &'a Received {
    spans
        .iter()
        .find(|r| r.span.name == name)
        .unwrap_or_else(|| panic!("no span named {name:?} in {:#?}", names(spans)))
}

fn names(spans: &[Received]) -> Vec<String> {
    spans.iter().map(|r| r.span.name.clone()).collect()
}

/// Serves the fixture with an outbound grant, makes one traced request that calls
/// `downstream`, and checks the whole trace as the receiver got it over `transport`.
fn an_outbound_call_is_traced_end_to_end(protocol: &'static str, transport: Transport) {
    let receiver = OtlpReceiver::start();
    let downstream = Downstream::start();
    let port = downstream.addr.port();
    let manifest = fixture_manifest(&format!(
        "allowed_outbound_hosts = [\"http://127.0.0.1:{port}\"]\n"
    ));
    let server = start(&manifest, &otel_env(&receiver, protocol));
    let url = format!("http://127.0.0.1:{port}/down?token=secret-token");
    let reply = get_traced(server.addr, &format!("/fetch-url?url={}", encode(&url)));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    let spans = receiver.wait_for(WAIT, |spans| {
        server_span(spans).is_some() && spans.iter().any(|r| r.span.name.starts_with("execute"))
    });
    let server_span = server_span(&spans)
        .unwrap_or_else(|| panic!("no SERVER span: {:#?}\n{}", names(&spans), server.stderr()));
    assert_eq!(server_span.transport, transport);
    let span = &server_span.span;
    assert_eq!(span.name, "GET /...");
    assert_eq!(
        hex(&span.trace_id),
        TRACE_ID,
        "the caller's trace continues"
    );
    assert_eq!(
        hex(&span.parent_span_id),
        CALLER_SPAN,
        "the caller's span is the parent"
    );
    assert_ne!(span.status.as_ref().map_or(0, |s| s.code), STATUS_ERROR);
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    for (key, expected) in [
        ("http.request.method", "GET"),
        ("http.route", "/..."),
        ("url.path", "/fetch-url"),
        ("url.query", &format!("url={}", encode(&url))),
        ("url.scheme", "http"),
        ("http.response.status_code", "200"),
        ("server.address", "localhost"),
        ("client.address", "127.0.0.1"),
        ("network.protocol.version", "1.1"),
        ("user_agent.original", "trace-test/1.0"),
        ("wasmgate.outcome", "ok"),
        ("wasmgate.component", "fixture"),
        ("wasmgate.executor", "http"),
    ] {
        assert_eq!(
            attr(server_span, key).as_deref(),
            Some(expected),
            "{key} in {:#?}",
            span.attributes
        );
    }
    for key in [
        "wasmgate.invocation_id",
        "wasmgate.guest_cpu_time_us",
        "wasmgate.host_calls",
        "wasmgate.peak_memory_bytes",
        "wasmgate.cold_start",
        "server.port",
    ] {
        assert!(attr(server_span, key).is_some(), "{key} missing");
    }
    assert_eq!(
        attribute(&server_span.resource, "service.name").as_deref(),
        Some("edge-api")
    );
    assert_eq!(
        server_span
            .headers
            .get("x-team")
            .map(|v| v.to_str().unwrap()),
        Some("edge"),
        "OTEL_EXPORTER_OTLP_HEADERS are sent"
    );

    let instantiate = named(&spans, "instantiate fixture");
    let execute = named(&spans, "execute fixture");
    let client = named(&spans, "GET");
    for child in [instantiate, execute, client] {
        assert_eq!(child.span.trace_id, span.trace_id, "{}", child.span.name);
        assert_eq!(
            child.span.parent_span_id, span.span_id,
            "{} is a child of the SERVER span",
            child.span.name
        );
        assert!(child.span.start_time_unix_nano >= span.start_time_unix_nano);
        assert!(child.span.end_time_unix_nano <= span.end_time_unix_nano);
    }
    assert!(execute.span.start_time_unix_nano >= instantiate.span.end_time_unix_nano);
    assert_eq!(client.span.kind, CLIENT);
    let url_full = attr(client, "url.full").unwrap();
    assert_eq!(url_full, format!("http://127.0.0.1:{port}/down"));
    assert!(!format!("{:?}", client.span).contains("secret-token"));
    assert_eq!(attr(client, "server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        attr(client, "http.response.status_code").as_deref(),
        Some("200")
    );

    let seen = downstream.traceparents.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![format!("00-{TRACE_ID}-{}-01", hex(&client.span.span_id))],
        "the downstream server's parent is the CLIENT span"
    );
}

#[test]
fn an_outbound_call_is_traced_over_otlp_http() {
    an_outbound_call_is_traced_end_to_end("http/protobuf", Transport::HttpProtobuf);
}

#[test]
fn an_outbound_call_is_traced_over_otlp_grpc() {
    an_outbound_call_is_traced_end_to_end("grpc", Transport::Grpc);
}

#[tokio::test]
async fn a_trapping_request_has_an_error_server_span() {
    let receiver = OtlpReceiver::start();
    let server = start(&fixture_manifest(""), &otel_env(&receiver, "http/protobuf"));
    let reply = get(server.addr, "/trap").await;
    assert_eq!(reply.status, 500, "{}", reply.text());
    let spans = receiver.wait_for(WAIT, |spans| {
        server_span(spans).is_some() && spans.iter().any(|r| r.span.name.starts_with("execute"))
    });
    let server_span = server_span(&spans).expect("a SERVER span");
    let status = server_span.span.status.clone().unwrap_or_default();
    assert_eq!(status.code, STATUS_ERROR, "{:#?}", server_span.span);
    assert_eq!(
        attr(server_span, "wasmgate.outcome").as_deref(),
        Some("trap")
    );
    assert_eq!(attr(server_span, "error.type").as_deref(), Some("trap"));
    assert!(server_span
        .span
        .events
        .iter()
        .any(|e| e.name == "exception"));
    let execute = named(&spans, "execute fixture");
    assert_eq!(
        execute.span.status.as_ref().map(|s| s.code),
        Some(STATUS_ERROR)
    );
}

#[tokio::test]
async fn key_value_calls_are_client_spans_without_keys_or_values() {
    let receiver = OtlpReceiver::start();
    let server = start(
        &support::kv_guest_manifest(),
        &otel_env(&receiver, "http/protobuf"),
    );
    let mut client = support::Client::connect(server.addr, support::Protocol::Http1).await;
    let reply = client
        .send("PUT", "/kv/default/secret-key", "secret-value")
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text());

    let spans = receiver.wait_for(WAIT, |spans| {
        spans
            .iter()
            .any(|r| attr(r, "db.operation.name").as_deref() == Some("set"))
    });
    let server_span = server_span(&spans).expect("a SERVER span");
    let set = spans
        .iter()
        .find(|r| attr(r, "db.operation.name").as_deref() == Some("set"))
        .unwrap_or_else(|| panic!("no key-value set span in {:#?}", names(&spans)));
    assert_eq!(set.span.kind, CLIENT);
    assert_eq!(set.span.name, "set default");
    assert_eq!(set.span.parent_span_id, server_span.span.span_id);
    assert_eq!(attr(set, "db.namespace").as_deref(), Some("default"));
    assert_eq!(attr(set, "db.system.name").as_deref(), Some("sqlite"));
    for received in &spans {
        let text = format!("{:?}", received.span);
        assert!(!text.contains("secret-value"), "{text}");
        if received.span.kind == CLIENT {
            assert!(!text.contains("secret-key"), "{text}");
        }
    }
    // The invocation record keeps the same calls for the dashboard's trace view.
    let record = last_record(server.admin).await;
    let calls = record["calls"]
        .as_array()
        .unwrap_or_else(|| panic!("{record}"));
    let operations: Vec<&str> = calls
        .iter()
        .filter_map(|c| c["operation"].as_str())
        .collect();
    assert_eq!(operations, ["open default", "set default"], "{record}");
    for call in calls {
        assert_eq!(call["capability"], "key_value", "{call}");
        assert_eq!(call["failed"], false, "{call}");
        let end = call["start_us"].as_u64().unwrap() + call["duration_us"].as_u64().unwrap();
        assert!(
            end <= record["wall_time_us"].as_u64().unwrap(),
            "{call} in {record}"
        );
    }
    assert!(!record.to_string().contains("secret-"), "{record}");
}

/// The newest invocation record.
async fn last_record(admin: std::net::SocketAddr) -> serde_json::Value {
    let reply = support::get(admin, "/api/invocations?limit=1").await;
    let parsed: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    parsed["invocations"][0].clone()
}

#[tokio::test]
async fn sql_statements_are_client_spans_with_the_operation_only() {
    let receiver = OtlpReceiver::start();
    let sql_guest = support::built_guest(
        "tests/fixtures/sql-guest/target/wasm32-wasip2/release/sql_guest.wasm",
    );
    let manifest = format!(
        "[app]\nname = \"sql\"\n\n[[route]]\npath = \"/...\"\ncomponent = \"sql\"\n\n\
         [component.sql]\nsource = {:?}\nsql_databases = [\"default\"]\n",
        sql_guest.display().to_string()
    );
    let server = start(&manifest, &otel_env(&receiver, "http/protobuf"));
    let mut client = support::Client::connect(server.addr, support::Protocol::Http1).await;
    for (action, statement, params) in [
        ("execute", "CREATE TABLE notes (body TEXT)", "[]"),
        (
            "execute",
            "INSERT INTO notes (body) VALUES ('secret-literal'), (?)",
            "[\"secret-param\"]",
        ),
    ] {
        let body = format!("{{\"sql\": {statement:?}, \"params\": {params}}}");
        let reply = client
            .send("POST", &format!("/sql/default/{action}"), body)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }

    let is_insert = |r: &Received| attr(r, "db.operation.name").as_deref() == Some("INSERT");
    let spans = receiver.wait_for(WAIT, |spans| spans.iter().any(is_insert));
    let insert = spans
        .iter()
        .find(|r| is_insert(r))
        .unwrap_or_else(|| panic!("no INSERT span in {:#?}", names(&spans)));
    assert_eq!(insert.span.kind, CLIENT);
    assert_eq!(insert.span.name, "INSERT default");
    assert_eq!(attr(insert, "db.system.name").as_deref(), Some("sqlite"));
    assert_eq!(attr(insert, "db.namespace").as_deref(), Some("default"));
    assert!(spans
        .iter()
        .any(|r| attr(r, "db.operation.name").as_deref() == Some("CREATE")));
    for received in &spans {
        let text = format!("{:?}", received.span);
        assert!(!text.contains("secret-"), "{text}");
    }
    let record = last_record(server.admin).await;
    let operations: Vec<&str> = record["calls"]
        .as_array()
        .unwrap_or_else(|| panic!("{record}"))
        .iter()
        .filter_map(|c| c["operation"].as_str())
        .collect();
    assert_eq!(operations, ["open default", "INSERT default"], "{record}");
    assert!(!record.to_string().contains("secret-"), "{record}");
}

#[tokio::test]
async fn a_rate_limited_request_still_has_a_server_span() {
    let receiver = OtlpReceiver::start();
    let manifest = format!(
        "[app]\nname = \"test\"\n\n[[route]]\npath = \"/...\"\ncomponent = \"fixture\"\n\
         rate_limit = {{ requests = 1, per = \"60s\", burst = 1 }}\n\n\
         [component.fixture]\nsource = {:?}\n",
        support::fixture_wasm().display().to_string()
    );
    let server = start(&manifest, &otel_env(&receiver, "http/protobuf"));
    assert_eq!(get(server.addr, "/ok").await.status, 200);
    let limited = get(server.addr, "/ok").await;
    assert_eq!(limited.status, 429, "{}", limited.text());
    let spans = receiver.wait_for(WAIT, |spans| {
        spans
            .iter()
            .any(|r| attr(r, "wasmgate.outcome").as_deref() == Some("rate_limited"))
    });
    let refused = spans
        .iter()
        .find(|r| attr(r, "wasmgate.outcome").as_deref() == Some("rate_limited"))
        .unwrap_or_else(|| panic!("no rate_limited SERVER span in {:#?}", names(&spans)));
    assert_eq!(refused.span.kind, SERVER);
    assert_eq!(refused.span.name, "GET /...");
    assert_eq!(
        attr(refused, "http.response.status_code").as_deref(),
        Some("429")
    );
    // Refusing on purpose is not a server error.
    assert_ne!(
        refused.span.status.as_ref().map_or(0, |s| s.code),
        STATUS_ERROR
    );
}

#[tokio::test]
async fn turned_off_nothing_is_sent_and_requests_are_served() {
    let receiver = OtlpReceiver::start();
    for off in [
        ("OTEL_SDK_DISABLED", "true"),
        ("OTEL_TRACES_EXPORTER", "none"),
    ] {
        let mut env = otel_env(&receiver, "http/protobuf");
        env.push((off.0, off.1.to_string()));
        let server = start(&fixture_manifest(""), &env);
        for _ in 0..3 {
            assert_eq!(get(server.addr, "/ok").await.status, 200);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(receiver.exports(), 0, "{off:?} must turn export off");
    }
    let server = start(&fixture_manifest(""), &[]);
    assert_eq!(get(server.addr, "/ok").await.status, 200);
    let metrics = get(server.admin, "/metrics").await.text();
    assert!(
        metrics.contains("wasmgate_spans_exported_total 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_lagging_collector_costs_dropped_spans_not_requests() {
    // A collector that accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().take(8) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    let env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "10".to_string()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "2".to_string()),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1".to_string()),
    ];
    let server = start(&fixture_manifest(""), &env);
    let mut client = support::Client::connect(server.addr, support::Protocol::Http1).await;
    for _ in 0..20 {
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            client.send("GET", "/ok", bytes::Bytes::new()),
        )
        .await
        .expect("requests are not held up by the exporter");
        assert_eq!(reply.status, 200);
    }
    let metrics = get(server.admin, "/metrics").await.text();
    let dropped: f64 = metrics
        .lines()
        .find(|l| l.starts_with("wasmgate_spans_dropped_total{reason=\"queue_full\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no queue_full counter in\n{metrics}"));
    assert!(dropped > 0.0, "{metrics}");
}

#[tokio::test]
async fn spans_still_queued_are_sent_at_graceful_shutdown() {
    let receiver = OtlpReceiver::start();
    let mut env = otel_env(&receiver, "http/protobuf");
    // Never due on its own within the test: only the shutdown flush can send it.
    env.retain(|(k, _)| *k != "OTEL_BSP_SCHEDULE_DELAY");
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "600000".to_string()));
    let mut server = start(&fixture_manifest(""), &env);
    assert_eq!(get(server.addr, "/ok").await.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.exports(), 0, "nothing is due before shutdown");
    server.terminate();
    assert_eq!(server.wait_exit(Duration::from_secs(20)), Some(0));
    let spans = receiver.wait_for(Duration::from_secs(2), |s| server_span(s).is_some());
    let server_span = server_span(&spans).expect("the SERVER span was flushed at shutdown");
    assert_eq!(attr(server_span, "url.path").as_deref(), Some("/ok"));
}

#[tokio::test]
async fn a_wagi_request_has_instantiate_and_execute_children() {
    let receiver = OtlpReceiver::start();
    let manifest = format!(
        "[app]\nname = \"cgi\"\n\n[[route]]\npath = \"/cgi/...\"\ncomponent = \"cgi\"\n\n\
         [component.cgi]\nsource = {:?}\nexecutor = \"wagi\"\n",
        support::wagi_fixture_wasm().display().to_string()
    );
    let server = start(&manifest, &otel_env(&receiver, "http/protobuf"));
    let reply = get_traced(server.addr, "/cgi/env");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let spans = receiver.wait_for(WAIT, |spans| {
        server_span(spans).is_some() && spans.iter().any(|r| r.span.name == "execute cgi")
    });
    let server = server_span(&spans).expect("a SERVER span");
    assert_eq!(hex(&server.span.trace_id), TRACE_ID);
    for name in ["instantiate cgi", "execute cgi"] {
        let child = named(&spans, name);
        assert_eq!(child.span.parent_span_id, server.span.span_id, "{name}");
        assert_eq!(child.span.trace_id, server.span.trace_id, "{name}");
        assert!(
            child.span.start_time_unix_nano >= server.span.start_time_unix_nano
                && child.span.end_time_unix_nano <= server.span.end_time_unix_nano,
            "{name} outside its parent"
        );
        assert_ne!(
            child.span.status.as_ref().map(|s| s.code),
            Some(STATUS_ERROR),
            "{name}"
        );
    }
    let instantiate = named(&spans, "instantiate cgi");
    let execute = named(&spans, "execute cgi");
    assert!(instantiate.span.end_time_unix_nano <= execute.span.start_time_unix_nano);
}

#[tokio::test]
async fn a_ratio_sampler_exports_only_what_the_caller_or_the_ratio_chose() {
    let receiver = OtlpReceiver::start();
    let mut env = otel_env(&receiver, "http/protobuf");
    env.push((
        "OTEL_TRACES_SAMPLER",
        "parentbased_traceidratio".to_string(),
    ));
    env.push(("OTEL_TRACES_SAMPLER_ARG", "0".to_string()));
    let downstream = Downstream::start();
    let manifest = fixture_manifest(&format!(
        "allowed_outbound_hosts = [\"http://127.0.0.1:{}\"]\n",
        downstream.addr.port()
    ));
    let server = start(&manifest, &env);
    // New traces: a ratio of 0 samples none, and says so downstream.
    let fetch = format!("/fetch/{}", downstream.addr.port());
    for _ in 0..5 {
        assert_eq!(get(server.addr, &fetch).await.status, 200);
    }
    // A caller that sampled its trace: parent-based, so it is exported.
    let reply = get_traced(server.addr, "/ok");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let spans = receiver.wait_for(WAIT, |spans| server_span(spans).is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spans = if receiver.spans().len() > spans.len() {
        receiver.spans()
    } else {
        spans
    };
    let traces: std::collections::HashSet<String> =
        spans.iter().map(|r| hex(&r.span.trace_id)).collect();
    assert_eq!(traces.len(), 1, "{:#?}", names(&spans));
    assert!(traces.contains(TRACE_ID));
    let flags: Vec<String> = downstream.traceparents.lock().unwrap().clone();
    assert_eq!(flags.len(), 5, "{flags:?}");
    assert!(flags.iter().all(|t| t.ends_with("-00")), "{flags:?}");
}

/// A TLS server config for a collector at `localhost` signed by `ca`, that requires a client
/// certificate signed by `ca` and speaks `h2` and `http/1.1`.
fn collector_tls(
    ca: &support::certs::Ca,
    leaf: &support::certs::Cert,
) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&ca.cert).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_file(&leaf.cert).unwrap()],
            PrivateKeyDer::from_pem_file(&leaf.key).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

#[tokio::test]
async fn spans_go_to_a_collector_with_a_private_ca_and_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = support::certs::Ca::new(dir.path(), "collectors-ca");
    let collector = ca.server(dir.path(), "collector", &["DNS:localhost"]);
    let client = ca.client(dir.path(), "wasmgate", "wasmgate");
    let receiver = OtlpReceiver::start_tls(collector_tls(&ca, &collector));
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    for protocol in ["grpc", "http/protobuf"] {
        let mut env = otel_env(&receiver, protocol);
        env.push(("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&ca.cert)));
        env.push(("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", path(&client.cert)));
        env.push(("OTEL_EXPORTER_OTLP_CLIENT_KEY", path(&client.key)));
        let before = receiver.exports();
        let server = start(&fixture_manifest(""), &env);
        assert_eq!(get(server.addr, "/ok").await.status, 200);
        let spans = receiver.wait_for(WAIT, |_| receiver.exports() > before);
        assert!(receiver.exports() > before, "{protocol}: nothing exported");
        assert!(
            server_span(&spans).is_some(),
            "{protocol}: {:#?}",
            names(&spans)
        );
    }

    // Without the CA file the collector's certificate is not trusted (public roots only):
    // the spans are counted as failed exports and requests are served all the same.
    let before = receiver.exports();
    let server = start(&fixture_manifest(""), &otel_env(&receiver, "http/protobuf"));
    for _ in 0..3 {
        assert_eq!(get(server.addr, "/ok").await.status, 200);
    }
    let started = std::time::Instant::now();
    let dropped = loop {
        let metrics = get(server.admin, "/metrics").await.text();
        let line = metrics
            .lines()
            .find(|l| l.starts_with("wasmgate_spans_dropped_total{reason=\"export_failed\"}"))
            .map(str::to_string);
        // Three requests, each a SERVER span with its instantiate and execute children.
        if let Some(line) = line.filter(|l| l.ends_with(" 9")) {
            break line;
        }
        assert!(
            started.elapsed() < WAIT,
            "not 9 spans counted as failed:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(dropped.ends_with(" 9"), "{dropped}");
    assert_eq!(receiver.exports(), before);
    assert!(
        server.stderr().contains("OTLP span export failed")
            && server.stderr().contains("certificate"),
        "the log says why: {}",
        server.stderr()
    );

    // A client certificate without its key stops startup, naming the variable.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wasmgate.toml"), fixture_manifest("")).unwrap();
    let mut child = support::wasmgate()
        .arg("up")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", path(&client.cert))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > WAIT {
            let _ = child.kill();
            panic!("wasmgate kept running with an unusable OTLP client certificate");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE") && stderr.contains("CLIENT_KEY"),
        "{stderr}"
    );
}

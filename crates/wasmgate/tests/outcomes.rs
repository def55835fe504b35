//! Every outcome kind, produced by a real request to the real binary, and found in the three
//! places an operator looks: the invocation record (admin API), the metrics, and the access
//! log line. One server serves every route so the counts below are exact.

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::{
    fixture_wasm, get, invocations, repo_root, wagi_fixture_wasm, Client, Protocol, Server,
};

/// Routes, each set up to produce some outcomes (the fixture answers on the full path):
/// - `/...`: `ok`, `trap`, `timeout`, `memory_limit`, `host_call_limit`, `no_response`;
/// - `/big/...` on a component with no host-call cap and a long time limit, so the client
///   leaving is what ends it: `client_gone`;
/// - `/loop` on a component with a fuel budget: `fuel_limit`;
/// - `/sleep/...` admitting one request at a time, none waiting: `overloaded`;
/// - `/echo` taking 1 KiB bodies: `rejected`;
/// - `/status/...` at one request a minute: `rate_limited`;
/// - `/headers` behind an API key: `denied`;
/// - `/file/...` on a component whose mounted directory is removed: `instantiate_failed`;
/// - `/cgi/...`, a WAGI program: `bad_output`.
fn manifest() -> String {
    let fixture = fixture_wasm().display().to_string();
    let wagi = wagi_fixture_wasm().display().to_string();
    format!(
        r#"[app]
name = "outcomes"

[[route]]
path = "/..."
component = "fixture"

[[route]]
path = "/loop"
component = "fueled"

[[route]]
path = "/sleep/..."
component = "fixture"
max_concurrency = 1
queue = 0

[[route]]
path = "/echo"
component = "fixture"
max_request_body = "1KiB"

[[route]]
path = "/status/..."
component = "fixture"
rate_limit = {{ requests = 1, per = "60s", burst = 1 }}

[[route]]
path = "/headers"
component = "fixture"
auth = {{ api_key = "callers" }}

[[route]]
path = "/big/..."
component = "streamer"

[[route]]
path = "/file/..."
component = "mounted"

[[route]]
path = "/cgi/..."
component = "cgi"

[component.fixture]
source = {fixture:?}
[component.fixture.limits]
memory = "32MiB"
timeout = "1s"
max_host_calls = 200

[component.fueled]
source = {fixture:?}
[component.fueled.limits]
timeout = "10s"
fuel = 50_000_000

[component.streamer]
source = {fixture:?}
[component.streamer.limits]
timeout = "30s"

[component.mounted]
source = {fixture:?}
files = [{{ source = "data", destination = "/data" }}]

[component.cgi]
source = {wagi:?}
executor = "wagi"
"#
    )
}

const RUNTIME_CONFIG: &str = r#"
[auth.api_key.callers]
keys.someone = { sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8" }
"#;

/// The access log's lines (target `wasmgate::invocation`) with `outcome`, waiting (bounded)
/// until `want` are there. Other log lines may carry an `outcome` field too (the executors'
/// own warnings); only the access lines count here.
fn access_lines(server: &Server, outcome: &str, want: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let lines: Vec<Value> = server
            .stderr()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["target"] == "wasmgate::invocation" && line["outcome"] == outcome)
            .collect();
        if lines.len() >= want || started.elapsed() > Duration::from_secs(10) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The manifest's route for a request path.
fn route_of(path: &str) -> &'static str {
    let exact = ["/loop", "/echo", "/headers"];
    let prefixes = [
        "/sleep/...",
        "/status/...",
        "/big/...",
        "/file/...",
        "/cgi/...",
    ];
    exact
        .into_iter()
        .find(|route| path == *route)
        .or_else(|| {
            prefixes
                .into_iter()
                .find(|route| path.starts_with(route.trim_end_matches("...")))
        })
        .unwrap_or("/...")
}

/// (outcome, component, executor, status the client got, path) of every request sent.
#[derive(Default)]
struct Expected(Vec<(&'static str, &'static str, &'static str, u16, &'static str)>);

impl Expected {
    fn add(
        &mut self,
        outcome: &'static str,
        component: &'static str,
        executor: &'static str,
        status: u16,
        path: &'static str,
    ) {
        self.0.push((outcome, component, executor, status, path));
    }
}

#[tokio::test]
async fn every_outcome_kind_is_in_the_record_the_metrics_and_the_access_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/hello.txt"), "mounted").unwrap();
    let config = dir.path().join("runtime.toml");
    std::fs::write(&config, RUNTIME_CONFIG).unwrap();
    let cache = repo_root().join("target/wasmgate-test-cache");
    let server = Server::start_in(
        dir,
        &manifest(),
        &[
            "--runtime-config",
            config.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
    );
    let addr = server.addr;
    let mut client = Client::connect(addr, Protocol::Http1).await;
    let mut expected = Expected::default();

    for (outcome, component, executor, status, method, path, body) in [
        (
            "ok",
            "mounted",
            "http",
            200,
            "GET",
            "/file/data/hello.txt",
            0,
        ),
        ("ok", "fixture", "http", 200, "GET", "/ok", 0),
        ("trap", "fixture", "http", 500, "GET", "/trap", 0),
        // Past the 1 s limit (`/loop` belongs to the fuelled component).
        ("timeout", "fixture", "http", 504, "GET", "/sleep/3000", 0),
        ("memory_limit", "fixture", "http", 500, "GET", "/hog", 0),
        (
            "host_call_limit",
            "fixture",
            "http",
            500,
            "GET",
            "/flood/16",
            0,
        ),
        (
            "no_response",
            "fixture",
            "http",
            500,
            "GET",
            "/no-response",
            0,
        ),
        ("fuel_limit", "fueled", "http", 500, "GET", "/loop", 0),
        ("rejected", "fixture", "none", 413, "POST", "/echo", 4096),
        ("ok", "fixture", "http", 201, "GET", "/status/201", 0),
        (
            "rate_limited",
            "fixture",
            "none",
            429,
            "GET",
            "/status/202",
            0,
        ),
        ("denied", "fixture", "http", 401, "GET", "/headers", 0),
        (
            "bad_output",
            "cgi",
            "wagi",
            502,
            "GET",
            "/cgi/bad-status",
            0,
        ),
        // A script that exits non-zero without writing a response.
        (
            "bad_output",
            "cgi",
            "wagi",
            502,
            "GET",
            "/cgi/exit-nonzero",
            0,
        ),
    ] {
        // A fresh connection after a refusal that may close it.
        if matches!(outcome, "rejected") {
            client = Client::connect(addr, Protocol::Http1).await;
        }
        let reply = client.send(method, path, vec![b'x'; body]).await;
        assert_eq!(reply.status, status, "{path} ({outcome}): {}", reply.text());
        expected.add(outcome, component, executor, status, path);
        if matches!(outcome, "rejected") {
            client = Client::connect(addr, Protocol::Http1).await;
        }
    }

    // One request holds `/sleep/...`'s only slot; the next one is refused at once.
    let holder = tokio::spawn(async move { get(addr, "/sleep/900").await.status });
    // The guest says it is going to sleep once it holds the slot.
    let started = Instant::now();
    while !server.stderr().contains("fixture: sleeping 900 ms") {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the holder never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(get(addr, "/sleep/10").await.status, 503);
    expected.add("overloaded", "fixture", "none", 503, "/sleep/10");
    assert_eq!(holder.await.unwrap(), 200);
    expected.add("ok", "fixture", "http", 200, "/sleep/900");

    // The mounted directory disappears under the running server: the next instance cannot
    // be made, and that request alone fails.
    std::fs::remove_dir_all(server.dir.path().join("data")).unwrap();
    let reply = get(addr, "/file/data/hello.txt").await;
    assert_eq!(reply.status, 500, "{}", reply.text());
    expected.add(
        "instantiate_failed",
        "mounted",
        "http",
        500,
        "/file/data/hello.txt",
    );

    support::leave_mid_body(addr).await;
    expected.add("client_gone", "streamer", "http", 200, "/big/50000000");

    // The server kept serving through all of it.
    assert_eq!(get(addr, "/ok").await.status, 200);
    expected.add("ok", "fixture", "http", 200, "/ok");
    let expected = expected.0;

    let mut outcomes: Vec<&str> = expected.iter().map(|e| e.0).collect();
    outcomes.sort();
    outcomes.dedup();
    let every_kind = [
        "bad_output",
        "client_gone",
        "denied",
        "fuel_limit",
        "host_call_limit",
        "instantiate_failed",
        "memory_limit",
        "no_response",
        "ok",
        "overloaded",
        "rate_limited",
        "rejected",
        "timeout",
        "trap",
    ];
    assert_eq!(outcomes, every_kind);

    for outcome in outcomes {
        let cases: Vec<_> = expected.iter().filter(|e| e.0 == outcome).collect();
        let found = invocations(server.admin, &format!("outcome={outcome}"), cases.len()).await;
        if found.len() != cases.len() {
            let recent = invocations(server.admin, "limit=5", 0).await;
            panic!(
                "{outcome}: {} records of {}; the last ones: {recent:#?}",
                found.len(),
                cases.len()
            );
        }
        // Read after the records are in: a record is counted when it is published, and a
        // client_gone one is published only once its guest has stopped writing.
        let metrics = get(server.admin, "/metrics").await.text();
        let lines = access_lines(&server, outcome, cases.len());
        assert_eq!(
            lines.len(),
            cases.len(),
            "{outcome}: access lines {lines:#?}"
        );
        // Each request's own record: same component, route and status, used once.
        let mut unmatched = found.clone();
        for &&(_, component, executor, status, path) in &cases {
            let route = route_of(path);
            let at = unmatched
                .iter()
                .position(|r| {
                    r["component"] == component && r["status"] == status && r["route"] == route
                })
                .unwrap_or_else(|| panic!("{outcome} {path}: no record in {found:#?}"));
            let record = unmatched.remove(at);
            assert_eq!(record["executor"], executor, "{outcome} {path}: {record}");
            assert_eq!(record["app"], "outcomes", "{record}");
            if outcome != "ok" && outcome != "client_gone" {
                assert!(
                    record["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{outcome} {path}: a failure says why: {record}"
                );
            }
            let line = lines
                .iter()
                .find(|l| l["invocation"] == record["id"])
                .unwrap_or_else(|| panic!("{outcome} {path}: no access line for {record}"));
            assert_eq!(line["status"], status, "{line}");
            assert_eq!(line["route"], route, "{line}");
            assert_eq!(line["component"], component, "{line}");
            assert_eq!(line["executor"], executor, "{line}");
            assert_eq!(line["app"], "outcomes", "{line}");
            assert_eq!(line["trace_id"], record["trace_id"], "{line}");
            assert_eq!(line["error"], record["error"], "{line}");
        }
        for component in ["fixture", "fueled", "streamer", "mounted", "cgi"] {
            let count = cases.iter().filter(|e| e.1 == component).count();
            let series = format!(
                "wasm_invocations_total{{component=\"{component}\",outcome=\"{outcome}\"}}"
            );
            let value = metrics
                .lines()
                .find_map(|l| l.strip_prefix(&series))
                .map(|v| v.trim().parse::<f64>().unwrap());
            match count {
                0 => assert!(value.is_none_or(|v| v == 0.0), "{series} {value:?}"),
                n => assert_eq!(value, Some(n as f64), "{series} in\n{metrics}"),
            }
        }
    }
}

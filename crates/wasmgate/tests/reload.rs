//! Hot reload: a new version is loaded beside the running one and switched to atomically; a
//! bad one is refused and the running one keeps serving; requests in flight finish on the
//! version they started on.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{fixture_wasm, get, Client, Protocol, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The fixture at `/...` (or under `prefix`), telling its version through `/env/VERSION`.
fn versioned_manifest(prefix: &str, version: &str) -> String {
    format!(
        "[app]\nname = \"reloading\"\n\n[[route]]\npath = \"{prefix}/...\"\ncomponent = \"fixture\"\n\n\
         [component.fixture]\nsource = {:?}\nenvironment = {{ VERSION = \"{version}\" }}\n",
        fixture_wasm().display().to_string()
    )
}

fn write_manifest(server: &Server, text: &str) {
    std::fs::write(server.dir.path().join("wasmgate.toml"), text).unwrap();
}

async fn post_reload(admin: SocketAddr) -> support::Reply {
    Client::connect(admin, Protocol::Http1)
        .await
        .send("POST", "/api/reload", "")
        .await
}

/// Polls `path` until a reply satisfies `done`, for at most `limit`.
async fn eventually(
    addr: SocketAddr,
    path: &str,
    limit: Duration,
    done: impl Fn(&support::Reply) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done(&get(addr, path).await) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// [`eventually`] the body is `want` (with status 200).
async fn eventually_serves(addr: SocketAddr, path: &str, want: &str, limit: Duration) -> bool {
    eventually(addr, path, limit, |r| r.status == 200 && r.text() == want).await
}

fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn metrics(admin: SocketAddr) -> String {
    get(admin, "/metrics").await.text()
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_switches_to_the_new_version() {
    let server = Server::start(&versioned_manifest("", "one"));
    assert_eq!(get(server.addr, "/env/VERSION").await.text(), "one");
    write_manifest(&server, &versioned_manifest("", "two"));
    server.hangup();
    assert!(
        eventually_serves(server.addr, "/env/VERSION", "two", Duration::from_secs(30)).await,
        "stderr:\n{}",
        server.stderr()
    );
    let text = metrics(server.admin).await;
    assert_eq!(
        metric(&text, "wasmgate_reloads_total{result=\"ok\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "wasmgate_app_generation"),
        Some(2.0),
        "{text}"
    );
    server.wait_for_log(&["reloaded", "SIGHUP"], Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_reload_answers_with_the_new_routes() {
    let server = Server::start(&versioned_manifest("", "one"));
    write_manifest(&server, &versioned_manifest("/env", "two"));
    let reply = post_reload(server.admin).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let report: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(report["generation"], 2, "{report}");
    assert_eq!(report["routes"][0]["route"], "/env/...", "{report}");
    assert_eq!(report["components"][0]["name"], "fixture", "{report}");
    // The switch is done when the answer comes: no polling.
    assert_eq!(get(server.addr, "/env/VERSION").await.text(), "two");
    assert_eq!(get(server.addr, "/ok").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_manifest_is_refused_with_its_line_and_the_old_version_keeps_serving() {
    let server = Server::start(&versioned_manifest("", "one"));
    let broken = versioned_manifest("", "two").replace("component = \"fixture\"", "component = 7");
    write_manifest(&server, &broken);
    let reply = post_reload(server.admin).await;
    assert_eq!(reply.status, 422, "{}", reply.text());
    let error: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let message = error["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("wasmgate.toml:6") && message.contains("component"),
        "the error must name the file, line and field: {message}"
    );
    assert_eq!(get(server.addr, "/env/VERSION").await.text(), "one");
    let text = metrics(server.admin).await;
    assert_eq!(
        metric(&text, "wasmgate_reloads_total{result=\"failed\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "wasmgate_app_generation"),
        Some(1.0),
        "{text}"
    );
    server.wait_for_log(
        &["reload refused", "wasmgate.toml:6"],
        Duration::from_secs(5),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_module_is_refused_naming_the_component() {
    let server = Server::start(&versioned_manifest("", "one"));
    let bad = server.dir.path().join("bad.wasm");
    // A Wasm header followed by a section whose size runs past the end of the file.
    std::fs::write(&bad, b"\0asm\x01\0\0\0\x01\xff\x01\0").unwrap();
    let manifest = versioned_manifest("", "two").replace(
        &format!("{:?}", fixture_wasm().display().to_string()),
        &format!("{:?}", bad.display().to_string()),
    );
    write_manifest(&server, &manifest);
    let reply = post_reload(server.admin).await;
    assert_eq!(reply.status, 422, "{}", reply.text());
    let text = reply.text();
    assert!(
        text.contains("fixture") && text.contains("bad.wasm"),
        "{text}"
    );
    assert_eq!(get(server.addr, "/env/VERSION").await.text(), "one");
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_in_flight_finish_on_the_version_they_started_on() {
    let server = Server::start(&versioned_manifest("", "one"));
    let addr = server.addr;
    let slow = tokio::spawn(async move { get(addr, "/sleep/1500").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The new version no longer has the route the slow request came in on.
    write_manifest(&server, &versioned_manifest("/env", "two"));
    let reply = post_reload(server.admin).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        get(addr, "/sleep/1").await.status,
        404,
        "new requests see the new version"
    );
    let slow = slow.await.unwrap();
    assert_eq!(slow.status, 200);
    assert_eq!(slow.text(), "slept");
}

/// [`versioned_manifest`] with `route_keys` (load limits) on its route.
fn limited_manifest(version: &str, route_keys: &str) -> String {
    let manifest = versioned_manifest("", version);
    let route = "component = \"fixture\"\n";
    assert_eq!(manifest.matches(route).count(), 1);
    manifest.replace(route, &format!("{route}{route_keys}\n"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_keeps_a_routes_rate_limit_state_unless_its_limits_change() {
    let two_an_hour = "rate_limit = { requests = 2, per = \"1h\", burst = 2 }";
    let server = Server::start(&limited_manifest("one", two_an_hour));
    for _ in 0..2 {
        assert_eq!(get(server.addr, "/env/VERSION").await.text(), "one");
    }
    assert_eq!(get(server.addr, "/env/VERSION").await.status, 429);

    // A new version with the same limits: the spent bucket stays spent.
    write_manifest(&server, &limited_manifest("two", two_an_hour));
    let reply = post_reload(server.admin).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let after = get(server.addr, "/env/VERSION").await;
    assert_eq!(after.status, 429, "{}", after.text());

    // Changed limits are a new limiter, with a full bucket.
    let three_an_hour = "rate_limit = { requests = 3, per = \"1h\", burst = 3 }";
    write_manifest(&server, &limited_manifest("three", three_an_hour));
    assert_eq!(post_reload(server.admin).await.status, 200);
    assert_eq!(get(server.addr, "/env/VERSION").await.text(), "three");
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_in_flight_on_the_old_version_count_against_the_new_ones_concurrency_cap() {
    let one_at_a_time = "max_concurrency = 1\nqueue = 0";
    let server = Server::start(&limited_manifest("one", one_at_a_time));
    let addr = server.addr;
    let slow = tokio::spawn(async move { get(addr, "/sleep/2000").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    write_manifest(&server, &limited_manifest("two", one_at_a_time));
    assert_eq!(post_reload(server.admin).await.status, 200);
    // The old version's request still holds the route's one slot.
    let refused = get(addr, "/env/VERSION").await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(slow.await.unwrap().text(), "slept");
    assert_eq!(get(addr, "/env/VERSION").await.text(), "two");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_spinning_on_the_old_version_still_times_out() {
    // The old engine's epoch ticks must outlive the switch, or this request never ends.
    let manifest = versioned_manifest("", "one") + "[component.fixture.limits]\ntimeout = \"1s\"\n";
    let server = Server::start(&manifest);
    let addr = server.addr;
    let spinning = tokio::spawn(async move { get(addr, "/loop").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    write_manifest(&server, &versioned_manifest("", "two"));
    assert_eq!(post_reload(server.admin).await.status, 200);
    let reply = tokio::time::timeout(Duration::from_secs(10), spinning)
        .await
        .expect("the old version's guest must still be interrupted")
        .unwrap();
    assert_eq!(reply.status, 504, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_reloads_on_file_change_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let cache = support::repo_root().join("target/wasmgate-test-cache");
    let server = Server::start_in(
        dir,
        &versioned_manifest("", "one"),
        &["--watch", "--cache-dir", cache.to_str().unwrap()],
    );
    write_manifest(&server, &versioned_manifest("", "two"));
    assert!(
        eventually_serves(server.addr, "/env/VERSION", "two", Duration::from_secs(20)).await,
        "stderr:\n{}",
        server.stderr()
    );
    write_manifest(&server, "[app\nname = ");
    server.wait_for_log(&["reload refused", "file change"], Duration::from_secs(20));
    assert_eq!(get(server.addr, "/env/VERSION").await.text(), "two");
    // Fixed again: picked up without any other signal.
    write_manifest(&server, &versioned_manifest("", "three"));
    assert!(
        eventually_serves(
            server.addr,
            "/env/VERSION",
            "three",
            Duration::from_secs(20)
        )
        .await,
        "stderr:\n{}",
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reloads_under_load_lose_no_request() {
    let server = Server::start(&versioned_manifest("", "v0"));
    let addr = server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let mut client = Client::connect(addr, Protocol::Http1).await;
            let (mut ok, mut failed) = (0u32, Vec::new());
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && Instant::now() < deadline
                && ok < 20_000
            {
                match client.try_send("GET", "/env/VERSION", "").await {
                    Ok(reply) if reply.status == 200 => ok += 1,
                    Ok(reply) => failed.push(format!("{} {}", reply.status, reply.text())),
                    Err(e) => {
                        failed.push(e.to_string());
                        client = Client::connect(addr, Protocol::Http1).await;
                    }
                }
            }
            (ok, failed)
        }));
    }
    for version in 1..=5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        write_manifest(&server, &versioned_manifest("", &format!("v{version}")));
        let reply = post_reload(server.admin).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for client in clients {
        let (ok, failed) = client.await.unwrap();
        assert!(
            failed.is_empty(),
            "failed requests during reloads: {failed:?}"
        );
        total += ok;
    }
    assert!(total > 100, "only {total} requests were made");
    assert_eq!(get(addr, "/env/VERSION").await.text(), "v5");
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_is_post_only_and_refuses_other_origins() {
    let server = Server::start(&versioned_manifest("", "one"));
    let reply = get(server.admin, "/api/reload").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.headers.get("allow").unwrap(), "POST");

    // What a page on another site could make a browser send to a loopback admin listener.
    let mut stream = tokio::net::TcpStream::connect(server.admin).await.unwrap();
    let request = format!(
        "POST /api/reload HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\n\
         Content-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        server.admin
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let text = metrics(server.admin).await;
    assert_eq!(
        metric(&text, "wasmgate_reloads_total{result=\"ok\"}"),
        None,
        "{text}"
    );
}

fn service_manifest(replicas: u32) -> String {
    let wasm = support::built_guest(
        "examples/service-hyper-wasmedge/target/wasm32-wasip1/release/service-hyper-wasmedge.wasm",
    );
    format!(
        "[app]\nname = \"svc\"\n\n[[route]]\npath = \"/...\"\ncomponent = \"shop\"\n\n\
         [component.shop]\nsource = {:?}\nexecutor = \"service\"\nports = [8080]\nreplicas = {replicas}\n",
        wasm.display().to_string()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reloaded_service_takes_requests_only_once_it_is_up_and_the_old_one_stops() {
    let server = Server::start(&service_manifest(1));
    assert!(
        eventually(server.addr, "/", Duration::from_secs(60), |r| r.status
            == 200)
        .await,
        "the service never came up:\n{}",
        server.stderr()
    );
    let addr = server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let traffic = tokio::spawn(async move {
        let mut failed = Vec::new();
        let mut served = 0u32;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !flag.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            let reply = get(addr, "/").await;
            if reply.status == 200 {
                served += 1;
            } else {
                failed.push(reply.status);
            }
        }
        (served, failed)
    });
    write_manifest(&server, &service_manifest(2));
    let reply = post_reload(server.admin).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // The answer comes once the new replicas are up: no 503 window.
    assert_eq!(get(server.addr, "/").await.status, 200);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (served, failed) = traffic.await.unwrap();
    assert!(
        failed.is_empty(),
        "requests failed across the reload: {failed:?}"
    );
    assert!(served > 0);
    // Two replicas of the new version came up, and the old version's one was stopped: its
    // socket (the loopback port Wasmgate mapped for it) no longer accepts connections.
    let logs = server.stderr();
    let ready = ready_addresses(&logs);
    assert_eq!(
        ready.len(),
        3,
        "one replica at start, two after the reload:\n{logs}"
    );
    let old = ready[0];
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(old).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the old replica at {old} still listens"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The mapped addresses in "service ready" log lines, in order.
fn ready_addresses(logs: &str) -> Vec<SocketAddr> {
    logs.lines()
        .filter(|l| l.contains("service ready"))
        .filter_map(|l| {
            let value: serde_json::Value = serde_json::from_str(l).ok()?;
            value["host_address"].as_str()?.parse().ok()
        })
        .collect()
}

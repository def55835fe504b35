//! Serving wasi:http components: protocols, routing, bodies, grants. Each test starts the real
//! binary and talks to it over TCP.

mod support;

use bytes::Bytes;
use support::{fixture_manifest, fixture_wasm, get, Client, Protocol, Server};

#[tokio::test]
async fn serves_a_component_over_http1() {
    let server = Server::start(&fixture_manifest(""));
    let reply = get(server.addr, "/ok").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "ok");
    assert_eq!(reply.version, http::Version::HTTP_11);
}

#[tokio::test]
async fn serves_http2_with_prior_knowledge() {
    let server = Server::start(&fixture_manifest(""));
    let mut client = Client::connect(server.addr, Protocol::Http2).await;
    let reply = client.send("GET", "/ok", Bytes::new()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.version, http::Version::HTTP_2);
    // Several streams on the one connection.
    for _ in 0..5 {
        assert_eq!(client.send("GET", "/ok", Bytes::new()).await.status, 200);
    }
}

#[tokio::test]
async fn keeps_http1_connections_alive_across_requests() {
    let server = Server::start(&fixture_manifest(""));
    let mut client = Client::connect(server.addr, Protocol::Http1).await;
    for i in 0..10 {
        let reply = client.send("POST", "/echo", format!("request {i}")).await;
        assert_eq!(reply.status, 200);
        assert!(
            reply.text().contains(&format!("request {i}")),
            "{}",
            reply.text()
        );
    }
}

#[tokio::test]
async fn request_body_and_query_reach_the_guest() {
    let server = Server::start(&fixture_manifest(""));
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let mut client = Client::connect(server.addr, protocol).await;
        let body = "x".repeat(300_000);
        let reply = client.send("PUT", "/echo?a=1&b=two", body.clone()).await;
        assert_eq!(reply.status, 200);
        let text = reply.text();
        assert!(
            text.contains("PUT"),
            "{protocol:?}: {}",
            &text[..100.min(text.len())]
        );
        assert!(text.contains("/echo?a=1&b=two"), "{protocol:?}");
        assert!(text.contains(&body), "{protocol:?}: body not echoed whole");
    }
}

#[tokio::test]
async fn streams_large_response_bodies() {
    let server = Server::start(&fixture_manifest(""));
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let mut client = Client::connect(server.addr, protocol).await;
        let reply = client.send("GET", "/big/3000000", Bytes::new()).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body.len(), 3_000_000, "{protocol:?}");
        assert!(reply.body.iter().all(|&b| b == b'x'));
    }
}

#[tokio::test]
async fn guest_chooses_the_status() {
    let server = Server::start(&fixture_manifest(""));
    let reply = get(server.addr, "/status/418").await;
    assert_eq!(reply.status, 418);
    assert_eq!(reply.text(), "status 418");
}

#[tokio::test]
async fn unknown_route_is_404() {
    let manifest = fixture_manifest("")
        .replace("path = \"/...\"", "path = \"/env/...\"")
        .replace(
            "[component.fixture]",
            "[[route]]\npath = \"/ok\"\ncomponent = \"fixture\"\n\n[component.fixture]",
        );
    let server = Server::start(&manifest);
    assert_eq!(get(server.addr, "/ok").await.status, 200);
    let reply = get(server.addr, "/elsewhere").await;
    assert_eq!(reply.status, 404);
    assert!(reply.text().contains("no route"), "{}", reply.text());
    // An exact route does not match below itself; a wildcard does not match a longer segment.
    assert!(get(server.addr, "/ok/more")
        .await
        .text()
        .contains("no route"));
    assert!(get(server.addr, "/envx/PATH")
        .await
        .text()
        .contains("no route"));
}

#[tokio::test]
async fn the_most_specific_route_wins_whatever_the_order() {
    let wasm = fixture_wasm().display().to_string();
    let manifest = format!(
        r#"
[app]
name = "routing"

[[route]]
path = "/..."
component = "wide"

[[route]]
path = "/env/WHO"
component = "exact"

[[route]]
path = "/env/..."
component = "narrow"

[component.wide]
source = {wasm:?}
environment = {{ WHO = "wide" }}

[component.narrow]
source = {wasm:?}
environment = {{ WHO = "narrow", OTHER = "narrow" }}

[component.exact]
source = {wasm:?}
environment = {{ WHO = "exact" }}
"#
    );
    let server = Server::start(&manifest);
    assert_eq!(get(server.addr, "/env/WHO").await.text(), "exact");
    assert_eq!(get(server.addr, "/env/OTHER").await.text(), "narrow");
    assert_eq!(
        get(server.addr, "/env").await.status,
        404,
        "narrow has no var named ''"
    );
    let reply = get(server.addr, "/ok").await;
    assert_eq!(reply.text(), "ok");
}

#[tokio::test]
async fn host_routes_only_match_their_host() {
    let wasm = fixture_wasm().display().to_string();
    let manifest = format!(
        r#"
[app]
name = "hosts"

[[route]]
path = "/..."
component = "any"

[[route]]
path = "/..."
host = "api.example.com"
component = "api"

[component.any]
source = {wasm:?}
environment = {{ WHO = "any" }}

[component.api]
source = {wasm:?}
environment = {{ WHO = "api" }}
"#
    );
    let server = Server::start(&manifest);
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let reply = raw_exchange(
        &mut stream,
        "GET /env/WHO HTTP/1.1\r\nHost: API.example.com:8080\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.contains("\r\napi\r\n"), "{reply}");
    assert_eq!(get(server.addr, "/env/WHO").await.text(), "any");
}

#[tokio::test]
async fn component_environment_is_visible_to_the_guest() {
    let server = Server::start(&fixture_manifest(
        "environment = { GREETING = \"hi there\" }\n",
    ));
    let reply = get(server.addr, "/env/GREETING").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "hi there");
    assert_eq!(
        get(server.addr, "/env/HOME").await.status,
        404,
        "host env must not leak"
    );
}

#[tokio::test]
async fn files_are_read_only_unless_writable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("static")).unwrap();
    std::fs::write(dir.path().join("static/hello.txt"), "static content").unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let manifest = fixture_manifest(
        "files = [{ source = \"static\", destination = \"/static\" }, \
         { source = \"data\", destination = \"/data\", writable = true }]\n",
    );
    let server = Server::start_in(dir, &manifest, &[]);
    let reply = get(server.addr, "/file/static/hello.txt").await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "static content")
    );
    assert_eq!(
        get(server.addr, "/file/static/missing.txt").await.status,
        404
    );

    let mut client = Client::connect(server.addr, Protocol::Http1).await;
    let denied = client.send("POST", "/write/static/new.txt", "nope").await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert!(!server.dir.path().join("static/new.txt").exists());

    let written = client.send("POST", "/write/data/new.txt", "saved").await;
    assert_eq!(written.status, 200, "{}", written.text());
    assert_eq!(
        std::fs::read_to_string(server.dir.path().join("data/new.txt")).unwrap(),
        "saved"
    );
    // Nothing outside the mounts is reachable.
    assert_eq!(get(server.addr, "/file/etc/passwd").await.status, 404);
}

#[tokio::test]
async fn guest_stdout_and_stderr_go_to_the_logs() {
    let server = Server::start(&fixture_manifest(""));
    assert_eq!(get(server.addr, "/stdout").await.status, 200);
    let line = server.wait_for_log(
        &["fixture says hello on stdout"],
        std::time::Duration::from_secs(5),
    );
    assert!(line.contains("\"invocation\""), "{line}");
    assert!(line.contains("\"stream\":\"stdout\""), "{line}");
    server.wait_for_log(
        &["fixture says hello on stderr", "\"stream\":\"stderr\""],
        std::time::Duration::from_secs(5),
    );
}

#[tokio::test]
async fn many_concurrent_requests_all_succeed() {
    let server = Server::start(&fixture_manifest(
        "[component.fixture.limits]\nmax_concurrency = 8\n",
    ));
    let mut tasks = Vec::new();
    for i in 0..64 {
        let addr = server.addr;
        let protocol = if i % 2 == 0 {
            Protocol::Http1
        } else {
            Protocol::Http2
        };
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(addr, protocol).await;
            client.send("POST", "/echo", format!("n={i}")).await
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, 200);
        assert!(reply.text().contains(&format!("n={i}")));
    }
}

#[tokio::test]
async fn serves_a_guest_built_against_an_older_wasi_0_2() {
    let wasm = support::repo_root()
        .join("tests/fixtures/wasi-0.2.0/target/wasm32-wasip2/release/wasi020.wasm");
    fixture_wasm(); // builds every guest
    let manifest = format!(
        "[app]\nname = \"old\"\n[[route]]\npath = \"/...\"\ncomponent = \"old\"\n[component.old]\nsource = {:?}\n",
        wasm.display().to_string()
    );
    let server = Server::start(&manifest);
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let reply = Client::connect(server.addr, protocol)
            .await
            .send("GET", "/", "")
            .await;
        assert_eq!(
            (reply.status, reply.text().as_str()),
            (200, "hello from wasi 0.2.0")
        );
    }
}

#[tokio::test]
async fn outbound_http_is_denied_without_a_grant() {
    // A real listener the guest would reach if the request were let through.
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    target.set_nonblocking(true).unwrap();
    let port = target.local_addr().unwrap().port();
    let server = Server::start(&fixture_manifest(""));
    let reply = get(server.addr, &format!("/fetch/{port}")).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(
        reply.text().contains("HttpRequestDenied"),
        "{}",
        reply.text()
    );
    assert!(target.accept().is_err(), "the guest reached the network");
    assert_eq!(get(server.addr, "/ok").await.status, 200);
}

#[tokio::test]
async fn prints_where_it_listens_and_the_routes() {
    let server = Server::start(&fixture_manifest(""));
    let stdout = server.stdout();
    assert!(
        stdout.contains(&format!("on http://{}", server.addr)),
        "{stdout}"
    );
    assert!(
        stdout.contains("/...") && stdout.contains("-> fixture"),
        "{stdout}"
    );
}

pub async fn raw_exchange(stream: &mut tokio::net::TcpStream, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut reply),
    )
    .await
    .expect("server closed the connection in time")
    .unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test]
async fn max_concurrency_queues_requests_instead_of_failing() {
    let server = Server::start(&fixture_manifest(
        "[component.fixture.limits]\nmax_concurrency = 1\ntimeout = \"5s\"\n",
    ));
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let addr = server.addr;
            tokio::spawn(async move { get(addr, "/sleep/300").await })
        })
        .collect();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!((reply.status, reply.text().as_str()), (200, "slept"));
    }
    // One instance at a time: three 300 ms requests cannot overlap.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= std::time::Duration::from_millis(900),
        "{elapsed:?}"
    );
}

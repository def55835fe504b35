//! The `wagi` executor: WASI command modules as CGI scripts, and WAGI's modules.toml. Each test
//! starts the real binary and talks HTTP to it.

mod support;

use bytes::Bytes;
use std::time::Duration;
use support::{
    get, invocations, repo_root, run_wasmgate, wagi_fixture_wasm, Client, Protocol, Server,
};

/// The fixture routed at `/cgi/...` (plus `extra` manifest text).
fn manifest(extra: &str) -> String {
    format!(
        "[app]\nname = \"wagi-test\"\n\n[[route]]\npath = \"/cgi/...\"\ncomponent = \"cgi\"\n\n\
         [component.cgi]\nsource = {:?}\nexecutor = \"wagi\"\n{extra}",
        wagi_fixture_wasm().display().to_string()
    )
}

const LIMITS: &str = "[component.cgi.limits]\ntimeout = \"1s\"\nmemory = \"32MiB\"\n";

fn env_map(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn cgi_variables_for_a_wildcard_route() {
    let server = Server::start(&manifest(""));
    let mut client = Client::connect(server.addr, Protocol::Http1).await;
    let reply = client
        .send(
            "POST",
            "/cgi/env/caf%C3%A9/a%20b?q=%20x&flag",
            "twelve bytes",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let env = env_map(&reply.text());
    let port = server.addr.port().to_string();
    let expect = [
        ("AUTH_TYPE", ""),
        ("CONTENT_LENGTH", "12"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("PATH_INFO", "/env/café/a b"),
        ("PATH_TRANSLATED", "/env/café/a b"),
        ("QUERY_STRING", "q=%20x&flag"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_HOST", "127.0.0.1"),
        ("REMOTE_USER", ""),
        ("REQUEST_METHOD", "POST"),
        ("SCRIPT_NAME", "/cgi"),
        ("SERVER_NAME", "localhost"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("X_MATCHED_ROUTE", "/cgi/..."),
        ("X_RAW_PATH_INFO", "/env/caf%C3%A9/a%20b"),
        ("HTTP_HOST", "localhost"),
    ];
    for (name, value) in expect {
        assert_eq!(
            env.get(name).map(String::as_str),
            Some(value),
            "{name} in:\n{}",
            reply.text()
        );
    }
    assert_eq!(
        env["SERVER_PORT"], port,
        "no port in Host: the listener's port"
    );
    assert!(env["SERVER_SOFTWARE"].starts_with("Wasmgate/"));
    assert_eq!(
        env["X_FULL_URL"],
        format!("http://localhost:{port}/cgi/env/caf%C3%A9/a%20b?q=%20x&flag")
    );
}

#[tokio::test]
async fn cgi_variables_for_an_exact_route_and_content_type() {
    let text = manifest("").replace("path = \"/cgi/...\"", "path = \"/cgi/env\"");
    let server = Server::start(&text);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"PUT /cgi/env HTTP/1.1\r\nHost: example.com:8080\r\nContent-Type: application/json\r\nX-Multi: a\r\nX-Multi: b\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    let env = env_map(&reply);
    assert_eq!(env["SCRIPT_NAME"], "/cgi/env");
    assert_eq!(
        env.get("PATH_INFO").map(String::as_str),
        Some(""),
        "{reply}"
    );
    assert_eq!(env["CONTENT_TYPE"], "application/json");
    assert_eq!(env["CONTENT_LENGTH"], "2");
    assert_eq!(env["SERVER_NAME"], "example.com");
    assert_eq!(env["SERVER_PORT"], "8080");
    assert_eq!(env["HTTP_X_MULTI"], "a, b");
    assert_eq!(env["X_MATCHED_ROUTE"], "/cgi/env");
    assert_eq!(env["X_FULL_URL"], "http://example.com:8080/cgi/env");
}

#[tokio::test]
async fn component_environment_is_added_but_cannot_spoof_cgi_variables() {
    let server = Server::start(&manifest(
        "environment = { MINE = \"yes\", SERVER_NAME = \"spoofed\" }\n",
    ));
    let env = env_map(&get(server.addr, "/cgi/env").await.text());
    assert_eq!(env["MINE"], "yes");
    assert_eq!(env["SERVER_NAME"], "localhost");
}

#[tokio::test]
async fn authorization_reaches_the_guest_only_when_the_route_opts_in() {
    let wasm = wagi_fixture_wasm().display().to_string();
    let text = format!(
        "[app]\nname = \"auth\"\n[[route]]\npath = \"/open/...\"\ncomponent = \"cgi\"\n\
         [[route]]\npath = \"/trusted/...\"\ncomponent = \"cgi\"\npass_authorization = true\n\
         [component.cgi]\nsource = {wasm:?}\nexecutor = \"wagi\"\n"
    );
    let server = Server::start(&text);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for (path, expected) in [("/open/env", None), ("/trusted/env", Some("Bearer t0ken"))] {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        let env = env_map(&String::from_utf8_lossy(&reply));
        assert_eq!(
            env.get("HTTP_AUTHORIZATION").map(String::as_str),
            expected,
            "{path}"
        );
    }
}

#[tokio::test]
async fn argv_is_the_script_then_the_query_items() {
    let server = Server::start(&manifest(""));
    let reply = get(server.addr, "/cgi/argv?first=1&second&%20third").await;
    assert_eq!(reply.text(), "/cgi\nfirst=1\nsecond\n%20third\n");
    let custom = Server::start(&manifest("argv = \"tool --cgi ${ARGS}\"\n"));
    assert_eq!(
        get(custom.addr, "/cgi/argv?a&b").await.text(),
        "tool\n--cgi\na\nb\n"
    );
}

#[tokio::test]
async fn request_bodies_reach_stdin_intact() {
    let server = Server::start(&manifest(""));
    let binary: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    for (body, protocol) in [
        (Bytes::new(), Protocol::Http1),
        (
            Bytes::from_static(b"\x00\xff binary \r\n\r\n"),
            Protocol::Http1,
        ),
        (Bytes::from(binary.clone()), Protocol::Http1),
        (Bytes::from(binary), Protocol::Http2),
    ] {
        let mut client = Client::connect(server.addr, protocol).await;
        let reply = client.send("POST", "/cgi/echo", body.clone()).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.headers["x-stdin-bytes"], body.len().to_string());
        assert_eq!(reply.body, body, "{protocol:?}, {} bytes", body.len());
    }
}

#[tokio::test]
async fn status_location_and_repeated_headers() {
    let server = Server::start(&manifest(""));
    let reply = get(server.addr, "/cgi/status").await;
    assert_eq!((reply.status, reply.text().as_str()), (404, "not here"));
    let reply = get(server.addr, "/cgi/redirect").await;
    assert_eq!(reply.status, 302);
    assert_eq!(reply.headers["location"], "/cgi/env");
    let reply = get(server.addr, "/cgi/cookies").await;
    let cookies: Vec<_> = reply.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    let dups: Vec<_> = reply.headers.get_all("x-dup").iter().collect();
    assert_eq!(dups, ["one", "two"]);
    let reply = get(server.addr, "/cgi/crlf").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "crlf ok"));
    assert_eq!(reply.headers["x-crlf"], "yes");
}

#[tokio::test]
async fn malformed_output_is_a_502_that_names_the_problem() {
    let server = Server::start(&manifest(LIMITS));
    for (path, problem) in [
        ("/cgi/no-blank-line", "no blank line"),
        ("/cgi/bad-header", "not `Name: value`"),
        ("/cgi/bad-status", "invalid Status"),
        ("/cgi/exit-nonzero", "exited with status 3"),
    ] {
        let reply = get(server.addr, path).await;
        assert_eq!(reply.status, 502, "{path}: {}", reply.text());
        assert!(reply.text().contains(problem), "{path}: {}", reply.text());
    }
    server.wait_for_log(
        &["\"outcome\":\"bad_output\"", "/cgi/..."],
        Duration::from_secs(5),
    );
    assert_eq!(
        get(server.addr, "/cgi/status").await.status,
        404,
        "server keeps serving"
    );
    // Each is recorded as bad output with its reason, and with the figures of the run: the
    // guest is stopped, not abandoned, so its run is still measured.
    let records = invocations(server.admin, "outcome=bad_output", 4).await;
    assert_eq!(records.len(), 4, "{records:#?}");
    for problem in ["no blank line", "not `Name: value`", "invalid Status"] {
        let record = records
            .iter()
            .find(|r| r["error"].as_str().is_some_and(|e| e.contains(problem)))
            .unwrap_or_else(|| panic!("no bad_output record for {problem}: {records:#?}"));
        assert_eq!(record["status"], 502, "{record}");
        assert!(record["instantiate_time_us"].as_u64() > Some(0), "{record}");
    }
    let exited = records
        .iter()
        .find(|r| r["exit_code"] == 3)
        .unwrap_or_else(|| panic!("no record of the exit: {records:#?}"));
    assert!(
        exited["error"]
            .as_str()
            .is_some_and(|e| e.contains("exited with status 3")),
        "{exited}"
    );
}

#[tokio::test]
async fn a_full_response_stands_even_if_the_script_then_exits_non_zero() {
    let server = Server::start(&manifest(""));
    let reply = get(server.addr, "/cgi/exit-nonzero-after-output").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "partial"));
    server.wait_for_log(&["\"exit_code\":4"], Duration::from_secs(5));
}

#[tokio::test]
async fn output_streams_and_is_cut_at_max_output() {
    let server = Server::start(&manifest("[component.cgi.limits]\nmax_output = \"1MiB\"\n"));
    let ok = get(server.addr, "/cgi/big?900000").await;
    assert_eq!(ok.body.len(), 900_000);
    let mut client = Client::connect(server.addr, Protocol::Http1).await;
    // Past the cap the body is cut off with an error: the client must not receive a
    // response that looks complete.
    if let Ok(reply) = client.try_send("GET", "/cgi/big?3000000", "").await {
        panic!(
            "a capped response arrived whole-looking: {} bytes",
            reply.body.len()
        );
    }
    assert_eq!(get(server.addr, "/cgi/status").await.status, 404);
    // The guest was stopped at the cap; its record says so and keeps the run's figures.
    let cut = invocations(server.admin, "outcome=bad_output", 1).await;
    assert_eq!(cut.len(), 1, "{cut:#?}");
    assert_eq!(cut[0]["error"], "output exceeded max_output", "{}", cut[0]);
    assert!(
        cut[0]["instantiate_time_us"].as_u64() > Some(0),
        "{}",
        cut[0]
    );
    assert!(cut[0]["peak_memory_bytes"].as_u64() > Some(0), "{}", cut[0]);
}

#[tokio::test]
async fn trap_loop_and_memory_hog_answer_their_own_request() {
    let server = Server::start(&manifest(LIMITS));
    let reply = get(server.addr, "/cgi/trap").await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(reply.text().contains("trapped"));
    let line = server.wait_for_log(&["\"outcome\":\"trap\""], Duration::from_secs(5));
    assert!(line.contains("wagi_deliberate_trap"), "{line}");
    server.wait_for_log(
        &["wagi fixture trap", "\"stream\":\"stderr\""],
        Duration::from_secs(5),
    );

    let reply = get(server.addr, "/cgi/loop").await;
    assert_eq!(reply.status, 504, "{}", reply.text());
    let reply = get(server.addr, "/cgi/hog").await;
    assert_eq!(reply.status, 500, "{}", reply.text());
    server.wait_for_log(&["\"outcome\":\"memory_limit\""], Duration::from_secs(5));
    assert_eq!(get(server.addr, "/cgi/status").await.status, 404);
}

#[tokio::test]
async fn volumes_are_read_only_unless_writable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ro")).unwrap();
    std::fs::write(dir.path().join("ro/in.txt"), "volume data").unwrap();
    std::fs::create_dir(dir.path().join("rw")).unwrap();
    let text = manifest(
        "files = [{ source = \"ro\", destination = \"/ro\" }, { source = \"rw\", destination = \"/rw\", writable = true }]\n",
    );
    let server = Server::start_in(dir, &text, &[]);
    assert_eq!(
        get(server.addr, "/cgi/read?/ro/in.txt").await.text(),
        "volume data"
    );
    assert_eq!(get(server.addr, "/cgi/read?/etc/passwd").await.status, 404);
    let mut client = Client::connect(server.addr, Protocol::Http1).await;
    assert_eq!(
        client
            .send("POST", "/cgi/write?/ro/new.txt", "x")
            .await
            .status,
        403
    );
    assert_eq!(
        client
            .send("POST", "/cgi/write?/rw/new.txt", "kept")
            .await
            .status,
        200
    );
    assert_eq!(
        std::fs::read_to_string(server.dir.path().join("rw/new.txt")).unwrap(),
        "kept"
    );
}

#[tokio::test]
async fn routes_export_adds_sub_routes_below_the_module_route() {
    let server = Server::start(&manifest(""));
    assert!(
        server.stdout().contains("/cgi/extra/..."),
        "{}",
        server.stdout()
    );
    assert_eq!(get(server.addr, "/cgi/extra").await.text(), "extra handler");
    assert_eq!(
        get(server.addr, "/cgi/extra/a/b").await.text(),
        "extra wildcard PATH_INFO=/a/b"
    );
    // The module's own route still reaches `_start`.
    assert_eq!(get(server.addr, "/cgi/status").await.status, 404);
}

#[tokio::test]
async fn serves_http2_too() {
    let server = Server::start(&manifest(""));
    let mut client = Client::connect(server.addr, Protocol::Http2).await;
    let reply = client.send("GET", "/cgi/env", "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(env_map(&reply.text())["SERVER_PROTOCOL"], "HTTP/2.0");
}

#[tokio::test]
async fn wat_edge_cases() {
    let dir = tempfile::tempdir().unwrap();
    let wat_dir = repo_root().join("tests/fixtures/wagi-wat");
    let mut text = String::from("[app]\nname = \"wat\"\n");
    for name in ["no-output", "headers-only", "unicode-header", "long-header"] {
        let wasm = wat::parse_file(wat_dir.join(format!("{name}.wat"))).unwrap();
        std::fs::write(dir.path().join(format!("{name}.wasm")), wasm).unwrap();
        text.push_str(&format!(
            "[[route]]\npath = \"/{name}\"\ncomponent = \"{name}\"\n[component.{name}]\nsource = \"{name}.wasm\"\nexecutor = \"wagi\"\n"
        ));
    }
    let server = Server::start_in(dir, &text, &[]);
    let reply = get(server.addr, "/no-output").await;
    assert_eq!(reply.status, 502);
    assert!(reply.text().contains("no output"), "{}", reply.text());
    let reply = get(server.addr, "/headers-only").await;
    assert_eq!((reply.status, reply.body.len()), (200, 0));
    // Bytes 0x80-0xff are legal (obs-text) in HTTP field values: passed through as they are.
    let reply = get(server.addr, "/unicode-header").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = get(server.addr, "/long-header").await;
    assert_eq!(reply.status, 502);
    assert!(
        reply.text().contains("no blank line within"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn modules_toml_is_served_unchanged_with_healthz() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wagi_fixture_wasm(), dir.path().join("fixture.wasm")).unwrap();
    std::fs::copy(
        repo_root().join("tests/fixtures/wagi-wat/headers-only.wat"),
        dir.path().join("headers-only.wat"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/in.txt"), "from a WAGI volume").unwrap();
    let modules = r#"
[[module]]
route = "/cgi/..."
module = "fixture.wasm"
volumes = { "/data" = "data" }
environment = { FROM = "modules.toml" }

[[module]]
route = "/text"
module = "file:headers-only.wat"
"#;
    std::fs::write(dir.path().join("modules.toml"), modules).unwrap();
    let path = dir.path().join("modules.toml");
    let mut child = support::wasmgate()
        .args([
            "up",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--no-cache",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let addr = {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let first = lines.next().unwrap().unwrap();
        let addr: std::net::SocketAddr = first
            .split(" on http://")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        std::thread::spawn(move || for _ in lines {});
        addr
    };
    let healthz = get(addr, "/healthz").await;
    assert_eq!((healthz.status, healthz.text().as_str()), (200, "OK"));
    assert_eq!(
        env_map(&get(addr, "/cgi/env").await.text())["FROM"],
        "modules.toml"
    );
    assert_eq!(
        get(addr, "/cgi/read?/data/in.txt").await.text(),
        "from a WAGI volume"
    );
    assert_eq!(get(addr, "/text").await.status, 200);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn modules_toml_mistakes_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("modules.toml");
    std::fs::write(
        &path,
        "[[module]]\nroute = \"/\"\nmodule = \"oci:ghcr.io/x/y:1\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run_wasmgate(&["up", path.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("modules.toml:3:") && stderr.contains("oci:"),
        "{stderr}"
    );

    std::fs::write(
        &path,
        "[[module]]\nroute = \"/\"\nmodule = \"x.wasm\"\nbogus = 1\n",
    )
    .unwrap();
    let (code, _, stderr) = run_wasmgate(&["up", path.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("bogus"), "{stderr}");
}

#[tokio::test]
async fn example_guests_in_rust_and_c_serve_their_greeting() {
    for example in ["wagi-hello-rust", "wagi-hello-c"] {
        support::fixture_wasm();
        let dir = repo_root().join("examples").join(example);
        let manifest = std::fs::read_to_string(dir.join("wasmgate.toml")).unwrap();
        let temp = tempfile::tempdir().unwrap();
        let source_line = manifest.lines().find(|l| l.starts_with("source")).unwrap();
        let relative = source_line.split('"').nth(1).unwrap();
        let absolute = dir.join(relative);
        assert!(
            absolute.exists(),
            "{} not built (scripts/build-guests.sh)",
            absolute.display()
        );
        let text = manifest.replace(relative, absolute.to_str().unwrap());
        let server = Server::start_in(temp, &text, &[]);
        let reply = get(server.addr, "/?name=Ada%20Lovelace").await;
        assert_eq!(reply.status, 200, "{example}: {}", reply.text());
        assert!(
            reply.text().contains("Ada Lovelace"),
            "{example}: {}",
            reply.text()
        );
    }
}

#[tokio::test]
async fn a_wasi_cli_run_component_is_served_as_cgi() {
    support::fixture_wasm();
    let wasm = repo_root()
        .join("tests/fixtures/wagi-component/target/wasm32-wasip2/release/wagi-component.wasm");
    let text = format!(
        "[app]\nname = \"cmd\"\n[[route]]\npath = \"/run/...\"\ncomponent = \"cmd\"\n\
         [component.cmd]\nsource = {:?}\nexecutor = \"wagi\"\n",
        wasm.display().to_string()
    );
    let server = Server::start(&text);
    let mut client = Client::connect(server.addr, Protocol::Http1).await;
    let reply = client.send("POST", "/run/some/path", "posted").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "component PATH_INFO=/some/path stdin=posted");
    let reply = get(server.addr, "/run/fail").await;
    assert_eq!(reply.status, 502);
    // WASI 0.2's exit carries success or failure only: exit(7) arrives as status 1.
    assert!(
        reply.text().contains("exited with status 1"),
        "{}",
        reply.text()
    );
}

#[test]
fn bad_routes_output_fails_the_load_naming_the_line() {
    for (fixture, expected) in [
        ("bad-routes", "_routes line 2"),
        ("missing-export-routes", "no_such_export"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let wasm =
            wat::parse_file(repo_root().join(format!("tests/fixtures/wagi-wat/{fixture}.wat")))
                .unwrap();
        std::fs::write(dir.path().join("m.wasm"), wasm).unwrap();
        std::fs::write(
            dir.path().join("wasmgate.toml"),
            "[app]\nname = \"x\"\n[[route]]\npath = \"/m/...\"\ncomponent = \"m\"\n[component.m]\nsource = \"m.wasm\"\nexecutor = \"wagi\"\n",
        )
        .unwrap();
        let (code, _, stderr) = run_wasmgate(&["up", dir.path().to_str().unwrap(), "--no-cache"]);
        assert_ne!(code, 0, "{fixture}");
        assert!(stderr.contains("component `m`"), "{fixture}: {stderr}");
        assert!(stderr.contains(expected), "{fixture}: {stderr}");
    }
}

#[test]
fn a_missing_entrypoint_fails_the_load_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wagi_fixture_wasm(), dir.path().join("m.wasm")).unwrap();
    std::fs::write(
        dir.path().join("wasmgate.toml"),
        "[app]\nname = \"x\"\n[component.m]\nsource = \"m.wasm\"\nexecutor = \"wagi\"\nentrypoint = \"nope\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run_wasmgate(&["up", dir.path().to_str().unwrap(), "--no-cache"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("does not export `nope`"), "{stderr}");
}

#[tokio::test]
async fn a_wagi_guest_past_its_fuel_budget_is_stopped_with_fuel_limit() {
    let server = Server::start(&manifest(
        "[component.cgi.limits]\ntimeout = \"10s\"\nfuel = 20_000_000\n",
    ));
    let started = std::time::Instant::now();
    let reply = get(server.addr, "/cgi/loop").await;
    assert_eq!(reply.status, 500, "{}", reply.text());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    server.wait_for_log(&["\"outcome\":\"fuel_limit\""], Duration::from_secs(5));
    // `_routes` ran at load under the same budget, and ordinary requests still fit in it.
    let reply = get(server.addr, "/cgi/env").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let records = get(server.admin, "/api/invocations?outcome=ok&limit=1").await;
    let records: serde_json::Value = serde_json::from_slice(&records.body).unwrap();
    let instructions = records["invocations"][0]["instructions"].as_u64();
    assert!(
        instructions.is_some_and(|n| n > 0 && n < 20_000_000),
        "{records}"
    );
}

#[tokio::test]
async fn a_trap_backtrace_has_file_and_line_when_the_module_has_dwarf() {
    // The WAGI fixture keeps its line tables. Both a fresh compile and a load from the
    // compile cache must keep what symbolizes frames to file:line.
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    for (round, load) in [(1, "compiled, cached"), (2, "from cache")] {
        let server = Server::start_in(
            tempfile::tempdir().unwrap(),
            &manifest(LIMITS),
            &["--cache-dir", cache_dir],
        );
        assert!(
            server.stdout().contains(load),
            "round {round}: {}",
            server.stdout()
        );
        assert_eq!(get(server.addr, "/cgi/trap").await.status, 502);
        let records = invocations(server.admin, "outcome=trap", 1).await;
        let backtrace = records[0]["backtrace"].as_str().unwrap_or_default();
        let frame = backtrace
            .lines()
            .position(|l| l.contains("wagi_deliberate_trap"))
            .unwrap_or_else(|| panic!("round {round}: no trap frame in {backtrace}"));
        // wasmtime prints a frame's source position on the line after its name.
        let position = backtrace.lines().nth(frame + 1).unwrap_or_default();
        assert!(
            position.contains("src/main.rs:200"),
            "round {round}: no file:line for the trap frame in\n{backtrace}"
        );
    }
}

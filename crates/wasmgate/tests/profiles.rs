//! On-demand guest profiles: an operator asks the admin API to profile the next N invocations
//! of a route or component and downloads one Firefox-profiler document.

mod support;

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{fixture_manifest, get, wagi_fixture_wasm, Client, Protocol, Reply, Server};

/// `/loop` spins until the 1 s timeout stops it; everything else goes to `/...`.
fn busy_manifest() -> String {
    fixture_manifest(
        "[component.fixture.limits]\ntimeout = \"1s\"\nmemory = \"32MiB\"\n\n\
         [[route]]\npath = \"/loop\"\ncomponent = \"fixture\"\n",
    )
}

async fn post(admin: SocketAddr, path: &str, body: &Value) -> Reply {
    let mut client = Client::connect(admin, Protocol::Http1).await;
    client.send("POST", path, body.to_string()).await
}

/// Starts a session and returns its id.
async fn start(admin: SocketAddr, body: Value) -> u64 {
    let reply = post(admin, "/api/profiles", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let created: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(created["state"], "collecting");
    let id = created["id"].as_u64().unwrap();
    assert_eq!(
        reply.headers["location"].to_str().unwrap(),
        format!("/api/profiles/{id}")
    );
    id
}

/// Waits (at most 15 s) for the session to finish and returns the profile.
async fn finished_profile(admin: SocketAddr, id: u64) -> Value {
    let started = Instant::now();
    loop {
        let reply = get(admin, &format!("/api/profiles/{id}")).await;
        match reply.status {
            200 => return serde_json::from_slice(&reply.body).unwrap(),
            202 => {}
            other => panic!("GET /api/profiles/{id} answered {other}: {}", reply.text()),
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "profile {id} still collecting: {}",
            reply.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn progress(admin: SocketAddr, id: u64) -> Value {
    let reply = get(admin, &format!("/api/profiles/{id}")).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    serde_json::from_slice(&reply.body).unwrap()
}

/// The names of the functions a thread's samples ran, leaf and callers alike.
fn sampled_functions(thread: &Value) -> Vec<String> {
    let strings = thread["stringArray"].as_array().unwrap();
    let func_names = thread["funcTable"]["name"].as_array().unwrap();
    let frame_funcs = thread["frameTable"]["func"].as_array().unwrap();
    let stack_frames = thread["stackTable"]["frame"].as_array().unwrap();
    let stack_prefixes = thread["stackTable"]["prefix"].as_array().unwrap();
    let mut names = Vec::new();
    for stack in thread["samples"]["stack"].as_array().unwrap() {
        let mut stack = stack.as_u64();
        while let Some(index) = stack {
            let index = index as usize;
            let func = frame_funcs[stack_frames[index].as_u64().unwrap() as usize]
                .as_u64()
                .unwrap();
            let name = func_names[func as usize].as_u64().unwrap();
            names.push(strings[name as usize].as_str().unwrap().to_string());
            stack = stack_prefixes[index].as_u64();
        }
    }
    names.sort();
    names.dedup();
    names
}

fn assert_firefox_profile(profile: &Value, threads: usize) {
    assert!(
        profile["meta"]["preprocessedProfileVersion"].as_u64() >= Some(40),
        "{}",
        profile["meta"]
    );
    assert!(profile["meta"]["version"].is_number());
    assert!(profile["meta"]["startTime"].as_f64() > Some(0.0));
    assert_eq!(profile["threads"].as_array().unwrap().len(), threads);
}

#[tokio::test]
async fn the_next_invocations_of_a_busy_route_are_profiled_with_guest_function_names() {
    let server = Server::start(&busy_manifest());
    let id = start(server.admin, json!({ "route": "/loop", "count": 2 })).await;

    // Another route of the same component is not profiled.
    for _ in 0..3 {
        assert_eq!(get(server.addr, "/ok").await.status, 200);
    }
    let before = progress(server.admin, id).await;
    assert_eq!(before["started"], 0, "{before}");
    assert_eq!(before["route"], "/loop");

    let (a, b) = tokio::join!(get(server.addr, "/loop"), get(server.addr, "/loop"));
    assert_eq!((a.status, b.status), (504, 504));
    let profile = finished_profile(server.admin, id).await;
    assert_firefox_profile(&profile, 2);
    for thread in profile["threads"].as_array().unwrap() {
        // One second of spinning, sampled every millisecond: hundreds of samples on an idle
        // machine; the bound leaves room for a busy one.
        let samples = thread["samples"]["length"].as_u64().unwrap();
        assert!(samples >= 20, "only {samples} samples");
        let functions = sampled_functions(thread);
        assert!(
            functions.iter().any(|f| f.contains("spin_forever")),
            "{functions:?}"
        );
        assert!(thread["name"].as_str().unwrap().contains("/loop"));
    }
    // Each invocation is its own track.
    assert_ne!(profile["threads"][0]["pid"], profile["threads"][1]["pid"]);

    let list: Value =
        serde_json::from_slice(&get(server.admin, "/api/profiles").await.body).unwrap();
    let session = &list["profiles"][0];
    assert_eq!(session["id"], id);
    assert_eq!(session["state"], "complete");
    assert_eq!(session["profiled"], 2);
}

#[tokio::test]
async fn requests_of_microseconds_are_sampled_at_their_host_calls() {
    let server = Server::start(&busy_manifest());
    let id = start(
        server.admin,
        json!({ "component": "fixture", "count": 3, "interval_ms": 0.5 }),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(get(server.addr, "/ok").await.status, 200);
    }
    let profile = finished_profile(server.admin, id).await;
    assert_firefox_profile(&profile, 3);
    assert_eq!(profile["meta"]["interval"], 0.5);
    for thread in profile["threads"].as_array().unwrap() {
        assert!(thread["samples"]["length"].as_u64() > Some(0), "{thread}");
        assert!(
            thread["markers"]["length"].as_u64() > Some(0),
            "no host-call markers"
        );
        let functions = sampled_functions(thread);
        assert!(
            functions.iter().any(|f| f.contains("fixture")),
            "{functions:?}"
        );
    }
}

#[tokio::test]
async fn wagi_invocations_are_profiled_too() {
    let manifest = format!(
        "[app]\nname = \"wagi-profile\"\n\n[[route]]\npath = \"/cgi/...\"\ncomponent = \"cgi\"\n\n\
         [component.cgi]\nsource = {:?}\nexecutor = \"wagi\"\n\n\
         [component.cgi.limits]\ntimeout = \"1s\"\nmemory = \"32MiB\"\n",
        wagi_fixture_wasm().display().to_string()
    );
    let server = Server::start(&manifest);
    let id = start(server.admin, json!({ "route": "/cgi/...", "count": 1 })).await;
    assert_eq!(get(server.addr, "/cgi/loop").await.status, 504);
    let profile = finished_profile(server.admin, id).await;
    assert_firefox_profile(&profile, 1);
    let functions = sampled_functions(&profile["threads"][0]);
    assert!(
        functions.iter().any(|f| f.contains("wagi_spin_forever")),
        "{functions:?}"
    );
}

#[tokio::test]
async fn a_session_past_its_deadline_returns_what_it_profiled() {
    let server = Server::start(&busy_manifest());
    let id = start(
        server.admin,
        json!({ "route": "/...", "count": 5, "timeout_s": 1 }),
    )
    .await;
    assert_eq!(get(server.addr, "/ok").await.status, 200);
    let profile = finished_profile(server.admin, id).await;
    assert_firefox_profile(&profile, 1);
    let list: Value =
        serde_json::from_slice(&get(server.admin, "/api/profiles").await.body).unwrap();
    assert_eq!(list["profiles"][0]["state"], "expired");
    assert_eq!(list["profiles"][0]["profiled"], 1);

    // A session nothing reached by its deadline has no profile to give.
    let empty = start(
        server.admin,
        json!({ "route": "/loop", "count": 1, "timeout_s": 1 }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reply = get(server.admin, &format!("/api/profiles/{empty}")).await;
    assert_eq!(reply.status, 410, "{}", reply.text());
}

#[tokio::test]
async fn bad_profile_requests_are_refused_with_a_reason() {
    let server = Server::start(&busy_manifest());
    let admin = server.admin;
    for (body, status, needle) in [
        (json!({ "route": "/nowhere", "count": 1 }), 404, "/nowhere"),
        (json!({ "component": "ghost", "count": 1 }), 404, "ghost"),
        (json!({ "route": "/loop", "count": 0 }), 422, "count"),
        (json!({ "route": "/loop", "count": 101 }), 422, "count"),
        (
            json!({ "route": "/loop", "count": 1, "interval_ms": 50 }),
            422,
            "interval_ms",
        ),
        (
            json!({ "route": "/loop", "component": "fixture", "count": 1 }),
            400,
            "exactly one",
        ),
        (json!({ "count": 1 }), 400, "exactly one"),
        (json!({ "route": "/loop" }), 400, "count"),
        (
            json!({ "route": "/loop", "count": 1, "colour": "red" }),
            400,
            "colour",
        ),
    ] {
        let reply = post(admin, "/api/profiles", &body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text());
        let error: Value = serde_json::from_slice(&reply.body).unwrap();
        assert!(
            error["error"].as_str().unwrap().contains(needle),
            "{body}: {error}"
        );
    }
    // Only so many sessions collect at once.
    for _ in 0..4 {
        start(admin, json!({ "route": "/loop", "count": 1 })).await;
    }
    let reply = post(
        admin,
        "/api/profiles",
        &json!({ "route": "/loop", "count": 1 }),
    )
    .await;
    assert_eq!(reply.status, 429, "{}", reply.text());

    assert_eq!(get(admin, "/api/profiles/999").await.status, 404);
    assert_eq!(get(admin, "/api/profiles/abc").await.status, 400);
}

#[tokio::test]
async fn wasmgate_profile_writes_the_profile_file() {
    let server = Server::start(&busy_manifest());
    let out = server.dir.path().join("out.json");
    let argv = [
        "profile".to_string(),
        "--admin".to_string(),
        server.admin.to_string(),
        "--route".to_string(),
        "/...".to_string(),
        "-n".to_string(),
        "2".to_string(),
        "-o".to_string(),
        out.display().to_string(),
    ];
    let cli = tokio::task::spawn_blocking(move || {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        support::run_wasmgate(&argv)
    });
    // Requests until the command has its two invocations.
    let started = Instant::now();
    while !cli.is_finished() {
        assert_eq!(get(server.addr, "/ok").await.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "wasmgate profile did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, _, stderr) = cli.await.unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("profiler.firefox.com"), "{stderr}");
    let profile: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_firefox_profile(&profile, 2);

    let (code, _, stderr) = support::run_wasmgate(&[
        "profile",
        "--admin",
        &server.admin.to_string(),
        "--route",
        "/nowhere",
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("404") && stderr.contains("/nowhere"),
        "{stderr}"
    );
}

/// `POST /api/profiles` over a raw HTTP/1.0 connection, with `Authorization` when given:
/// the status code.
async fn post_status(admin: SocketAddr, body: &Value, token: Option<&str>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.to_string();
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST /api/profiles HTTP/1.0\r\nHost: {admin}\r\n{authorization}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the admin listener answered within 10 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn starting_a_profile_needs_the_admin_token() {
    const TOKEN: &str = "profile-test-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, TOKEN).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let owner_only = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(&token_file, owner_only).unwrap();
    }
    let token_arg = token_file.display().to_string();
    let cache = support::repo_root().join("target/wasmgate-test-cache");
    let server = Server::start_in(
        dir,
        &busy_manifest(),
        &[
            "--cache-dir",
            cache.to_str().unwrap(),
            "--admin-token-file",
            &token_arg,
        ],
    );
    let body = json!({ "route": "/loop", "count": 1 });
    assert_eq!(post_status(server.admin, &body, None).await, 401);
    assert_eq!(post_status(server.admin, &body, Some("wrong")).await, 401);
    assert_eq!(post_status(server.admin, &body, Some(TOKEN)).await, 201);

    // `wasmgate profile` sends the token from --admin-token-file.
    let (code, _, stderr) = support::run_wasmgate(&[
        "profile",
        "--admin",
        &server.admin.to_string(),
        "--admin-token-file",
        &token_arg,
        "--route",
        "/nowhere",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("404"), "got past the token: {stderr}");
}

//! Starting, refusing to start, compile caching, and graceful shutdown.

mod support;

use std::time::Duration;
use support::{fixture_manifest, fixture_wasm, get, repo_root, run_wasmgate, Server};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let mut server = Server::start(&fixture_manifest(""));
    let addr = server.addr;
    let in_flight = tokio::spawn(async move { get(addr, "/sleep/800").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.terminate();
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200, "in-flight request must finish");
    assert_eq!(reply.text(), "slept");
    let code = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(10)));
    assert_eq!(code, Some(0), "stderr:\n{}", server.stderr());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener must be closed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_with_idle_keepalive_connections_still_exits_promptly() {
    let mut server = Server::start(&fixture_manifest(""));
    let mut idle = support::Client::connect(server.addr, support::Protocol::Http1).await;
    assert_eq!(idle.send("GET", "/ok", "").await.status, 200);
    let status = std::process::Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(10)));
    assert_eq!(code, Some(0));
}

#[test]
fn a_restart_loads_components_from_the_compile_cache() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = fixture_manifest("");
    let first = Server::start_in(dir, &manifest, &[]);
    assert!(
        first.stdout().contains("compiled, cached"),
        "{}",
        first.stdout()
    );
    let dir = tempdir_from(first);
    let second = Server::start_in(dir, &manifest, &[]);
    assert!(
        second.stdout().contains("from cache"),
        "{}",
        second.stdout()
    );
}

#[test]
fn a_corrupt_cache_entry_is_detected_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = fixture_manifest("");
    let first = Server::start_in(dir, &manifest, &[]);
    let dir = tempdir_from(first);
    let cache = dir.path().join("cache");
    let entry = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&entry, bytes).unwrap();

    let server = Server::start_in(dir, &manifest, &[]);
    assert!(
        server.stdout().contains("cache entry was invalid"),
        "{}",
        server.stdout()
    );
    server.wait_for_log(&["checksum"], Duration::from_secs(5));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(runtime.block_on(get(server.addr, "/ok")).status, 200);
}

#[test]
fn no_cache_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir, &fixture_manifest(""), &["--no-cache"]);
    assert!(server.stdout().contains("cache off"), "{}", server.stdout());
    assert!(!server.dir.path().join("cache").exists());
}

/// Stops a server and hands back its directory (manifest and cache) for the next start.
fn tempdir_from(mut server: Server) -> tempfile::TempDir {
    let _ = server.child.kill();
    let _ = server.child.wait();
    let placeholder = tempfile::tempdir().unwrap();
    std::mem::replace(&mut server.dir, placeholder)
}

#[test]
fn a_component_with_an_unsatisfiable_import_fails_at_startup_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let wat =
        std::fs::read_to_string(repo_root().join("tests/fixtures/missing-import.wat")).unwrap();
    let wasm = wat::parse_str(&wat).unwrap();
    std::fs::write(dir.path().join("needy.wasm"), wasm).unwrap();
    std::fs::write(
        dir.path().join("wasmgate.toml"),
        "[app]\nname = \"x\"\n[[route]]\npath = \"/...\"\ncomponent = \"needy\"\n[component.needy]\nsource = \"needy.wasm\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run_wasmgate(&[
        "up",
        dir.path().to_str().unwrap(),
        "--no-cache",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("component `needy`"), "{stderr}");
    assert!(stderr.contains("example:nonexistent/thing"), "{stderr}");
}

#[test]
fn a_core_module_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = wat::parse_str("(module (func (export \"f\")))").unwrap();
    std::fs::write(dir.path().join("core.wasm"), wasm).unwrap();
    std::fs::write(
        dir.path().join("wasmgate.toml"),
        "[app]\nname = \"x\"\n[component.core]\nsource = \"core.wasm\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run_wasmgate(&["up", dir.path().to_str().unwrap(), "--no-cache"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("component `core`"), "{stderr}");
}

#[test]
fn a_bad_manifest_names_file_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = fixture_manifest("[component.fixture.limits]\ntimeout = \"ten seconds\"\n");
    std::fs::write(dir.path().join("wasmgate.toml"), &manifest).unwrap();
    let (code, stdout, stderr) = run_wasmgate(&["up", dir.path().to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    let line = manifest
        .lines()
        .position(|l| l.starts_with("timeout"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!("wasmgate.toml:{line}:11:")),
        "{stderr}"
    );
    assert!(
        stderr.contains("component.fixture.limits.timeout"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_manifest_key_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = fixture_manifest("sourcee = \"typo.wasm\"\n");
    std::fs::write(dir.path().join("wasmgate.toml"), &manifest).unwrap();
    let (code, _, stderr) = run_wasmgate(&["up", dir.path().to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("unknown field `sourcee`"), "{stderr}");
}

#[test]
fn a_missing_manifest_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_wasmgate(&["up", dir.path().to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("wasmgate.toml"), "{stderr}");
}

#[test]
fn an_address_in_use_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wasmgate.toml"), fixture_manifest("")).unwrap();
    let (code, _, stderr) = run_wasmgate(&[
        "up",
        dir.path().to_str().unwrap(),
        "--no-cache",
        "--listen",
        &addr,
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

#[test]
fn help_describes_every_subcommand() {
    let (code, stdout, _) = run_wasmgate(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("up") && stdout.contains("inspect"),
        "{stdout}"
    );
    let (code, stdout, _) = run_wasmgate(&["up", "--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--listen",
        "--cache-dir",
        "--no-cache",
        "--shutdown-grace",
        "--log-format",
    ] {
        assert!(stdout.contains(flag), "{flag} missing from:\n{stdout}");
    }
    let (code, stdout, _) = run_wasmgate(&["inspect", "--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("--wit"), "{stdout}");
}

#[test]
fn inspect_describes_a_component_and_its_world() {
    let wasm = fixture_wasm();
    let (code, stdout, stderr) = run_wasmgate(&["inspect", wasm.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.to_lowercase().contains("component"), "{stdout}");
    assert!(stdout.contains("wasi:http/incoming-handler"), "{stdout}");
    assert!(stdout.contains("producers"), "{stdout}");
}

#[test]
fn inspect_names_the_byte_offset_of_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let len = bytes.len();
    bytes.truncate(len - 3);
    let path = dir.path().join("broken.wasm");
    std::fs::write(&path, bytes).unwrap();
    let (code, _, stderr) = run_wasmgate(&["inspect", path.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("offset"), "{stderr}");
    assert!(stderr.contains("broken.wasm"), "{stderr}");
}

#[test]
fn inspect_into_a_closed_pipe_exits_cleanly() {
    let wasm = fixture_wasm();
    let mut child = support::wasmgate()
        .args(["inspect", "--wit", wasm.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the report is written, as `| head -0` would.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}

//! Test support: build the guest fixtures once, start the real `wasmgate` binary on a free
//! loopback port, and talk HTTP/1.1 or HTTP/2 to it over TCP.

#![allow(dead_code)]

pub mod certs;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Builds the wasm guests (once per test binary; cargo makes concurrent builds safe) and
/// returns the path of the fixture component.
pub fn fixture_wasm() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new("bash")
            .arg(repo_root().join("scripts/build-guests.sh"))
            .stdout(Stdio::null())
            .status()
            .expect("run scripts/build-guests.sh");
        assert!(status.success(), "building the guest fixtures failed");
    });
    let path = repo_root().join("tests/fixtures/guest/target/wasm32-wasip2/release/fixture.wasm");
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

/// The WAGI fixture module (`tests/fixtures/wagi`), built with the other guests.
pub fn wagi_fixture_wasm() -> PathBuf {
    fixture_wasm();
    repo_root().join("tests/fixtures/wagi/target/wasm32-wasip1/release/wagi-fixture.wasm")
}

pub fn hello_wasm() -> PathBuf {
    fixture_wasm();
    repo_root().join("examples/hello/target/wasm32-wasip2/release/hello.wasm")
}

/// A manifest with one fixture component named `fixture`, routed at `/...`, plus `extra`
/// appended verbatim (more routes, limits...).
pub fn fixture_manifest(extra: &str) -> String {
    format!(
        "[app]\nname = \"test\"\n\n[[route]]\npath = \"/...\"\ncomponent = \"fixture\"\n\n\
         [component.fixture]\nsource = {:?}\n{extra}",
        fixture_wasm().display().to_string()
    )
}

/// A guest `scripts/build-guests.sh` builds, at `relative` from the repository root (the
/// fixture build runs first, as for [`fixture_wasm`]).
pub fn built_guest(relative: &str) -> PathBuf {
    fixture_wasm();
    let path = repo_root().join(relative);
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

/// Serves `manifest` with the runtime config text `config` (written next to it), compiled
/// components shared with the other tests.
pub fn start_with_config(manifest: &str, config: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("runtime.toml");
    std::fs::write(&config_path, config).unwrap();
    let cache = repo_root().join("target/wasmgate-test-cache");
    Server::start_in(
        dir,
        manifest,
        &[
            "--runtime-config",
            config_path.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
    )
}

/// A running `wasmgate up`, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The admin listener (`/metrics`, `/api/invocations`...).
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

pub fn wasmgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wasmgate"))
}

impl Server {
    /// Writes `manifest` into a fresh directory and serves it.
    /// Compiled components go to a cache shared by the whole test run, so each test does not
    /// recompile the fixture; tests about caching use [`Server::start_in`] instead.
    pub fn start(manifest: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let shared = repo_root().join("target/wasmgate-test-cache");
        Server::start_in(dir, manifest, &["--cache-dir", shared.to_str().unwrap()])
    }

    /// Serves `manifest` from `dir`; compiled components are cached in `dir/cache` unless
    /// `extra_args` choose otherwise.
    pub fn start_in(dir: tempfile::TempDir, manifest: &str, extra_args: &[&str]) -> Server {
        Server::start_with_env(dir, manifest, extra_args, &[])
    }

    /// [`Server::start_in`] with extra environment variables for the server process.
    pub fn start_with_env(
        dir: tempfile::TempDir,
        manifest: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        std::fs::write(dir.path().join("wasmgate.toml"), manifest).unwrap();
        let mut command = wasmgate();
        command
            .arg("up")
            .arg(dir.path())
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--admin-listen", "127.0.0.1:0"]);
        if !extra_args
            .iter()
            .any(|a| *a == "--cache-dir" || *a == "--no-cache")
        {
            command.arg("--cache-dir").arg(dir.path().join("cache"));
        }
        let mut child = command
            .args(extra_args)
            .envs(env.iter().copied())
            .env(
                "RUST_LOG",
                "info,wasmgate_runtime=debug,wasmgate::invocation=debug",
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wasmgate");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let started = Instant::now();
        let (addr, admin) = loop {
            let text = stdout.lock().unwrap().clone();
            if let (Some(addr), Some(admin)) = (listening_addr(&text), admin_addr(&text)) {
                break (addr, admin);
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "wasmgate exited early ({status}):\nstdout:\n{}\nstderr:\n{}",
                    stdout.lock().unwrap(),
                    stderr.lock().unwrap()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "wasmgate did not start in 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Server {
            child,
            addr,
            admin,
            dir,
            stdout,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for a log line containing every one of `needles`.
    pub fn wait_for_log(&self, needles: &[&str], timeout: Duration) -> String {
        let started = Instant::now();
        loop {
            let logs = self.stderr();
            if let Some(line) = logs.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_string();
            }
            assert!(
                started.elapsed() < timeout,
                "no log line with {needles:?} within {timeout:?}; logs:\n{logs}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// SIGHUP: reload the app.
    pub fn hangup(&self) {
        self.signal("HUP");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The server's resident memory (`VmRSS`), while it runs.
    pub fn rss_bytes(&self) -> Option<u64> {
        rss_bytes(self.child.id())
    }

    /// Waits for the process to exit (bounded) and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                started.elapsed() < timeout,
                "wasmgate did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let buffer = Arc::new(Mutex::new(String::new()));
    let sink = buffer.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut sink = sink.lock().unwrap();
            sink.push_str(&line);
            sink.push('\n');
        }
    });
    buffer
}

fn admin_addr(stdout: &str) -> Option<SocketAddr> {
    // `http://` or, with --admin-tls-cert, `https://`.
    let rest = stdout.split("Admin on ").nth(1)?.split("://").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

fn listening_addr(stdout: &str) -> Option<SocketAddr> {
    let line = stdout.lines().find(|l| l.starts_with("Serving app"))?;
    let rest = line.split("://").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Runs `wasmgate` with `args` to completion (bounded by the command itself) and returns
/// (exit code, stdout, stderr).
pub fn run_wasmgate(args: &[&str]) -> (i32, String, String) {
    let output = wasmgate().args(args).output().expect("run wasmgate");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

/// An HTTP connection to the server, reusable for several requests (keep-alive / streams).
pub enum Client {
    Http1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    Http2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Client {
    pub async fn connect(addr: SocketAddr, protocol: Protocol) -> Client {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let io = TokioIo::new(stream);
        match protocol {
            Protocol::Http1 => {
                let (sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
                tokio::spawn(connection);
                Client::Http1(sender)
            }
            Protocol::Http2 => {
                let (sender, connection) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .unwrap();
                tokio::spawn(connection);
                Client::Http2(sender)
            }
        }
    }

    pub async fn send(&mut self, method: &str, path: &str, body: impl Into<Bytes>) -> Reply {
        self.try_send(method, path, body)
            .await
            .expect("request failed")
    }

    pub async fn try_send(
        &mut self,
        method: &str,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<Reply, hyper::Error> {
        let http2 = matches!(self, Client::Http2(_));
        let uri = if http2 {
            format!("http://localhost{path}")
        } else {
            path.to_string()
        };
        let mut builder = http::Request::builder().method(method).uri(uri);
        if !http2 {
            builder = builder.header(http::header::HOST, "localhost");
        }
        let request = builder.body(Full::new(body.into())).unwrap();
        let response = match self {
            Client::Http1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
            Client::Http2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
        };
        let status = response.status().as_u16();
        let version = response.version();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply {
            status,
            headers,
            body,
            version,
        })
    }
}

/// One request on a fresh HTTP/1.1 connection.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    Client::connect(addr, Protocol::Http1)
        .await
        .send("GET", path, Bytes::new())
        .await
}

/// CPU time (user + system, in clock ticks) the process has used so far.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may contain spaces; fields after it are space separated.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Resident memory of process `pid` (`VmRSS` in /proc), if it is still there.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(kib * 1024)
}

/// Invocation records from the admin API matching `query` (`outcome=trap&limit=5`, or empty
/// for all), newest first, waiting (bounded) until at least `want` are there: a record is
/// published once its response has been sent and its guest's run has ended.
pub async fn invocations(admin: SocketAddr, query: &str, want: usize) -> Vec<serde_json::Value> {
    let started = Instant::now();
    loop {
        let reply = get(admin, &format!("/api/invocations?{query}")).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let parsed: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        let records = parsed["invocations"].as_array().unwrap().clone();
        if records.len() >= want || started.elapsed() > Duration::from_secs(10) {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET path` on a fresh HTTP/1.1 connection with `headers` (whole `Name: value\r\n` lines)
/// added; the whole response as text.
pub fn raw_get(addr: SocketAddr, path: &str, headers: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\n{headers}connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// A manifest serving the key-value test guest on every path with the store `default`.
pub fn kv_guest_manifest() -> String {
    let kv_guest =
        built_guest("tests/fixtures/kv-guest/target/wasm32-wasip2/release/kv_guest.wasm");
    format!(
        "[app]\nname = \"kv\"\n\n[[route]]\npath = \"/...\"\ncomponent = \"kv\"\n\n\
         [component.kv]\nsource = {:?}\nkey_value_stores = [\"default\"]\n",
        kv_guest.display().to_string()
    )
}

/// Asks the fixture for a 50 MB body and leaves after its first bytes: the invocation is
/// `client_gone`.
pub async fn leave_mid_body(addr: SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /big/50000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 4096];
    let _ = stream.read(&mut first).await.unwrap();
}

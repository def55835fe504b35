//! Who may use the admin listener, seen from outside: a bearer token on every request but the
//! probes, client certificates checked in the TLS handshake, the refusal to expose an
//! unprotected admin API beyond loopback, `wasmgate logs` against a protected listener, and
//! token and client CA files rotated while the server runs (file change, SIGHUP, reload API).

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use support::certs::{client_config, Ca, Cert};
use support::{fixture_manifest, Server};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::pki_types::ServerName;

const TOKEN: &str = "4f0c1d9e2b7a43f8a6d1c0e5b9f27a13";

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

/// `GET path` on `io` over HTTP/1.1, with `Authorization: Bearer token` when given.
async fn get_on<IO>(io: IO, path: &str, token: Option<&str>) -> Result<Answer, hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    request_on(io, http::Method::GET, path, token).await
}

/// `method path` on `io` over HTTP/1.1, with `Authorization: Bearer token` when given.
async fn request_on<IO>(
    io: IO,
    method: http::Method,
    path: &str,
    token: Option<&str>,
) -> Result<Answer, hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, "localhost");
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Answer {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    get_on(tcp, path, token).await.unwrap()
}

/// `GET path` over HTTPS trusting `ca`, presenting `client` if given. `Err` when the
/// handshake or the request fails: in TLS 1.3 a refused client certificate shows up as an
/// alert on the first read, after the client's side of the handshake is done.
async fn get_tls(
    addr: SocketAddr,
    ca: &Path,
    client: Option<&Cert>,
    path: &str,
    token: Option<&str>,
) -> Result<Answer, String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config(ca, client, &[]));
    let name = ServerName::try_from("localhost").unwrap();
    let attempt = async {
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        get_on(stream, path, token)
            .await
            .map_err(|e| format!("request: {e}"))
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
}

fn write_token(dir: &Path, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("admin.token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    file
}

fn cache_dir() -> String {
    support::repo_root()
        .join("target/wasmgate-test-cache")
        .display()
        .to_string()
}

/// Serves the fixture with `args` added (the admin listener on 127.0.0.1:0).
fn start(dir: tempfile::TempDir, args: &[&str]) -> Server {
    let cache = cache_dir();
    let mut all = vec!["--cache-dir", cache.as_str()];
    all.extend_from_slice(args);
    Server::start_in(dir, &fixture_manifest(""), &all)
}

/// `wasmgate up` with `args`, expected to stop at startup: its output.
fn up_fails(dir: &Path, args: &[&str]) -> Output {
    std::fs::write(dir.join("wasmgate.toml"), fixture_manifest("")).unwrap();
    let mut child = support::wasmgate()
        .args(["up", dir.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(["--cache-dir", &cache_dir()])
        .args(args)
        .env_remove("WASMGATE_ADMIN_TOKEN_FILE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a server that does start is killed and the test fails.
    let started = std::time::Instant::now();
    let mut stopped = false;
    while started.elapsed() < Duration::from_secs(60) {
        if child.try_wait().unwrap().is_some() {
            stopped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert!(
        stopped && !output.status.success(),
        "wasmgate up {args:?} did not stop:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `wasmgate logs` with `args`, nothing taken from the environment.
fn logs(args: &[&str]) -> Output {
    support::wasmgate()
        .arg("logs")
        .args(args)
        .env_remove("WASMGATE_ADMIN_TOKEN_FILE")
        .env_remove("WASMGATE_ADMIN_CA")
        .env_remove("WASMGATE_ADMIN_CLIENT_CERT")
        .env_remove("WASMGATE_ADMIN_CLIENT_KEY")
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_admin_api_needs_the_token_and_probes_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), 0o600);
    let server = start(dir, &["--admin-token-file", token.to_str().unwrap()]);

    for path in ["/metrics", "/api/invocations", "/api/routes", "/nowhere"] {
        let missing = get(server.admin, path, None).await;
        assert_eq!(missing.status, 401, "{path}: {}", missing.body);
        assert_eq!(
            missing.headers[http::header::WWW_AUTHENTICATE],
            "Bearer realm=\"wasmgate-admin\"",
            "{path}"
        );
        let wrong = get(server.admin, path, Some(&TOKEN[1..])).await;
        assert_eq!(wrong.status, 401, "{path}");
        assert!(wrong.headers[http::header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
    }
    let metrics = get(server.admin, "/metrics", Some(TOKEN)).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("http_server_active_requests"));
    assert_eq!(
        get(server.admin, "/api/invocations", Some(TOKEN))
            .await
            .status,
        200
    );
    // Orchestrator probes carry no token and reveal nothing.
    assert_eq!(get(server.admin, "/healthz", None).await.status, 200);
    assert_eq!(get(server.admin, "/readyz", None).await.status, 200);
    // So does the dashboard's page, which holds no data (what it fetches needs the token).
    assert_eq!(get(server.admin, "/", None).await.status, 200);
    // The public listener is not the admin's business.
    assert_eq!(get(server.addr, "/ok", None).await.status, 200);
    // A correctly protected token file gives no warning.
    assert!(!server.stderr().contains("readable by every user"));
}

#[tokio::test]
async fn the_token_file_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), 0o600);
    let token = token.to_str().unwrap().to_string();
    let cache = cache_dir();
    let server = Server::start_with_env(
        dir,
        &fixture_manifest(""),
        &["--cache-dir", &cache],
        &[("WASMGATE_ADMIN_TOKEN_FILE", &token)],
    );
    assert_eq!(get(server.admin, "/metrics", None).await.status, 401);
    assert_eq!(get(server.admin, "/metrics", Some(TOKEN)).await.status, 200);
}

#[test]
fn a_missing_or_empty_token_file_stops_startup_and_a_readable_one_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.token");
    let output = up_fails(
        dir.path(),
        &["--admin-token-file", missing.to_str().unwrap()],
    );
    assert!(
        stderr(&output).contains("cannot read the admin token file")
            && stderr(&output).contains("missing.token"),
        "{}",
        stderr(&output)
    );

    let empty = dir.path().join("empty.token");
    std::fs::write(&empty, "\n  \n").unwrap();
    let output = up_fails(dir.path(), &["--admin-token-file", empty.to_str().unwrap()]);
    assert!(
        stderr(&output).contains("empty.token is empty"),
        "{}",
        stderr(&output)
    );

    let spaced = dir.path().join("spaced.token");
    std::fs::write(&spaced, "two words\n").unwrap();
    let output = up_fails(
        dir.path(),
        &["--admin-token-file", spaced.to_str().unwrap()],
    );
    assert!(
        stderr(&output).contains("spaced.token") && stderr(&output).contains("visible ASCII"),
        "{}",
        stderr(&output)
    );

    let served = tempfile::tempdir().unwrap();
    let readable = write_token(served.path(), 0o644);
    let server = start(served, &["--admin-token-file", readable.to_str().unwrap()]);
    server.wait_for_log(
        &["admin token file is readable by every user", "admin.token"],
        Duration::from_secs(5),
    );
}

#[test]
fn a_client_ca_file_without_certificates_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "admin-ca");
    let server_cert = ca.server(dir.path(), "admin", &["DNS:localhost"]);
    let output = up_fails(
        dir.path(),
        &[
            "--admin-tls-cert",
            server_cert.cert.to_str().unwrap(),
            "--admin-tls-key",
            server_cert.key.to_str().unwrap(),
            "--admin-client-ca",
            server_cert.key.to_str().unwrap(),
        ],
    );
    let text = stderr(&output);
    assert!(
        text.contains("admin.key") && text.contains("no CERTIFICATE block found"),
        "{text}"
    );
}

#[test]
fn an_unprotected_admin_listener_beyond_loopback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = up_fails(dir.path(), &["--admin-listen", "0.0.0.0:0"]);
    let text = stderr(&output);
    assert!(
        text.contains("refusing to serve the admin API on 0.0.0.0:0")
            && text.contains("--admin-token-file")
            && text.contains("--admin-insecure"),
        "{text}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("Admin on"),
        "the admin listener opened anyway"
    );

    // Protected, or explicitly accepted, it starts (any interface, any free port).
    let token = write_token(dir.path(), 0o600);
    for extra in [
        vec!["--admin-token-file", token.to_str().unwrap()],
        vec!["--admin-insecure"],
    ] {
        std::fs::write(dir.path().join("wasmgate.toml"), fixture_manifest("")).unwrap();
        let mut child = support::wasmgate()
            .args([
                "up",
                dir.path().to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--admin-listen", "0.0.0.0:0", "--cache-dir", &cache_dir()])
            .args(&extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines, banner) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = lines.send(line);
            }
        });
        let started = std::time::Instant::now();
        let mut admin_line = None;
        while admin_line.is_none() && started.elapsed() < Duration::from_secs(60) {
            match banner.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if line.starts_with("Admin on http://0.0.0.0:") => admin_line = Some(line),
                _ => {}
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            admin_line.is_some(),
            "{extra:?}: the admin listener did not start"
        );
    }
}

#[tokio::test]
async fn client_certificates_are_checked_in_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "admin-ca");
    let other_ca = Ca::new(dir.path(), "other-ca");
    let server_cert = ca.server(dir.path(), "admin", &["DNS:localhost", "IP:127.0.0.1"]);
    let operator = ca.client(dir.path(), "operator", "operator");
    let stranger = other_ca.client(dir.path(), "stranger", "operator");
    let server = start(
        dir,
        &[
            "--admin-tls-cert",
            server_cert.cert.to_str().unwrap(),
            "--admin-tls-key",
            server_cert.key.to_str().unwrap(),
            "--admin-client-ca",
            ca.cert.to_str().unwrap(),
        ],
    );
    assert!(
        server.stdout().contains("Admin on https://"),
        "{}",
        server.stdout()
    );

    let served = get_tls(server.admin, &ca.cert, Some(&operator), "/metrics", None)
        .await
        .unwrap();
    assert_eq!(served.status, 200);
    assert!(served.body.contains("http_server_active_requests"));

    // No certificate, or one from another CA: no HTTP at all, probes included.
    for path in ["/metrics", "/healthz"] {
        let refused = get_tls(server.admin, &ca.cert, None, path, None).await;
        assert!(
            refused.is_err(),
            "{path} served without a client certificate"
        );
        let refused = get_tls(server.admin, &ca.cert, Some(&stranger), path, None).await;
        assert!(
            refused.is_err(),
            "{path} served to another CA's certificate"
        );
    }
    server.wait_for_log(&["admin TLS handshake refused"], Duration::from_secs(5));
    // Plain HTTP on the TLS port gets nothing either.
    let plain = tokio::net::TcpStream::connect(server.admin).await.unwrap();
    let plain = tokio::time::timeout(Duration::from_secs(10), get_on(plain, "/healthz", None))
        .await
        .expect("plain HTTP on the admin TLS port hung");
    assert!(plain.is_err(), "plain HTTP was answered on the TLS port");

    // The operator is still served after all that.
    let again = get_tls(server.admin, &ca.cert, Some(&operator), "/healthz", None)
        .await
        .unwrap();
    assert_eq!(again.status, 200);
}

#[tokio::test]
async fn tls_with_a_token_keeps_probes_open() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "admin-ca");
    let server_cert = ca.server(dir.path(), "admin", &["DNS:localhost", "IP:127.0.0.1"]);
    let token = write_token(dir.path(), 0o600);
    let server = start(
        dir,
        &[
            "--admin-tls-cert",
            server_cert.cert.to_str().unwrap(),
            "--admin-tls-key",
            server_cert.key.to_str().unwrap(),
            "--admin-token-file",
            token.to_str().unwrap(),
        ],
    );
    let probe = get_tls(server.admin, &ca.cert, None, "/readyz", None)
        .await
        .unwrap();
    assert_eq!(probe.status, 200);
    let refused = get_tls(server.admin, &ca.cert, None, "/metrics", None)
        .await
        .unwrap();
    assert_eq!(refused.status, 401);
    let served = get_tls(server.admin, &ca.cert, None, "/metrics", Some(TOKEN))
        .await
        .unwrap();
    assert_eq!(served.status, 200);
}

/// Makes one invocation record on the public listener and waits until the admin API has it.
async fn one_record(server: &Server, token: Option<&str>, https: Option<(&Path, &Cert)>) {
    assert_eq!(get(server.addr, "/ok", None).await.status, 200);
    for _ in 0..100 {
        let listed = match https {
            Some((ca, client)) => {
                get_tls(server.admin, ca, Some(client), "/api/invocations", token)
                    .await
                    .unwrap()
            }
            None => get(server.admin, "/api/invocations", token).await,
        };
        if listed.body.contains("\"route\"") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no invocation record within 2 s");
}

#[tokio::test]
async fn wasmgate_logs_sends_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), 0o600);
    let token = token.to_str().unwrap().to_string();
    let server = start(dir, &["--admin-token-file", &token]);
    one_record(&server, Some(TOKEN), None).await;
    let admin = server.admin.to_string();

    let output = logs(&["--admin", &admin, "--admin-token-file", &token]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout.contains(" GET /... fixture 200 ok "), "{stdout}");

    let from_env = support::wasmgate()
        .args(["logs", "--admin", &admin])
        .env("WASMGATE_ADMIN_TOKEN_FILE", &token)
        .output()
        .unwrap();
    assert!(from_env.status.success(), "{}", stderr(&from_env));

    let refused = logs(&["--admin", &admin]);
    assert!(!refused.status.success());
    let text = stderr(&refused);
    assert!(
        text.contains("answered 401") && text.contains("--admin-token-file"),
        "{text}"
    );
}

#[tokio::test]
async fn wasmgate_logs_over_https_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "admin-ca");
    let server_cert = ca.server(dir.path(), "admin", &["DNS:localhost", "IP:127.0.0.1"]);
    let operator = ca.client(dir.path(), "operator", "operator");
    let token = write_token(dir.path(), 0o600);
    let paths: Vec<String> = [
        &server_cert.cert,
        &server_cert.key,
        &ca.cert,
        &operator.cert,
        &operator.key,
        &token,
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect();
    let [cert, key, ca_file, client_cert, client_key, token] = &paths[..] else {
        unreachable!()
    };
    let server = start(
        dir,
        &[
            "--admin-tls-cert",
            cert,
            "--admin-tls-key",
            key,
            "--admin-client-ca",
            ca_file,
            "--admin-token-file",
            token,
        ],
    );
    one_record(&server, Some(TOKEN), Some((&ca.cert, &operator))).await;
    let admin = server.admin.to_string();
    let with = |extra: &[&str]| {
        let mut args = vec!["--admin", admin.as_str(), "--admin-ca", ca_file];
        args.extend_from_slice(extra);
        logs(&args)
    };

    let output = with(&[
        "--admin-cert",
        client_cert,
        "--admin-key",
        client_key,
        "--admin-token-file",
        token,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(" GET /... fixture 200 ok "),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // The certificate names localhost too.
    let output = with(&[
        "--admin-server-name",
        "localhost",
        "--admin-cert",
        client_cert,
        "--admin-key",
        client_key,
        "--admin-token-file",
        token,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));

    // Without the client certificate the handshake is refused, and the message says so.
    let output = with(&["--admin-token-file", token]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("CertificateRequired"),
        "{}",
        stderr(&output)
    );
    // A name the certificate does not carry is refused by the client.
    let output = with(&[
        "--admin-server-name",
        "elsewhere.test",
        "--admin-cert",
        client_cert,
        "--admin-key",
        client_key,
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("TLS handshake")
            && stderr(&output).contains("not valid for name \"elsewhere.test\""),
        "{}",
        stderr(&output)
    );

    // --follow streams over the same protected connection.
    let mut follow = support::wasmgate()
        .args([
            "logs",
            "--follow",
            "-n",
            "0",
            "--admin",
            &admin,
            "--admin-ca",
            ca_file,
        ])
        .args(["--admin-cert", client_cert, "--admin-key", client_key])
        .args(["--admin-token-file", token])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (lines, followed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    let mut seen = None;
    for _ in 0..50 {
        assert_eq!(get(server.addr, "/ok", None).await.status, 200);
        if let Ok(line) = followed.recv_timeout(Duration::from_millis(100)) {
            seen = Some(line);
            break;
        }
    }
    let _ = follow.kill();
    let output = follow.wait_with_output().unwrap();
    let line = seen.unwrap_or_else(|| {
        panic!(
            "--follow printed nothing within 5 s: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(line.contains(" GET /... fixture 200 ok "), "{line}");
}

/// Replaces `file` the way secret managers and `kubectl` do: a new file renamed over it.
fn replace_file(file: &Path, content: &[u8]) {
    let new = file.with_extension("new");
    std::fs::write(&new, content).unwrap();
    std::fs::rename(&new, file).unwrap();
}

/// Rewrites `file` in place keeping its size and modification time, so only an explicit
/// reload (not the file watch) can notice.
fn rewrite_unnoticed(file: &Path, content: &str) {
    let before = std::fs::metadata(file).unwrap();
    assert_eq!(before.len(), content.len() as u64);
    std::fs::write(file, content).unwrap();
    std::fs::File::options()
        .write(true)
        .open(file)
        .unwrap()
        .set_modified(before.modified().unwrap())
        .unwrap();
}

/// Polls `check` every 100 ms for up to 10 s (the file watch looks every second).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 10 s");
}

async fn metrics_status(server: &Server, token: &str) -> u16 {
    get(server.admin, "/metrics", Some(token)).await.status
}

const NEW_TOKEN: &str = "9b1e77c0d2f84a6e8c3f5a0b1d2e3f40";
const NEWER_TOKEN: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

#[tokio::test]
async fn a_rotated_token_file_takes_effect_and_a_broken_one_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), 0o600);
    let server = start(dir, &["--admin-token-file", token.to_str().unwrap()]);
    assert_eq!(metrics_status(&server, TOKEN).await, 200);

    replace_file(&token, format!("{NEW_TOKEN}\n").as_bytes());
    eventually("the new token accepted", || async {
        metrics_status(&server, NEW_TOKEN).await == 200
    })
    .await;
    assert_eq!(metrics_status(&server, TOKEN).await, 401);
    server.wait_for_log(
        &["admin credential reloaded", "admin token"],
        Duration::from_secs(5),
    );

    // An empty file (a botched rotation) neither locks operators out nor opens the API.
    replace_file(&token, b"\n");
    server.wait_for_log(
        &["keeping the previous one", "admin token", "is empty"],
        Duration::from_secs(10),
    );
    assert_eq!(metrics_status(&server, NEW_TOKEN).await, 200);
    assert_eq!(get(server.admin, "/metrics", None).await.status, 401);
    assert_eq!(metrics_status(&server, TOKEN).await, 401);
}

#[tokio::test]
async fn sighup_and_the_reload_api_read_the_token_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), 0o600);
    let server = start(dir, &["--admin-token-file", token.to_str().unwrap()]);

    rewrite_unnoticed(&token, &format!("{NEW_TOKEN}\n"));
    // Past a few file-watch rounds: the unnoticed change is indeed not picked up by itself.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(metrics_status(&server, TOKEN).await, 200);
    server.hangup();
    eventually("the new token accepted after SIGHUP", || async {
        metrics_status(&server, NEW_TOKEN).await == 200
    })
    .await;
    assert_eq!(metrics_status(&server, TOKEN).await, 401);

    rewrite_unnoticed(&token, &format!("{NEWER_TOKEN}\n"));
    let tcp = tokio::net::TcpStream::connect(server.admin).await.unwrap();
    let reload = request_on(tcp, http::Method::POST, "/api/reload", Some(NEW_TOKEN))
        .await
        .unwrap();
    assert_eq!(reload.status, 200, "{}", reload.body);
    let report: serde_json::Value = serde_json::from_str(&reload.body).unwrap();
    assert_eq!(
        report["admin_credentials"]["admin_token"], "reloaded",
        "{report}"
    );
    assert_eq!(metrics_status(&server, NEWER_TOKEN).await, 200);
    assert_eq!(metrics_status(&server, NEW_TOKEN).await, 401);
}

#[tokio::test]
async fn a_rotated_client_ca_takes_effect_and_a_broken_one_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "admin-ca");
    let next_ca = Ca::new(dir.path(), "next-ca");
    let server_cert = ca.server(dir.path(), "admin", &["DNS:localhost", "IP:127.0.0.1"]);
    let operator = ca.client(dir.path(), "operator", "operator");
    let successor = next_ca.client(dir.path(), "successor", "operator");
    // The server's client CA file is its own copy, to be replaced below.
    let client_ca = dir.path().join("clients.pem");
    std::fs::copy(&ca.cert, &client_ca).unwrap();
    let server = start(
        tempfile::tempdir().unwrap(),
        &[
            "--admin-tls-cert",
            server_cert.cert.to_str().unwrap(),
            "--admin-tls-key",
            server_cert.key.to_str().unwrap(),
            "--admin-client-ca",
            client_ca.to_str().unwrap(),
        ],
    );
    let status = |client: &Cert| {
        let client = Cert {
            cert: client.cert.clone(),
            key: client.key.clone(),
        };
        let ca = ca.cert.clone();
        let admin = server.admin;
        async move {
            get_tls(admin, &ca, Some(&client), "/healthz", None)
                .await
                .map(|answer| answer.status)
        }
    };
    assert_eq!(status(&operator).await, Ok(200));
    assert!(status(&successor).await.is_err());

    replace_file(&client_ca, &std::fs::read(&next_ca.cert).unwrap());
    eventually("the new CA's client accepted", || async {
        status(&successor).await == Ok(200)
    })
    .await;
    assert!(
        status(&operator).await.is_err(),
        "a client of the replaced CA was still served"
    );

    replace_file(&client_ca, b"not a certificate\n");
    server.wait_for_log(
        &["keeping the previous one", "admin client CA", "clients.pem"],
        Duration::from_secs(10),
    );
    assert_eq!(status(&successor).await, Ok(200));
    assert!(status(&operator).await.is_err());
}

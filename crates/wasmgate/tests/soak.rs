//! A bounded soak over TLS: good and faulty requests mixed, with two hot reloads and a
//! certificate rotation in the middle. No good request may fail, every faulty one gets its
//! own error, and the server's memory must not creep.
//!
//! `WASMGATE_SOAK_REQUESTS` sets the number of requests (default 20 000; the issue's
//! million-request run is `WASMGATE_SOAK_REQUESTS=1000000 cargo test --profile ci --test soak`).

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::certs::{client_config, Ca};
use support::{fixture_wasm, Server};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;

const CLIENTS: u64 = 4;

fn requests() -> u64 {
    std::env::var("WASMGATE_SOAK_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn manifest(version: &str) -> String {
    format!(
        "[app]\nname = \"soak\"\n\n[[route]]\npath = \"/...\"\ncomponent = \"fixture\"\n\n\
         [component.fixture]\nsource = {:?}\nenvironment = {{ VERSION = \"{version}\" }}\n\n\
         [component.fixture.limits]\ntimeout = \"1s\"\nmemory = \"32MiB\"\n",
        fixture_wasm().display().to_string()
    )
}

/// The request number `n` of a client: mostly good, one in ten faulty.
fn pick(n: u64) -> (&'static str, &'static str, u16) {
    match n % 20 {
        3 => ("GET", "/trap", 500),
        7 => ("GET", "/no-response", 500),
        13 => ("GET", "/recurse", 500),
        // Filling 32 MiB costs milliseconds; keep it rarer.
        17 if n % 100 == 17 => ("GET", "/hog", 500),
        5 | 11 => ("POST", "/echo", 200),
        9 => ("GET", "/env/VERSION", 200),
        _ => ("GET", "/ok", 200),
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Sender {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

#[derive(Default)]
struct Tally {
    good: AtomicU64,
    faulty: AtomicU64,
}

#[tokio::test(flavor = "multi_thread")]
async fn soak_with_reloads_and_certificate_rotation_loses_no_good_request() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let ca = Ca::new(&certs, "soak-ca");
    let first = ca.server(&certs, "first", &["DNS:localhost"]);
    let cache = support::repo_root().join("target/wasmgate-test-cache");
    let server = Server::start_in(
        dir,
        &manifest("v1"),
        &[
            "--cache-dir",
            cache.to_str().unwrap(),
            "--tls-cert",
            first.cert.to_str().unwrap(),
            "--tls-key",
            first.key.to_str().unwrap(),
        ],
    );
    let (addr, admin, pid) = (server.addr, server.admin, server.child.id());
    let config = client_config(&ca.cert, None, &[b"http/1.1"]);
    let total = requests();
    let done = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Tally::default());
    // At least 1000 requests a second even on a busy 2-core machine; the default run takes
    // about 10 s.
    let deadline = Instant::now() + Duration::from_secs(240.max(total / 1000));

    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (config, done, tally) = (config.clone(), done.clone(), tally.clone());
        clients.push(tokio::spawn(async move {
            let mut sender = connect(addr, config.clone()).await;
            let mut failures = Vec::new();
            let mut n = client;
            while done.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < deadline {
                let (method, path, want) = pick(n);
                n += CLIENTS;
                let request = http::Request::builder()
                    .method(method)
                    .uri(path)
                    .header(http::header::HOST, "localhost")
                    .body(Full::new(Bytes::from_static(b"soak body")))
                    .unwrap();
                let result = match sender.ready().await {
                    Ok(()) => sender.send_request(request).await,
                    Err(e) => Err(e),
                };
                let status = match result {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.into_body().collect().await;
                        status
                    }
                    Err(e) => {
                        failures.push(format!("{method} {path}: {e}"));
                        sender = connect(addr, config.clone()).await;
                        continue;
                    }
                };
                if status != want {
                    failures.push(format!("{method} {path}: {status}, expected {want}"));
                } else if want == 200 {
                    tally.good.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.faulty.fetch_add(1, Ordering::Relaxed);
                }
            }
            failures
        }));
    }

    // Memory, sampled through the run; the baseline is taken once the run has warmed up.
    let sampler_done = done.clone();
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        while sampler_done.load(Ordering::Relaxed) < total && Instant::now() < deadline {
            samples.push((
                sampler_done.load(Ordering::Relaxed),
                support::rss_bytes(pid).unwrap_or(0),
            ));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        samples
    });

    // The events, each once the run has got that far.
    let wait_until = |fraction: f64| {
        let done = done.clone();
        async move {
            while (done.load(Ordering::Relaxed) as f64) < total as f64 * fraction
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_until(0.3).await;
    std::fs::write(server.dir.path().join("wasmgate.toml"), manifest("v2")).unwrap();
    let reply = support::Client::connect(admin, support::Protocol::Http1)
        .await
        .send("POST", "/api/reload", "")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    wait_until(0.5).await;
    let second = ca.server(&certs, "second", &["DNS:localhost"]);
    // Replace the files in place, as certificate renewal tools do.
    std::fs::copy(&second.key, &first.key).unwrap();
    std::fs::copy(&second.cert, &first.cert).unwrap();

    wait_until(0.7).await;
    std::fs::write(server.dir.path().join("wasmgate.toml"), manifest("v3")).unwrap();
    server.hangup();

    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.unwrap());
    }
    let samples = sampler.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} requests failed, first ones: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    let (good, faulty) = (
        tally.good.load(Ordering::Relaxed),
        tally.faulty.load(Ordering::Relaxed),
    );
    assert!(
        good + faulty >= total,
        "only {} of {total} requests ran before the time limit",
        good + faulty
    );
    server.wait_for_log(&["reloaded", "SIGHUP"], Duration::from_secs(30));
    server.wait_for_log(&["certificates reloaded"], Duration::from_secs(5));

    let warm = samples
        .iter()
        .find(|(n, _)| *n >= total / 5)
        .map_or(0, |(_, rss)| *rss);
    let last = support::rss_bytes(pid).unwrap_or(0);
    let peak = samples.iter().map(|(_, rss)| *rss).max().unwrap_or(0);
    eprintln!(
        "{good} good and {faulty} faulty requests; RSS warm {} MiB, peak {} MiB, end {} MiB",
        warm >> 20,
        peak >> 20,
        last >> 20
    );
    assert!(warm > 0, "no RSS sample after warm-up: {samples:?}");
    // Two reloads keep a second engine and its backends around for a while; beyond that,
    // growth would be a leak.
    assert!(
        last <= warm + (48 << 20),
        "RSS crept from {} MiB to {} MiB",
        warm >> 20,
        last >> 20
    );
}

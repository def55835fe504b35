//! HTTPS on the public listener, seen by real TLS clients: certificates chosen by SNI, PKCS#8,
//! PKCS#1 and SEC1 keys, TLS 1.2 and 1.3, HTTP/2 over ALPN, certificate rotation under load,
//! and bad certificates refused with a clear message. Certificates are made by `openssl`.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::certs::{Ca, Cert, KeyKind};
use support::{fixture_manifest, Server};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

fn der(cert: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(cert).unwrap()
}

/// Serves the fixture over TLS with `certs` (the first is the default).
fn start_tls(dir: tempfile::TempDir, certs: &[&Cert]) -> Server {
    let cache = support::repo_root().join("target/wasmgate-test-cache");
    let mut args: Vec<String> = vec!["--cache-dir".into(), cache.display().to_string()];
    for cert in certs {
        args.push("--tls-cert".into());
        args.push(cert.cert.display().to_string());
        args.push("--tls-key".into());
        args.push(cert.key.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_in(dir, &fixture_manifest(""), &args)
}

struct Connected {
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
}

impl Connected {
    fn peer(&self) -> CertificateDer<'static> {
        self.stream.get_ref().1.peer_certificates().unwrap()[0].clone()
    }

    fn alpn(&self) -> Option<Vec<u8>> {
        self.stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
    }

    fn version(&self) -> Option<rustls::ProtocolVersion> {
        self.stream.get_ref().1.protocol_version()
    }

    /// `GET path` on this connection, over whatever ALPN chose.
    async fn get(self, path: &str) -> (u16, http::Version, String) {
        let h2 = self.alpn().as_deref() == Some(b"h2");
        let io = TokioIo::new(self.stream);
        let request = |uri: &str| {
            http::Request::get(uri)
                .header(http::header::HOST, "localhost")
                .body(Full::new(Bytes::new()))
                .unwrap()
        };
        let response = if h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(conn);
            sender
                .send_request(request(&format!("https://localhost{path}")))
                .await
                .unwrap()
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            sender.send_request(request(path)).await.unwrap()
        };
        let status = response.status().as_u16();
        let version = response.version();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, version, String::from_utf8_lossy(&body).into_owned())
    }
}

/// A TLS connection to `addr` asking for `server_name`, trusting `ca`.
async fn connect(
    addr: SocketAddr,
    server_name: &str,
    ca: &Ca,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Connected, std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der(&ca.cert)).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    Ok(Connected { stream })
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

#[tokio::test]
async fn sni_picks_the_certificate_for_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let a = ca.server(dir.path(), "a", &["DNS:a.test"]);
    let b = ca.server_with_key(
        dir.path(),
        "b",
        &["DNS:b.test", "DNS:*.wild.test"],
        KeyKind::RsaPkcs1,
    );
    let c = ca.server_with_key(dir.path(), "c", &["DNS:c.test"], KeyKind::EcSec1);
    let server = start_tls(dir, &[&a, &b, &c]);
    assert!(
        server.stdout().contains("on https://"),
        "{}",
        server.stdout()
    );
    assert!(
        server
            .stdout()
            .contains("TLS names: *.wild.test, a.test, b.test, c.test"),
        "{}",
        server.stdout()
    );
    for (name, expected) in [
        ("a.test", &a),
        ("b.test", &b),
        ("x.wild.test", &b),
        ("c.test", &c),
    ] {
        let conn = connect(server.addr, name, &ca, &[b"http/1.1"], BOTH)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(conn.peer(), der(&expected.cert), "{name}");
        let (status, _, body) = conn.get("/ok").await;
        assert_eq!((status, body.as_str()), (200, "ok"), "{name}");
    }
    // An unknown name gets the default (first) certificate, which a careful client rejects.
    let err = connect(server.addr, "other.test", &ca, &[], BOTH)
        .await
        .err()
        .expect("a certificate for another host was accepted");
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test]
async fn http2_over_alpn_and_both_tls_versions() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let a = ca.server(dir.path(), "a", &["DNS:a.test"]);
    let server = start_tls(dir, &[&a]);

    let conn = connect(server.addr, "a.test", &ca, &[b"h2", b"http/1.1"], BOTH)
        .await
        .unwrap();
    assert_eq!(conn.alpn().as_deref(), Some(&b"h2"[..]));
    assert_eq!(conn.version(), Some(rustls::ProtocolVersion::TLSv1_3));
    let (status, version, _) = conn.get("/ok").await;
    assert_eq!((status, version), (200, http::Version::HTTP_2));

    let conn = connect(
        server.addr,
        "a.test",
        &ca,
        &[b"http/1.1"],
        &[&rustls::version::TLS12],
    )
    .await
    .unwrap();
    assert_eq!(conn.version(), Some(rustls::ProtocolVersion::TLSv1_2));
    assert_eq!(conn.alpn().as_deref(), Some(&b"http/1.1"[..]));
    let (status, version, _) = conn.get("/ok").await;
    assert_eq!((status, version), (200, http::Version::HTTP_11));

    // The guest sees the request as https.
    let conn = connect(server.addr, "a.test", &ca, &[], BOTH)
        .await
        .unwrap();
    let (_, _, body) = conn.get("/echo").await;
    assert!(body.starts_with("GET /echo"), "{body}");
}

#[tokio::test]
async fn certificates_rotate_without_a_restart_or_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let first = ca.server(dir.path(), "live", &["DNS:a.test"]);
    let staged = tempfile::tempdir().unwrap();
    let second = ca.server(staged.path(), "next", &["DNS:a.test"]);
    let second_der = der(&second.cert);
    let live = Cert {
        cert: first.cert.clone(),
        key: first.key.clone(),
    };
    let server = start_tls(dir, &[&live]);
    let conn = connect(server.addr, "a.test", &ca, &[], BOTH)
        .await
        .unwrap();
    assert_eq!(conn.peer(), der(&first.cert));

    // Replace the files the way deployment tools do: write aside, then rename over.
    let swap = |from: &Path, to: &Path| {
        let aside = to.with_extension("tmp");
        std::fs::copy(from, &aside).unwrap();
        std::fs::rename(&aside, to).unwrap();
    };
    swap(&second.key, &live.key);
    swap(&second.cert, &live.cert);

    let started = Instant::now();
    let mut requests = 0;
    loop {
        let conn = connect(server.addr, "a.test", &ca, &[], BOTH)
            .await
            .expect("a handshake failed during rotation");
        let rotated = conn.peer() == second_der;
        let (status, _, _) = conn.get("/ok").await;
        assert_eq!(status, 200, "a request failed during rotation");
        requests += 1;
        if rotated {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the new certificate was not served within 10 s ({requests} requests)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.wait_for_log(&["TLS certificates reloaded"], Duration::from_secs(5));

    // A broken replacement is refused and the working certificate stays in service.
    std::fs::write(&live.cert, "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
    server.wait_for_log(
        &["cannot be loaded; keeping the previous ones"],
        Duration::from_secs(10),
    );
    let conn = connect(server.addr, "a.test", &ca, &[], BOTH)
        .await
        .unwrap();
    assert_eq!(conn.peer(), second_der);
    assert_eq!(conn.get("/ok").await.0, 200);
}

#[test]
fn mismatched_or_missing_key_files_stop_startup_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let a = ca.server(dir.path(), "a", &["DNS:a.test"]);
    let b = ca.server(dir.path(), "b", &["DNS:b.test"]);
    std::fs::write(dir.path().join("wasmgate.toml"), fixture_manifest("")).unwrap();
    let run = |cert: &Path, key: &Path| {
        let output = support::wasmgate()
            .args([
                "up",
                dir.path().to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--no-admin", "--no-cache"])
            .args(["--tls-cert", cert.to_str().unwrap()])
            .args(["--tls-key", key.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = run(&a.cert, &b.key);
    assert!(
        stderr.contains("b.key") && stderr.contains("does not match"),
        "{stderr}"
    );
    let stderr = run(&a.cert, &dir.path().join("missing.key"));
    assert!(
        stderr.contains("missing.key") && stderr.contains("cannot read"),
        "{stderr}"
    );
    let stderr = run(&a.key, &a.key);
    assert!(stderr.contains("a.key"), "{stderr}");
}

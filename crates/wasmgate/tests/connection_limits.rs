//! The public listener's limits on connections, seen by clients: `--max-connections` makes
//! further connections wait (not fail) until one closes; header lists over 64 KiB on HTTP/2,
//! cleartext or over TLS, get 431 (or, far over, a connection error) while the server keeps
//! serving; slow clients are cut off by the header read and TLS handshake timeouts.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::certs::{client_config, Ca};
use support::{fixture_manifest, Client, Protocol, Server};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;

/// The listener's default header read timeout (`ServerOptions::header_read_timeout`).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

fn start(args: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let cache = support::repo_root().join("target/wasmgate-test-cache");
    let mut all = vec!["--cache-dir", cache.to_str().unwrap()];
    all.extend_from_slice(args);
    Server::start_in(dir, &fixture_manifest(""), &all)
}

/// The fixture served over TLS for `localhost`; with the CA that signed it.
fn start_tls() -> (Server, tempfile::TempDir, Ca) {
    let certs = tempfile::tempdir().unwrap();
    let ca = Ca::new(certs.path(), "ca");
    let leaf = ca.server(certs.path(), "server", &["DNS:localhost"]);
    let server = start(&[
        "--tls-cert",
        leaf.cert.to_str().unwrap(),
        "--tls-key",
        leaf.key.to_str().unwrap(),
    ]);
    (server, certs, ca)
}

fn still_running(server: &mut Server) -> bool {
    server.child.try_wait().unwrap().is_none()
}

async fn h2_handshake<IO>(io: IO) -> SendRequest<Empty<Bytes>>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

async fn h2c(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    h2_handshake(TcpStream::connect(addr).await.unwrap()).await
}

async fn h2_tls(addr: SocketAddr, ca: &Ca) -> SendRequest<Empty<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(client_config(&ca.cert, None, &[b"h2"]))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    h2_handshake(stream).await
}

/// `GET /ok` with a header of `header_bytes` bytes (none when 0); the status, or the error.
async fn h2_get(
    sender: &mut SendRequest<Empty<Bytes>>,
    header_bytes: usize,
) -> Result<u16, hyper::Error> {
    let mut request = http::Request::get("https://localhost/ok");
    if header_bytes > 0 {
        request = request.header("x-big", "a".repeat(header_bytes));
    }
    sender.ready().await?;
    let response = sender
        .send_request(request.body(Empty::new()).unwrap())
        .await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let server = start(&["--max-connections", "3"]);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut client = Client::connect(server.addr, Protocol::Http1).await;
        assert_eq!(client.send("GET", "/ok", Bytes::new()).await.status, 200);
        held.push(client);
    }

    // The kernel completes the fourth connection, but the server does not take it yet.
    let mut waiting = TcpStream::connect(server.addr).await.unwrap();
    waiting
        .write_all(b"GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let early = tokio::time::timeout(Duration::from_millis(1500), waiting.read(&mut answer)).await;
    assert!(early.is_err(), "a connection past the cap was served");

    // The three held connections keep working meanwhile.
    for client in &mut held {
        assert_eq!(client.send("GET", "/ok", Bytes::new()).await.status, 200);
    }

    // Closing one frees its slot, and the waiting connection is served.
    drop(held.pop());
    let started = Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(5), waiting.read(&mut answer))
        .await
        .expect("the waiting connection was not served within 5 s of a slot freeing")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..read]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    for client in &mut held {
        assert_eq!(client.send("GET", "/ok", Bytes::new()).await.status, 200);
    }
}

/// The 431 path for one HTTP/2 connection maker: just over the cap is refused on its stream
/// and the connection keeps serving; far over it the connection ends; the server serves on.
async fn oversized_http2_headers<F, Fut>(connect: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = SendRequest<Empty<Bytes>>>,
{
    let mut connection = connect().await;
    assert_eq!(h2_get(&mut connection, 0).await.unwrap(), 200);
    // Under the cap (64 KiB counted as name + value + 32 per field): served.
    assert_eq!(h2_get(&mut connection, 60 << 10).await.unwrap(), 200);
    // Just over it: 431 on that stream only.
    assert_eq!(h2_get(&mut connection, 70 << 10).await.unwrap(), 431);
    assert_eq!(h2_get(&mut connection, 0).await.unwrap(), 200);

    // Far over: the server ends the connection rather than buffer it; the client gets an
    // error, not a hang.
    let mut abusive = connect().await;
    let outcome = tokio::time::timeout(Duration::from_secs(10), h2_get(&mut abusive, 1 << 20))
        .await
        .expect("a 1 MiB header list got no answer within 10 s");
    assert!(
        matches!(outcome, Err(_) | Ok(431)),
        "a 1 MiB header list was served: {outcome:?}"
    );

    // Everyone else is still served, on the first connection and on new ones.
    assert_eq!(h2_get(&mut connection, 0).await.unwrap(), 200);
    let mut fresh = connect().await;
    assert_eq!(h2_get(&mut fresh, 0).await.unwrap(), 200);
}

#[tokio::test]
async fn oversized_headers_over_h2c_get_431_and_serving_goes_on() {
    let mut server = start(&[]);
    let addr = server.addr;
    oversized_http2_headers(|| h2c(addr)).await;
    assert!(still_running(&mut server));
}

#[tokio::test]
async fn oversized_headers_over_tls_h2_get_431_and_serving_goes_on() {
    let (mut server, _certs, ca) = start_tls();
    let addr = server.addr;
    oversized_http2_headers(|| h2_tls(addr, &ca)).await;
    assert!(still_running(&mut server));
}

/// Reads until the server closes `stream` (EOF or reset); how long that took.
async fn time_until_closed(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + limit),
            stream.read(&mut buffer),
        )
        .await
        {
            Err(_) => panic!("the connection was still open after {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            // hyper may say why before closing (e.g. 408); keep reading to the close.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    let server = start(&[]);
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /ok HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let (mut reader, mut writer) = slow.into_split();
    // One header line every two seconds: progress, but never the end of the head.
    let trickle = tokio::spawn(async move {
        for i in 0..30 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if writer
                .write_all(format!("x-slow-{i}: a\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let closed = tokio::spawn(async move {
        let started = Instant::now();
        let mut buffer = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(45), reader.read(&mut buffer)).await {
                Err(_) => panic!("the slow client was still connected after 45 s"),
                Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
                Ok(Ok(_)) => continue,
            }
        }
    });
    // Others are served while the slow client holds its connection.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(support::get(server.addr, "/ok").await.status, 200);
    let after = closed.await.unwrap();
    trickle.abort();
    assert!(
        after >= HEADER_READ_TIMEOUT - Duration::from_secs(2),
        "cut off after {after:?}, before the header read timeout"
    );
    assert_eq!(support::get(server.addr, "/ok").await.status, 200);
}

#[tokio::test]
async fn a_client_that_never_finishes_the_tls_handshake_is_cut_off() {
    let (server, _certs, ca) = start_tls();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let after = time_until_closed(&mut silent, Duration::from_secs(45)).await;
    assert!(
        after >= HEADER_READ_TIMEOUT - Duration::from_secs(2),
        "cut off after {after:?}, before the handshake timeout"
    );
    let mut served = h2_tls(server.addr, &ca).await;
    assert_eq!(h2_get(&mut served, 0).await.unwrap(), 200);
}

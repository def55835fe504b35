//! The listeners' limits on connections, seen by clients: `--max-connections` (and
//! `--admin-max-connections` on the admin listener) makes further connections wait (not
//! fail) until one closes; header lists over 64 KiB on HTTP/2, cleartext or over TLS, get 431
//! (or, far over, a connection error) while the server keeps serving; slow clients, HTTP/1.1
//! and HTTP/2 alike, are cut off by the header read and TLS handshake timeouts
//! (`--header-read-timeout`), and idle connections are closed, but long requests are not.

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
use tokio::task::JoinHandle;
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

/// An h2c connection, and the task driving it (it ends when the server closes it).
async fn h2c_watched(addr: SocketAddr) -> (SendRequest<Empty<Bytes>>, JoinHandle<()>) {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    (sender, driver)
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
    h2_get_path(sender, "/ok", header_bytes).await
}

async fn h2_get_path(
    sender: &mut SendRequest<Empty<Bytes>>,
    path: &str,
    header_bytes: usize,
) -> Result<u16, hyper::Error> {
    let mut request = http::Request::get(format!("https://localhost{path}"));
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

/// The timeout the HTTP/2 tests set with `--header-read-timeout`: short, so they are quick.
const SHORT_TIMEOUT: Duration = Duration::from_secs(1);

fn start_with_short_timeout() -> Server {
    start(&["--header-read-timeout", "1s"])
}

/// The connection preface of an HTTP/2 client, then its (empty) SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

#[tokio::test]
async fn an_http2_client_that_never_finishes_its_headers_is_cut_off() {
    let server = start_with_short_timeout();
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(H2_PREFACE).await.unwrap();
    // A HEADERS frame on stream 1 (`:method: GET`) without END_HEADERS: the server must wait
    // for a CONTINUATION frame that never comes.
    slow.write_all(b"\0\0\x01\x01\0\0\0\0\x01\x82")
        .await
        .unwrap();
    let after = time_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(
        after >= SHORT_TIMEOUT - Duration::from_millis(200),
        "cut off after {after:?}, before the timeout"
    );
    let mut served = h2c(server.addr).await;
    assert_eq!(h2_get(&mut served, 0).await.unwrap(), 200);
}

#[tokio::test]
async fn a_client_trickling_the_http2_preface_is_cut_off() {
    let server = start_with_short_timeout();
    let slow = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = slow.into_split();
    // One byte every 200 ms: progress, but the preface would take 5 s.
    let trickle = tokio::spawn(async move {
        for byte in &H2_PREFACE[..24] {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
        }
        writer
    });
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buffer)).await {
            Err(_) => panic!("the trickling client was still connected after 10 s"),
            Ok(Ok(0)) | Ok(Err(_)) => break started.elapsed(),
            Ok(Ok(_)) => continue,
        }
    };
    trickle.abort();
    assert!(
        closed >= SHORT_TIMEOUT - Duration::from_millis(200)
            && closed < Duration::from_millis(4500),
        "cut off after {closed:?}"
    );
    let mut served = h2c(server.addr).await;
    assert_eq!(h2_get(&mut served, 0).await.unwrap(), 200);
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_but_a_long_request_is_not() {
    let server = start_with_short_timeout();
    let (mut sender, driver) = h2c_watched(server.addr).await;
    // Runs well past the timeout, on a connection with nothing else in flight.
    let started = Instant::now();
    assert_eq!(
        h2_get_path(&mut sender, "/sleep/2500", 0).await.unwrap(),
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(2500));
    // Then nothing: the server says goodbye (GOAWAY) and the connection ends.
    let idle_since = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), driver)
        .await
        .expect("an idle HTTP/2 connection was still open after 10 s")
        .unwrap();
    let idle = idle_since.elapsed();
    assert!(
        idle >= SHORT_TIMEOUT - Duration::from_millis(200),
        "closed after {idle:?} idle"
    );
    assert!(
        sender.ready().await.is_err(),
        "the closed connection took a request"
    );
    let mut fresh = h2c(server.addr).await;
    assert_eq!(h2_get(&mut fresh, 0).await.unwrap(), 200);
}

#[tokio::test]
async fn admin_connections_past_the_cap_wait_while_the_public_listener_serves() {
    let server = start(&["--admin-max-connections", "2"]);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut client = Client::connect(server.admin, Protocol::Http1).await;
        assert_eq!(
            client.send("GET", "/healthz", Bytes::new()).await.status,
            200
        );
        held.push(client);
    }

    let mut waiting = TcpStream::connect(server.admin).await.unwrap();
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let early = tokio::time::timeout(Duration::from_millis(1500), waiting.read(&mut answer)).await;
    assert!(
        early.is_err(),
        "an admin connection past the cap was served"
    );

    // The public listener has its own connections and is not affected.
    for _ in 0..3 {
        assert_eq!(support::get(server.addr, "/ok").await.status, 200);
    }

    drop(held.pop());
    let read = tokio::time::timeout(Duration::from_secs(5), waiting.read(&mut answer))
        .await
        .expect("the waiting admin connection was not served within 5 s of a slot freeing")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..read]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

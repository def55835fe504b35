//! Per-route load protection, seen from a client: concurrency caps with a bounded queue (503 +
//! Retry-After past it), rate limits per route and per client (429 + Retry-After), body and
//! header size limits (413, 431). Refused requests never reach the guest and are recorded.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use support::{fixture_wasm, get, invocations, Client, Protocol, Reply, Server};

/// An app whose one route `/...` to the fixture carries `route_keys`.
fn manifest(route_keys: &str) -> String {
    format!(
        "[app]\nname = \"test\"\n\n[[route]]\npath = \"/...\"\ncomponent = \"fixture\"\n\
         {route_keys}\n\n[component.fixture]\nsource = {:?}\n",
        fixture_wasm().display().to_string()
    )
}

/// `GET path` on a fresh connection whose local end is bound to `local` (a loopback alias),
/// so the server sees that client address.
async fn get_from(local: IpAddr, addr: SocketAddr, path: &str) -> Reply {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(local, 0)).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header(http::header::HOST, "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let version = response.version();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
        version,
    }
}

/// Writes `request` as-is on a new connection and returns what the server sent back before
/// closing (or within 10 s).
fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer and close before it has read everything: that is the point.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {:?}", reply.headers))
}

#[tokio::test]
async fn past_the_cap_requests_wait_in_the_queue_and_past_the_queue_get_503() {
    let server = Server::start(&manifest(
        "max_concurrency = 2\nqueue = 2\nqueue_timeout = \"5s\"",
    ));
    let addr = server.addr;
    let started = Instant::now();
    let requests: Vec<_> = (0..6)
        .map(|_| {
            tokio::spawn(async move {
                let reply = get(addr, "/sleep/500").await;
                (reply, started.elapsed())
            })
        })
        .collect();
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    for request in requests {
        let (reply, elapsed) = request.await.unwrap();
        match reply.status {
            200 => ok.push(elapsed),
            503 => refused.push((reply, elapsed)),
            other => panic!("unexpected {other}: {}", reply.text()),
        }
    }
    assert_eq!((ok.len(), refused.len()), (4, 2), "ok {ok:?}");
    for (reply, elapsed) in &refused {
        assert!(
            *elapsed < Duration::from_millis(450),
            "refused at once, not after {elapsed:?}"
        );
        assert!(retry_after(reply) >= 1);
        assert!(reply.text().contains("queue is full"), "{}", reply.text());
    }
    ok.sort();
    // Two ran at once; two waited for them and then ran.
    assert!(ok[3] >= Duration::from_millis(1000), "{ok:?}");
    assert!(ok[3] < Duration::from_secs(5), "{ok:?}");

    let overloaded = invocations(server.admin, "outcome=overloaded", 2).await;
    assert_eq!(overloaded.len(), 2, "{overloaded:?}");
    assert_eq!(overloaded[0]["status"], 503);
    assert_eq!(overloaded[0]["executor"], "none");
    assert_eq!(invocations(server.admin, "outcome=ok", 4).await.len(), 4);
}

#[tokio::test]
async fn a_request_that_waits_past_queue_timeout_gets_503() {
    let server = Server::start(&manifest(
        "max_concurrency = 1\nqueue = 5\nqueue_timeout = \"300ms\"",
    ));
    let addr = server.addr;
    let running = tokio::spawn(async move { get(addr, "/sleep/1500").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let reply = get(addr, "/ok").await;
    let waited = started.elapsed();
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(retry_after(&reply), 1);
    assert!(
        waited >= Duration::from_millis(280) && waited < Duration::from_millis(1200),
        "{waited:?}"
    );
    assert_eq!(running.await.unwrap().status, 200);
}

#[tokio::test]
async fn a_route_rate_limit_answers_429_until_a_token_comes_back() {
    let server = Server::start(&manifest(
        "rate_limit = { requests = 2, per = \"1s\", burst = 2 }",
    ));
    let mut client = Client::connect(server.addr, Protocol::Http1).await;
    assert_eq!(client.send("GET", "/ok", Bytes::new()).await.status, 200);
    assert_eq!(client.send("GET", "/ok", Bytes::new()).await.status, 200);
    let limited = client.send("GET", "/ok", Bytes::new()).await;
    assert_eq!(limited.status, 429, "{}", limited.text());
    // One token every 500 ms, rounded up to whole seconds.
    assert_eq!(retry_after(&limited), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(client.send("GET", "/ok", Bytes::new()).await.status, 200);

    let recorded = invocations(server.admin, "outcome=rate_limited", 1).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["status"], 429);
    assert_eq!(recorded[0]["route"], "/...");
    assert_eq!(recorded[0]["component"], "fixture");
    let metrics = get(server.admin, "/metrics").await.text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("wasm_invocations_total")
                && l.contains("outcome=\"rate_limited\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
}

#[tokio::test]
async fn each_client_address_has_its_own_rate_limit() {
    let server = Server::start(&manifest(
        "client_rate_limit = { requests = 1, per = \"10s\", burst = 1 }",
    ));
    let one: IpAddr = "127.0.0.1".parse().unwrap();
    let two: IpAddr = "127.0.0.2".parse().unwrap();
    assert_eq!(get_from(one, server.addr, "/ok").await.status, 200);
    let limited = get_from(one, server.addr, "/ok").await;
    assert_eq!(limited.status, 429);
    assert!((9..=10).contains(&retry_after(&limited)), "{limited:?}");
    // Another address is another client, with its own full bucket.
    assert_eq!(get_from(two, server.addr, "/ok").await.status, 200);
    assert_eq!(get_from(two, server.addr, "/ok").await.status, 429);
}

#[tokio::test]
async fn a_body_declared_too_large_gets_413_without_reaching_the_guest() {
    let server = Server::start(&manifest("max_request_body = \"1KiB\""));
    let mut client = Client::connect(server.addr, Protocol::Http1).await;
    let reply = client.send("POST", "/echo", vec![b'x'; 4096]).await;
    assert_eq!(reply.status, 413, "{}", reply.text());
    let small = get(server.addr, "/ok").await;
    assert_eq!(small.status, 200);
    let rejected = invocations(server.admin, "outcome=rejected", 1).await;
    assert_eq!(rejected[0]["status"], 413);
    assert_eq!(rejected[0]["executor"], "none");
}

#[tokio::test]
async fn a_chunked_body_is_cut_off_with_413_once_over_the_limit() {
    let server = Server::start(&manifest("max_request_body = \"1KiB\""));
    let chunked = |chunks: usize| {
        let mut request = b"POST /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
              Transfer-Encoding: chunked\r\n\r\n"
            .to_vec();
        for _ in 0..chunks {
            request.extend_from_slice(b"200\r\n");
            request.extend_from_slice(&[b'y'; 512]);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"0\r\n\r\n");
        request
    };
    let over = raw_exchange(server.addr, &chunked(8));
    assert!(over.starts_with("HTTP/1.1 413"), "{over}");
    let within = raw_exchange(server.addr, &chunked(2));
    assert!(within.starts_with("HTTP/1.1 200"), "{within}");
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let server = Server::start(&manifest(""));
    let mut request = b"GET /ok HTTP/1.1\r\nHost: localhost\r\nX-Big: ".to_vec();
    request.extend_from_slice(&vec![b'z'; 100 << 10]);
    request.extend_from_slice(b"\r\n\r\n");
    let answer = raw_exchange(server.addr, &request);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // Ordinary requests are unaffected.
    assert_eq!(get(server.addr, "/ok").await.status, 200);
}

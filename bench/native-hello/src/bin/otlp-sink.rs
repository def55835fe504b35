//! OTLP/HTTP sink for `bench/run.sh`: reads each export request's body to the end and answers
//! `200` with an empty `ExportTraceServiceResponse` (zero bytes of protobuf), as a collector
//! that accepted every span would.
//!
//! It stands in for a collector running elsewhere: the benchmark measures what exporting costs
//! Wasmgate, so the receiver should take as little of the shared cores as it can. (A Python
//! `http.server` receiver took about 3 µs of CPU per exported request, some 4% of the
//! server's own cost.) On SIGTERM or SIGINT it prints how many requests and body bytes it
//! took, so a run can check that spans arrived.
//!
//! Usage: `otlp-sink [ADDR]` (default `127.0.0.1:4318`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Default)]
struct Taken {
    requests: AtomicU64,
    bytes: AtomicU64,
}

async fn accept(
    request: Request<Incoming>,
    taken: Arc<Taken>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = match request.into_body().collect().await {
        Ok(body) => {
            taken.requests.fetch_add(1, Ordering::Relaxed);
            let len = body.to_bytes().len() as u64;
            taken.bytes.fetch_add(len, Ordering::Relaxed);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    Ok(response)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:4318")
        .parse()?;
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let taken = Arc::new(Taken::default());
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    eprintln!("accept error: {err}");
                    continue;
                }
            },
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        };
        let taken = taken.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| accept(request, taken.clone()));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    println!(
        "took {} export requests, {} body bytes",
        taken.requests.load(Ordering::Relaxed),
        taken.bytes.load(Ordering::Relaxed)
    );
    Ok(())
}

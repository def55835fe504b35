//! A small HTTP service written the way programs for WasmEdge are: hyper on tokio, binding
//! 0.0.0.0:8080 itself. Wasmgate runs it unchanged with `executor = "service"`.
//!
//! Endpoints (the test suite uses all of them):
//! - `GET /` greets and says which local port the accepted socket reports (the guest-side
//!   port, 8080, whatever host port Wasmgate chose);
//! - `POST /echo` answers with the request body;
//! - `GET /connect?HOST:PORT` tries an outbound TCP connection and reports how it went;
//! - `GET /bind?PORT` tries to listen on another port and reports how it went;
//! - `GET /lookup?NAME` resolves a name and lists the addresses;
//! - `GET /crash` aborts the program (a trap), so the supervisor restarts it;
//! - `GET /sleep?MS` answers after MS milliseconds (an in-flight request during shutdown);
//! - `GET /alloc?MIB` allocates MIB mebibytes and answers (past `limits.memory`: a trap);
//! - `GET /spin?MS` burns CPU for MS milliseconds without awaiting (a busy guest).
//!
//! `SERVICE_MODE=never-ready` in the environment makes it sleep instead of listening;
//! `SERVICE_MODE=exit` makes it exit at once with status 3 (a crash loop).

use hyper::server::conn::Http;
use hyper::service::service_fn;
use hyper::{Body, Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::OnceLock;
use tokio::net::{TcpListener, TcpStream};

/// Tells replicas apart in responses: the clock reading when this instance started.
static INSTANCE: OnceLock<u128> = OnceLock::new();

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    INSTANCE.get_or_init(|| started);
    if std::env::var("SERVICE_MODE").as_deref() == Ok("exit") {
        eprintln!("exit mode: exiting with status 3");
        std::process::exit(3);
    }
    if std::env::var("SERVICE_MODE").as_deref() == Ok("never-ready") {
        println!("never-ready mode: not listening");
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    }
    // SERVICE_LISTEN lets the benchmark run the same program natively on a loopback port;
    // under Wasmgate it is unset and the program binds what its code says.
    let addr = std::env::var("SERVICE_LISTEN")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 8080)));
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {addr}");
    loop {
        // Propagating accept errors with `?` is how most published examples are written;
        // the host must not turn a client's early reset into an error here.
        let (stream, _peer) = listener.accept().await?;
        let local_port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
        tokio::task::spawn(async move {
            let service = service_fn(move |request| handle(request, local_port));
            if let Err(error) = Http::new().serve_connection(stream, service).await {
                eprintln!("connection error: {error}");
            }
        });
    }
}

async fn handle(request: Request<Body>, local_port: u16) -> Result<Response<Body>, Infallible> {
    let query = request.uri().query().unwrap_or("").to_string();
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/") => text(
            StatusCode::OK,
            format!(
                "hello from a WasmEdge-style service (local port {local_port}, instance {})\n",
                INSTANCE.get().copied().unwrap_or(0)
            ),
        ),
        // The request's headers as the service got them, one `name: value` a line.
        (&Method::GET, "/headers") => text(
            StatusCode::OK,
            request
                .headers()
                .iter()
                .map(|(name, value)| format!("{name}: {}\n", value.to_str().unwrap_or("?")))
                .collect(),
        ),
        (&Method::POST, "/echo") => match hyper::body::to_bytes(request.into_body()).await {
            Ok(bytes) => Response::new(Body::from(bytes)),
            Err(error) => text(StatusCode::BAD_REQUEST, format!("body error: {error}\n")),
        },
        (&Method::GET, "/connect") => match TcpStream::connect(query.as_str()).await {
            Ok(_) => text(StatusCode::OK, "connected\n".to_string()),
            Err(error) => text(StatusCode::OK, describe(&error)),
        },
        (&Method::GET, "/bind") => {
            let port: u16 = query.parse().unwrap_or(0);
            match TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await {
                Ok(_) => text(StatusCode::OK, "bound\n".to_string()),
                Err(error) => text(StatusCode::OK, describe(&error)),
            }
        }
        (&Method::GET, "/lookup") => match tokio::net::lookup_host(query.as_str()).await {
            Ok(addresses) => {
                let list: Vec<String> = addresses.map(|a| a.to_string()).collect();
                text(StatusCode::OK, format!("{}\n", list.join(" ")))
            }
            Err(error) => text(StatusCode::OK, describe(&error)),
        },
        (&Method::GET, "/crash") => std::process::abort(),
        (&Method::GET, "/sleep") => {
            let ms: u64 = query.parse().unwrap_or(0);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            text(StatusCode::OK, format!("slept {ms} ms\n"))
        }
        (&Method::GET, "/alloc") => {
            let mib: usize = query.parse().unwrap_or(0);
            // Written to, so the pages are really used, not just reserved.
            let block = vec![1u8; mib << 20];
            text(
                StatusCode::OK,
                format!("allocated {} MiB\n", block.len() >> 20),
            )
        }
        (&Method::GET, "/spin") => {
            let ms: u64 = query.parse().unwrap_or(0);
            let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
            let mut turns: u64 = 0;
            while std::time::Instant::now() < until {
                turns = std::hint::black_box(turns.wrapping_add(1));
            }
            text(StatusCode::OK, format!("spun {ms} ms ({turns} turns)\n"))
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".to_string()),
    };
    Ok(response)
}

/// The error's kind and raw OS code, so tests can check the errno a real OS would give.
fn describe(error: &std::io::Error) -> String {
    format!(
        "error kind={:?} errno={}\n",
        error.kind(),
        error.raw_os_error().unwrap_or(-1)
    )
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}

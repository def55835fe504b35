//! A real OTLP trace endpoint for tests: one loopback port that accepts OTLP/HTTP protobuf
//! (`POST /v1/traces`, HTTP/1.1) and OTLP/gRPC (`TraceService/Export`, HTTP/2 without TLS),
//! decodes each export with the `opentelemetry-proto` types and keeps the spans for
//! assertions. It runs on its own thread and runtime, so sync and async tests can use it.

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The gRPC method of OTLP trace export.
pub const GRPC_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// How an export reached the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    HttpProtobuf,
    Grpc,
}

/// One received span with what came with it.
#[derive(Debug, Clone)]
pub struct Received {
    pub transport: Transport,
    pub resource: Vec<KeyValue>,
    /// The export request's headers (e.g. from `OTEL_EXPORTER_OTLP_HEADERS`).
    pub headers: http::HeaderMap,
    pub span: Span,
}

#[derive(Default)]
struct Inbox {
    spans: Vec<Received>,
    exports: usize,
}

/// The receiver; stops when dropped.
pub struct OtlpReceiver {
    addr: SocketAddr,
    inbox: Arc<Mutex<Inbox>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    tls: bool,
}

impl OtlpReceiver {
    pub fn start() -> OtlpReceiver {
        OtlpReceiver::serving(None)
    }

    /// A receiver behind TLS with `config` (which decides the certificate, whether client
    /// certificates are required, and the ALPN protocols: `h2` for gRPC, `http/1.1`).
    pub fn start_tls(config: Arc<tokio_rustls::rustls::ServerConfig>) -> OtlpReceiver {
        OtlpReceiver::serving(Some(tokio_rustls::TlsAcceptor::from(config)))
    }

    fn serving(tls: Option<tokio_rustls::TlsAcceptor>) -> OtlpReceiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let served = inbox.clone();
        let secure = tls.is_some();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("receiver runtime");
            runtime.block_on(serve(listener, served, stopped, tls));
        });
        OtlpReceiver {
            addr,
            inbox,
            stop: Some(stop),
            tls: secure,
        }
    }

    /// The base URL, for `OTEL_EXPORTER_OTLP_ENDPOINT` with either protocol; `https://localhost`
    /// for a TLS receiver (its certificate names `localhost`).
    pub fn endpoint(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    pub fn spans(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().spans.clone()
    }

    /// Export requests received so far.
    pub fn exports(&self) -> usize {
        self.inbox.lock().unwrap().exports
    }

    /// Waits up to `timeout` until the spans received satisfy `done`; returns them either way.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let spans = self.spans();
            if done(&spans) || started.elapsed() > timeout {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    inbox: Arc<Mutex<Inbox>>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = &mut stopped => return,
        };
        let inbox = inbox.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let inbox = inbox.clone();
                async move { Ok::<_, Infallible>(answer(request, &inbox).await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            match tls {
                // A client the TLS handshake refuses (an untrusted or missing certificate)
                // never gets to export.
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            }
        });
    }
}

type Reply = http::Response<http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>>;

async fn answer(request: http::Request<Incoming>, inbox: &Mutex<Inbox>) -> Reply {
    let path = request.uri().path().to_string();
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return plain(400, "cannot read the body");
    };
    match path.as_str() {
        "/v1/traces" => match ExportTraceServiceRequest::decode(body) {
            Ok(export) => {
                keep(inbox, Transport::HttpProtobuf, &parts.headers, export);
                let reply = ExportTraceServiceResponse::default().encode_to_vec();
                http::Response::builder()
                    .header("content-type", "application/x-protobuf")
                    .body(Full::new(Bytes::from(reply)).boxed_unsync())
                    .unwrap()
            }
            Err(e) => plain(400, &format!("not an ExportTraceServiceRequest: {e}")),
        },
        GRPC_PATH => {
            let mut frame = body;
            if frame.len() < 5 || frame[0] != 0 {
                return grpc_status(3, "expected one uncompressed gRPC message");
            }
            frame.advance(1);
            let length = frame.get_u32() as usize;
            if frame.len() != length {
                return grpc_status(3, "the message length does not match the frame");
            }
            match ExportTraceServiceRequest::decode(frame) {
                Ok(export) => {
                    keep(inbox, Transport::Grpc, &parts.headers, export);
                    let reply = ExportTraceServiceResponse::default().encode_to_vec();
                    let mut framed = vec![0u8];
                    framed.extend_from_slice(&(reply.len() as u32).to_be_bytes());
                    framed.extend_from_slice(&reply);
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    let body = Full::new(Bytes::from(framed))
                        .with_trailers(async move { Some(Ok(trailers)) })
                        .boxed_unsync();
                    http::Response::builder()
                        .header("content-type", "application/grpc")
                        .body(body)
                        .unwrap()
                }
                Err(e) => grpc_status(3, &format!("not an ExportTraceServiceRequest: {e}")),
            }
        }
        _ => plain(404, "not an OTLP trace path"),
    }
}

fn keep(
    inbox: &Mutex<Inbox>,
    transport: Transport,
    headers: &http::HeaderMap,
    export: ExportTraceServiceRequest,
) {
    let mut inbox = inbox.lock().unwrap();
    inbox.exports += 1;
    for resource_spans in export.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                inbox.spans.push(Received {
                    transport,
                    resource: resource.clone(),
                    headers: headers.clone(),
                    span,
                });
            }
        }
    }
}

fn plain(status: u16, text: &str) -> Reply {
    http::Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(text.to_string())).boxed_unsync())
        .unwrap()
}

/// A "trailers-only" gRPC failure.
fn grpc_status(code: u8, message: &str) -> Reply {
    http::Response::builder()
        .header("content-type", "application/grpc")
        .header("grpc-status", code.to_string())
        .header(
            "grpc-message",
            message.replace(|c: char| !c.is_ascii_graphic(), " "),
        )
        .body(Full::new(Bytes::new()).boxed_unsync())
        .unwrap()
}

/// A span attribute's value, as text (strings as they are, numbers and booleans formatted).
pub fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(n) => n.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

/// An id (trace or span) as lowercase hex, the way `traceparent` writes it.
pub fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

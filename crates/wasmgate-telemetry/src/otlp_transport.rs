//! Sending one encoded `ExportTraceServiceRequest` to the collector: OTLP/HTTP (a protobuf
//! POST over HTTP/1.1) or OTLP/gRPC (a unary call over HTTP/2), plain or TLS. One connection
//! is kept and reused; a failed one is dropped and the next export connects again.
//!
//! gRPC is only framing here (a 5-byte length prefix, `grpc-status` in the trailers), so the
//! exporter needs no gRPC stack besides the hyper the server already has.

use crate::otlp::OtlpConfig;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The gRPC method OTLP/gRPC trace export calls.
pub const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("the collector answered HTTP {0}")]
    Status(http::StatusCode),
    #[error("the collector answered gRPC status {code}: {message}")]
    Grpc { code: String, message: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("bad request: {0}")]
    Request(#[from] http::Error),
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

enum Connection {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

pub struct Transport {
    protocol: Protocol,
    endpoint: http::Uri,
    /// For an `https://` endpoint: the client configuration, made once (or why it could
    /// not be, reported by every export).
    tls: Option<Result<Arc<rustls::ClientConfig>, String>>,
    host: String,
    port: u16,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    timeout: Duration,
    connection: Option<Connection>,
}

impl Transport {
    pub fn new(config: &OtlpConfig) -> Transport {
        let tls = config.endpoint.scheme_str() == Some("https");
        let host = config
            .endpoint
            .host()
            .unwrap_or("localhost")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = config
            .endpoint
            .port_u16()
            .unwrap_or(if tls { 443 } else { 80 });
        let alpn: &[u8] = match config.protocol {
            Protocol::Grpc => b"h2",
            Protocol::HttpProtobuf => b"http/1.1",
        };
        let tls = tls.then(|| config.tls.client_config(alpn).map(Arc::new));
        Transport {
            protocol: config.protocol,
            endpoint: config.endpoint.clone(),
            tls,
            host,
            port,
            headers: config.headers.clone(),
            timeout: config.timeout,
            connection: None,
        }
    }

    pub fn endpoint(&self) -> &http::Uri {
        &self.endpoint
    }

    /// Bytes of framing the protocol puts in front of a message (gRPC's length prefix).
    pub fn prefix_len(&self) -> usize {
        match self.protocol {
            Protocol::Grpc => GRPC_PREFIX_LEN,
            Protocol::HttpProtobuf => 0,
        }
    }

    /// Writes the framing in front of the message that starts at `message_start` and runs to
    /// the end of `buf` (which has [`Transport::prefix_len`] bytes free before it), and returns
    /// where the framed message starts.
    pub fn write_prefix(&self, buf: &mut [u8], message_start: usize) -> usize {
        match self.protocol {
            Protocol::Grpc => {
                let start = message_start - GRPC_PREFIX_LEN;
                let len = (buf.len() - message_start) as u32;
                // Not compressed, then the length, big-endian.
                buf[start] = 0;
                buf[start + 1..message_start].copy_from_slice(&len.to_be_bytes());
                start
            }
            Protocol::HttpProtobuf => message_start,
        }
    }

    /// Sends one export request, already framed by [`Transport::write_prefix`], and waits for
    /// the collector's answer.
    pub async fn export(&mut self, message: Bytes) -> Result<(), ExportError> {
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, self.try_export(message))
            .await
            .unwrap_or(Err(ExportError::Timeout(timeout)));
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    async fn try_export(&mut self, message: Bytes) -> Result<(), ExportError> {
        let mut connection = match self.connection.take() {
            Some(Connection::Http1(sender)) if !sender.is_closed() => Connection::Http1(sender),
            Some(Connection::Http2(sender)) if !sender.is_closed() => Connection::Http2(sender),
            _ => self.connect().await?,
        };
        let result = match &mut connection {
            Connection::Http1(sender) => self.post_protobuf(sender, message).await,
            Connection::Http2(sender) => self.call_grpc(sender, message).await,
        };
        self.connection = Some(connection);
        result
    }

    async fn connect(&self) -> Result<Connection, ExportError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(ExportError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = if let Some(config) = &self.tls {
            let config = config.clone().map_err(ExportError::Tls)?;
            let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                .map_err(|e| ExportError::Tls(e.to_string()))?;
            let connector = tokio_rustls::TlsConnector::from(config);
            Box::new(
                connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| ExportError::Tls(e.to_string()))?,
            )
        } else {
            Box::new(tcp)
        };
        let io = TokioIo::new(io);
        Ok(match self.protocol {
            Protocol::HttpProtobuf => {
                let (sender, connection) = http1::handshake(io).await?;
                tokio::spawn(connection);
                Connection::Http1(sender)
            }
            Protocol::Grpc => {
                let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await?;
                tokio::spawn(connection);
                Connection::Http2(sender)
            }
        })
    }

    fn request(
        &self,
        uri: http::Uri,
        content_type: &'static str,
        body: Bytes,
    ) -> Result<http::Request<Full<Bytes>>, ExportError> {
        let mut builder = http::Request::post(uri).header(http::header::CONTENT_TYPE, content_type);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        Ok(builder.body(Full::new(body))?)
    }

    async fn post_protobuf(
        &self,
        sender: &mut http1::SendRequest<Full<Bytes>>,
        message: Bytes,
    ) -> Result<(), ExportError> {
        // HTTP/1.1 sends the path in the request line and the authority as `Host`.
        let path = self
            .endpoint
            .path_and_query()
            .map_or("/v1/traces", |p| p.as_str())
            .parse::<http::Uri>()
            .map_err(http::Error::from)?;
        let mut request = self.request(path, "application/x-protobuf", message)?;
        if let Some(authority) = self.endpoint.authority() {
            if let Ok(host) = http::HeaderValue::from_str(authority.as_str()) {
                request.headers_mut().insert(http::header::HOST, host);
            }
        }
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        // Read the answer to the end so the connection can carry the next export.
        let _ = response.into_body().collect().await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(ExportError::Status(status))
        }
    }

    async fn call_grpc(
        &self,
        sender: &mut http2::SendRequest<Full<Bytes>>,
        message: Bytes,
    ) -> Result<(), ExportError> {
        let mut uri = http::Uri::builder().path_and_query(GRPC_EXPORT_PATH);
        if let Some(scheme) = self.endpoint.scheme() {
            uri = uri.scheme(scheme.clone());
        }
        if let Some(authority) = self.endpoint.authority() {
            uri = uri.authority(authority.clone());
        }
        let mut request = self.request(uri.build()?, "application/grpc", message)?;
        request
            .headers_mut()
            .insert(http::header::TE, http::HeaderValue::from_static("trailers"));
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let (head, body) = response.into_parts();
        if !head.status.is_success() {
            return Err(ExportError::Status(head.status));
        }
        let collected = body.collect().await?;
        // A failure may come as headers only ("trailers-only"), or in the trailers.
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let field = |name: &str| {
            trailers
                .get(name)
                .or_else(|| head.headers.get(name))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        match field("grpc-status").as_deref() {
            Some("0") => Ok(()),
            code => Err(ExportError::Grpc {
                code: code.unwrap_or("missing").to_string(),
                message: field("grpc-message").unwrap_or_default(),
            }),
        }
    }
}

/// A gRPC message's prefix: a compression flag and a 4-byte length.
const GRPC_PREFIX_LEN: usize = 5;

/// A TLS client trusting the public web PKI (webpki-roots), offering `alpn`: what Wasmgate
/// uses to reach hosts on the internet (OTLP collectors, guests' outbound HTTPS).
pub fn public_tls_client_config(alpn: &[u8]) -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .with_root_certificates(roots.clone())
                .with_no_client_auth()
        })
        // ring supports the default versions; this arm only keeps the code total.
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth()
        });
    config.alpn_protocols = vec![alpn.to_vec()];
    config
}

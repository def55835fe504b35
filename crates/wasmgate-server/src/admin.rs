//! The admin listener: operators' endpoints, kept off the public listener.
//!
//! - `GET /metrics`: every metric, as OpenMetrics text when the scraper's `Accept` asks for it
//!   (Prometheus does), otherwise the classic Prometheus text format;
//! - `GET /api/invocations?route=&outcome=&component=&limit=`: recent invocation records,
//!   newest first, as JSON;
//! - `GET /api/invocations/stream?route=&outcome=&component=`: records as they happen, NDJSON;
//! - `GET /healthz`: the process is alive; `GET /readyz`: it is serving (503 once shutting down).

use crate::shutdown::Shutdown;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use wasmgate_runtime::{percent_decode, text_response, ResponseBody};
use wasmgate_telemetry::{
    openmetrics_to_classic, wants_openmetrics, InvocationQuery, Telemetry, CLASSIC_CONTENT_TYPE,
    OPENMETRICS_CONTENT_TYPE,
};

pub struct AdminServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<AdminState>,
}

struct AdminState {
    telemetry: Arc<Telemetry>,
    /// Shared with live streams, which end when it turns true.
    stopping: Arc<AtomicBool>,
}

impl AdminServer {
    pub async fn bind(addr: SocketAddr, telemetry: Arc<Telemetry>) -> std::io::Result<AdminServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(AdminServer {
            listener,
            local_addr,
            state: Arc::new(AdminState {
                telemetry,
                stopping: Arc::new(AtomicBool::new(false)),
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown`; `/readyz` turns 503 as soon as it triggers.
    pub async fn run(self, shutdown: Shutdown) {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        let graceful = GracefulShutdown::new();
        loop {
            let (stream, _) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = shutdown.triggered() => break,
            };
            let state = self.state.clone();
            let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(state.handle(&request)) }
            });
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection.into_owned());
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
        self.state.stopping.store(true, Ordering::Relaxed);
        let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    }
}

impl AdminState {
    fn handle(&self, request: &http::Request<Incoming>) -> http::Response<ResponseBody> {
        if request.method() != http::Method::GET && request.method() != http::Method::HEAD {
            return text(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "admin endpoints answer GET only\n",
            );
        }
        match request.uri().path() {
            "/metrics" => {
                let accept = request
                    .headers()
                    .get(http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok());
                let openmetrics = self.telemetry.metrics.encode();
                if wants_openmetrics(accept) {
                    respond(http::StatusCode::OK, OPENMETRICS_CONTENT_TYPE, openmetrics)
                } else {
                    respond(
                        http::StatusCode::OK,
                        CLASSIC_CONTENT_TYPE,
                        openmetrics_to_classic(&openmetrics),
                    )
                }
            }
            "/api/invocations" => match parse_query(request.uri().query().unwrap_or("")) {
                Ok(query) => {
                    let records = self.telemetry.history.query(&query);
                    let records: Vec<&wasmgate_telemetry::InvocationRecord> =
                        records.iter().map(AsRef::as_ref).collect();
                    let body = serde_json::json!({ "invocations": records });
                    respond(http::StatusCode::OK, "application/json", body.to_string())
                }
                Err(message) => text(http::StatusCode::BAD_REQUEST, &format!("{message}\n")),
            },
            "/api/invocations/stream" => match parse_query(request.uri().query().unwrap_or("")) {
                Ok(query) => crate::follow::stream_response(
                    &self.telemetry,
                    query,
                    self.stopping.clone(),
                ),
                Err(message) => text(http::StatusCode::BAD_REQUEST, &format!("{message}\n")),
            },
            "/healthz" => text(http::StatusCode::OK, "ok\n"),
            "/readyz" if self.stopping.load(Ordering::Relaxed) => {
                text(http::StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
            }
            "/readyz" => text(http::StatusCode::OK, "ready\n"),
            _ => text(
                http::StatusCode::NOT_FOUND,
                "admin endpoints: /metrics /api/invocations /api/invocations/stream /healthz /readyz\n",
            ),
        }
    }
}

/// `route=&outcome=&component=&limit=`; anything else is a 400 naming the key.
fn parse_query(query: &str) -> Result<InvocationQuery, String> {
    let mut parsed = InvocationQuery::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(&value.replace('+', " "));
        match key {
            "route" => parsed.route = Some(value),
            "outcome" => parsed.outcome = Some(value),
            "component" => parsed.component = Some(value),
            "limit" => {
                parsed.limit = Some(
                    value
                        .parse()
                        .map_err(|_| format!("limit must be a number, got {value:?}"))?,
                )
            }
            other => {
                return Err(format!(
                    "unknown parameter {other:?} (use route, outcome, component, limit)"
                ))
            }
        }
    }
    Ok(parsed)
}

fn respond(
    status: http::StatusCode,
    content_type: &'static str,
    body: String,
) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

fn text(status: http::StatusCode, body: &str) -> http::Response<ResponseBody> {
    text_response(status, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters() {
        let query = parse_query("route=%2Fapi%2F...&outcome=trap&limit=5").unwrap();
        assert_eq!(query.route.as_deref(), Some("/api/..."));
        assert_eq!(query.outcome.as_deref(), Some("trap"));
        assert_eq!(query.limit, Some(5));
        assert!(parse_query("limit=x").unwrap_err().contains("limit"));
        assert!(parse_query("bogus=1").unwrap_err().contains("bogus"));
        assert!(parse_query("").is_ok());
    }
}

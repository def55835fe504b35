//! The admin listener: operators' endpoints, kept off the public listener.
//!
//! - `GET /metrics`: every metric, as OpenMetrics text when the scraper's `Accept` asks for it
//!   (Prometheus does), otherwise the classic Prometheus text format;
//! - `GET /api/invocations?route=&outcome=&component=&limit=`: recent invocation records,
//!   newest first, as JSON;
//! - `GET /api/invocations/stream?route=&outcome=&component=`: records as they happen, NDJSON;
//! - `GET /healthz`: the process is alive; `GET /readyz`: it is serving (503 once shutting down).

use crate::shutdown::Shutdown;
use api::AdminState;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

mod api;

pub use api::AdminOptions;

pub struct AdminServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<AdminState>,
}

impl AdminServer {
    pub async fn bind(addr: SocketAddr, options: AdminOptions) -> std::io::Result<AdminServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(AdminServer {
            listener,
            local_addr,
            state: Arc::new(AdminState::new(options)),
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
                async move { Ok::<_, Infallible>(state.handle(request).await) }
            });
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection.into_owned());
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
        self.state.stop();
        let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    }
}

//! The admin listener: operators' endpoints, kept off the public listener.
//!
//! - `GET /metrics`: every metric, as OpenMetrics text when the scraper's `Accept` asks for it
//!   (Prometheus does), otherwise the classic Prometheus text format;
//! - `GET /api/invocations?route=&outcome=&component=&limit=`: recent invocation records,
//!   newest first, as JSON;
//! - `GET /api/invocations/stream?route=&outcome=&component=`: records as they happen, NDJSON;
//! - `GET /api/routes`: per route pattern and component, request rate, wall-time percentiles and
//!   outcomes, computed on request from the history ring (so over its records only);
//! - `GET /api/invocations/{id}`: one record, 404 once the ring has dropped it;
//! - `GET /healthz`: the process is alive; `GET /readyz`: it is serving (503 once shutting down);
//! - `GET /`: the dashboard (`dashboard.rs`), a page built into the binary that reads the
//!   endpoints above.
//!
//! Who may ask is decided in `access.rs` (bearer token, client certificates, loopback-only
//! when neither); this file accepts connections, does the TLS handshake and applies it.

use crate::shutdown::Shutdown;
use crate::tls::{client_verifier, CertificateStore};
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
use tokio_rustls::TlsAcceptor;

mod access;
mod api;
mod dashboard;

pub use access::{AdminAccess, AdminAccessError, AdminTls, AdminToken};
pub use api::{AdminOptions, ReloadApp};

/// Time a client has to finish the TLS handshake, then to send a request's headers.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Access(#[from] AdminAccessError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub struct AdminServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<AdminState>,
    access: Arc<AdminAccess>,
    /// The handshake for HTTPS, and the store whose files it watches.
    tls: Option<(TlsAcceptor, Arc<CertificateStore>)>,
}

impl AdminServer {
    /// Checks `access` against `addr` (an unprotected listener stays on loopback) and loads
    /// the TLS settings before binding, so a refused configuration never opens the port.
    pub async fn bind(
        addr: SocketAddr,
        options: AdminOptions,
        access: AdminAccess,
    ) -> Result<AdminServer, AdminError> {
        access.check_address(addr)?;
        let tls = match &access.tls {
            Some(tls) => {
                let config = match &tls.client_ca {
                    Some(ca) => client_verifier(ca).and_then(|verifier| {
                        tls.certificates.server_config_verifying_clients(verifier)
                    }),
                    None => tls.certificates.server_config(),
                }
                .map_err(AdminAccessError::from)?;
                Some((TlsAcceptor::from(config), tls.certificates.clone()))
            }
            None => None,
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AdminError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| AdminError::Bind { addr, source })?;
        Ok(AdminServer {
            listener,
            local_addr,
            state: Arc::new(AdminState::new(options)),
            access: Arc::new(access),
            tls,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https://ADDR` or `http://ADDR`, for the startup banner.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Serves until `shutdown`; `/readyz` turns 503 as soon as it triggers.
    pub async fn run(self, shutdown: Shutdown) {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(CLIENT_TIMEOUT);
        let graceful = GracefulShutdown::new();
        let reload = self.tls.as_ref().map(|(_, store)| store.watch());
        loop {
            let (stream, remote_addr) = tokio::select! {
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
            let access = self.access.clone();
            let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
                let state = state.clone();
                let access = access.clone();
                async move {
                    if let Some(refused) = access.refusal(&request) {
                        tracing::info!(
                            %remote_addr,
                            path = request.uri().path(),
                            "admin request refused: missing or wrong bearer token"
                        );
                        return Ok::<_, Infallible>(refused);
                    }
                    Ok(state.handle(request).await)
                }
            });
            let Some((acceptor, _)) = &self.tls else {
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection.into_owned());
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                continue;
            };
            let acceptor = acceptor.clone();
            let builder = builder.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                // A missing or foreign client certificate ends here, before any HTTP.
                let handshake = tokio::time::timeout(CLIENT_TIMEOUT, acceptor.accept(stream));
                let stream = match handshake.await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::info!(%remote_addr, error = %e, "admin TLS handshake refused");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%remote_addr, "admin TLS handshake timed out");
                        return;
                    }
                };
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let _ = watcher.watch(connection.into_owned()).await;
            });
        }
        if let Some(reload) = reload {
            reload.abort();
        }
        self.state.stop();
        let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    }
}

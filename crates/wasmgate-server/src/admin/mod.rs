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
//! when neither), which also re-reads the credential files when they change; this file
//! accepts connections (at most `--admin-max-connections` at once), does the TLS handshake
//! and applies the rules.

use crate::listener::connection::{serve, Drain};
use crate::listener::{connection_builder, next_connection, ServerOptions};
use crate::shutdown::Shutdown;
use api::AdminState;
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

mod access;
mod api;
mod dashboard;

pub use access::{AdminAccess, AdminAccessError, AdminTls, AdminToken};
pub use api::{AdminOptions, ReloadApp};

/// Time a client has to finish the TLS handshake, then to send a request's headers; also
/// how long a connection may idle between requests.
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
    max_connections: usize,
}

impl AdminServer {
    /// Connections the admin listener serves at once unless told otherwise: operators'
    /// tools, a scraper and a few dashboards need few, and each costs a task and buffers.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

    /// Checks `access` against `addr` (an unprotected listener stays on loopback) before
    /// binding, so a refused configuration never opens the port.
    pub async fn bind(
        addr: SocketAddr,
        mut options: AdminOptions,
        access: AdminAccess,
    ) -> Result<AdminServer, AdminError> {
        access.check_address(addr)?;
        let access = Arc::new(access);
        // `POST /api/reload` re-reads the admin credentials as well as the app.
        options.reload = options.reload.map(|app| {
            Arc::new(ReloadCredentialsToo {
                app,
                access: access.clone(),
            }) as Arc<dyn ReloadApp>
        });
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
            access,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        })
    }

    /// Serve at most `max` connections at once; further ones wait in the kernel's backlog.
    pub fn max_connections(mut self, max: usize) -> AdminServer {
        self.max_connections = max.max(1);
        self
    }

    /// The access rules in service, to reload them (SIGHUP).
    pub fn access(&self) -> Arc<AdminAccess> {
        self.access.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https://ADDR` or `http://ADDR`, for the startup banner.
    pub fn url(&self) -> String {
        let scheme = if self.access.tls_config().is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Serves until `shutdown`; `/readyz` turns 503 as soon as it triggers.
    pub async fn run(self, shutdown: Shutdown) {
        let builder = connection_builder(CLIENT_TIMEOUT, ServerOptions::DEFAULT_MAX_HEADER_BYTES);
        // Without a cap, anyone who can reach the port could exhaust the process's file
        // descriptors, and with them the public listener.
        let connection_slots = Arc::new(Semaphore::new(self.max_connections));
        let drain = Drain::new();
        let reload = self.access.watch();
        while let Some((stream, remote_addr, slot)) =
            next_connection(&self.listener, &connection_slots, &shutdown, "admin").await
        {
            let service = AdminService {
                state: self.state.clone(),
                access: self.access.clone(),
                remote_addr,
            };
            let stop = drain.watcher();
            let builder = builder.clone();
            // Taken per connection: a new client CA applies from the next handshake on.
            let tls = self.access.tls_config().map(TlsAcceptor::from);
            tokio::spawn(async move {
                let _slot = slot;
                let Some(acceptor) = tls else {
                    let _ = serve(&builder, stream, service, CLIENT_TIMEOUT, stop).await;
                    return;
                };
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
                let _ = serve(&builder, stream, service, CLIENT_TIMEOUT, stop).await;
            });
        }
        reload.abort();
        self.state.stop();
        let _ = tokio::time::timeout(Duration::from_secs(5), drain.shutdown()).await;
    }
}

type AnswerFuture = Pin<
    Box<
        dyn Future<Output = Result<http::Response<wasmgate_runtime::ResponseBody>, Infallible>>
            + Send,
    >,
>;

/// One connection's requests: refused without the right token, else answered.
struct AdminService {
    state: Arc<AdminState>,
    access: Arc<AdminAccess>,
    remote_addr: SocketAddr,
}

impl hyper::service::Service<http::Request<Incoming>> for AdminService {
    type Response = http::Response<wasmgate_runtime::ResponseBody>;
    type Error = Infallible;
    type Future = AnswerFuture;

    fn call(&self, request: http::Request<Incoming>) -> AnswerFuture {
        if let Some(refused) = self.access.refusal(&request) {
            tracing::info!(
                remote_addr = %self.remote_addr,
                path = request.uri().path(),
                "admin request refused: missing or wrong bearer token"
            );
            return Box::pin(std::future::ready(Ok(refused)));
        }
        let state = self.state.clone();
        Box::pin(async move { Ok(state.handle(request).await) })
    }
}

/// `POST /api/reload`: the admin credentials are read again first (whatever happens to the
/// app), and the answer says how that went under `admin_credentials` (absent when the
/// listener has no credential files).
struct ReloadCredentialsToo {
    app: Arc<dyn ReloadApp>,
    access: Arc<AdminAccess>,
}

impl ReloadApp for ReloadCredentialsToo {
    fn reload(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<serde_json::Value, String>> + Send + '_>> {
        Box::pin(async move {
            let credentials = self.access.reload("admin API").await;
            let mut report = self.app.reload().await?;
            let any = credentials.as_object().is_some_and(|c| !c.is_empty());
            if let (true, Some(fields)) = (any, report.as_object_mut()) {
                fields.insert("admin_credentials".to_string(), credentials);
            }
            Ok(report)
        })
    }
}

//! Accepting connections and serving them until shutdown.
//!
//! Each accepted connection gets its own task and is served by hyper-util's auto builder, which
//! speaks HTTP/1.1 (keep-alive) or HTTP/2 (detected from the client preface, so h2c with prior
//! knowledge works). On shutdown the listener closes at once, idle keep-alive connections are
//! closed, in-flight requests finish (up to a grace period), and then `run` returns.

use crate::router::LiveRouter;
use crate::service::Dispatcher;
use crate::shutdown::Shutdown;
use crate::tls::CertificateStore;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use wasmgate_runtime::Scheme;
use wasmgate_telemetry::Telemetry;

#[derive(Clone)]
pub struct ServerOptions {
    /// How long in-flight requests may run after shutdown begins.
    pub shutdown_grace: Duration,
    /// Time a client has to send a request's headers (slow-client protection).
    pub header_read_timeout: Duration,
    /// Where the active-requests gauge lives; `None` keeps no metrics.
    pub telemetry: Option<Arc<Telemetry>>,
    /// Serve HTTPS with these certificates; `None` serves plain HTTP.
    pub tls: Option<Arc<CertificateStore>>,
    /// Connections served at once; further ones wait in the kernel's accept backlog.
    pub max_connections: usize,
    /// Largest request head (HTTP/1.1) or header list (HTTP/2); larger ones get 431.
    pub max_header_bytes: usize,
}

impl ServerOptions {
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 << 10;
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            shutdown_grace: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            telemetry: None,
            tls: None,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_header_bytes: Self::DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    dispatcher: Arc<Dispatcher>,
    options: ServerOptions,
}

impl Server {
    pub async fn bind(
        addr: SocketAddr,
        router: LiveRouter,
        options: ServerOptions,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(Server {
            listener,
            local_addr,
            dispatcher: Arc::new(Dispatcher::new(
                router,
                if options.tls.is_some() {
                    Scheme::Https
                } else {
                    Scheme::Http
                },
                options.telemetry.clone(),
            )),
            options,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local_addr)
    }

    /// Serves until `shutdown` triggers, then drains. Returns once every connection is closed
    /// or the grace period is over.
    pub async fn run(self, shutdown: Shutdown) {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.options.header_read_timeout)
            // hyper answers a head that does not fit with 431; 8 KiB is its minimum.
            .max_buf_size(self.options.max_header_bytes.max(8 << 10))
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.options.max_header_bytes).unwrap_or(u32::MAX));
        // Each connection costs a task, buffers and a file descriptor: past the cap, new ones
        // wait in the kernel's backlog (and beyond that are refused by it) rather than being
        // accepted only to starve the ones already served.
        let connection_slots = Arc::new(Semaphore::new(self.options.max_connections.max(1)));
        let graceful = GracefulShutdown::new();
        let tls = match &self.options.tls {
            Some(store) => match store.server_config() {
                Ok(config) => Some((TlsAcceptor::from(config), store.watch())),
                Err(e) => {
                    tracing::error!(error = %e, "cannot configure TLS; not serving");
                    return;
                }
            },
            None => None,
        };

        loop {
            let slot = tokio::select! {
                slot = connection_slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
                () = shutdown.triggered() => break,
            };
            let (stream, remote_addr) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Typically EMFILE: back off instead of spinning, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = shutdown.triggered() => break,
            };
            // Responses are written in one go; Nagle would only delay them.
            let _ = stream.set_nodelay(true);
            let local_addr = stream.local_addr().unwrap_or(self.local_addr);
            let service = self.dispatcher.service(remote_addr, local_addr);
            let Some((acceptor, _)) = &tls else {
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection.into_owned());
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = connection.await {
                        tracing::debug!(%remote_addr, error = %e, "connection ended with an error");
                    }
                });
                continue;
            };
            let acceptor = acceptor.clone();
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let handshake_timeout = self.options.header_read_timeout;
            tokio::spawn(async move {
                let _slot = slot;
                // A client that never finishes its handshake is a slow client too.
                let stream =
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%remote_addr, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%remote_addr, "TLS handshake timed out");
                            return;
                        }
                    };
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                if let Err(e) = watcher.watch(connection.into_owned()).await {
                    tracing::debug!(%remote_addr, error = %e, "connection ended with an error");
                }
            });
        }
        if let Some((_, reload)) = &tls {
            reload.abort();
        }

        drop(self.listener);
        let open = graceful.count();
        tracing::info!(
            open_connections = open,
            "shutting down: no longer accepting"
        );
        match tokio::time::timeout(self.options.shutdown_grace, graceful.shutdown()).await {
            Ok(()) => tracing::info!("all connections drained"),
            Err(_) => tracing::warn!(
                grace_s = self.options.shutdown_grace.as_secs(),
                "grace period over; dropping remaining connections"
            ),
        }
    }
}

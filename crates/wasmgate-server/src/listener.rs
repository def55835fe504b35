//! Accepting connections and serving them until shutdown.
//!
//! Each accepted connection gets its own task and is served by hyper-util's auto builder, which
//! speaks HTTP/1.1 (keep-alive) or HTTP/2 (detected from the client preface, so h2c with prior
//! knowledge works). `connection.rs` serves each one and closes it once it idles (that is
//! also what stops slow HTTP/2 clients). On shutdown the listener closes at once, idle
//! keep-alive connections are closed, in-flight requests finish (up to a grace period), and
//! then `run` returns.

use crate::router::LiveRouter;
use crate::service::Dispatcher;
use crate::shutdown::Shutdown;
use crate::tls::CertificateStore;
use connection::{serve, Drain};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use wasmgate_runtime::Scheme;
use wasmgate_telemetry::Telemetry;

pub(crate) mod connection;

#[derive(Clone)]
pub struct ServerOptions {
    /// How long in-flight requests may run after shutdown begins.
    pub shutdown_grace: Duration,
    /// Slow-client protection: the time a client has to finish the TLS handshake, then to
    /// send a request's headers (HTTP/1.1 and HTTP/2); also how long a connection may stay
    /// open with no request in flight. Requests running longer are not cut.
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
        let client_timeout = self.options.header_read_timeout;
        let builder = connection_builder(client_timeout, self.options.max_header_bytes);
        // Each connection costs a task, buffers and a file descriptor: past the cap, new ones
        // wait in the kernel's backlog (and beyond that are refused by it) rather than being
        // accepted only to starve the ones already served.
        let connection_slots = Arc::new(Semaphore::new(self.options.max_connections.max(1)));
        let drain = Drain::new();
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

        while let Some((stream, remote_addr, slot)) =
            next_connection(&self.listener, &connection_slots, &shutdown, "public").await
        {
            // Responses are written in one go; Nagle would only delay them.
            let _ = stream.set_nodelay(true);
            let local_addr = stream.local_addr().unwrap_or(self.local_addr);
            let service = self.dispatcher.service(remote_addr, local_addr);
            // Taken before the task starts, so a drain that begins now still waits for it.
            let stop = drain.watcher();
            let builder = builder.clone();
            let acceptor = tls.as_ref().map(|(acceptor, _)| acceptor.clone());
            tokio::spawn(async move {
                let _slot = slot;
                let served = match acceptor {
                    None => serve(&builder, stream, service, client_timeout, stop).await,
                    Some(acceptor) => {
                        // A client that never finishes its handshake is a slow client too.
                        let stream = match tokio::time::timeout(
                            client_timeout,
                            acceptor.accept(stream),
                        )
                        .await
                        {
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
                        serve(&builder, stream, service, client_timeout, stop).await
                    }
                };
                if let Err(e) = served {
                    tracing::debug!(%remote_addr, error = %e, "connection ended with an error");
                }
            });
        }
        if let Some((_, reload)) = &tls {
            reload.abort();
        }

        drop(self.listener);
        let open = drain.count();
        tracing::info!(
            open_connections = open,
            "shutting down: no longer accepting"
        );
        match tokio::time::timeout(self.options.shutdown_grace, drain.shutdown()).await {
            Ok(()) => tracing::info!("all connections drained"),
            Err(_) => tracing::warn!(
                grace_s = self.options.shutdown_grace.as_secs(),
                "grace period over; dropping remaining connections"
            ),
        }
    }
}

/// The next connection to serve, once one of `slots` is free, with the slot it holds; `None`
/// once `shutdown` triggers. A failed accept (typically EMFILE) is logged and retried after a
/// short pause instead of spinning; the listener keeps serving.
pub(crate) async fn next_connection(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    shutdown: &Shutdown,
    which: &'static str,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let slot = tokio::select! {
        slot = slots.clone().acquire_owned() => slot.ok()?,
        () = shutdown.triggered() => return None,
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote_addr)) => return Some((stream, remote_addr, slot)),
                Err(e) => {
                    tracing::warn!(listener = which, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = shutdown.triggered() => return None,
        }
    }
}

/// HTTP/1.1 and HTTP/2 as both listeners serve them. `client_timeout` bounds an HTTP/1.1
/// request head (hyper's timer); the idle close in [`connection`] covers HTTP/2 and the
/// version sniffing. HTTP/2 pings at the same interval find peers that vanished while a long
/// request runs (no FIN, no RST), which the idle close deliberately leaves alone.
pub(crate) fn connection_builder(
    client_timeout: Duration,
    max_header_bytes: usize,
) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(client_timeout)
        // hyper answers a head that does not fit with 431; 8 KiB is its minimum.
        .max_buf_size(max_header_bytes.max(8 << 10))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(client_timeout)
        .keep_alive_timeout(client_timeout)
        .max_header_list_size(u32::try_from(max_header_bytes).unwrap_or(u32::MAX));
    builder
}

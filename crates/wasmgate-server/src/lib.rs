//! The Wasmgate server: accepts TCP connections, speaks HTTP/1.1 and HTTP/2 on them (over TLS
//! with ALPN, or h2c with prior knowledge), routes each request to a component and hands it to that component's
//! executor. It knows executors only through [`wasmgate_runtime::Executor`].
//!
//! A request's path through this crate, one file per hop:
//! `listener.rs` accepts and drains connections, `service.rs` turns a request into a routed
//! call, `router.rs` picks the route, `limits/` guards a route against load, `shutdown.rs` carries the stop signal and `tls.rs` holds the
//! certificates.

mod admin;
mod auth;
mod follow;
mod limits;
mod listener;
mod router;
mod service;
mod shutdown;
mod tls;

pub use admin::{
    AdminAccess, AdminAccessError, AdminError, AdminOptions, AdminServer, AdminTls, AdminToken,
    ReloadApp,
};
pub use auth::{AuthPolicies, AuthSetupError};
pub use limits::{ClientIdentity, RouteLimiter, MAX_TRACKED_CLIENTS};
pub use listener::{Server, ServerOptions};
pub use router::{LiveRouter, RouteTarget, Router};
pub use service::Healthz;
pub use shutdown::Shutdown;
pub use tls::{client_verifier, CertificateFiles, CertificateStore, TlsError, RELOAD_INTERVAL};

//! The Wasmgate server: accepts TCP connections, speaks HTTP/1.1 and HTTP/2 (h2c with prior
//! knowledge) on them, routes each request to a component and hands it to that component's
//! executor. It knows executors only through [`wasmgate_runtime::Executor`].
//!
//! A request's path through this crate, one file per hop:
//! `listener.rs` accepts and drains connections, `service.rs` turns a request into a routed
//! call, `router.rs` picks the route, and `shutdown.rs` carries the stop signal.

mod admin;
mod listener;
mod router;
mod service;
mod shutdown;

pub use admin::AdminServer;
pub use listener::{Server, ServerOptions};
pub use router::{RouteTarget, Router};
pub use service::Healthz;
pub use shutdown::Shutdown;

//! # wasmgate-sdk
//!
//! Write Wasmgate components in plain Rust: a function
//! from request to response, with the host capabilities a manifest can grant.
//!
//! | module | capability | manifest grant |
//! |---|---|---|
//! | [`http`] | the handler: `fn(Request) -> Response`, exported by [`http_handler!`] | a `[[route]]` |
//! | [`outbound`] | HTTP requests to other services | `allowed_outbound_hosts` |
//! | [`kv`] | key-value stores, atomic counters, batches | `key_value_stores` |
//! | [`sql`] | SQL databases (SQLite, MariaDB/MySQL, PostgreSQL) | `sql_databases` |
//! | [`config`] | component variables | `[component.NAME.variables]` |
//! | [`log`] | structured logs in the host | none |
//!
//! Each capability's errors convert into [`Error`], an HTTP error with a fitting status, so a
//! handler returning `Result<Response, Error>` can use `?` throughout. Nothing in the SDK
//! panics on what the host or a client sends; every failure is a `Result`.
//!
//! Build for `wasm32-wasip2` as a `cdylib` (`cargo build --release --target wasm32-wasip2`):
//! rustc then emits a component directly. The crate also compiles on other targets, so it can
//! sit in a host workspace and be unit-tested, but calling the host there panics (logging
//! prints to stderr instead).
//!
//! ## Example
//!
//! A counter service: `POST /hits/{page}` counts a visit, `GET /hits/{page}` reads the count,
//! `GET /pages` lists pages from a SQL table.
//!
//! ```no_run
//! use wasmgate_sdk::http::{json, Method, Request, RequestExt, Response};
//! use wasmgate_sdk::kv::Store;
//! use wasmgate_sdk::sql::Database;
//! use wasmgate_sdk::{log, params, Error};
//!
//! fn handle(request: Request) -> Result<Response, Error> {
//!     let store = Store::open("default")?;
//!     match (request.method(), request.path_segments().as_slice()) {
//!         (&Method::POST, ["hits", page]) => {
//!             let hits = store.increment(&format!("hits:{page}"), 1)?;
//!             log::info!("page {page} has {hits} hits");
//!             Ok(json(&serde_json::json!({ "page": page, "hits": hits })))
//!         }
//!         (&Method::GET, ["hits", page]) => {
//!             let hits = store.increment(&format!("hits:{page}"), 0)?;
//!             Ok(json(&serde_json::json!({ "page": page, "hits": hits })))
//!         }
//!         (&Method::GET, ["pages"]) => {
//!             let db = Database::open("default")?;
//!             let rows = db.query("SELECT name FROM pages WHERE hidden = ?", params![false])?;
//!             let names = rows
//!                 .iter()
//!                 .map(|row| row.get::<String>("name"))
//!                 .collect::<Result<Vec<_>, _>>()?;
//!             Ok(json(&names))
//!         }
//!         _ => Err(Error::not_found("no such route")),
//!     }
//! }
//!
//! wasmgate_sdk::http_handler!(handle);
//! # fn main() {}
//! ```
//!
//! with this manifest:
//!
//! ```toml
//! [app]
//! name = "hits"
//!
//! [[route]]
//! path = "/..."
//! component = "hits"
//!
//! [component.hits]
//! source = "target/wasm32-wasip2/release/hits.wasm"
//! key_value_stores = ["default"]
//! sql_databases = ["default"]
//! ```
//!
//! `examples/todo` in the Wasmgate repository is a complete service built on this SDK.
//!
//! ## Features
//!
//! - `json` (default): JSON helpers ([`http::json`], [`http::RequestExt::json`],
//!   [`kv::Store::get_json`], [`kv::Store::set_json`]), with `serde` and `serde_json`.

#![warn(missing_docs)]

mod bindings;
mod body;
mod error;
mod headers;

pub mod config;
pub mod http;
pub mod kv;
pub mod log;
pub mod outbound;
pub mod sql;

pub use error::Error;

/// What the SDK's macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use wasip2;
}

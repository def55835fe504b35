//! The Wasmgate app manifest (`wasmgate.toml`): its types, parsing and validation.
//!
//! This crate knows nothing of wasmtime or HTTP listeners. It turns a TOML file into a
//! [`Manifest`] whose every value has been checked, or into a [`ManifestError`] that names the
//! file, line, column and field at fault, so a user can fix their manifest without guessing.
//!
//! ```no_run
//! let manifest = wasmgate_manifest::Manifest::load("examples/hello/wasmgate.toml")?;
//! for route in &manifest.routes {
//!     println!("{} -> {}", route.path, route.component);
//! }
//! # Ok::<(), wasmgate_manifest::ManifestError>(())
//! ```

mod error;
mod location;
mod model;
mod parse;
mod raw;
mod units;

pub use error::ManifestError;
pub use model::{App, Component, Executor, FileMount, Limits, Manifest, Route, RoutePath};
pub use units::{parse_duration, parse_size};

/// The file name `wasmgate up DIR` looks for inside DIR.
pub const MANIFEST_FILE_NAME: &str = "wasmgate.toml";

//! Errors from loading components: each names the component and what is wrong with it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot configure the wasmtime engine: {0:#}")]
    Engine(#[source] wasmtime::Error),

    #[error("component `{component}`: cannot read {}: {source}", path.display())]
    Read {
        component: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The bytes are not a valid component (the message carries the byte offset).
    #[error("component `{component}`: {} is not a valid WebAssembly component: {message}", path.display())]
    Compile {
        component: String,
        path: PathBuf,
        message: String,
    },

    /// The component imports something Wasmgate does not provide.
    #[error("component `{component}` cannot be served: {message}")]
    Link { component: String, message: String },

    /// The component does not export what its executor needs.
    #[error("component `{component}` is not a wasi:http proxy component: {message}")]
    NotAProxy { component: String, message: String },
}

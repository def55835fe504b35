//! Errors from loading components: each names the component and what is wrong with it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot configure the wasmtime engine")]
    Engine(#[source] wasmtime::Error),

    /// The instance pool could not reserve its virtual address space.
    #[error(
        "cannot reserve the instance pool ({instances} instances, sized from the sum of every \
         component's limits.max_concurrency): {message}; lower max_concurrency, or allow more \
         virtual memory (ulimit -v, vm.overcommit_memory)"
    )]
    Pool { instances: u32, message: String },

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

    /// The component was granted something the runtime config cannot provide.
    #[error(transparent)]
    Capability(#[from] wasmgate_capabilities::CapabilityError),

    /// The component does not export what its executor needs.
    #[error("component `{component}` is not a wasi:http proxy component: {message}")]
    NotAProxy { component: String, message: String },
}

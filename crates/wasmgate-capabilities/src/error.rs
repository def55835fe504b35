//! Why an app's capabilities could not be set up. Each error names the component, variable,
//! store or database at fault and, where it helps, the file to fix.

#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("variable {name:?} is required but has no value: set WASMGATE_VAR_{env} or add it to [variables] in {config}")]
    MissingVariable {
        name: String,
        env: String,
        config: String,
    },

    #[error("component {component:?} is granted {kind} {name:?}, which {config} does not define (add [{table}.{name}])")]
    UnknownBackend {
        component: String,
        kind: &'static str,
        table: &'static str,
        name: String,
        config: String,
    },

    #[error("cannot open {kind} {name:?} ({backend}): {message}")]
    Open {
        kind: &'static str,
        name: String,
        backend: &'static str,
        message: String,
    },
}

//! Host interfaces Wasmgate grants to guests, one module per capability.
//!
//! Every capability has the same shape:
//! - a grant in the manifest (`allowed_outbound_hosts`, `key_value_stores`, `sql_databases`,
//!   `variables`), checked when the app loads;
//! - runtime config (backends and credentials, from [`RuntimeConfig`]), never visible to guests;
//! - `add_to_linker` once per engine, and per-instance state built from the component's grant;
//! - telemetry: each host call is counted and timed in [`HostCalls`].
//!
//! A component gets nothing it was not granted: opening a store or database it was not granted
//! fails as the interface's "access denied" error, and outbound requests to hosts outside its
//! allow-list fail with `HttpRequestDenied`.
//!
//! [`Capabilities`] holds the app's backends (opened once); [`Grant`] is one component's share
//! of them (built at load); [`InstanceCaps`] is what one instance's store holds.

mod error;
pub mod key_value;
pub mod logging;
pub mod outbound_http;
pub mod sql;
mod stats;
pub mod variables;

pub use error::CapabilityError;
pub use stats::{CallSummary, Capability, HostCallStats, HostCalls, TracedCall, MAX_TRACED_CALLS};

use std::sync::Arc;
use wasmgate_manifest::{Component, Manifest, RuntimeConfig};
use wasmgate_telemetry::TraceContext;
use wasmtime::component::{Linker, ResourceTable};

/// The app's backends and resolved variables, opened once when the app loads.
pub struct Capabilities {
    config: RuntimeConfig,
    variables: variables::Resolved,
    key_value: key_value::Stores,
    sql: sql::Databases,
}

impl Capabilities {
    /// Resolves variables and opens every backend some component of `manifest` is granted.
    /// Fails naming the variable, store or database at fault.
    pub async fn open(
        manifest: &Manifest,
        config: RuntimeConfig,
    ) -> Result<Capabilities, CapabilityError> {
        let variables =
            variables::Resolved::new(manifest, &config, |name| std::env::var(name).ok())?;
        let key_value = key_value::Stores::open(manifest, &config).await?;
        let sql = sql::Databases::open(manifest, &config).await?;
        Ok(Capabilities {
            config,
            variables,
            key_value,
            sql,
        })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// What `component` may use, checked against the runtime config.
    pub fn grant(&self, component: &Component) -> Result<Grant, CapabilityError> {
        Ok(Grant {
            inner: Arc::new(GrantInner {
                component: Arc::from(component.name.as_str()),
                outbound: outbound_http::Policy::new(component, &self.config.outbound_http),
                variables: self.variables.for_component(component)?,
                key_value: self.key_value.grant(component)?,
                sql: self.sql.grant(component)?,
            }),
        })
    }
}

/// One component's capabilities; cheap to clone, shared by all its instances.
#[derive(Clone)]
pub struct Grant {
    inner: Arc<GrantInner>,
}

struct GrantInner {
    component: Arc<str>,
    outbound: Arc<outbound_http::Policy>,
    variables: Arc<wasmtime_wasi_config::WasiConfigVariables>,
    key_value: key_value::Grant,
    sql: sql::Grant,
}

/// Who is calling: tags log records and spans of host calls.
#[derive(Debug, Clone)]
pub struct InvocationInfo {
    pub invocation_id: u64,
    /// The request's span: outbound requests carry a child of it in `traceparent`.
    pub trace: TraceContext,
    /// The caller's `tracestate` (`wasmgate_telemetry::tracestate_to_propagate`), passed on
    /// with `traceparent`.
    pub tracestate: Option<http::HeaderValue>,
}

impl Grant {
    /// A grant with nothing in it: every capability denied (tests, and components loaded
    /// without an app).
    pub fn none(component: &Component) -> Grant {
        Grant {
            inner: Arc::new(GrantInner {
                component: Arc::from(component.name.as_str()),
                outbound: outbound_http::Policy::deny_all(),
                variables: Arc::default(),
                key_value: key_value::Grant::default(),
                sql: sql::Grant::default(),
            }),
        }
    }

    /// Fresh per-instance state for one invocation.
    pub fn instance(&self, invocation: InvocationInfo) -> InstanceCaps {
        let calls = HostCalls::default();
        InstanceCaps {
            outbound: outbound_http::Hooks::new(
                self.inner.outbound.clone(),
                calls.clone(),
                invocation.trace,
                invocation.tracestate.clone(),
            ),
            key_value: key_value::InstanceState::new(&self.inner.key_value),
            sql: sql::InstanceState::new(&self.inner.sql),
            logging: logging::State::new(self.inner.component.clone(), &invocation),
            grant: self.clone(),
            calls,
            spans: None,
        }
    }
}

/// What one instance's store holds for its capabilities.
pub struct InstanceCaps {
    grant: Grant,
    /// The `wasi:http` hooks enforcing the outbound policy; the runtime's `WasiHttpView` hands
    /// out `&mut` to these.
    pub outbound: outbound_http::Hooks,
    pub key_value: key_value::InstanceState,
    pub sql: sql::InstanceState,
    pub logging: logging::State,
    /// Host calls made so far, by capability; read for the invocation record.
    pub calls: HostCalls,
    /// Where host calls add their spans; `None` (nothing collected) unless span export is on.
    pub spans: Option<wasmgate_telemetry::spans::SpanBuffer>,
}

impl InstanceCaps {
    pub fn component(&self) -> &str {
        &self.grant.inner.component
    }

    /// Keeps the guest's `wasi:logging` records with its output lines, for its record.
    pub fn keep_output(&mut self, output: wasmgate_telemetry::GuestOutput) {
        self.logging.keep_output(output);
    }

    /// Makes host calls that matter (outbound HTTP, key-value, SQL) add spans to `buffer`.
    pub fn collect_spans(&mut self, buffer: wasmgate_telemetry::spans::SpanBuffer) {
        self.outbound.collect_spans(buffer.clone());
        self.spans = Some(buffer);
    }

    pub(crate) fn variables(&self) -> &wasmtime_wasi_config::WasiConfigVariables {
        &self.grant.inner.variables
    }
}

/// A capability's view of an instance: its own state and the instance's resource table.
pub struct CapsView<'a> {
    pub caps: &'a mut InstanceCaps,
    pub table: &'a mut ResourceTable,
}

/// A store's data that holds an instance's capabilities.
pub trait CapabilityHost: Send + 'static {
    fn caps(&mut self) -> CapsView<'_>;
}

/// Adds every capability's interfaces (`wasi:keyvalue`, `wasmgate:sql`, `wasi:config`,
/// `wasi:logging`) to `linker`. Outbound HTTP is `wasi:http`'s, added with it; its policy
/// lives in [`InstanceCaps::outbound`].
pub fn add_to_linker<T: CapabilityHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    key_value::add_to_linker(linker)?;
    sql::add_to_linker(linker)?;
    variables::add_to_linker(linker)?;
    logging::add_to_linker(linker)?;
    Ok(())
}

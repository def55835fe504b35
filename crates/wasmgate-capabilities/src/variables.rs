//! Variables: app variables resolved once at load, and each component's `variables` table
//! rendered from them, read by guests through `wasi:config/store`.
//!
//! A variable's value comes from, in order: the environment (`WASMGATE_VAR_<NAME>`, upper
//! case), the runtime config's `[variables]`, the manifest's `default`. Secrets are never
//! logged; a guest sees only the keys of its own component's table.

use crate::error::CapabilityError;
use crate::{CapabilityHost, InstanceCaps};
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmgate_manifest::{Component, Manifest, RuntimeConfig};
use wasmtime::component::Linker;
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};

/// The environment variable that provides app variable `name`.
pub fn env_name(name: &str) -> String {
    format!("WASMGATE_VAR_{}", name.to_ascii_uppercase())
}

/// App variables with their values (those that have one).
pub struct Resolved {
    values: BTreeMap<String, String>,
    config: String,
}

impl Resolved {
    pub fn new(
        manifest: &Manifest,
        config: &RuntimeConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Resolved, CapabilityError> {
        let mut values = BTreeMap::new();
        for (name, variable) in &manifest.variables {
            let value = env(&env_name(name))
                .or_else(|| config.variables.get(name).cloned())
                .or_else(|| variable.default.clone());
            match value {
                Some(value) => {
                    values.insert(name.clone(), value);
                }
                None if variable.required || variable.secret => {
                    return Err(CapabilityError::MissingVariable {
                        name: name.clone(),
                        env: name.to_ascii_uppercase(),
                        config: config.describe(),
                    })
                }
                None => {}
            }
        }
        for name in config.variables.keys() {
            if !manifest.variables.contains_key(name) {
                tracing::warn!(
                    variable = %name,
                    config = %config.describe(),
                    "the runtime config sets a variable the manifest does not declare; ignored"
                );
            }
        }
        Ok(Resolved {
            values,
            config: config.describe(),
        })
    }

    /// The `wasi:config` table of `component`, every template rendered.
    pub fn for_component(
        &self,
        component: &Component,
    ) -> Result<Arc<WasiConfigVariables>, CapabilityError> {
        let mut table = WasiConfigVariables::new();
        for (key, template) in &component.variables {
            let value = template
                .render(|name| self.values.get(name).cloned())
                .ok_or_else(|| {
                    let missing = template
                        .references()
                        .find(|name| !self.values.contains_key(*name))
                        .unwrap_or_default();
                    CapabilityError::MissingVariable {
                        name: missing.to_string(),
                        env: missing.to_ascii_uppercase(),
                        config: self.config.clone(),
                    }
                })?;
            table.insert(key.clone(), value);
        }
        Ok(Arc::new(table))
    }
}

pub fn add_to_linker<T: CapabilityHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    // wasi:config calls are map lookups, not timed: timing would cost more than the call.
    wasmtime_wasi_config::add_to_linker(linker, |host: &mut T| {
        let caps: &InstanceCaps = host.caps().caps;
        WasiConfig::new(caps.variables())
    })
}

//! `wasmgate:sql` (placeholder: being implemented; every database is denied).

use crate::error::CapabilityError;
use crate::CapabilityHost;
use wasmgate_manifest::{Component, Manifest, RuntimeConfig};
use wasmtime::component::Linker;

pub struct Databases;

impl Databases {
    pub async fn open(
        _manifest: &Manifest,
        _config: &RuntimeConfig,
    ) -> Result<Databases, CapabilityError> {
        Ok(Databases)
    }

    pub fn grant(&self, _component: &Component) -> Result<Grant, CapabilityError> {
        Ok(Grant(()))
    }
}

#[derive(Clone, Default)]
pub struct Grant(());

pub struct InstanceState;

impl InstanceState {
    pub fn new(_grant: &Grant) -> InstanceState {
        InstanceState
    }
}

pub fn add_to_linker<T: CapabilityHost>(_linker: &mut Linker<T>) -> wasmtime::Result<()> {
    Ok(())
}

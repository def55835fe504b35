//! `wasi:keyvalue@0.2.0-draft` (interfaces `store`, `atomics`, `batch`): named stores of bytes,
//! each served by an embedded SQLite file (`disk`, the default) or Redis, as the runtime config
//! says.
//!
//! - **Grant.** A component opens only the stores its manifest lists in `key_value_stores`.
//!   Opening another store the runtime config defines fails with `access-denied`; a name it
//!   does not define fails with `no-such-store`.
//! - **Backends** ([`Backend`]) are opened once per app, and only those some component is
//!   granted; a backend that cannot be opened (or a Redis that does not answer `PING`) stops
//!   the app from loading, naming the store. Stores never see each other's keys, even when they
//!   share a file or a Redis.
//! - **Counters.** `increment` is atomic on both backends and keeps the counter as decimal
//!   text: after `increment(k, 5)` on a missing key, `get(k)` is `b"5"` everywhere. Counters
//!   range over `0..=i64::MAX`; incrementing a value that is not such text fails with `other`.
//! - **Errors.** Backend failures reach the guest as `other(message)`; messages never contain
//!   credentials from the runtime config.
//!
//! Limits, checked before any backend is asked (over a limit: `other`, naming it):
//!
//! | what                                        | limit                      |
//! |---------------------------------------------|----------------------------|
//! | key length (UTF-8 bytes)                    | [`MAX_KEY_BYTES`] (1 KiB)  |
//! | value size                                  | [`MAX_VALUE_BYTES`] (16 MiB) |
//! | keys in one batch call                      | [`MAX_BATCH_KEYS`] (1000)  |
//! | value bytes in one `set-many` / `get-many`  | [`MAX_BATCH_BYTES`] (64 MiB) |
//! | buckets one instance holds open at once     | [`MAX_OPEN_BUCKETS`] (64)  |
//! | keys per `list-keys` page                   | about [`LIST_PAGE_KEYS`] (100) |
//!
//! Every call (not the closing of a bucket) counts as one key-value host call in the
//! instance's [`HostCalls`](crate::HostCalls).

mod backend;
mod disk;
mod host;
mod redis;

pub use self::backend::{Backend, BackendError, KeyPage, LIST_PAGE_KEYS};
pub use self::disk::DiskStore;
pub use self::host::add_to_linker;
pub use self::redis::RedisStore;

use crate::error::CapabilityError;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use wasmgate_manifest::{Component, KeyValueBackend, Manifest, RuntimeConfig};

/// Longest key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value `set` (or one entry of `set-many`) accepts.
pub const MAX_VALUE_BYTES: usize = 16 << 20;
/// Most keys one `get-many`, `set-many` or `delete-many` call may name.
pub const MAX_BATCH_KEYS: usize = 1000;
/// Most value bytes one `set-many` sends or one `get-many` returns.
pub const MAX_BATCH_BYTES: usize = 64 << 20;
/// Most buckets one instance may hold open at once.
pub const MAX_OPEN_BUCKETS: usize = 64;

const KIND: &str = "key-value store";
const TABLE: &str = "key_value_store";

/// Opens the backend serving store `name`.
pub async fn open_backend(
    name: &str,
    backend: &KeyValueBackend,
) -> Result<Arc<dyn Backend>, BackendError> {
    Ok(match backend {
        KeyValueBackend::Disk { path } => Arc::new(DiskStore::open(name, path).await?),
        KeyValueBackend::Redis { url } => Arc::new(RedisStore::open(name, url).await?),
    })
}

/// The app's open stores: those some component is granted.
pub struct Stores {
    open: BTreeMap<String, Arc<dyn Backend>>,
    /// Every store the runtime config defines, granted or not: tells `access-denied` from
    /// `no-such-store`.
    defined: Arc<BTreeSet<String>>,
    config: String,
}

impl Stores {
    /// Opens every store some component of `manifest` is granted. Fails on the first store the
    /// runtime config does not define or whose backend cannot be opened.
    pub async fn open(
        manifest: &Manifest,
        config: &RuntimeConfig,
    ) -> Result<Stores, CapabilityError> {
        let mut stores = Stores {
            open: BTreeMap::new(),
            defined: Arc::new(config.key_value_stores.keys().cloned().collect()),
            config: config.describe(),
        };
        for component in manifest.components.values() {
            for name in &component.key_value_stores {
                if stores.open.contains_key(name) {
                    continue;
                }
                let Some(backend) = config.key_value_stores.get(name) else {
                    return Err(stores.unknown(component, name));
                };
                let opened =
                    open_backend(name, backend)
                        .await
                        .map_err(|e| CapabilityError::Open {
                            kind: KIND,
                            name: name.clone(),
                            backend: backend_kind(backend),
                            message: e.to_string(),
                        })?;
                tracing::debug!(store = %name, backend = opened.kind(), "opened key-value store");
                stores.open.insert(name.clone(), opened);
            }
        }
        Ok(stores)
    }

    /// The stores `component` may open.
    pub fn grant(&self, component: &Component) -> Result<Grant, CapabilityError> {
        let mut granted = BTreeMap::new();
        for name in &component.key_value_stores {
            let backend = self
                .open
                .get(name)
                .ok_or_else(|| self.unknown(component, name))?;
            granted.insert(name.clone(), backend.clone());
        }
        Ok(Grant {
            granted: Arc::new(granted),
            defined: self.defined.clone(),
        })
    }

    fn unknown(&self, component: &Component, name: &str) -> CapabilityError {
        CapabilityError::UnknownBackend {
            component: component.name.clone(),
            kind: KIND,
            table: TABLE,
            name: name.to_string(),
            config: self.config.clone(),
        }
    }
}

fn backend_kind(backend: &KeyValueBackend) -> &'static str {
    match backend {
        KeyValueBackend::Disk { .. } => "disk",
        KeyValueBackend::Redis { .. } => "redis",
    }
}

/// One component's stores, shared by all its instances.
#[derive(Clone, Default)]
pub struct Grant {
    granted: Arc<BTreeMap<String, Arc<dyn Backend>>>,
    defined: Arc<BTreeSet<String>>,
}

impl Grant {
    /// A grant of exactly `stores` (name and backend), with no other store defined: for
    /// embedding and tests that build backends themselves.
    pub fn new(stores: impl IntoIterator<Item = (String, Arc<dyn Backend>)>) -> Grant {
        let granted: BTreeMap<_, _> = stores.into_iter().collect();
        Grant {
            defined: Arc::new(granted.keys().cloned().collect()),
            granted: Arc::new(granted),
        }
    }
}

/// One instance's key-value state: its grant and how many buckets it holds open.
pub struct InstanceState {
    grant: Grant,
    open_buckets: usize,
}

impl InstanceState {
    pub fn new(grant: &Grant) -> InstanceState {
        InstanceState {
            grant: grant.clone(),
            open_buckets: 0,
        }
    }
}

//! The `wasi:keyvalue` host functions: grant and limit checks, then one [`Backend`] call.
//!
//! Each function returns `Ok(Err(error))` for what the guest should handle (denied, missing,
//! over a limit, backend failure) and `Err(trap)` only for a bucket handle that is not in the
//! instance's table, which the component model makes a guest bug.

use super::backend::{Backend, BackendError};
use super::{
    Grant, MAX_BATCH_BYTES, MAX_BATCH_KEYS, MAX_KEY_BYTES, MAX_OPEN_BUCKETS, MAX_VALUE_BYTES,
};
use crate::stats::Capability;
use crate::{CapabilityHost, CapsView};
use std::sync::Arc;
use std::time::Instant;
use wasmgate_telemetry::spans::{error_kind, ChildSpan, SpanKind};
use wasmtime::component::{HasData, Linker, Resource};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/deps/keyvalue",
        world: "wasi:keyvalue/imports",
        // Backends do I/O (Redis), so every import is async; `trappable` gives each function
        // a `wasmtime::Result` to trap on a bad resource handle.
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
    });
}

use bindings::wasi::keyvalue::store::{Error, KeyResponse};
use bindings::wasi::keyvalue::{atomics, batch, store};

/// An open bucket: which store, and its backend.
pub struct Bucket {
    store: Arc<str>,
    backend: Arc<dyn Backend>,
}

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl From<BackendError> for Error {
    fn from(error: BackendError) -> Error {
        Error::Other(error.message().to_string())
    }
}

impl Grant {
    fn open(&self, identifier: &str) -> Result<Bucket, Error> {
        match self.granted.get_key_value(identifier) {
            Some((name, backend)) => Ok(Bucket {
                store: Arc::from(name.as_str()),
                backend: backend.clone(),
            }),
            None if self.defined.contains(identifier) => Err(Error::AccessDenied),
            None => Err(Error::NoSuchStore),
        }
    }
}

impl CapsView<'_> {
    /// The bucket's store name and backend, looked up before the call awaits anything.
    fn bucket(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<(Arc<str>, Arc<dyn Backend>)> {
        let bucket = self.table.get(bucket)?;
        Ok((bucket.store.clone(), bucket.backend.clone()))
    }

    fn finish<T>(
        &self,
        started: Instant,
        store: &str,
        operation: &'static str,
        result: &Result<T, Error>,
    ) {
        self.caps.calls.record_traced(
            Capability::KeyValue,
            started,
            || format!("{operation} {store}"),
            result.is_err(),
        );
        if let Some(spans) = &self.caps.spans {
            let system =
                self.caps
                    .key_value
                    .grant
                    .granted
                    .get(store)
                    .map_or("unknown", |backend| match backend.kind() {
                        // The embedded store is an SQLite file.
                        "disk" => "sqlite",
                        kind => kind,
                    });
            // Keys and values are the guest's data: only the operation and store are shown.
            spans.push(ChildSpan {
                span_id: None,
                name: format!("{operation} {store}").into(),
                kind: SpanKind::Client,
                start: started,
                end: Instant::now(),
                attributes: vec![
                    ("db.system.name", system.into()),
                    ("db.operation.name", operation.into()),
                    ("db.namespace", store.to_string().into()),
                    ("wasmgate.capability", "key_value".into()),
                ],
                // The error's kind only: messages can quote the guest's values.
                error: result.as_ref().err().map(|e| error_kind(&format!("{e:?}"))),
            });
        }
        match result {
            Ok(_) => tracing::debug!(store, operation, "key-value call"),
            Err(error) => tracing::debug!(store, operation, %error, "key-value call failed"),
        }
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::Other(format!(
            "key is {} bytes; the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

fn check_value(key: &str, value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::Other(format!(
            "value for {key:?} is {} bytes; the limit is {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    Ok(())
}

fn check_batch<'a>(keys: impl ExactSizeIterator<Item = &'a String>) -> Result<(), Error> {
    if keys.len() > MAX_BATCH_KEYS {
        return Err(Error::Other(format!(
            "a batch of {} keys is over the limit of {MAX_BATCH_KEYS}",
            keys.len()
        )));
    }
    keys.into_iter().try_for_each(|key| check_key(key))
}

fn check_batch_bytes(total: usize) -> Result<(), Error> {
    if total > MAX_BATCH_BYTES {
        return Err(Error::Other(format!(
            "a batch of {total} value bytes is over the limit of {MAX_BATCH_BYTES}"
        )));
    }
    Ok(())
}

impl store::Host for CapsView<'_> {
    async fn open(&mut self, identifier: String) -> Outcome<Resource<Bucket>> {
        let started = Instant::now();
        let state = &mut self.caps.key_value;
        let result = if state.open_buckets >= MAX_OPEN_BUCKETS {
            Err(Error::Other(format!(
                "this instance already holds {MAX_OPEN_BUCKETS} buckets open; drop some first"
            )))
        } else {
            state.grant.open(&identifier)
        };
        let result = match result {
            Ok(bucket) => {
                let handle = self.table.push(bucket)?;
                self.caps.key_value.open_buckets += 1;
                Ok(handle)
            }
            Err(error) => Err(error),
        };
        self.finish(started, &identifier, "open", &result);
        Ok(result)
    }
}

impl store::HostBucket for CapsView<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Option<Vec<u8>>> {
        let started = Instant::now();
        let (store, backend) = self.bucket(&bucket)?;
        let result = match check_key(&key) {
            Ok(()) => backend.get(key).await.map_err(Error::from),
            Err(error) => Err(error),
        };
        self.finish(started, &store, "get", &result);
        Ok(result)
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Outcome<()> {
        let started = Instant::now();
        let (store, backend) = self.bucket(&bucket)?;
        let result = match check_key(&key).and_then(|()| check_value(&key, &value)) {
            Ok(()) => backend.set(key, value).await.map_err(Error::from),
            Err(error) => Err(error),
        };
        self.finish(started, &store, "set", &result);
        Ok(result)
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<()> {
        let started = Instant::now();
        let (store, backend) = self.bucket(&bucket)?;
        let result = match check_key(&key) {
            Ok(()) => backend.delete(key).await.map_err(Error::from),
            Err(error) => Err(error),
        };
        self.finish(started, &store, "delete", &result);
        Ok(result)
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
        let started = Instant::now();
        let (store, backend) = self.bucket(&bucket)?;
        let result = match check_key(&key) {
            Ok(()) => backend.exists(key).await.map_err(Error::from),
            Err(error) => Err(error),
        };
        self.finish(started, &store, "exists", &result);
        Ok(result)
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Outcome<KeyResponse> {
        let started = Instant::now();
        let (store, backend) = self.bucket(&bucket)?;
        let result = backend
            .list_keys(cursor)
            .await
            .map(|page| KeyResponse {
                keys: page.keys,
                cursor: page.cursor,
            })
            .map_err(Error::from);
        self.finish(started, &store, "list-keys", &result);
        Ok(result)
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        let state = &mut self.caps.key_value;
        state.open_buckets = state.open_buckets.saturating_sub(1);
        Ok(())
    }
}

impl atomics::Host for CapsView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Outcome<u64> {
        let started = Instant::now();
        let (store, backend) = self.bucket(&bucket)?;
        let result = match check_key(&key) {
            Ok(()) => backend.increment(key, delta).await.map_err(Error::from),
            Err(error) => Err(error),
        };
        self.finish(started, &store, "increment", &result);
        Ok(result)
    }
}

impl batch::Host for CapsView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Outcome<Vec<Option<(String, Vec<u8>)>>> {
        let started = Instant::now();
        let (store, backend) = self.bucket(&bucket)?;
        let result = match check_batch(keys.iter()) {
            Ok(()) => backend.get_many(keys).await.map_err(Error::from),
            Err(error) => Err(error),
        };
        // The size is known only once fetched; refusing it still keeps it out of the guest.
        let result = result.and_then(|found| {
            let total = found.iter().flatten().map(|(_, v)| v.len()).sum();
            check_batch_bytes(total).map(|()| found)
        });
        self.finish(started, &store, "get-many", &result);
        Ok(result)
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Outcome<()> {
        let started = Instant::now();
        let (store, backend) = self.bucket(&bucket)?;
        let checked = check_batch(key_values.iter().map(|(k, _)| k))
            .and_then(|()| {
                key_values
                    .iter()
                    .try_for_each(|(key, value)| check_value(key, value))
            })
            .and_then(|()| check_batch_bytes(key_values.iter().map(|(_, v)| v.len()).sum()));
        let result = match checked {
            Ok(()) => backend.set_many(key_values).await.map_err(Error::from),
            Err(error) => Err(error),
        };
        self.finish(started, &store, "set-many", &result);
        Ok(result)
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Outcome<()> {
        let started = Instant::now();
        let (store, backend) = self.bucket(&bucket)?;
        let result = match check_batch(keys.iter()) {
            Ok(()) => backend.delete_many(keys).await.map_err(Error::from),
            Err(error) => Err(error),
        };
        self.finish(started, &store, "delete-many", &result);
        Ok(result)
    }
}

struct HasKeyValue;

impl HasData for HasKeyValue {
    type Data<'a> = CapsView<'a>;
}

/// Adds `wasi:keyvalue/{store,atomics,batch}` to `linker`.
pub fn add_to_linker<T: CapabilityHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    bindings::wasi::keyvalue::store::add_to_linker::<T, HasKeyValue>(linker, T::caps)?;
    bindings::wasi::keyvalue::atomics::add_to_linker::<T, HasKeyValue>(linker, T::caps)?;
    bindings::wasi::keyvalue::batch::add_to_linker::<T, HasKeyValue>(linker, T::caps)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Error, Grant};
    use crate::key_value::DiskStore;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    #[tokio::test]
    async fn open_tells_denied_from_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open("mine", &dir.path().join("kv.db"))
            .await
            .unwrap();
        let mut granted: BTreeMap<String, Arc<dyn super::Backend>> = BTreeMap::new();
        granted.insert("mine".into(), Arc::new(store));
        let grant = Grant {
            granted: Arc::new(granted),
            defined: Arc::new(["mine".to_string(), "theirs".to_string()].into()),
        };
        assert!(grant.open("mine").is_ok());
        assert!(matches!(grant.open("theirs"), Err(Error::AccessDenied)));
        assert!(matches!(grant.open("nobody"), Err(Error::NoSuchStore)));
    }
}

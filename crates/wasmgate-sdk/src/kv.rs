//! Key-value stores through `wasi:keyvalue@0.2.0-draft` (store, atomics, batch).
//!
//! A component opens the stores its manifest grants (`key_value_stores = ["default"]`);
//! which backend serves a name (an embedded file, Redis) is the operator's choice in the
//! runtime config, invisible here. Values are bytes; [`Store::get_json`] and
//! [`Store::set_json`] store JSON.
//!
//! ```no_run
//! use wasmgate_sdk::kv::{KvError, Store};
//!
//! # fn run() -> Result<(), KvError> {
//! let store = Store::open("default")?;
//! store.set("greeting", "hello")?;
//! assert_eq!(store.get("greeting")?.as_deref(), Some(&b"hello"[..]));
//! let visits = store.increment("visits", 1)?;
//! # Ok(())
//! # }
//! ```

use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use std::fmt;

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// No store of that name is configured.
    NoSuchStore,
    /// The store exists but the component's manifest does not grant it.
    AccessDenied,
    /// The stored value is not valid JSON of the requested shape (from [`Store::get_json`])
    /// or the value could not be serialized (from [`Store::set_json`]).
    Json(String),
    /// Anything the backend reported, e.g. a connection failure, or `increment` on a value
    /// that is not a counter.
    Other(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::NoSuchStore => f.write_str("no such store"),
            KvError::AccessDenied => {
                f.write_str("access denied (add the store to key_value_stores)")
            }
            KvError::Json(why) => write!(f, "JSON: {why}"),
            KvError::Other(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for KvError {}

impl From<store::Error> for KvError {
    fn from(error: store::Error) -> KvError {
        match error {
            store::Error::NoSuchStore => KvError::NoSuchStore,
            store::Error::AccessDenied => KvError::AccessDenied,
            store::Error::Other(why) => KvError::Other(why),
        }
    }
}

/// An open key-value store. Cheap to keep for the whole request; closed when dropped.
pub struct Store {
    bucket: store::Bucket,
}

impl Store {
    /// Opens the store called `name` (a name from the manifest's `key_value_stores`).
    pub fn open(name: &str) -> Result<Store, KvError> {
        Ok(Store {
            bucket: store::open(name)?,
        })
    }

    /// The value of `key`, or `None` if there is none.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.bucket.get(key)?)
    }

    /// Sets `key` to `value`, replacing any value it had.
    pub fn set(&self, key: &str, value: impl AsRef<[u8]>) -> Result<(), KvError> {
        Ok(self.bucket.set(key, value.as_ref())?)
    }

    /// Deletes `key`; deleting a key that does not exist is not an error.
    pub fn delete(&self, key: &str) -> Result<(), KvError> {
        Ok(self.bucket.delete(key)?)
    }

    /// Whether `key` has a value.
    pub fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.bucket.exists(key)?)
    }

    /// Every key in the store, in no particular order, following the host's pages until the
    /// last one. This can be expensive on a large store.
    pub fn keys(&self) -> Result<Vec<String>, KvError> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.bucket.list_keys(cursor)?;
            keys.extend(page.keys);
            match page.cursor {
                None => return Ok(keys),
                // A cursor that does not move would loop forever.
                Some(next) if Some(next) == cursor => {
                    return Err(KvError::Other(format!(
                        "the store returned cursor {next} twice while listing keys"
                    )))
                }
                Some(next) => cursor = Some(next),
            }
        }
    }

    /// Atomically adds `delta` to the counter at `key` (a missing key counts as 0) and
    /// returns the new value. `increment(key, 0)` reads a counter without changing it.
    ///
    /// Counters are stored in a backend-specific format: read them with `increment`, not
    /// [`Store::get`].
    pub fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        Ok(atomics::increment(&self.bucket, key, delta)?)
    }

    /// The values of several keys at once (`None` for a missing key), in the order asked.
    pub fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let wanted: Vec<String> = keys.iter().map(|key| key.to_string()).collect();
        let found = batch::get_many(&self.bucket, &wanted)?;
        Ok(match_pairs(keys, found))
    }

    /// Sets several keys at once. Not atomic: on error, some may have been set.
    pub fn set_many(&self, pairs: &[(&str, &[u8])]) -> Result<(), KvError> {
        let pairs: Vec<(String, Vec<u8>)> = pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_vec()))
            .collect();
        Ok(batch::set_many(&self.bucket, &pairs)?)
    }

    /// Deletes several keys at once. Not atomic: on error, some may have been deleted.
    pub fn delete_many(&self, keys: &[&str]) -> Result<(), KvError> {
        let keys: Vec<String> = keys.iter().map(|key| key.to_string()).collect();
        Ok(batch::delete_many(&self.bucket, &keys)?)
    }

    /// The JSON value at `key` as a `T`, or `None` if there is none.
    #[cfg(feature = "json")]
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, KvError> {
        match self.get(key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|error| KvError::Json(format!("value of {key:?}: {error}"))),
        }
    }

    /// Stores `value` at `key` as JSON.
    #[cfg(feature = "json")]
    pub fn set_json<T: serde::Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), KvError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|error| KvError::Json(format!("value for {key:?}: {error}")))?;
        self.set(key, bytes)
    }
}

/// `get-many`'s answer in the order of `keys`. The interface returns one entry per key,
/// `none` for missing ones; matching by key also copes with a host that skips or reorders.
fn match_pairs(keys: &[&str], found: Vec<Option<(String, Vec<u8>)>>) -> Vec<Option<Vec<u8>>> {
    let mut found: Vec<(String, Vec<u8>)> = found.into_iter().flatten().collect();
    keys.iter()
        .map(|key| {
            let index = found.iter().position(|(name, _)| name == key)?;
            Some(found.swap_remove(index).1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_answers_follow_the_keys_order() {
        let found = vec![
            Some(("b".to_string(), b"2".to_vec())),
            None,
            Some(("a".to_string(), b"1".to_vec())),
        ];
        assert_eq!(
            match_pairs(&["a", "missing", "b"], found),
            vec![Some(b"1".to_vec()), None, Some(b"2".to_vec())]
        );
    }

    #[test]
    fn host_errors_map_to_variants() {
        assert_eq!(
            KvError::from(store::Error::AccessDenied),
            KvError::AccessDenied
        );
        assert_eq!(
            KvError::from(store::Error::Other("disk full".into())),
            KvError::Other("disk full".into())
        );
        assert!(KvError::AccessDenied
            .to_string()
            .contains("key_value_stores"));
    }
}

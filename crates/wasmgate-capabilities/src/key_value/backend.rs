//! The seam between `wasi:keyvalue` and where the data lives: one async trait, implemented by
//! the embedded SQLite file ([`super::DiskStore`]) and Redis ([`super::RedisStore`]).
//!
//! A backend serves exactly one named store. Policy (grants, key and value limits) is the
//! host layer's; a backend only stores bytes and reports failures as [`BackendError`].

use async_trait::async_trait;
use std::fmt;

/// How many keys one `list-keys` call returns at most. Keys are at most 1 KiB, so a page
/// stays under 100 KiB.
pub const LIST_PAGE_KEYS: usize = 100;

/// One page of `list-keys`: the keys, and where the next page starts (`None`: no more).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    pub keys: Vec<String>,
    pub cursor: Option<u64>,
}

/// A backend failure, safe to show to the guest: never carries credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendError(String);

impl BackendError {
    pub fn new(message: impl Into<String>) -> BackendError {
        BackendError(message.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }

    pub(crate) fn not_a_counter(key: &str) -> BackendError {
        BackendError::new(format!(
            "cannot increment {key:?}: its value is not a decimal integer between 0 and {}",
            i64::MAX
        ))
    }

    pub(crate) fn counter_overflow(key: &str) -> BackendError {
        BackendError::new(format!(
            "cannot increment {key:?}: the result would exceed {}",
            i64::MAX
        ))
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BackendError {}

/// One store's data. Every method is one logical operation on the backend; `increment` is
/// atomic, batch methods are not (a failure may leave part of a batch applied).
///
/// Counters (`increment`) are stored as canonical decimal ASCII (`b"42"`) on every backend, so
/// `get` after `increment` returns the same bytes everywhere, and a value `set` as such text
/// can be incremented. Counters range over `0..=i64::MAX` (Redis's `INCRBY` range).
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// What serves this store, for messages: `"disk"` or `"redis"`.
    fn kind(&self) -> &'static str;

    async fn get(&self, key: String) -> Result<Option<Vec<u8>>, BackendError>;

    async fn set(&self, key: String, value: Vec<u8>) -> Result<(), BackendError>;

    /// Deleting a missing key succeeds.
    async fn delete(&self, key: String) -> Result<(), BackendError>;

    async fn exists(&self, key: String) -> Result<bool, BackendError>;

    /// About [`LIST_PAGE_KEYS`] keys (at most that many on disk; Redis's `SCAN` pages vary), in
    /// no particular order, starting at `cursor` (`None`: the beginning). A key present for
    /// the whole listing is returned at least once.
    async fn list_keys(&self, cursor: Option<u64>) -> Result<KeyPage, BackendError>;

    /// Adds `delta` to the counter at `key` (a missing key counts as 0) and returns the new
    /// value. Fails without changing anything when the value is not a counter or the result
    /// would exceed `i64::MAX`.
    async fn increment(&self, key: String, delta: u64) -> Result<u64, BackendError>;

    /// For each key, `Some((key, value))` or `None` when missing, in the order asked.
    async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, BackendError>;

    async fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), BackendError>;

    async fn delete_many(&self, keys: Vec<String>) -> Result<(), BackendError>;
}

/// The counter a stored value holds: canonical decimal (no sign, no leading zeros) within
/// `0..=i64::MAX`, the text Redis's `INCRBY` accepts and writes back.
pub(crate) fn parse_counter(value: &[u8]) -> Option<i64> {
    let canonical = match value {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse::<i64>().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_counter;

    #[test]
    fn counters_are_canonical_decimal() {
        assert_eq!(parse_counter(b"0"), Some(0));
        assert_eq!(parse_counter(b"42"), Some(42));
        assert_eq!(
            parse_counter(i64::MAX.to_string().as_bytes()),
            Some(i64::MAX)
        );
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"007",
            b"1.5",
            b" 1",
            b"9223372036854775808",
            b"x",
        ] {
            assert_eq!(parse_counter(bad), None, "{bad:?}");
        }
    }
}

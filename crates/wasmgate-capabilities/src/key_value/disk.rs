//! The embedded backend: one SQLite file per configured path, the default for every store.
//!
//! The file holds a single table, `entries(store, key, value)`, keyed by store name as well as
//! key, so two stores configured with the same path still cannot see each other's keys.
//!
//! SQLite calls block, so each operation runs on tokio's blocking pool. One connection per
//! store, behind a mutex, serves them one at a time: operations are short (a 4 MiB value takes
//! milliseconds), and a single writer is what SQLite allows anyway. WAL mode keeps readers in
//! other processes (a backup, `sqlite3` for debugging) from blocking it, and a busy timeout
//! covers another process writing the same file. `synchronous = NORMAL`: a committed write
//! survives the process crashing or restarting; a power loss may lose the last few commits.
//!
//! `list-keys` pages by rowid: the cursor is the last rowid returned. Rowids of live keys never
//! change (writes update in place), so a key present for the whole listing is listed exactly
//! once however the store changes meanwhile.

use super::backend::{parse_counter, Backend, BackendError, KeyPage, LIST_PAGE_KEYS};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long an operation waits for another process holding the file's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One store in a SQLite file.
#[derive(Clone)]
pub struct DiskStore {
    inner: Arc<Inner>,
}

struct Inner {
    store: String,
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl DiskStore {
    /// Opens (creating it and its parent directories if needed) the file at `path`, serving the
    /// store called `store`.
    pub async fn open(store: &str, path: &Path) -> Result<DiskStore, BackendError> {
        let store = store.to_string();
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let connection = open_connection(&path)?;
            Ok(DiskStore {
                inner: Arc::new(Inner {
                    store,
                    path,
                    connection: Mutex::new(connection),
                }),
            })
        })
        .await
        .map_err(|e| BackendError::new(format!("opening the store failed: {e}")))?
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `op` with the connection on the blocking pool.
    async fn with<R: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Connection, &str) -> rusqlite::Result<Result<R, BackendError>>
            + Send
            + 'static,
    ) -> Result<R, BackendError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite's state torn (every change is
            // a transaction), so a poisoned lock is safe to keep using.
            let mut connection = inner
                .connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match op(&mut connection, &inner.store) {
                Ok(result) => result,
                Err(e) => Err(sqlite_error(&inner.path, e)),
            }
        })
        .await
        .map_err(|e| BackendError::new(format!("key-value operation did not finish: {e}")))?
    }
}

fn open_connection(path: &Path) -> Result<Connection, BackendError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            BackendError::new(format!("cannot create directory {}: {e}", parent.display()))
        })?;
    }
    let setup = || -> rusqlite::Result<Connection> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        // `journal_mode` answers with the mode in force, so it is read rather than executed.
        let _mode: String =
            connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        connection.execute_batch(
            "PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS entries (
                 store TEXT NOT NULL,
                 key   TEXT NOT NULL,
                 value BLOB NOT NULL,
                 PRIMARY KEY (store, key)
             );",
        )?;
        Ok(connection)
    };
    setup().map_err(|e| sqlite_error(path, e))
}

fn sqlite_error(path: &Path, error: rusqlite::Error) -> BackendError {
    BackendError::new(format!("key-value file {}: {error}", path.display()))
}

const SELECT_VALUE: &str = "SELECT value FROM entries WHERE store = ?1 AND key = ?2";
// An upsert rather than `INSERT OR REPLACE`: replacing would give the row a new rowid and
// disturb `list-keys` cursors.
const UPSERT: &str = "INSERT INTO entries (store, key, value) VALUES (?1, ?2, ?3)
                      ON CONFLICT (store, key) DO UPDATE SET value = excluded.value";
const DELETE: &str = "DELETE FROM entries WHERE store = ?1 AND key = ?2";

#[async_trait]
impl Backend for DiskStore {
    fn kind(&self) -> &'static str {
        "disk"
    }

    async fn get(&self, key: String) -> Result<Option<Vec<u8>>, BackendError> {
        self.with(move |c, store| {
            c.prepare_cached(SELECT_VALUE)?
                .query_row(params![store, key], |row| row.get(0))
                .optional()
                .map(Ok)
        })
        .await
    }

    async fn set(&self, key: String, value: Vec<u8>) -> Result<(), BackendError> {
        self.with(move |c, store| {
            c.prepare_cached(UPSERT)?
                .execute(params![store, key, value])
                .map(|_| Ok(()))
        })
        .await
    }

    async fn delete(&self, key: String) -> Result<(), BackendError> {
        self.with(move |c, store| {
            c.prepare_cached(DELETE)?
                .execute(params![store, key])
                .map(|_| Ok(()))
        })
        .await
    }

    async fn exists(&self, key: String) -> Result<bool, BackendError> {
        self.with(move |c, store| {
            c.prepare_cached("SELECT 1 FROM entries WHERE store = ?1 AND key = ?2")?
                .exists(params![store, key])
                .map(Ok)
        })
        .await
    }

    async fn list_keys(&self, cursor: Option<u64>) -> Result<KeyPage, BackendError> {
        // Rowids are positive i64s; a cursor beyond that range cannot come from us and lists
        // nothing.
        let Ok(after) = i64::try_from(cursor.unwrap_or(0)) else {
            return Ok(KeyPage::default());
        };
        self.with(move |c, store| {
            // One row more than a page tells whether another page follows.
            let mut statement = c.prepare_cached(
                "SELECT rowid, key FROM entries WHERE store = ?1 AND rowid > ?2
                 ORDER BY rowid LIMIT ?3",
            )?;
            let rows = statement
                .query_map(params![store, after, LIST_PAGE_KEYS as i64 + 1], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let more = rows.len() > LIST_PAGE_KEYS;
            let page: Vec<_> = rows.into_iter().take(LIST_PAGE_KEYS).collect();
            let cursor = match page.last() {
                Some((rowid, _)) if more => u64::try_from(*rowid).ok(),
                _ => None,
            };
            Ok(Ok(KeyPage {
                keys: page.into_iter().map(|(_, key)| key).collect(),
                cursor,
            }))
        })
        .await
    }

    async fn increment(&self, key: String, delta: u64) -> Result<u64, BackendError> {
        let Ok(delta) = i64::try_from(delta) else {
            return Err(BackendError::counter_overflow(&key));
        };
        self.with(move |c, store| {
            // IMMEDIATE takes the write lock before reading, so no other process can change the
            // counter between our read and write.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: Option<Vec<u8>> = tx
                .prepare_cached(SELECT_VALUE)?
                .query_row(params![store, key], |row| row.get(0))
                .optional()?;
            let current = match current {
                None => 0,
                Some(bytes) => match parse_counter(&bytes) {
                    Some(n) => n,
                    None => return Ok(Err(BackendError::not_a_counter(&key))),
                },
            };
            let Some(next) = current.checked_add(delta) else {
                return Ok(Err(BackendError::counter_overflow(&key)));
            };
            tx.prepare_cached(UPSERT)?.execute(params![
                store,
                key,
                next.to_string().into_bytes()
            ])?;
            tx.commit()?;
            // `next` is at least 0: both operands are.
            Ok(Ok(next.unsigned_abs()))
        })
        .await
    }

    async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, BackendError> {
        self.with(move |c, store| {
            // One read transaction: the values come from a single snapshot.
            let tx = c.transaction()?;
            let mut found = Vec::with_capacity(keys.len());
            {
                let mut statement = tx.prepare_cached(SELECT_VALUE)?;
                for key in keys {
                    let value: Option<Vec<u8>> = statement
                        .query_row(params![store, key], |row| row.get(0))
                        .optional()?;
                    found.push(value.map(|v| (key, v)));
                }
            }
            tx.commit()?;
            Ok(Ok(found))
        })
        .await
    }

    async fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), BackendError> {
        self.with(move |c, store| {
            // One transaction is one fsync instead of one per key (and happens to be atomic).
            let tx = c.transaction()?;
            {
                let mut statement = tx.prepare_cached(UPSERT)?;
                for (key, value) in entries {
                    statement.execute(params![store, key, value])?;
                }
            }
            tx.commit()?;
            Ok(Ok(()))
        })
        .await
    }

    async fn delete_many(&self, keys: Vec<String>) -> Result<(), BackendError> {
        self.with(move |c, store| {
            let tx = c.transaction()?;
            {
                let mut statement = tx.prepare_cached(DELETE)?;
                for key in keys {
                    statement.execute(params![store, key])?;
                }
            }
            tx.commit()?;
            Ok(Ok(()))
        })
        .await
    }
}

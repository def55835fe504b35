//! The embedded backend: one SQLite file, in WAL mode so readers do not wait for the writer.
//!
//! rusqlite is blocking, so every statement runs on tokio's blocking pool with the
//! connection moved in and back out. The pool is a stack of idle connections bounded by a
//! semaphore; concurrent writers wait on SQLite's busy timeout rather than failing at once.

use super::backend::{Backend, Connection, ACQUIRE_TIMEOUT};
use super::value::{RowSet, SqlError, Value};
use async_trait::async_trait;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::ErrorCode;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections open at once per database file. SQLite serialises writers anyway; a few
/// connections let readers proceed alongside a writer.
pub const POOL_SIZE: usize = 8;

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Sqlite {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<rusqlite::Connection>>>,
    permits: Arc<Semaphore>,
}

impl Sqlite {
    /// Opens (creating it and its directory if needed) the file at `path`.
    pub async fn open(path: &Path) -> Result<Sqlite, SqlError> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                SqlError::ConnectionFailed(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let path = Arc::new(path.to_path_buf());
        let first = blocking({
            let path = path.clone();
            move || {
                let conn = connect(&path)?;
                // WAL is a property of the file: set once, it persists for every connection.
                let mode: String = conn
                    .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
                    .map_err(map_error)?;
                if !mode.eq_ignore_ascii_case("wal") {
                    tracing::warn!(path = %path.display(), %mode, "SQLite did not switch to WAL mode");
                }
                conn.query_row("SELECT 1", [], |_| Ok(())).map_err(map_error)?;
                Ok(conn)
            }
        })
        .await?;
        Ok(Sqlite {
            path,
            idle: Arc::new(Mutex::new(vec![first])),
            permits: Arc::new(Semaphore::new(POOL_SIZE)),
        })
    }
}

fn connect(path: &Path) -> Result<rusqlite::Connection, SqlError> {
    let conn = rusqlite::Connection::open(path)
        .map_err(|e| SqlError::ConnectionFailed(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_error)?;
    // SQLite leaves foreign keys unenforced unless asked, unlike the server backends.
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .map_err(map_error)?;
    // Guests send the same statement texts request after request; parsing each once per
    // pooled connection saves most of a simple query's cost.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

#[async_trait]
impl Backend for Sqlite {
    async fn connect(&self) -> Result<Box<dyn Connection>, SqlError> {
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                SqlError::ConnectionFailed("timed out waiting for a free connection".into())
            })?
            .map_err(|_| SqlError::ConnectionFailed("the database is closed".into()))?;
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let path = self.path.clone();
                blocking(move || connect(&path)).await?
            }
        };
        Ok(Box::new(SqliteConnection {
            conn: Some(conn),
            idle: self.idle.clone(),
            _permit: permit,
        }))
    }

    fn begin_statement(&self) -> &'static str {
        // IMMEDIATE takes the write lock up front: a deferred transaction that reads and
        // later writes can fail with SQLITE_BUSY instead of waiting.
        "BEGIN IMMEDIATE"
    }
}

struct SqliteConnection {
    /// `None` while a statement runs on the blocking pool (or after it was cancelled).
    conn: Option<rusqlite::Connection>,
    idle: Arc<Mutex<Vec<rusqlite::Connection>>>,
    _permit: OwnedSemaphorePermit,
}

impl SqliteConnection {
    async fn run<T: Send + 'static>(
        &mut self,
        statement: &str,
        params: Vec<Value>,
        work: fn(&rusqlite::Connection, &str, &[Value]) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let conn = self
            .conn
            .take()
            .ok_or_else(|| SqlError::ConnectionFailed("the connection was lost".into()))?;
        let statement = statement.to_string();
        let (conn, result) = blocking(move || {
            let result = work(&conn, &statement, &params);
            Ok((conn, result))
        })
        .await?;
        self.conn = Some(conn);
        result
    }
}

#[async_trait]
impl Connection for SqliteConnection {
    async fn execute(&mut self, statement: &str, params: Vec<Value>) -> Result<u64, SqlError> {
        self.run(statement, params, |conn, statement, params| {
            let mut stmt = prepare(conn, statement, params)?;
            if stmt.column_count() > 0 {
                return Err(SqlError::Other(
                    "the statement returns rows: run it with query".into(),
                ));
            }
            let changed = stmt.raw_execute().map_err(map_error)?;
            Ok(changed as u64)
        })
        .await
    }

    async fn query(&mut self, statement: &str, params: Vec<Value>) -> Result<RowSet, SqlError> {
        self.run(statement, params, |conn, statement, params| {
            let mut stmt = prepare(conn, statement, params)?;
            let columns: Vec<String> = stmt.column_names().map(String::from).collect();
            let width = columns.len();
            let mut rows = Vec::new();
            let mut cursor = stmt.raw_query();
            while let Some(row) = cursor.next().map_err(map_error)? {
                let mut values = Vec::with_capacity(width);
                for i in 0..width {
                    values.push(from_sqlite(row.get_ref(i).map_err(map_error)?)?);
                }
                rows.push(values);
            }
            Ok(RowSet { columns, rows })
        })
        .await
    }
}

impl Drop for SqliteConnection {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // A transaction the session did not see (it was dropped mid-statement) must not
        // reach the next user of this connection.
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}

/// Prepared statements kept per pooled connection.
const STATEMENT_CACHE: usize = 64;

fn prepare<'c>(
    conn: &'c rusqlite::Connection,
    statement: &str,
    params: &[Value],
) -> Result<rusqlite::CachedStatement<'c>, SqlError> {
    let mut stmt = conn.prepare_cached(statement).map_err(map_error)?;
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(SqlError::Other(format!(
            "the statement has {expected} parameters but {} values were given",
            params.len()
        )));
    }
    for (index, value) in params.iter().enumerate() {
        stmt.raw_bind_parameter(index + 1, to_sqlite(value, index)?)
            .map_err(map_error)?;
    }
    Ok(stmt)
}

fn to_sqlite(value: &Value, index: usize) -> Result<ToSqlOutput<'_>, SqlError> {
    Ok(ToSqlOutput::Borrowed(match value {
        Value::Null => ValueRef::Null,
        Value::Int64(v) => ValueRef::Integer(*v),
        Value::Uint64(v) => ValueRef::Integer(i64::try_from(*v).map_err(|_| {
            SqlError::Other(format!(
                "parameter {}: {v} does not fit SQLite's 64-bit signed integers",
                index + 1
            ))
        })?),
        Value::Float64(v) => ValueRef::Real(*v),
        Value::Text(v) => ValueRef::Text(v.as_bytes()),
        Value::Blob(v) => ValueRef::Blob(v),
    }))
}

fn from_sqlite(value: ValueRef<'_>) -> Result<Value, SqlError> {
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(v) => Value::Int64(v),
        ValueRef::Real(v) => Value::Float64(v),
        ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Value::Text(text.to_string()),
            // SQLite does not check encodings: keep what was stored rather than fail.
            Err(_) => Value::Blob(bytes.to_vec()),
        },
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
    })
}

fn map_error(error: rusqlite::Error) -> SqlError {
    match &error {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let text = message.clone().unwrap_or_else(|| failure.to_string());
            match failure.code {
                ErrorCode::ConstraintViolation => SqlError::ConstraintViolation(text),
                ErrorCode::Unknown
                    if text.contains("syntax error") || text.contains("incomplete input") =>
                {
                    SqlError::Syntax(text)
                }
                ErrorCode::CannotOpen | ErrorCode::NotADatabase => SqlError::ConnectionFailed(text),
                _ => SqlError::Other(text),
            }
        }
        rusqlite::Error::SqlInputError {
            error, msg, offset, ..
        } => {
            // The driver's Display repeats the whole statement: keep the message and where.
            let text = format!("{msg} at offset {offset}");
            if msg.contains("syntax error") || msg.contains("incomplete input") {
                SqlError::Syntax(text)
            } else if error.code == ErrorCode::ConstraintViolation {
                SqlError::ConstraintViolation(text)
            } else {
                SqlError::Other(text)
            }
        }
        rusqlite::Error::MultipleStatement => {
            SqlError::Syntax("only one statement may be run at a time".into())
        }
        _ => SqlError::Other(error.to_string()),
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SqlError> + Send + 'static,
) -> Result<T, SqlError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SqlError::Other(format!("the SQLite worker failed: {e}")))?
}

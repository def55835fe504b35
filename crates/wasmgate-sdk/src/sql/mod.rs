//! SQL databases through Wasmgate's `wasmgate:sql` interface.
//!
//! A component opens the databases its manifest grants (`sql_databases = ["default"]`); the
//! operator's runtime config decides whether a name is an embedded SQLite file, MariaDB/MySQL
//! or PostgreSQL. Parameters are positional and written `?` on every backend (the host
//! rewrites them for PostgreSQL). The SQL itself is passed through: to stay portable, stick
//! to syntax all three accept (see the `examples/todo` README for a list).
//!
//! ```no_run
//! use wasmgate_sdk::params;
//! use wasmgate_sdk::sql::{Database, SqlError};
//!
//! # fn run() -> Result<(), SqlError> {
//! let db = Database::open("default")?;
//! db.execute(
//!     "CREATE TABLE IF NOT EXISTS notes (id BIGINT PRIMARY KEY, body VARCHAR(200) NOT NULL)",
//!     &[],
//! )?;
//! db.execute("INSERT INTO notes (id, body) VALUES (?, ?)", params![1, "hello"])?;
//! for row in &db.query("SELECT id, body FROM notes WHERE id > ?", params![0])? {
//!     let id: i64 = row.get("id")?;
//!     let body: String = row.get("body")?;
//!     println!("{id}: {body}");
//! }
//!
//! let tx = db.transaction()?;
//! tx.execute("DELETE FROM notes WHERE id = ?", params![1])?;
//! tx.commit()?; // dropping `tx` without commit rolls back
//! # Ok(())
//! # }
//! ```

mod rows;
mod value;

pub use rows::{Row, Rows};
pub use value::{ConversionError, FromValue, Value};

use crate::bindings::wasmgate::sql::sql as wit;
use std::fmt;

/// Builds a parameter list, converting each argument with [`Value::from`]:
/// `params![id, "title", None::<i64>]` is a `&[Value]`.
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::sql::Value::from($value)),*] as &[$crate::sql::Value]
    };
}

/// Why a database operation failed.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlError {
    /// No database of that name is configured.
    NoSuchDatabase,
    /// The database exists but the component's manifest does not grant it.
    AccessDenied,
    /// The database could not be reached, or no pooled connection came free in time.
    ConnectionFailed(String),
    /// A unique, primary-key, foreign-key, not-null or check constraint was violated.
    ConstraintViolation(String),
    /// The statement could not be parsed.
    Syntax(String),
    /// Anything else the database reported, e.g. an unknown table.
    Other(String),
    /// [`Row::get`] asked for a column the result does not have.
    NoSuchColumn(String),
    /// [`Row::get`] found a value that does not convert to the requested type.
    Conversion {
        /// The column's name.
        column: String,
        /// What was expected and found.
        error: ConversionError,
    },
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlError::NoSuchDatabase => f.write_str("no such database"),
            SqlError::AccessDenied => {
                f.write_str("access denied (add the database to sql_databases)")
            }
            SqlError::ConnectionFailed(why) => write!(f, "connection failed: {why}"),
            SqlError::ConstraintViolation(why) => write!(f, "constraint violation: {why}"),
            SqlError::Syntax(why) => write!(f, "syntax error: {why}"),
            SqlError::Other(why) => f.write_str(why),
            SqlError::NoSuchColumn(column) => write!(f, "no column {column}"),
            SqlError::Conversion { column, error } => write!(f, "column {column}: {error}"),
        }
    }
}

impl std::error::Error for SqlError {}

impl From<wit::Error> for SqlError {
    fn from(error: wit::Error) -> SqlError {
        match error {
            wit::Error::NoSuchDatabase => SqlError::NoSuchDatabase,
            wit::Error::AccessDenied => SqlError::AccessDenied,
            wit::Error::ConnectionFailed(why) => SqlError::ConnectionFailed(why),
            wit::Error::ConstraintViolation(why) => SqlError::ConstraintViolation(why),
            wit::Error::Syntax(why) => SqlError::Syntax(why),
            wit::Error::Other(why) => SqlError::Other(why),
        }
    }
}

/// A connection to one database, from the host's pool; returned to it when dropped.
pub struct Database {
    connection: wit::Connection,
}

impl Database {
    /// Opens the database called `name` (a name from the manifest's `sql_databases`).
    pub fn open(name: &str) -> Result<Database, SqlError> {
        Ok(Database {
            connection: wit::Connection::open(name)?,
        })
    }

    /// Runs one statement that returns no rows; returns how many rows it changed (for
    /// UPDATE: how many it matched, on every backend).
    pub fn execute(&self, statement: &str, params: &[Value]) -> Result<u64, SqlError> {
        Ok(self.connection.execute(statement, &to_wit(params))?)
    }

    /// Runs one statement that returns rows.
    pub fn query(&self, statement: &str, params: &[Value]) -> Result<Rows, SqlError> {
        let set = self.connection.query(statement, &to_wit(params))?;
        let rows = set
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(Value::from).collect())
            .collect();
        Ok(Rows::new(set.columns, rows))
    }

    /// Starts a transaction. It ends with [`Transaction::commit`] or
    /// [`Transaction::rollback`]; dropping it without either rolls it back.
    pub fn transaction(&self) -> Result<Transaction<'_>, SqlError> {
        self.connection.begin()?;
        Ok(Transaction {
            database: self,
            open: true,
        })
    }
}

fn to_wit(params: &[Value]) -> Vec<wit::Value> {
    params.iter().map(wit::Value::from).collect()
}

/// An open transaction; statements run through it (it derefs to [`Database`]).
pub struct Transaction<'a> {
    database: &'a Database,
    open: bool,
}

impl Transaction<'_> {
    /// Makes the transaction's changes permanent.
    pub fn commit(mut self) -> Result<(), SqlError> {
        self.open = false;
        Ok(self.database.connection.commit()?)
    }

    /// Undoes the transaction's changes.
    pub fn rollback(mut self) -> Result<(), SqlError> {
        self.open = false;
        Ok(self.database.connection.rollback()?)
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Database;

    fn deref(&self) -> &Database {
        self.database
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report to: a failed rollback leaves the transaction to the host,
            // which rolls back when the connection is returned.
            let _ = self.database.connection.rollback();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_macro_converts_each_argument() {
        let title = String::from("milk");
        let params: &[Value] = params![1, &title, true, None::<i64>, 2.5];
        assert_eq!(
            params,
            [
                Value::Int64(1),
                Value::Text("milk".into()),
                Value::Int64(1),
                Value::Null,
                Value::Float64(2.5),
            ]
        );
        let none: &[Value] = params![];
        assert!(none.is_empty());
    }

    #[test]
    fn host_errors_keep_their_message() {
        let error = SqlError::from(wit::Error::ConstraintViolation("UNIQUE id".into()));
        assert_eq!(error.to_string(), "constraint violation: UNIQUE id");
        assert_eq!(
            SqlError::from(wit::Error::AccessDenied),
            SqlError::AccessDenied
        );
    }
}

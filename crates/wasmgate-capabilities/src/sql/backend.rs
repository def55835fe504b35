//! The seam between `wasmgate:sql` and the database servers: a [`Backend`] hands out pooled
//! [`Connection`]s; a [`Session`] is one guest connection on top, tracking the open
//! transaction so that it is rolled back, not leaked, when the guest lets go.

use super::value::{operation, RowSet, SqlError, Value};
use super::{mysql, postgres, sqlite};
use crate::error::CapabilityError;
use async_trait::async_trait;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use wasmgate_manifest::SqlBackend;

/// How long `connect` waits for a pooled connection to come free before failing with
/// `connection-failed`, so a guest never hangs on an exhausted pool.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A database server (or file) with a pool of connections.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Takes a connection from the pool, opening one if none is idle and the pool has room.
    async fn connect(&self) -> Result<Box<dyn Connection>, SqlError>;

    /// The statement that starts a transaction on this backend.
    fn begin_statement(&self) -> &'static str {
        "BEGIN"
    }
}

/// One pooled connection; dropping it returns it to the pool.
#[async_trait]
pub trait Connection: Send {
    /// Runs a statement that returns no rows; returns the rows it changed (matched, for UPDATE).
    async fn execute(&mut self, statement: &str, params: Vec<Value>) -> Result<u64, SqlError>;

    /// Runs a statement that returns rows.
    async fn query(&mut self, statement: &str, params: Vec<Value>) -> Result<RowSet, SqlError>;

    /// Drops the connection without returning it to the pool. Used when a transaction is
    /// open and no runtime is left to roll it back: closing the connection makes the server
    /// roll back instead.
    fn discard(self: Box<Self>) {}
}

/// One configured database: its name and its backend. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    name: Arc<str>,
    backend: Arc<dyn Backend>,
    /// `sqlite`, `mysql` or `postgresql` (OpenTelemetry's `db.system.name` values).
    system: &'static str,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("name", &self.name)
            .finish()
    }
}

impl Database {
    /// Builds the pool for `config` and makes one round trip to check that the database is
    /// reachable and the credentials work. Errors name the database, never the credentials.
    pub async fn open(name: &str, config: &SqlBackend) -> Result<Database, CapabilityError> {
        let (kind, opened) = match config {
            SqlBackend::Sqlite { path } => ("sqlite", sqlite::Sqlite::open(path).await.map(boxed)),
            SqlBackend::Mysql {
                url,
                max_connections,
            } => (
                "mysql",
                mysql::Mysql::open(url.expose(), *max_connections)
                    .await
                    .map(boxed),
            ),
            SqlBackend::Postgres {
                url,
                max_connections,
            } => (
                "postgres",
                postgres::Postgres::open(url.expose(), *max_connections)
                    .await
                    .map(boxed),
            ),
        };
        let backend = opened.map_err(|error| CapabilityError::Open {
            kind: "SQL database",
            name: name.to_string(),
            backend: kind,
            message: error.to_string(),
        })?;
        Ok(Database {
            name: Arc::from(name),
            backend,
            system: match kind {
                "postgres" => "postgresql",
                kind => kind,
            },
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A session on a connection taken from the pool.
    pub async fn connect(&self) -> Result<Session, SqlError> {
        let connection = self.backend.connect().await?;
        Ok(Session {
            database: self.name.clone(),
            system: self.system,
            connection: Some(connection),
            begin: self.backend.begin_statement(),
            in_transaction: false,
            runtime: tokio::runtime::Handle::try_current().ok(),
        })
    }
}

fn boxed<B: Backend + 'static>(backend: B) -> Arc<dyn Backend> {
    Arc::new(backend)
}

/// A guest's connection: the `connection` resource of `wasmgate:sql`.
///
/// Statements that begin or end a transaction are tracked whether they come through
/// [`Session::begin`] or as SQL text, so that dropping the session with a transaction open
/// rolls it back before the connection goes back to the pool.
pub struct Session {
    database: Arc<str>,
    system: &'static str,
    /// `None` only while being dropped, or after a statement was cancelled half-way.
    connection: Option<Box<dyn Connection>>,
    begin: &'static str,
    in_transaction: bool,
    runtime: Option<tokio::runtime::Handle>,
}

impl Session {
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The database system (`db.system.name`): `sqlite`, `mysql` or `postgresql`.
    pub fn system(&self) -> &'static str {
        self.system
    }

    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    pub async fn execute(&mut self, statement: &str, params: Vec<Value>) -> Result<u64, SqlError> {
        let op = operation(statement);
        tracing::debug!(database = %self.database, operation = %op, "sql execute");
        let rows = self.connection()?.execute(statement, params).await?;
        if let Some(open) = op.transaction_effect() {
            self.in_transaction = open;
        }
        Ok(rows)
    }

    pub async fn query(&mut self, statement: &str, params: Vec<Value>) -> Result<RowSet, SqlError> {
        let op = operation(statement);
        tracing::debug!(database = %self.database, operation = %op, "sql query");
        let rows = self.connection()?.query(statement, params).await?;
        if let Some(open) = op.transaction_effect() {
            self.in_transaction = open;
        }
        Ok(rows)
    }

    pub async fn begin(&mut self) -> Result<(), SqlError> {
        if self.in_transaction {
            return Err(SqlError::Other("a transaction is already open".into()));
        }
        let begin = self.begin;
        self.execute(begin, Vec::new()).await?;
        self.in_transaction = true;
        Ok(())
    }

    pub async fn commit(&mut self) -> Result<(), SqlError> {
        self.finish("COMMIT").await
    }

    pub async fn rollback(&mut self) -> Result<(), SqlError> {
        self.finish("ROLLBACK").await
    }

    async fn finish(&mut self, statement: &str) -> Result<(), SqlError> {
        if !self.in_transaction {
            return Err(SqlError::Other("no transaction is open".into()));
        }
        let result = self.execute(statement, Vec::new()).await;
        // A failed COMMIT (e.g. a deferred constraint) still ends the transaction on
        // PostgreSQL and SQLite; MySQL keeps it, and the drop-time rollback covers that.
        self.in_transaction = false;
        result.map(|_| ())
    }

    fn connection(&mut self) -> Result<&mut Box<dyn Connection>, SqlError> {
        self.connection
            .as_mut()
            .ok_or_else(|| SqlError::ConnectionFailed("the connection was lost".into()))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let Some(mut connection) = self.connection.take() else {
            return;
        };
        if !self.in_transaction {
            return;
        }
        let database = self.database.clone();
        match &self.runtime {
            Some(runtime) => {
                // The rollback needs the connection's async I/O; the connection returns to
                // the pool when this task drops it, only after the rollback finished.
                runtime.spawn(async move {
                    if let Err(error) = connection.execute("ROLLBACK", Vec::new()).await {
                        tracing::warn!(%database, %error, "rolling back an abandoned transaction failed");
                        connection.discard();
                    }
                });
            }
            None => connection.discard(),
        }
    }
}

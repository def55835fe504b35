//! `wasmgate:sql`: relational databases for guests (wit/sql.wit).
//!
//! The runtime config says which backend serves each database name (SQLite file by default,
//! MySQL/MariaDB or PostgreSQL with a URL); the manifest says which component may open
//! which names. [`Databases`] opens every database some component is granted, once, when the
//! app loads; [`Grant`] is one component's share; each guest `connection` is a [`Session`]
//! on a pooled connection, kept in the instance's resource table so that dropping the
//! instance (normally or by a trap) drops the session and rolls back its transaction.
//!
//! - [`backend`]: the `Backend`/`Connection` traits, [`Database`] and [`Session`];
//! - [`sqlite`], [`mysql`], [`postgres`] (with [`pg_codec`]): the backends;
//! - [`placeholders`]: `?` to `$n` for PostgreSQL; [`redact`]: credentials out of messages.

pub mod backend;
mod mysql;
mod pg_codec;
pub mod placeholders;
mod postgres;
mod redact;
mod sqlite;
pub mod value;

pub use backend::{Backend, Connection, Database, Session};
pub use value::{RowSet, SqlError, Value};

use crate::error::CapabilityError;
use crate::stats::Capability;
use crate::{CapabilityHost, CapsView};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;
use wasmgate_manifest::Component;
use wasmgate_manifest::{Manifest, RuntimeConfig};
use wasmgate_telemetry::spans::{error_kind, sql_operation, ChildSpan, SpanKind};
use wasmtime::component::{HasData, Linker, Resource};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/sql.wit",
        world: "wasmgate:sql/imports",
        imports: { default: async | trappable },
        with: {
            "wasmgate:sql/sql.connection": super::Session,
        },
    });
}

use bindings::wasmgate::sql::sql as wit;

const KIND: &str = "SQL database";
const TABLE: &str = "sql_database";

/// The app's databases, opened when it loads.
pub struct Databases {
    opened: BTreeMap<String, Database>,
    /// Every name the runtime config defines, granted or not: opening one of these without a
    /// grant is "access denied" rather than "no such database".
    configured: Arc<BTreeSet<String>>,
    config: String,
}

impl Databases {
    /// Opens every database some component of `manifest` is granted and checks that each is
    /// reachable. Databases no component is granted are not opened.
    pub async fn open(
        manifest: &Manifest,
        config: &RuntimeConfig,
    ) -> Result<Databases, CapabilityError> {
        let mut wanted: BTreeMap<&str, &str> = BTreeMap::new();
        for component in manifest.components.values() {
            for name in &component.sql_databases {
                wanted
                    .entry(name.as_str())
                    .or_insert(component.name.as_str());
            }
        }
        let mut opened = BTreeMap::new();
        for (name, component) in wanted {
            let backend =
                config
                    .sql_databases
                    .get(name)
                    .ok_or_else(|| CapabilityError::UnknownBackend {
                        component: component.to_string(),
                        kind: KIND,
                        table: TABLE,
                        name: name.to_string(),
                        config: config.describe(),
                    })?;
            opened.insert(name.to_string(), Database::open(name, backend).await?);
        }
        Ok(Databases {
            opened,
            configured: Arc::new(config.sql_databases.keys().cloned().collect()),
            config: config.describe(),
        })
    }

    /// The databases `component` may open.
    pub fn grant(&self, component: &Component) -> Result<Grant, CapabilityError> {
        let mut granted = BTreeMap::new();
        for name in &component.sql_databases {
            let database = self.opened.get(name).ok_or_else(|| {
                if self.configured.contains(name) {
                    CapabilityError::Open {
                        kind: KIND,
                        name: name.clone(),
                        backend: "any",
                        message: format!(
                            "component {:?} is not part of the app the databases were opened for",
                            component.name
                        ),
                    }
                } else {
                    CapabilityError::UnknownBackend {
                        component: component.name.clone(),
                        kind: KIND,
                        table: TABLE,
                        name: name.clone(),
                        config: self.config.clone(),
                    }
                }
            })?;
            granted.insert(name.clone(), database.clone());
        }
        Ok(Grant {
            granted: Arc::new(granted),
            configured: self.configured.clone(),
        })
    }
}

/// The databases one component may open; cheap to clone.
#[derive(Clone, Default)]
pub struct Grant {
    granted: Arc<BTreeMap<String, Database>>,
    configured: Arc<BTreeSet<String>>,
}

impl Grant {
    /// A grant of exactly `databases` (host-side tests and embedders).
    pub fn of(databases: impl IntoIterator<Item = Database>) -> Grant {
        let granted: BTreeMap<String, Database> = databases
            .into_iter()
            .map(|db| (db.name().to_string(), db))
            .collect();
        let configured = Arc::new(granted.keys().cloned().collect());
        Grant {
            granted: Arc::new(granted),
            configured,
        }
    }

    /// Opens `name` for a guest: a session if granted, else why not.
    pub async fn open(&self, name: &str) -> Result<Session, SqlError> {
        match self.granted.get(name) {
            Some(database) => database.connect().await,
            None if self.configured.contains(name) => Err(SqlError::AccessDenied),
            None => Err(SqlError::NoSuchDatabase),
        }
    }
}

/// One instance's SQL state. Its sessions live in the instance's resource table.
pub struct InstanceState {
    grant: Grant,
}

impl InstanceState {
    pub fn new(grant: &Grant) -> InstanceState {
        InstanceState {
            grant: grant.clone(),
        }
    }
}

impl wit::Host for CapsView<'_> {}

impl CapsView<'_> {
    /// Counts a statement's call and keeps it for the trace view; and its CLIENT span, when
    /// span export is on. Both show the operation and the database, never the statement's
    /// text or parameters (they hold the guest's data).
    fn sql_call<T>(
        &self,
        connection: &Resource<Session>,
        operation: &'static str,
        started: Instant,
        result: &Result<T, wit::Error>,
    ) {
        let session = self.table.get(connection).ok();
        let database = session.map_or("", |s| s.database());
        self.caps.calls.record_traced(
            Capability::Sql,
            started,
            || format!("{operation} {database}"),
            result.is_err(),
        );
        let (Some(spans), Some(session)) = (&self.caps.spans, session) else {
            return;
        };
        spans.push(ChildSpan {
            span_id: None,
            name: format!("{operation} {}", session.database()).into(),
            kind: SpanKind::Client,
            start: started,
            end: Instant::now(),
            attributes: vec![
                ("db.system.name", session.system().into()),
                ("db.operation.name", operation.into()),
                ("db.namespace", session.database().to_string().into()),
                ("wasmgate.capability", "sql".into()),
            ],
            // The error's kind only: messages can quote the guest's values.
            error: result.as_ref().err().map(|e| error_kind(&format!("{e:?}"))),
        });
    }
}

impl wit::HostConnection for CapsView<'_> {
    async fn open(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<Session>, wit::Error>> {
        let started = Instant::now();
        let grant = self.caps.sql.grant.clone();
        let result = match grant.open(&name).await {
            Ok(session) => Ok(self.table.push(session)?),
            Err(error) => {
                tracing::debug!(database = %name, %error, "sql open failed");
                Err(error.into())
            }
        };
        self.caps.calls.record_traced(
            Capability::Sql,
            started,
            || format!("open {name}"),
            result.is_err(),
        );
        Ok(result)
    }

    async fn execute(
        &mut self,
        connection: Resource<Session>,
        statement: String,
        params: Vec<wit::Value>,
    ) -> wasmtime::Result<Result<u64, wit::Error>> {
        let started = Instant::now();
        let session = self.table.get_mut(&connection)?;
        let params = params.into_iter().map(Value::from).collect();
        let result = session
            .execute(&statement, params)
            .await
            .map_err(wit::Error::from);
        self.sql_call(&connection, sql_operation(&statement), started, &result);
        Ok(result)
    }

    async fn query(
        &mut self,
        connection: Resource<Session>,
        statement: String,
        params: Vec<wit::Value>,
    ) -> wasmtime::Result<Result<wit::RowSet, wit::Error>> {
        let started = Instant::now();
        let session = self.table.get_mut(&connection)?;
        let params = params.into_iter().map(Value::from).collect();
        let result = session
            .query(&statement, params)
            .await
            .map(|rows| wit::RowSet {
                columns: rows.columns,
                rows: rows
                    .rows
                    .into_iter()
                    .map(|row| row.into_iter().map(wit::Value::from).collect())
                    .collect(),
            })
            .map_err(wit::Error::from);
        self.sql_call(&connection, sql_operation(&statement), started, &result);
        Ok(result)
    }

    async fn begin(
        &mut self,
        connection: Resource<Session>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let started = Instant::now();
        let result = self.table.get_mut(&connection)?.begin().await;
        let result = result.map_err(wit::Error::from);
        self.sql_call(&connection, "BEGIN", started, &result);
        Ok(result)
    }

    async fn commit(
        &mut self,
        connection: Resource<Session>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let started = Instant::now();
        let result = self.table.get_mut(&connection)?.commit().await;
        let result = result.map_err(wit::Error::from);
        self.sql_call(&connection, "COMMIT", started, &result);
        Ok(result)
    }

    async fn rollback(
        &mut self,
        connection: Resource<Session>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let started = Instant::now();
        let result = self.table.get_mut(&connection)?.rollback().await;
        let result = result.map_err(wit::Error::from);
        self.sql_call(&connection, "ROLLBACK", started, &result);
        Ok(result)
    }

    async fn drop(&mut self, connection: Resource<Session>) -> wasmtime::Result<()> {
        // Dropping the session returns its connection to the pool (after a rollback if a
        // transaction is open); see `Session`'s `Drop`.
        self.table.delete(connection)?;
        Ok(())
    }
}

impl From<wit::Value> for Value {
    fn from(value: wit::Value) -> Value {
        match value {
            wit::Value::Null => Value::Null,
            wit::Value::Int64(v) => Value::Int64(v),
            wit::Value::Uint64(v) => Value::Uint64(v),
            wit::Value::Float64(v) => Value::Float64(v),
            wit::Value::Text(v) => Value::Text(v),
            wit::Value::Blob(v) => Value::Blob(v),
        }
    }
}

impl From<Value> for wit::Value {
    fn from(value: Value) -> wit::Value {
        match value {
            Value::Null => wit::Value::Null,
            Value::Int64(v) => wit::Value::Int64(v),
            Value::Uint64(v) => wit::Value::Uint64(v),
            Value::Float64(v) => wit::Value::Float64(v),
            Value::Text(v) => wit::Value::Text(v),
            Value::Blob(v) => wit::Value::Blob(v),
        }
    }
}

impl From<SqlError> for wit::Error {
    fn from(error: SqlError) -> wit::Error {
        match error {
            SqlError::NoSuchDatabase => wit::Error::NoSuchDatabase,
            SqlError::AccessDenied => wit::Error::AccessDenied,
            SqlError::ConnectionFailed(m) => wit::Error::ConnectionFailed(m),
            SqlError::ConstraintViolation(m) => wit::Error::ConstraintViolation(m),
            SqlError::Syntax(m) => wit::Error::Syntax(m),
            SqlError::Other(m) => wit::Error::Other(m),
        }
    }
}

struct HasSql;

impl HasData for HasSql {
    type Data<'a> = CapsView<'a>;
}

pub fn add_to_linker<T: CapabilityHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasSql>(linker, T::caps)
}

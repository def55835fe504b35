//! PostgreSQL through `tokio-postgres`, pooled by `deadpool-postgres`.
//!
//! Connections are plain TCP (`NoTls`): meant for a database on loopback or a private
//! network the operator trusts. Each statement is prepared first so that the server says
//! which type each parameter and column has; values are then encoded and decoded by
//! [`super::pg_codec`] to and from `wasmgate:sql`'s few value kinds.

use super::backend::{Backend, Connection, ACQUIRE_TIMEOUT};
use super::pg_codec;
use super::placeholders;
use super::redact::Redactor;
use super::value::{RowSet, SqlError, Value};
use async_trait::async_trait;
use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::error::Error as _;
use std::time::Duration;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};
use tokio_postgres::NoTls;

/// How long opening one new connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Postgres {
    pool: Pool,
    redactor: Redactor,
}

impl Postgres {
    pub async fn open(url: &str, max_connections: u32) -> Result<Postgres, SqlError> {
        let redactor = Redactor::for_url(url);
        let config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
            SqlError::ConnectionFailed(redactor.clean(format!("invalid url: {e}")))
        })?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let max = usize::try_from(max_connections).unwrap_or(1).max(1);
        let pool = Pool::builder(manager)
            .max_size(max)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(ACQUIRE_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| SqlError::Other(redactor.clean(e.to_string())))?;
        let backend = Postgres { pool, redactor };
        let client = backend.get().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| map_error(e, &backend.redactor))?;
        Ok(backend)
    }

    async fn get(&self) -> Result<Object, SqlError> {
        self.pool.get().await.map_err(|e| {
            // The pool's own message is generic ("Backend error: ..."); the driver's cause
            // is what tells an operator what is wrong.
            let mut message = e.to_string();
            if let deadpool_postgres::PoolError::Backend(inner) = &e {
                message = describe(inner);
            }
            SqlError::ConnectionFailed(self.redactor.clean(message))
        })
    }
}

#[async_trait]
impl Backend for Postgres {
    async fn connect(&self) -> Result<Box<dyn Connection>, SqlError> {
        Ok(Box::new(PostgresConnection {
            client: Some(self.get().await?),
            redactor: self.redactor.clone(),
        }))
    }
}

struct PostgresConnection {
    /// Always `Some` until `discard` takes it.
    client: Option<Object>,
    redactor: Redactor,
}

impl PostgresConnection {
    /// Prepares `statement` and encodes `params` for the parameter types the server chose.
    async fn prepare(
        &self,
        statement: &str,
        params: Vec<Value>,
    ) -> Result<(&Object, tokio_postgres::Statement, Vec<Encoded>), SqlError> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| SqlError::ConnectionFailed("the connection was lost".into()))?;
        let statement = placeholders::to_numbered(statement);
        let prepared = client
            .prepare(&statement)
            .await
            .map_err(|e| map_error(e, &self.redactor))?;
        let types = prepared.params();
        if types.len() != params.len() {
            return Err(SqlError::Other(format!(
                "the statement has {} parameters but {} values were given",
                types.len(),
                params.len()
            )));
        }
        let encoded = params
            .into_iter()
            .zip(types)
            .enumerate()
            .map(|(index, (value, ty))| {
                pg_codec::encode(value, ty)
                    .map(Encoded)
                    .map_err(|e| SqlError::Other(format!("parameter {}: {e}", index + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((client, prepared, encoded))
    }
}

#[async_trait]
impl Connection for PostgresConnection {
    async fn execute(&mut self, statement: &str, params: Vec<Value>) -> Result<u64, SqlError> {
        let (client, prepared, encoded) = self.prepare(statement, params).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = encoded.iter().map(|e| e as _).collect();
        client
            .execute(&prepared, &refs)
            .await
            .map_err(|e| map_error(e, &self.redactor))
    }

    async fn query(&mut self, statement: &str, params: Vec<Value>) -> Result<RowSet, SqlError> {
        let (client, prepared, encoded) = self.prepare(statement, params).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = encoded.iter().map(|e| e as _).collect();
        let rows = client
            .query(&prepared, &refs)
            .await
            .map_err(|e| map_error(e, &self.redactor))?;
        let columns = prepared.columns();
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut values = Vec::with_capacity(columns.len());
            for (index, column) in columns.iter().enumerate() {
                let raw: Raw<'_> = row
                    .try_get(index)
                    .map_err(|e| SqlError::Other(e.to_string()))?;
                let value = pg_codec::decode(raw.0, column.type_())
                    .map_err(|e| SqlError::Other(format!("column {:?}: {e}", column.name())))?;
                values.push(value);
            }
            out.push(values);
        }
        Ok(RowSet {
            columns: columns.iter().map(|c| c.name().to_string()).collect(),
            rows: out,
        })
    }

    fn discard(mut self: Box<Self>) {
        if let Some(client) = self.client.take() {
            // Detached from the pool, the client closes its connection when dropped.
            drop(Object::take(client));
        }
    }
}

/// A parameter already in PostgreSQL's binary format for its declared type.
#[derive(Debug)]
struct Encoded(Option<Vec<u8>>);

impl ToSql for Encoded {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            Some(bytes) => {
                out.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A column's raw binary value; [`pg_codec::decode`] interprets it.
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(
        _ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// The driver's message with its cause, which `Display` alone leaves out.
fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return db.message().to_string();
    }
    match error.source() {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

fn map_error(error: tokio_postgres::Error, redactor: &Redactor) -> SqlError {
    let message = redactor.clean(describe(&error));
    match error.as_db_error().map(|db| db.code().code()) {
        // Class 23: integrity constraint violation (unique, foreign key, not null, check).
        Some(code) if code.starts_with("23") => SqlError::ConstraintViolation(message),
        Some("42601") => SqlError::Syntax(message),
        Some(_) => SqlError::Other(message),
        None if error.is_closed() => SqlError::ConnectionFailed(message),
        None => SqlError::Other(message),
    }
}

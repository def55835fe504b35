//! MySQL and MariaDB through `mysql_async` and its built-in pool.
//!
//! Statements with parameters run as prepared statements (binary protocol: values come back
//! typed); statements without run as plain queries (text protocol), which also covers
//! statements the server cannot prepare. Either way each value is converted using its
//! column's type, so both paths give the guest the same `value`s.

use super::backend::{Backend, Connection, ACQUIRE_TIMEOUT};
use super::redact::Redactor;
use super::value::{RowSet, SqlError, Value};
use async_trait::async_trait;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use mysql_async::{Column, Opts, OptsBuilder, Params, Pool, PoolConstraints, PoolOpts, Row};

/// The character set number MySQL reports for binary (non-text) columns.
const BINARY_CHARSET: u16 = 63;

pub struct Mysql {
    pool: Pool,
    redactor: Redactor,
}

impl Mysql {
    pub async fn open(url: &str, max_connections: u32) -> Result<Mysql, SqlError> {
        let redactor = Redactor::for_url(url);
        let opts = Opts::from_url(url)
            .map_err(|e| SqlError::ConnectionFailed(redactor.clean(format!("invalid url: {e}"))))?;
        let max = usize::try_from(max_connections).unwrap_or(1).max(1);
        let constraints = PoolConstraints::new(0, max).unwrap_or_default();
        let opts = OptsBuilder::from_opts(opts)
            // UPDATE reports matched rather than changed rows, as SQLite and PostgreSQL do.
            .client_found_rows(true)
            // reset_connection (the default) also rolls back whatever a returned connection
            // left open; kept on explicitly since the drop-time rollback relies on it too.
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_reset_connection(true),
            );
        let backend = Mysql {
            pool: Pool::new(opts),
            redactor,
        };
        let mut conn = backend.get_conn().await?;
        conn.ping().await.map_err(|e| backend.map_error(e))?;
        Ok(backend)
    }

    async fn get_conn(&self) -> Result<mysql_async::Conn, SqlError> {
        match tokio::time::timeout(ACQUIRE_TIMEOUT, self.pool.get_conn()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(SqlError::ConnectionFailed(
                self.redactor.clean(e.to_string()),
            )),
            Err(_) => Err(SqlError::ConnectionFailed(
                "timed out waiting for a free connection".into(),
            )),
        }
    }

    fn map_error(&self, error: mysql_async::Error) -> SqlError {
        map_error(error, &self.redactor)
    }
}

#[async_trait]
impl Backend for Mysql {
    async fn connect(&self) -> Result<Box<dyn Connection>, SqlError> {
        Ok(Box::new(MysqlConnection {
            conn: self.get_conn().await?,
            redactor: self.redactor.clone(),
        }))
    }

    fn begin_statement(&self) -> &'static str {
        "START TRANSACTION"
    }
}

struct MysqlConnection {
    conn: mysql_async::Conn,
    redactor: Redactor,
}

#[async_trait]
impl Connection for MysqlConnection {
    async fn execute(&mut self, statement: &str, params: Vec<Value>) -> Result<u64, SqlError> {
        let result = if params.is_empty() {
            self.conn.query_drop(statement).await
        } else {
            self.conn.exec_drop(statement, to_params(params)).await
        };
        result.map_err(|e| map_error(e, &self.redactor))?;
        Ok(self.conn.affected_rows())
    }

    async fn query(&mut self, statement: &str, params: Vec<Value>) -> Result<RowSet, SqlError> {
        let redactor = &self.redactor;
        let (columns, rows) = if params.is_empty() {
            let mut result = self
                .conn
                .query_iter(statement)
                .await
                .map_err(|e| map_error(e, redactor))?;
            let columns = result.columns();
            let rows: Vec<Row> = result.collect().await.map_err(|e| map_error(e, redactor))?;
            result
                .drop_result()
                .await
                .map_err(|e| map_error(e, redactor))?;
            (columns, rows)
        } else {
            let mut result = self
                .conn
                .exec_iter(statement, to_params(params))
                .await
                .map_err(|e| map_error(e, redactor))?;
            let columns = result.columns();
            let rows: Vec<Row> = result.collect().await.map_err(|e| map_error(e, redactor))?;
            result
                .drop_result()
                .await
                .map_err(|e| map_error(e, redactor))?;
            (columns, rows)
        };
        let columns = columns.map(|c| c.to_vec()).unwrap_or_default();
        let names = columns.iter().map(|c| c.name_str().into_owned()).collect();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let values = row
                .unwrap()
                .into_iter()
                .zip(&columns)
                .map(|(value, column)| from_mysql(value, column))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(values);
        }
        Ok(RowSet {
            columns: names,
            rows: out,
        })
    }
}

fn to_params(params: Vec<Value>) -> Params {
    Params::Positional(
        params
            .into_iter()
            .map(|value| match value {
                Value::Null => mysql_async::Value::NULL,
                Value::Int64(v) => mysql_async::Value::Int(v),
                Value::Uint64(v) => mysql_async::Value::UInt(v),
                Value::Float64(v) => mysql_async::Value::Double(v),
                Value::Text(v) => mysql_async::Value::Bytes(v.into_bytes()),
                Value::Blob(v) => mysql_async::Value::Bytes(v),
            })
            .collect(),
    )
}

fn from_mysql(value: mysql_async::Value, column: &Column) -> Result<Value, SqlError> {
    use mysql_async::Value as My;
    let ty = column.column_type();
    Ok(match value {
        My::NULL => Value::Null,
        My::Int(v) => Value::Int64(v),
        My::UInt(v) => i64::try_from(v).map_or(Value::Uint64(v), Value::Int64),
        My::Float(v) => Value::Float64(f64::from(v)),
        My::Double(v) => Value::Float64(v),
        My::Date(year, month, day, hour, minute, second, micros) => {
            let date = format!("{year:04}-{month:02}-{day:02}");
            if matches!(
                ty,
                ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE
            ) {
                Value::Text(date)
            } else {
                Value::Text(format!(
                    "{date}T{hour:02}:{minute:02}:{second:02}{}",
                    fraction(micros)
                ))
            }
        }
        My::Time(negative, days, hours, minutes, seconds, micros) => {
            let hours = u64::from(days) * 24 + u64::from(hours);
            Value::Text(format!(
                "{}{hours:02}:{minutes:02}:{seconds:02}{}",
                if negative { "-" } else { "" },
                fraction(micros)
            ))
        }
        My::Bytes(bytes) => from_mysql_bytes(bytes, column)?,
    })
}

/// Text-protocol values arrive as bytes whatever their type; binary-protocol strings and
/// blobs do too. The column type says which they are.
fn from_mysql_bytes(bytes: Vec<u8>, column: &Column) -> Result<Value, SqlError> {
    use ColumnType::*;
    let text = |bytes: Vec<u8>| match String::from_utf8(bytes) {
        Ok(text) => Value::Text(text),
        Err(e) => Value::Blob(e.into_bytes()),
    };
    let bad = || {
        SqlError::Other(format!(
            "column {:?}: the server sent a value that does not parse as its type",
            column.name_str()
        ))
    };
    Ok(match column.column_type() {
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
        | MYSQL_TYPE_LONGLONG | MYSQL_TYPE_YEAR => {
            let digits = std::str::from_utf8(&bytes).map_err(|_| bad())?;
            if column.flags().contains(ColumnFlags::UNSIGNED_FLAG) {
                let v: u64 = digits.parse().map_err(|_| bad())?;
                i64::try_from(v).map_or(Value::Uint64(v), Value::Int64)
            } else {
                Value::Int64(digits.parse().map_err(|_| bad())?)
            }
        }
        MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => {
            let digits = std::str::from_utf8(&bytes).map_err(|_| bad())?;
            Value::Float64(digits.parse().map_err(|_| bad())?)
        }
        MYSQL_TYPE_DATETIME
        | MYSQL_TYPE_DATETIME2
        | MYSQL_TYPE_TIMESTAMP
        | MYSQL_TYPE_TIMESTAMP2 => {
            let mut bytes = bytes;
            // The text protocol writes "YYYY-MM-DD HH:MM:SS"; ISO 8601 wants the 'T'.
            if bytes.get(10) == Some(&b' ') {
                bytes[10] = b'T';
            }
            text(bytes)
        }
        MYSQL_TYPE_DECIMAL
        | MYSQL_TYPE_NEWDECIMAL
        | MYSQL_TYPE_DATE
        | MYSQL_TYPE_NEWDATE
        | MYSQL_TYPE_TIME
        | MYSQL_TYPE_TIME2
        | MYSQL_TYPE_JSON
        | MYSQL_TYPE_ENUM
        | MYSQL_TYPE_SET => text(bytes),
        _ if column.character_set() == BINARY_CHARSET => Value::Blob(bytes),
        _ => text(bytes),
    })
}

/// ".ffffff" when there are microseconds, nothing otherwise.
fn fraction(micros: u32) -> String {
    if micros == 0 {
        String::new()
    } else {
        format!(".{micros:06}")
    }
}

fn map_error(error: mysql_async::Error, redactor: &Redactor) -> SqlError {
    match error {
        mysql_async::Error::Server(server) => {
            let message = redactor.clean(server.message);
            match server.code {
                // Duplicate key, foreign keys (both directions, old and new codes), NOT NULL,
                // no default for a NOT NULL column, CHECK (MariaDB, MySQL).
                1022 | 1062 | 1169 | 1216 | 1217 | 1451 | 1452 | 1048 | 1364 | 1557 | 4025
                | 3819 => SqlError::ConstraintViolation(message),
                // Parse error, and the generic "check the manual ... syntax" error.
                1064 | 1149 => SqlError::Syntax(message),
                _ => SqlError::Other(message),
            }
        }
        mysql_async::Error::Io(e) => SqlError::ConnectionFailed(redactor.clean(e.to_string())),
        mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed) => {
            SqlError::ConnectionFailed("the connection was closed".into())
        }
        other => SqlError::Other(redactor.clean(other.to_string())),
    }
}

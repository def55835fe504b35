//! The host-side shapes of `wasmgate:sql` values, results and errors, shared by every backend.
//! They mirror the WIT types one to one; `mod.rs` converts at the guest boundary so backends
//! never depend on generated bindings.

use std::fmt;

/// A parameter or column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int64(i64),
    Uint64(u64),
    Float64(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    /// The variant's name, for messages about values that do not fit a column.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int64(_) => "int64",
            Value::Uint64(_) => "uint64",
            Value::Float64(_) => "float64",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }
}

/// The rows a query returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// Why a statement or `open` failed, as the guest sees it. Messages never carry
/// credentials: backends pass them through [`crate::sql::redact::Redactor`] first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    #[error("no such database")]
    NoSuchDatabase,
    #[error("access denied")]
    AccessDenied,
    #[error("connection failed: {0}")]
    ConnectionFailed(String),
    #[error("constraint violation: {0}")]
    ConstraintViolation(String),
    #[error("syntax error: {0}")]
    Syntax(String),
    #[error("{0}")]
    Other(String),
}

/// The statement's first keyword, upper-cased (`SELECT`, `INSERT`, ...): what telemetry may
/// say about a statement without revealing its data. Leading comments are skipped.
pub fn operation(statement: &str) -> Operation {
    let mut rest = statement.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .take(16)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let next: String = rest[word.len()..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .take(16)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Operation { word, next }
}

/// A statement's leading keyword and the one after it (enough to tell `ROLLBACK` from
/// `ROLLBACK TO SAVEPOINT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    word: String,
    next: String,
}

impl Operation {
    pub fn as_str(&self) -> &str {
        if self.word.is_empty() {
            "?"
        } else {
            &self.word
        }
    }

    /// Whether running this statement leaves a transaction open (`Some(true)`), closes it
    /// (`Some(false)`), or has no effect on that (`None`).
    pub fn transaction_effect(&self) -> Option<bool> {
        match self.word.as_str() {
            "BEGIN" => Some(true),
            "START" if self.next == "TRANSACTION" => Some(true),
            "COMMIT" | "END" => Some(false),
            "ROLLBACK" if self.next != "TO" => Some(false),
            _ => None,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_is_the_first_keyword() {
        assert_eq!(operation("  select 1").as_str(), "SELECT");
        assert_eq!(operation("-- hi\n/* x */ Insert into t").as_str(), "INSERT");
        assert_eq!(operation("").as_str(), "?");
        assert_eq!(
            operation("start transaction").transaction_effect(),
            Some(true)
        );
        assert_eq!(
            operation("ROLLBACK TO SAVEPOINT a").transaction_effect(),
            None
        );
        assert_eq!(operation("rollback").transaction_effect(), Some(false));
    }
}

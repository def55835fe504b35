//! [`Error`]: a failure that becomes an HTTP response. Handlers return `Result<Response, Error>`
//! and use `?` on the SDK's other errors, which convert with a fitting status.

use crate::config::ConfigError;
use crate::kv::KvError;
use crate::outbound::OutboundError;
use crate::sql::SqlError;
use ::http::StatusCode;
use std::fmt;

/// An error answered as `status` with `message` as a plain-text body.
///
/// Conversions from the SDK's errors choose the status:
/// - [`KvError`], [`ConfigError`] and most [`SqlError`]s: 500;
/// - [`SqlError::ConstraintViolation`]: 409 Conflict;
/// - [`OutboundError`]: 502, or 504 for [`OutboundError::Timeout`].
///
/// Server errors (5xx) are also logged through wasi:logging, so the reason is in the host's
/// logs even if a client never shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: StatusCode,
    message: String,
}

impl Error {
    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Error {
        Error {
            status,
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(StatusCode::NOT_FOUND, message)
    }

    /// 405 Method Not Allowed.
    pub fn method_not_allowed() -> Error {
        Error::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    }

    /// 500 Internal Server Error.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response body text.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for Error {}

impl From<KvError> for Error {
    fn from(error: KvError) -> Error {
        Error::internal(format!("key-value: {error}"))
    }
}

impl From<SqlError> for Error {
    fn from(error: SqlError) -> Error {
        let status = match error {
            SqlError::ConstraintViolation(_) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Error::new(status, format!("sql: {error}"))
    }
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Error {
        Error::internal(format!("config: {error}"))
    }
}

impl From<OutboundError> for Error {
    fn from(error: OutboundError) -> Error {
        let status = match error {
            OutboundError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        };
        Error::new(status, format!("outbound request: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_errors_choose_a_status() {
        let conflict = Error::from(SqlError::ConstraintViolation("UNIQUE".into()));
        assert_eq!(conflict.status(), StatusCode::CONFLICT);
        assert_eq!(
            Error::from(SqlError::AccessDenied).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            Error::from(OutboundError::Timeout).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            Error::from(OutboundError::Denied).status(),
            StatusCode::BAD_GATEWAY
        );
        let kv = Error::from(KvError::NoSuchStore);
        assert_eq!(kv.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(kv.message().starts_with("key-value: "), "{}", kv.message());
    }
}

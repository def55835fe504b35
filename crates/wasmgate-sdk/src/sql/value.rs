//! [`Value`]: a parameter or column value, with conversions from Rust values (parameters) and
//! to them ([`FromValue`], used by [`Row::get`](super::Row::get)).

use crate::bindings::wasmgate::sql::sql as wit;
use std::fmt;

/// A parameter or a column value, the same on every backend.
///
/// How columns arrive: integers and booleans as [`Value::Int64`] (booleans as 0 and 1),
/// floating point as [`Value::Float64`], character data, exact decimals, dates and times as
/// [`Value::Text`] (decimals as their decimal string, dates and times in ISO 8601), binary
/// data as [`Value::Blob`], SQL NULL as [`Value::Null`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A signed integer (also booleans, as 0 and 1).
    Int64(i64),
    /// An unsigned MySQL/MariaDB value too large for an `i64`.
    Uint64(u64),
    /// A floating-point number.
    Float64(f64),
    /// Text; also decimals, dates and times.
    Text(String),
    /// Binary data (BLOB, VARBINARY, BYTEA).
    Blob(Vec<u8>),
}

impl Value {
    /// The variant's name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int64(_) => "int64",
            Value::Uint64(_) => "uint64",
            Value::Float64(_) => "float64",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }
}

impl From<wit::Value> for Value {
    fn from(value: wit::Value) -> Value {
        match value {
            wit::Value::Null => Value::Null,
            wit::Value::Int64(n) => Value::Int64(n),
            wit::Value::Uint64(n) => Value::Uint64(n),
            wit::Value::Float64(x) => Value::Float64(x),
            wit::Value::Text(text) => Value::Text(text),
            wit::Value::Blob(bytes) => Value::Blob(bytes),
        }
    }
}

impl From<&Value> for wit::Value {
    fn from(value: &Value) -> wit::Value {
        match value {
            Value::Null => wit::Value::Null,
            Value::Int64(n) => wit::Value::Int64(*n),
            Value::Uint64(n) => wit::Value::Uint64(*n),
            Value::Float64(x) => wit::Value::Float64(*x),
            Value::Text(text) => wit::Value::Text(text.clone()),
            Value::Blob(bytes) => wit::Value::Blob(bytes.clone()),
        }
    }
}

macro_rules! from_integer {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Value {
            fn from(n: $ty) -> Value {
                Value::Int64(i64::from(n))
            }
        }
    )*};
}
from_integer!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for Value {
    /// `Int64` when it fits, else `Uint64`.
    fn from(n: u64) -> Value {
        i64::try_from(n).map_or(Value::Uint64(n), Value::Int64)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float64(x)
    }
}

impl From<f32> for Value {
    fn from(x: f32) -> Value {
        Value::Float64(f64::from(x))
    }
}

impl From<bool> for Value {
    /// 1 or 0: an integer column holds it on every backend.
    fn from(b: bool) -> Value {
        Value::Int64(i64::from(b))
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Text(text.to_string())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Text(text)
    }
}

impl From<&String> for Value {
    fn from(text: &String) -> Value {
        Value::Text(text.clone())
    }
}

impl From<Vec<u8>> for Value {
    fn from(bytes: Vec<u8>) -> Value {
        Value::Blob(bytes)
    }
}

impl From<&[u8]> for Value {
    fn from(bytes: &[u8]) -> Value {
        Value::Blob(bytes.to_vec())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` is NULL.
    fn from(value: Option<T>) -> Value {
        value.map_or(Value::Null, Into::into)
    }
}

/// Why a column value could not become the requested Rust type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionError {
    /// What was asked for, e.g. `i64`.
    pub expected: &'static str,
    /// What the value was, e.g. `text "abc"` or `NULL`.
    pub found: String,
}

impl fmt::Display for ConversionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, found {}", self.expected, self.found)
    }
}

/// A Rust type a column value converts to. NULL only converts to `Option<T>`.
pub trait FromValue: Sized {
    /// Converts `value`, or says why not.
    fn from_value(value: &Value) -> Result<Self, ConversionError>;
}

fn mismatch<T>(expected: &'static str, value: &Value) -> Result<T, ConversionError> {
    let found = match value {
        Value::Null => "NULL".to_string(),
        Value::Int64(n) => format!("int64 {n}"),
        Value::Uint64(n) => format!("uint64 {n}"),
        Value::Float64(x) => format!("float64 {x}"),
        Value::Text(text) if text.chars().count() > 40 => {
            format!("text {:?}...", text.chars().take(40).collect::<String>())
        }
        Value::Text(text) => format!("text {text:?}"),
        Value::Blob(bytes) => format!("blob of {} bytes", bytes.len()),
    };
    Err(ConversionError { expected, found })
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<i64, ConversionError> {
        match value {
            Value::Int64(n) => Ok(*n),
            Value::Uint64(n) => i64::try_from(*n).or_else(|_| mismatch("i64", value)),
            _ => mismatch("i64", value),
        }
    }
}

impl FromValue for i32 {
    fn from_value(value: &Value) -> Result<i32, ConversionError> {
        let n = i64::from_value(value).or_else(|_| mismatch("i32", value))?;
        i32::try_from(n).or_else(|_| mismatch("i32", value))
    }
}

impl FromValue for u64 {
    fn from_value(value: &Value) -> Result<u64, ConversionError> {
        match value {
            Value::Int64(n) => u64::try_from(*n).or_else(|_| mismatch("u64", value)),
            Value::Uint64(n) => Ok(*n),
            _ => mismatch("u64", value),
        }
    }
}

impl FromValue for f64 {
    /// Floats as they are; integers too (an aggregate such as `AVG` is an integer on some
    /// backends), and decimal text (`NUMERIC` columns), which may round.
    fn from_value(value: &Value) -> Result<f64, ConversionError> {
        match value {
            Value::Float64(x) => Ok(*x),
            Value::Int64(n) => Ok(*n as f64),
            Value::Uint64(n) => Ok(*n as f64),
            Value::Text(text) => text.trim().parse().or_else(|_| mismatch("f64", value)),
            _ => mismatch("f64", value),
        }
    }
}

impl FromValue for bool {
    /// From an integer: 0 is false, 1 is true (how every backend returns booleans).
    fn from_value(value: &Value) -> Result<bool, ConversionError> {
        match value {
            Value::Int64(0) | Value::Uint64(0) => Ok(false),
            Value::Int64(1) | Value::Uint64(1) => Ok(true),
            _ => mismatch("bool (0 or 1)", value),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<String, ConversionError> {
        match value {
            Value::Text(text) => Ok(text.clone()),
            _ => mismatch("text", value),
        }
    }
}

impl FromValue for Vec<u8> {
    /// Blobs, and text as its UTF-8 bytes.
    fn from_value(value: &Value) -> Result<Vec<u8>, ConversionError> {
        match value {
            Value::Blob(bytes) => Ok(bytes.clone()),
            Value::Text(text) => Ok(text.clone().into_bytes()),
            _ => mismatch("blob", value),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Result<Value, ConversionError> {
        Ok(value.clone())
    }
}

impl<T: FromValue> FromValue for Option<T> {
    /// NULL is `None`; anything else converts as `T`.
    fn from_value(value: &Value) -> Result<Option<T>, ConversionError> {
        match value {
            Value::Null => Ok(None),
            _ => T::from_value(value).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_values_become_parameters() {
        assert_eq!(Value::from(7_i32), Value::Int64(7));
        assert_eq!(Value::from(true), Value::Int64(1));
        assert_eq!(Value::from(u64::MAX), Value::Uint64(u64::MAX));
        assert_eq!(Value::from(5_u64), Value::Int64(5));
        assert_eq!(Value::from(1.5), Value::Float64(1.5));
        assert_eq!(Value::from("a"), Value::Text("a".into()));
        assert_eq!(Value::from(String::from("b")), Value::Text("b".into()));
        assert_eq!(Value::from(vec![1_u8, 2]), Value::Blob(vec![1, 2]));
        assert_eq!(Value::from(None::<i64>), Value::Null);
        assert_eq!(Value::from(Some("x")), Value::Text("x".into()));
    }

    #[test]
    fn integers_convert_within_range() {
        assert_eq!(i64::from_value(&Value::Int64(-3)), Ok(-3));
        assert_eq!(i32::from_value(&Value::Int64(42)), Ok(42));
        let too_big = i32::from_value(&Value::Int64(i64::from(i32::MAX) + 1)).unwrap_err();
        assert_eq!(too_big.expected, "i32");
        assert!(i64::from_value(&Value::Uint64(u64::MAX)).is_err());
        assert_eq!(u64::from_value(&Value::Int64(9)), Ok(9));
        assert!(u64::from_value(&Value::Int64(-1)).is_err());
    }

    #[test]
    fn null_only_converts_to_option() {
        assert_eq!(Option::<i64>::from_value(&Value::Null), Ok(None));
        assert_eq!(Option::<i64>::from_value(&Value::Int64(1)), Ok(Some(1)));
        let error = i64::from_value(&Value::Null).unwrap_err();
        assert_eq!(error.to_string(), "expected i64, found NULL");
    }

    #[test]
    fn booleans_come_from_zero_and_one() {
        assert_eq!(bool::from_value(&Value::Int64(0)), Ok(false));
        assert_eq!(bool::from_value(&Value::Int64(1)), Ok(true));
        assert!(bool::from_value(&Value::Int64(2)).is_err());
        assert!(bool::from_value(&Value::Text("true".into())).is_err());
    }

    #[test]
    fn floats_accept_integers_and_decimal_text() {
        assert_eq!(f64::from_value(&Value::Float64(0.5)), Ok(0.5));
        assert_eq!(f64::from_value(&Value::Int64(2)), Ok(2.0));
        assert_eq!(f64::from_value(&Value::Text("-12.50".into())), Ok(-12.5));
        assert!(f64::from_value(&Value::Text("abc".into())).is_err());
    }

    #[test]
    fn text_and_blobs() {
        assert_eq!(
            String::from_value(&Value::Text("hi".into())),
            Ok("hi".into())
        );
        let error = String::from_value(&Value::Int64(1)).unwrap_err();
        assert_eq!(error.found, "int64 1");
        assert_eq!(
            Vec::<u8>::from_value(&Value::Blob(vec![0, 1])),
            Ok(vec![0, 1])
        );
        assert_eq!(
            Vec::<u8>::from_value(&Value::Text("ab".into())),
            Ok(b"ab".to_vec())
        );
    }

    #[test]
    fn long_text_is_shortened_in_messages() {
        let long = "x".repeat(100);
        let error = i64::from_value(&Value::Text(long)).unwrap_err();
        assert!(error.found.ends_with("..."), "{}", error.found);
        assert!(error.found.len() < 60, "{}", error.found);
    }

    #[test]
    fn values_cross_the_interface_unchanged() {
        for value in [
            Value::Null,
            Value::Int64(-1),
            Value::Uint64(u64::MAX),
            Value::Float64(2.5),
            Value::Text("t".into()),
            Value::Blob(vec![9]),
        ] {
            assert_eq!(Value::from(wit::Value::from(&value)), value);
        }
    }
}

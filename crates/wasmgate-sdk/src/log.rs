//! Logging through `wasi:logging`: records go to the host's structured logs, tagged with the
//! component and app. Use the macros, which take `format!` arguments and use the calling
//! module's path as the record's context:
//!
//! ```no_run
//! let id = 42;
//! wasmgate_sdk::log::info!("created todo {id}");
//! wasmgate_sdk::log::warn!("slow upstream: {} ms", 1200);
//! ```
//!
//! or the functions ([`info()`], [`warn()`]...), which take a finished message and use no context.
//! The host decides which levels it keeps (its `RUST_LOG`-style filter). Built for a non-wasm
//! target (unit tests), records go to stderr instead.

use crate::bindings::wasi::logging::logging as wit;

/// A record's severity, lowest first; the same levels as wasi:logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation worth recording.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// A failure of one operation.
    Error,
    /// A failure that needs attention now.
    Critical,
}

impl From<Level> for wit::Level {
    fn from(level: Level) -> wit::Level {
        match level {
            Level::Trace => wit::Level::Trace,
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
            Level::Critical => wit::Level::Critical,
        }
    }
}

/// Emits one record at `level`; `context` names where it came from (may be empty).
pub fn write(level: Level, context: &str, message: &str) {
    #[cfg(target_arch = "wasm32")]
    wit::log(level.into(), context, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {context}: {message}");
}

/// A `trace` record.
pub fn trace(message: &str) {
    write(Level::Trace, "", message);
}

/// A `debug` record.
pub fn debug(message: &str) {
    write(Level::Debug, "", message);
}

/// An `info` record.
pub fn info(message: &str) {
    write(Level::Info, "", message);
}

/// A `warn` record.
pub fn warn(message: &str) {
    write(Level::Warn, "", message);
}

/// An `error` record.
pub fn error(message: &str) {
    write(Level::Error, "", message);
}

/// A `critical` record.
pub fn critical(message: &str) {
    write(Level::Critical, "", message);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_at {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::write(
            $crate::log::Level::$level,
            ::core::module_path!(),
            &::std::format!($($arg)+),
        )
    };
}

/// `trace!("fmt", args...)`: a `trace` record with the calling module as context.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_trace {
    ($($arg:tt)+) => { $crate::__log_at!(Trace, $($arg)+) };
}

/// `debug!("fmt", args...)`: a `debug` record with the calling module as context.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_debug {
    ($($arg:tt)+) => { $crate::__log_at!(Debug, $($arg)+) };
}

/// `info!("fmt", args...)`: an `info` record with the calling module as context.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_info {
    ($($arg:tt)+) => { $crate::__log_at!(Info, $($arg)+) };
}

/// `warn!("fmt", args...)`: a `warn` record with the calling module as context.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_warn {
    ($($arg:tt)+) => { $crate::__log_at!(Warn, $($arg)+) };
}

/// `error!("fmt", args...)`: an `error` record with the calling module as context.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_error {
    ($($arg:tt)+) => { $crate::__log_at!(Error, $($arg)+) };
}

/// `critical!("fmt", args...)`: a `critical` record with the calling module as context.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_critical {
    ($($arg:tt)+) => { $crate::__log_at!(Critical, $($arg)+) };
}

#[doc(inline)]
pub use crate::{
    __log_critical as critical, __log_debug as debug, __log_error as error, __log_info as info,
    __log_trace as trace, __log_warn as warn,
};

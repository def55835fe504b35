//! Component variables through `wasi:config/store`.
//!
//! A component sees the keys of its own `[component.NAME.variables]` table, each rendered from
//! the app's variables (`key = "text {{ name }}"`). App variable values come from the
//! environment (`WASMGATE_VAR_NAME`), the runtime config, or the manifest's default.
//!
//! ```no_run
//! # fn run() -> Result<(), wasmgate_sdk::config::ConfigError> {
//! let base = wasmgate_sdk::config::require("api_base")?;
//! let greeting = wasmgate_sdk::config::variable("greeting")?.unwrap_or_else(|| "hi".into());
//! # Ok(())
//! # }
//! ```

use crate::bindings::wasi::config::store;
use std::fmt;

/// Why a variable could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// [`require`] found no variable of that name in the component's table.
    Missing(String),
    /// The host's configuration source failed.
    Upstream(String),
    /// An I/O error in the host.
    Io(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing(name) => write!(
                f,
                "variable {name:?} is not set (add it to [component.NAME.variables])"
            ),
            ConfigError::Upstream(why) => write!(f, "configuration source: {why}"),
            ConfigError::Io(why) => write!(f, "I/O: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<store::Error> for ConfigError {
    fn from(error: store::Error) -> ConfigError {
        match error {
            store::Error::Upstream(why) => ConfigError::Upstream(why),
            store::Error::Io(why) => ConfigError::Io(why),
        }
    }
}

/// The variable `name`, or `None` if the component has none of that name.
pub fn variable(name: &str) -> Result<Option<String>, ConfigError> {
    Ok(store::get(name)?)
}

/// The variable `name`; [`ConfigError::Missing`] if the component has none of that name.
pub fn require(name: &str) -> Result<String, ConfigError> {
    variable(name)?.ok_or_else(|| ConfigError::Missing(name.to_string()))
}

/// All the component's variables as `(name, value)` pairs.
pub fn all() -> Result<Vec<(String, String)>, ConfigError> {
    Ok(store::get_all()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_variables_say_where_to_add_them() {
        let message = ConfigError::Missing("self_url".into()).to_string();
        assert!(message.contains("\"self_url\""), "{message}");
        assert!(message.contains("variables"), "{message}");
    }
}

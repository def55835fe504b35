//! Errors a manifest can have. Each one says where: file, line, column and the field's path.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file could not be read at all.
    #[error("cannot read manifest {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The manifest was read but a value in it is wrong.
    #[error("{}:{line}:{column}: {field}: {message}\n{excerpt}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        /// Dotted path of the offending field, e.g. `component.api.limits.timeout`.
        field: String,
        message: String,
        /// The source line with the offending span underlined.
        excerpt: String,
    },
}

impl ManifestError {
    /// The dotted field path, for errors that have one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ManifestError::Invalid { field, .. } => Some(field),
            ManifestError::Read { .. } => None,
        }
    }

    /// The 1-based line, for errors that have one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ManifestError::Invalid { line, .. } => Some(*line),
            ManifestError::Read { .. } => None,
        }
    }
}

//! Why a file could not be inspected.

use std::fmt;

/// The four bytes every WebAssembly binary, module or component, starts with.
pub(crate) const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// A file that [`inspect`](crate::inspect) could not describe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// The input has no bytes at all.
    #[error("not a WebAssembly binary: the file is empty")]
    Empty,

    /// The input does not start with the `\0asm` magic number.
    #[error("not a WebAssembly binary (expected \\0asm at offset 0){}", NotWasmHint(*.looks_like_wat))]
    NotWasm {
        /// The input looks like WebAssembly text (WAT) rather than binary.
        looks_like_wat: bool,
    },

    /// The input starts like WebAssembly but is malformed or fails validation.
    #[error("invalid WebAssembly at byte offset {offset:#x} ({offset}): {message}")]
    Invalid {
        /// Byte offset into the input where the problem was found.
        offset: usize,
        /// What is wrong, as reported by the validator.
        message: String,
    },
}

impl From<wasmparser::BinaryReaderError> for InspectError {
    fn from(err: wasmparser::BinaryReaderError) -> Self {
        InspectError::Invalid {
            offset: err.offset(),
            message: err.message().to_string(),
        }
    }
}

/// Rejects input that is clearly not a WebAssembly binary, before the parser
/// gets to produce a less helpful message about it.
///
/// Input that is a strict prefix of the magic number (a truncated file) is let
/// through so that the validator reports it with its offset.
pub(crate) fn check_magic(bytes: &[u8]) -> Result<(), InspectError> {
    if bytes.is_empty() {
        return Err(InspectError::Empty);
    }
    let len = bytes.len().min(WASM_MAGIC.len());
    if bytes[..len] == WASM_MAGIC[..len] {
        return Ok(());
    }
    Err(InspectError::NotWasm {
        looks_like_wat: looks_like_wat(bytes),
    })
}

/// WAT text starts, after whitespace and comments, with `(module` or
/// `(component`; a bare list of module fields such as `(func ...)` is also
/// accepted by WAT tools, so any leading `(` counts.
fn looks_like_wat(bytes: &[u8]) -> bool {
    let mut rest = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    loop {
        rest = rest.trim_ascii_start();
        if rest.starts_with(b";;") {
            match rest.iter().position(|&b| b == b'\n') {
                Some(end) => rest = &rest[end..],
                None => return false,
            }
        } else if rest.starts_with(b"(;") {
            match rest.windows(2).position(|w| w == b";)") {
                Some(end) => rest = &rest[end + 2..],
                None => return false,
            }
        } else {
            return rest.starts_with(b"(");
        }
    }
}

struct NotWasmHint(bool);

impl fmt::Display for NotWasmHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 {
            f.write_str(
                "; this looks like WebAssembly text (WAT): convert it to a binary first, \
                 e.g. with `wasm-tools parse`",
            )
        } else {
            Ok(())
        }
    }
}

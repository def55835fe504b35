//! Reading and writing wasi:io streams, shared by the handler (request in, response out) and
//! outbound HTTP (request out, response in).

use wasip2::io::streams::{InputStream, OutputStream, StreamError};

/// `blocking-write-and-flush` accepts at most 4096 bytes per call: that is the WASI contract
/// (`check-write` never promises more to a blocking writer); larger writes fail.
pub(crate) const MAX_WRITE: usize = 4096;

/// How much one `blocking-read` asks for.
const READ_CHUNK: u64 = 64 * 1024;

/// Why a body could not be read in full.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// More than the limit arrived; the rest was not read.
    TooLarge,
    /// The stream failed; the host's error, for wasi:http a possible `error-code`.
    Failed(wasip2::io::error::Error),
}

/// Reads `stream` to its end, failing once more than `limit` bytes have arrived.
///
/// The buffer grows by doubling but never past `limit`: plain `Vec` growth would ask for
/// twice the limit just before reaching it (32 MiB for a 16 MiB body, plus the 16 MiB being
/// copied), which is more than a component with a 64 MiB memory limit can have.
pub(crate) fn read_to_end(stream: &InputStream, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                let needed = bytes.len() + chunk.len();
                if needed > limit {
                    return Err(ReadError::TooLarge);
                }
                bytes.reserve_exact(grown_capacity(bytes.capacity(), needed, limit) - bytes.len());
                bytes.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok(bytes),
            Err(StreamError::LastOperationFailed(error)) => return Err(ReadError::Failed(error)),
        }
    }
}

/// The capacity to hold `needed` bytes: at least double `capacity` (so appending stays
/// amortised O(1)), but at most `limit` (`needed <= limit`).
fn grown_capacity(capacity: usize, needed: usize, limit: usize) -> usize {
    if needed <= capacity {
        capacity
    } else {
        capacity.saturating_mul(2).max(needed).min(limit)
    }
}

/// Writes all of `data` in pieces of at most [`MAX_WRITE`] bytes, each one waiting until the
/// host has accepted and flushed it (that wait is the back-pressure from a slow peer).
pub(crate) fn write_all(stream: &OutputStream, data: &[u8]) -> Result<(), StreamError> {
    for piece in data.chunks(MAX_WRITE) {
        stream.blocking_write_and_flush(piece)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::grown_capacity;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn buffers_double_but_stop_at_the_limit() {
        assert_eq!(grown_capacity(0, 100, 16 * MIB), 100);
        assert_eq!(grown_capacity(100, 150, 16 * MIB), 200);
        assert_eq!(grown_capacity(200, 150, 16 * MIB), 200);
        assert_eq!(grown_capacity(12 * MIB, 12 * MIB + 1, 16 * MIB), 16 * MIB);
    }
}

//! Writing to stdout without panicking: `print!` panics when stdout is a closed pipe
//! (`wasmgate inspect x.wasm | head`), which is not an error worth a crash.

use std::io::Write;

/// Writes `text` and flushes. A reader that went away (broken pipe) counts as success.
pub fn print_stdout(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

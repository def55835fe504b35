//! What a guest says during one invocation. Its stdout and stderr are split into lines as it
//! writes them, and each line is logged at once (target `wasmgate::guest`, tagged with the
//! component, invocation id and trace id), so a slow or streaming invocation's output shows up
//! while it runs. Lines are counted for the record; the first ones, with the guest's
//! `wasi:logging` records, are kept in order for the record's log view.
//!
//! Everything is capped per invocation so a chatty guest cannot flood the host's log or
//! memory, and nothing the guest writes is ever refused: past the caps, lines are counted and
//! not logged or kept. (A capped buffer that refuses writes makes the guest's `println!`
//! fail, and Rust guests then panic.)

use crate::trace::TraceId;
use serde::Serialize;
use std::sync::{Arc, Mutex};

/// Longest line logged, in bytes; the rest of a longer line is counted, not logged.
pub const MAX_LINE_BYTES: usize = 4 << 10;
/// Bytes of output lines one invocation may log, both streams together; later lines are
/// counted, and their number logged once when the invocation ends.
pub const LOG_BUDGET_BYTES: usize = 64 << 10;
/// Lines (output and log records) kept in the invocation's record, and their bytes.
pub const KEPT_LINES: usize = 50;
pub const KEPT_BYTES: usize = 8 << 10;

/// One line a guest wrote, or one `wasi:logging` record, as kept in its invocation record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestLine {
    /// `stdout`, `stderr` or `log` (a `wasi:logging` record).
    pub source: &'static str,
    /// A log record's level (`trace` ... `critical`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<&'static str>,
    pub text: String,
}

/// One of the two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Lines and bytes written to each stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputCounts {
    pub stdout_lines: u64,
    pub stdout_bytes: u64,
    pub stderr_lines: u64,
    pub stderr_bytes: u64,
}

/// What `finish` hands to the record.
#[derive(Debug, Default)]
pub struct Transcript {
    pub counts: OutputCounts,
    /// The first lines and log records, in the order the guest produced them.
    pub kept: Vec<GuestLine>,
    /// Lines and records past what is kept.
    pub left_out: u64,
}

/// One invocation's output: shared by its stdout, its stderr and its `wasi:logging` state.
#[derive(Clone)]
pub struct GuestOutput(Arc<Mutex<State>>);

struct State {
    component: Arc<str>,
    invocation_id: u64,
    trace_id: TraceId,
    streams: [StreamState; 2],
    logged_bytes: usize,
    /// Complete lines not logged because the budget was spent.
    unlogged: u64,
    kept: Vec<GuestLine>,
    kept_bytes: usize,
    left_out: u64,
}

#[derive(Default)]
struct StreamState {
    /// The line being written, up to `MAX_LINE_BYTES`.
    partial: Vec<u8>,
    /// The line being written is longer than what `partial` holds.
    cut: bool,
    lines: u64,
    bytes: u64,
}

impl GuestOutput {
    pub fn new(component: Arc<str>, invocation_id: u64, trace_id: TraceId) -> GuestOutput {
        GuestOutput(Arc::new(Mutex::new(State {
            component,
            invocation_id,
            trace_id,
            streams: Default::default(),
            logged_bytes: 0,
            unlogged: 0,
            kept: Vec::new(),
            kept_bytes: 0,
            left_out: 0,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while logging a line leaves nothing half-updated that matters.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes what the guest wrote to `stream`, logging each line it completes.
    pub fn write(&self, stream: Stream, bytes: &[u8]) {
        let mut state = self.state();
        let index = stream as usize;
        state.streams[index].bytes += bytes.len() as u64;
        let mut rest = bytes;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            state.append(index, &rest[..newline]);
            state.complete_line(stream);
            rest = &rest[newline + 1..];
        }
        state.append(index, rest);
    }

    /// Keeps a `wasi:logging` record (the logging capability logs it itself).
    pub fn keep_log_record(&self, level: &'static str, message: &str) {
        self.state().keep("log", Some(level), message);
    }

    /// Ends the invocation's output: a last line without a newline is logged and counted.
    pub fn finish(&self) -> Transcript {
        let mut state = self.state();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let current = &state.streams[stream as usize];
            if !current.partial.is_empty() || current.cut {
                state.complete_line(stream);
            }
        }
        if state.unlogged > 0 {
            tracing::warn!(
                target: "wasmgate::guest",
                component = %state.component,
                invocation = state.invocation_id,
                trace_id = %state.trace_id,
                lines = state.unlogged,
                "guest output lines past the per-invocation log budget were not logged"
            );
            state.unlogged = 0;
        }
        let [stdout, stderr] = &state.streams;
        let counts = OutputCounts {
            stdout_lines: stdout.lines,
            stdout_bytes: stdout.bytes,
            stderr_lines: stderr.lines,
            stderr_bytes: stderr.bytes,
        };
        Transcript {
            counts,
            kept: std::mem::take(&mut state.kept),
            left_out: state.left_out,
        }
    }
}

impl State {
    fn append(&mut self, index: usize, bytes: &[u8]) {
        let current = &mut self.streams[index];
        let room = MAX_LINE_BYTES - current.partial.len();
        if bytes.len() > room {
            current.cut = true;
        }
        current
            .partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn complete_line(&mut self, stream: Stream) {
        let current = &mut self.streams[stream as usize];
        current.lines += 1;
        let cut = std::mem::take(&mut current.cut);
        let mut line = std::mem::take(&mut current.partial);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            // Blank lines are counted, not logged: they say nothing in a structured log.
            self.streams[stream as usize].partial = reuse(line);
            return;
        }
        if self.logged_bytes + text.len() <= LOG_BUDGET_BYTES {
            self.logged_bytes += text.len();
            let (component, stream_name) = (&*self.component, stream.name());
            if cut {
                tracing::info!(
                    target: "wasmgate::guest",
                    invocation = self.invocation_id,
                    trace_id = %self.trace_id,
                    component,
                    stream = stream_name,
                    cut_at = MAX_LINE_BYTES,
                    "{text}"
                );
            } else {
                tracing::info!(
                    target: "wasmgate::guest",
                    invocation = self.invocation_id,
                    trace_id = %self.trace_id,
                    component,
                    stream = stream_name,
                    "{text}"
                );
            }
        } else {
            self.unlogged += 1;
        }
        self.keep(stream.name(), None, &text);
        self.streams[stream as usize].partial = reuse(line);
    }

    fn keep(&mut self, source: &'static str, level: Option<&'static str>, text: &str) {
        if self.kept.len() >= KEPT_LINES || self.kept_bytes + text.len() > KEPT_BYTES {
            self.left_out += 1;
            return;
        }
        self.kept_bytes += text.len();
        self.kept.push(GuestLine {
            source,
            level,
            text: text.to_string(),
        });
    }
}

/// The line buffer, emptied, to hold the next line without a new allocation.
fn reuse(mut line: Vec<u8>) -> Vec<u8> {
    line.clear();
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output() -> GuestOutput {
        GuestOutput::new("c".into(), 1, TraceId(7))
    }

    fn texts(transcript: &Transcript) -> Vec<(&str, &str)> {
        transcript
            .kept
            .iter()
            .map(|l| (l.source, l.text.as_str()))
            .collect()
    }

    #[test]
    fn lines_are_split_across_writes_and_streams_keep_their_order() {
        let out = output();
        out.write(Stream::Stdout, b"hel");
        out.write(Stream::Stderr, b"oops\r\n");
        out.write(Stream::Stdout, b"lo\nwor");
        out.keep_log_record("warn", "from wasi:logging");
        out.write(Stream::Stdout, b"ld\n\nlast without newline");
        let transcript = out.finish();
        assert_eq!(
            texts(&transcript),
            [
                ("stderr", "oops"),
                ("stdout", "hello"),
                ("log", "from wasi:logging"),
                ("stdout", "world"),
                ("stdout", "last without newline"),
            ]
        );
        assert_eq!(transcript.kept[2].level, Some("warn"));
        assert_eq!(
            transcript.counts,
            OutputCounts {
                stdout_lines: 4,
                stdout_bytes: 33,
                stderr_lines: 1,
                stderr_bytes: 6,
            }
        );
        assert_eq!(transcript.left_out, 0);
    }

    #[test]
    fn counts_agree_with_count_lines() {
        for text in ["", "a", "a\n", "a\nb", "\n\n", "x\ny\nz\n"] {
            let out = output();
            out.write(Stream::Stderr, text.as_bytes());
            let counts = out.finish().counts;
            assert_eq!(
                counts.stderr_lines,
                crate::count_lines(text.as_bytes()),
                "{text:?}"
            );
            assert_eq!(counts.stderr_bytes, text.len() as u64);
        }
    }

    #[test]
    fn a_long_line_is_cut_and_the_next_one_starts_clean() {
        let out = output();
        let long = vec![b'x'; MAX_LINE_BYTES * 3];
        out.write(Stream::Stdout, &long[..MAX_LINE_BYTES + 10]);
        out.write(Stream::Stdout, &long[MAX_LINE_BYTES + 10..]);
        out.write(Stream::Stdout, b"\nshort\n");
        let transcript = out.finish();
        assert_eq!(transcript.counts.stdout_lines, 2);
        assert_eq!(transcript.counts.stdout_bytes, long.len() as u64 + 7);
        // The long line is kept cut; the next one starts clean.
        assert_eq!(transcript.kept.len(), 2);
        assert_eq!(transcript.kept[0].text, "x".repeat(MAX_LINE_BYTES));
        assert_eq!(transcript.kept[1].text, "short");
    }

    #[test]
    fn a_flood_is_counted_whole_but_kept_and_logged_only_up_to_the_caps() {
        let out = output();
        let line = format!("{}\n", "y".repeat(99));
        for _ in 0..10_000 {
            out.write(Stream::Stderr, line.as_bytes());
        }
        let transcript = out.finish();
        assert_eq!(transcript.counts.stderr_lines, 10_000);
        assert_eq!(transcript.counts.stderr_bytes, 1_000_000);
        let kept_bytes: usize = transcript.kept.iter().map(|l| l.text.len()).sum();
        assert!(transcript.kept.len() <= KEPT_LINES && kept_bytes <= KEPT_BYTES);
        assert_eq!(
            transcript.kept.len() as u64 + transcript.left_out,
            10_000,
            "every line is kept or counted as left out"
        );
        let state = out.state();
        assert!(state.logged_bytes <= LOG_BUDGET_BYTES);
        assert_eq!(state.logged_bytes, LOG_BUDGET_BYTES / 99 * 99);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let out = output();
        out.write(Stream::Stdout, b"caf\xc3\n\xff\xfe ok\n");
        let transcript = out.finish();
        assert_eq!(
            texts(&transcript),
            [("stdout", "caf\u{fffd}"), ("stdout", "\u{fffd}\u{fffd} ok")]
        );
    }
}

//! The access log: one structured line per invocation, at info level under the target
//! `wasmgate::invocation`, written by its own thread from the history's access-log feed.
//!
//! Emitting it as a `tracing` event from the request path cost a hello request about 28k
//! instructions (+14%), mostly tracing-subscriber's JSON layer, plus a `write` per line. Here
//! the publisher hands each batch of finished records to the feed (`Arc` clones, one lock),
//! and this thread takes them a batch at a time, formats them directly and writes many lines
//! per `write`: at most one pipe buffer's atomic size when stderr is a pipe, so lines never
//! interleave with other log output, and 64 KiB when it is a regular file. If the thread
//! falls behind by more than the feed holds, the lines not kept are counted in
//! `wasmgate_log_lines_dropped_total` instead of slowing requests down.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use wasmgate_telemetry::{next_rest, InvocationRecord, RouteCache, Telemetry};

/// The log target's literal, for building constant text around it.
macro_rules! target {
    () => {
        "wasmgate::invocation"
    };
}

/// The log target the lines carry; `RUST_LOG=wasmgate::invocation=warn` turns them off.
pub const TARGET: &str = target!();

/// Bytes written at once when stderr is a pipe (or a terminal, or a socket): `PIPE_BUF`, the
/// most a pipe takes atomically, so lines never interleave with other log output.
const PIPE_BATCH_BYTES: usize = 4096;

/// Bytes written at once when stderr is a regular file, whose writes do not interleave at any
/// size. At 30k lines a second, 4 KiB writes to a file cost the log thread about 1 µs of
/// system time per line, more than formatting the line.
const FILE_BATCH_BYTES: usize = 64 * 1024;

/// How much to write at once to `output` (this process's stderr).
fn batch_bytes(output: std::os::fd::BorrowedFd<'_>) -> usize {
    let regular_file = output
        .try_clone_to_owned()
        .ok()
        .map(std::fs::File::from)
        .and_then(|file| file.metadata().ok())
        .is_some_and(|metadata| metadata.file_type().is_file());
    if regular_file {
        FILE_BATCH_BYTES
    } else {
        PIPE_BATCH_BYTES
    }
}

/// How long the thread rests between looks at the feed while records come in: the
/// publisher's pace. Waiting on the feed instead would make a busy server wake it (a futex
/// wake in the request path) for almost every record; resting, it wakes about 100 times a
/// second and finds a batch waiting. The feed holds [`wasmgate_telemetry::LIVE_BUFFER`]
/// records, 10 ms of 100k requests a second. With no records it rests longer, up to half a
/// second, and the first record after such a rest wakes it (`wasmgate_telemetry::Doze`).
const REST: Duration = wasmgate_telemetry::PUBLISH_INTERVAL;

/// The running writer; [`AccessLog::finish`] writes what is left and stops it.
pub struct AccessLog {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AccessLog {
    /// Writes the lines of every record published so far and stops the thread (graceful
    /// shutdown: the last requests' lines are not lost with the process).
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // It may be resting for up to half a second; the drain after this wake-up is its
            // last.
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Starts the writer thread unless the log filter turns the access log off.
pub fn start(telemetry: &Arc<Telemetry>, json: bool) -> std::io::Result<AccessLog> {
    let stop = Arc::new(AtomicBool::new(false));
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return Ok(AccessLog { stop, thread: None });
    }
    telemetry.history.start_logging();
    let dropped = telemetry.metrics.log_lines_dropped();
    let stopping = stop.clone();
    let feed = telemetry.clone();
    let thread = std::thread::Builder::new()
        .name("wasmgate-access-log".into())
        .spawn(move || {
            let batch_bytes = batch_bytes(std::os::fd::AsFd::as_fd(&std::io::stderr()));
            let mut batch = Vec::with_capacity(2 * batch_bytes);
            let mut records = Vec::new();
            let mut state = LineState::default();
            let mut rest = REST;
            loop {
                // Read before taking: a stop asked for before this take is covered by it.
                let last = stopping.load(Ordering::Relaxed);
                dropped.inc_by(feed.history.take_logged(&mut records));
                if !records.is_empty() {
                    state.restamp();
                }
                for record in &records {
                    // Formatted straight into the batch; a line that takes it over the limit
                    // goes first in the next one.
                    let start = batch.len();
                    format_line(&mut batch, record, json, &mut state);
                    if batch.len() > batch_bytes && start > 0 {
                        write_out(&batch[..start]);
                        batch.drain(..start);
                    }
                }
                if !batch.is_empty() {
                    write_out(&batch);
                    batch.clear();
                }
                if last {
                    return;
                }
                rest = next_rest(rest, !records.is_empty());
                // The records go back to the publisher's side with the next take; the lines
                // are written, so their records need not be kept until then.
                records.clear();
                feed.history
                    .follower_doze()
                    .rest(rest, || feed.history.has_logged());
            }
        })?;
    telemetry
        .history
        .follower_doze()
        .set_thread(thread.thread().clone());
    Ok(AccessLog {
        stop,
        thread: Some(thread),
    })
}

fn write_out(batch: &[u8]) {
    // Nowhere to report a failed write to stderr; the line is lost, requests are not.
    let _ = std::io::stderr().lock().write_all(batch);
}

/// One line: JSON with the same shape as every other log line (`timestamp`, `level`,
/// `message`, fields, `target`), or text like tracing-subscriber's.
fn format_line(out: &mut Vec<u8>, record: &InvocationRecord, json: bool, state: &mut LineState) {
    out.extend_from_slice(state.head(json));
    // Field by field, not from an array of them: building and walking one cost a third of
    // the line's instructions.
    let mut line = Fields { out, json };
    line.field(name!("invocation"), Value::Number(record.id));
    line.field(name!("trace_id"), Value::Hex(record.trace_id.0));
    let format = Some(if json { "json" } else { "text" });
    let per_route = state.routes.get(record, [format, None], || {
        let mut made = Vec::new();
        let mut line = Fields {
            out: &mut made,
            json,
        };
        line.field(name!("app"), Value::Text(&record.app));
        line.field(name!("route"), Value::Text(&record.route));
        line.field(name!("component"), Value::Text(&record.component));
        line.field(name!("executor"), Value::Word(record.executor));
        line.field(name!("method"), Value::Word(record.method));
        made.into_boxed_slice()
    });
    line.out.extend_from_slice(per_route);
    line.field(name!("status"), Value::Number(u64::from(record.status)));
    line.field(name!("outcome"), Value::Word(record.outcome));
    line.field(name!("wall_us"), Value::Number(record.wall_time_us));
    // Figures not measured are left out. One call each rather than a loop over an array: with
    // its name a literal, a field's head is copied with constant stores, not a `memcpy` call.
    if let Some(value) = record.guest_cpu_time_us {
        line.field(name!("guest_cpu_us"), Value::Number(value));
    }
    if let Some(value) = record.host_calls {
        line.field(name!("host_calls"), Value::Number(value));
    }
    if let Some(value) = record.host_call_time_us {
        line.field(name!("host_call_us"), Value::Number(value));
    }
    if let Some(value) = record.instructions {
        line.field(name!("instructions"), Value::Number(value));
    }
    line.field(
        name!("instantiate_us"),
        Value::Number(record.instantiate_time_us),
    );
    line.field(
        name!("peak_memory"),
        Value::Number(record.peak_memory_bytes),
    );
    line.field(name!("cold_start"), Value::Bool(record.cold_start));
    line.field(name!("request_bytes"), Value::Number(record.request_bytes));
    line.field(
        name!("response_bytes"),
        Value::Number(record.response_bytes),
    );
    // Output counts only when the guest wrote something: most handlers write nothing.
    if record.stdout_bytes > 0 {
        line.field(name!("stdout_lines"), Value::Number(record.stdout_lines));
        line.field(name!("stdout_bytes"), Value::Number(record.stdout_bytes));
    }
    if record.stderr_bytes > 0 {
        line.field(name!("stderr_lines"), Value::Number(record.stderr_lines));
        line.field(name!("stderr_bytes"), Value::Number(record.stderr_bytes));
    }
    match record.exit_code {
        Some(code) if code >= 0 => line.field(name!("exit_code"), Value::Number(code as u64)),
        Some(code) => line.field(name!("exit_code"), Value::Raw(&code.to_string())),
        None => {}
    }
    if let Some(error) = record.error.as_deref() {
        line.field(name!("error"), Value::Text(error));
    }
    if let Some(backtrace) = record.backtrace.as_deref() {
        line.field(name!("backtrace"), Value::Text(backtrace));
    }
    if json {
        out.extend_from_slice(concat!(",\"target\":\"", target!(), "\"}\n").as_bytes());
    } else {
        out.push(b'\n');
    }
}

/// What formatting lines keeps from one to the next: the timestamp, and the fields that are
/// the same for every request to a route (route, component, executor, method), made once per
/// route: escaping and copying them cost about 300 instructions a line.
#[derive(Default)]
struct LineState {
    clock: Timestamps,
    /// What every line starts with up to its first field, timestamp included, in the format
    /// it was made for. The time is read once per batch ([`LineState::restamp`]): the lines
    /// of one batch are written together. Reading and formatting the clock per line cost
    /// about 170 instructions.
    head: Vec<u8>,
    head_json: bool,
    routes: RouteCache,
}

impl LineState {
    /// Takes the time for the lines formatted from now on.
    fn restamp(&mut self) {
        self.head.clear();
    }

    /// The lines' head in the format asked for, made when the time was taken again.
    fn head(&mut self, json: bool) -> &[u8] {
        if self.head.is_empty() || self.head_json != json {
            let head = &mut self.head;
            head.clear();
            if json {
                head.extend_from_slice(b"{\"timestamp\":\"");
                self.clock.now(head);
                head.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"invocation\"");
            } else {
                self.clock.now(head);
                head.extend_from_slice(b"  INFO ");
                head.extend_from_slice(TARGET.as_bytes());
                head.extend_from_slice(b": invocation");
            }
            self.head_json = json;
        }
        &self.head
    }
}

/// A field's name with what comes before its value, in both formats, made at compile time:
/// `,"name":` for JSON and ` name=` for text, so a field's head is one copy.
macro_rules! name {
    ($name:literal) => {
        FieldName {
            json: concat!(",\"", $name, "\":"),
            text: concat!(" ", $name, "="),
        }
    };
}
use name;

#[derive(Clone, Copy)]
struct FieldName {
    json: &'static str,
    text: &'static str,
}

/// Writes `name` and its value in the line's format.
struct Fields<'a> {
    out: &'a mut Vec<u8>,
    json: bool,
}

impl Fields<'_> {
    #[inline(always)]
    fn field(&mut self, name: FieldName, value: Value<'_>) {
        let out = &mut *self.out;
        if self.json {
            out.extend_from_slice(name.json.as_bytes());
            match value {
                Value::Number(n) => number(out, n),
                Value::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
                Value::Text(t) => json_string(out, t),
                Value::Word(w) => {
                    out.push(b'"');
                    out.extend_from_slice(w.as_bytes());
                    out.push(b'"');
                }
                Value::Hex(h) => {
                    out.push(b'"');
                    hex(out, h);
                    out.push(b'"');
                }
                Value::Raw(r) => out.extend_from_slice(r.as_bytes()),
            }
        } else {
            out.extend_from_slice(name.text.as_bytes());
            match value {
                Value::Number(n) => number(out, n),
                Value::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
                Value::Word(w) => out.extend_from_slice(w.as_bytes()),
                Value::Text(t) if is_plain(t) && !t.contains(' ') => {
                    out.extend_from_slice(t.as_bytes())
                }
                Value::Text(t) => {
                    let _ = write!(out, "{t:?}");
                }
                Value::Hex(h) => hex(out, h),
                Value::Raw(r) => out.extend_from_slice(r.as_bytes()),
            }
        }
    }
}

#[inline(always)]
fn number(out: &mut Vec<u8>, n: u64) {
    // Many of a line's figures (byte counts, host calls) are below 100: no formatter call and
    // no `memcpy` of a length known only at run time.
    // The same for the three and four digits of statuses and most microsecond figures.
    let pair = |n: u64| DECIMAL_PAIRS[(n % 100) as usize];
    match n {
        0..=9 => out.push(b'0' + n as u8),
        10..=99 => out.extend_from_slice(&pair(n)),
        100..=999 => {
            let [tens, ones] = pair(n);
            out.extend_from_slice(&[b'0' + (n / 100) as u8, tens, ones]);
        }
        1000..=9999 => {
            let ([a, b], [c, d]) = (pair(n / 100), pair(n));
            out.extend_from_slice(&[a, b, c, d]);
        }
        _ => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
    }
}

/// Every two-digit number's digits.
const DECIMAL_PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0u8; 2]; 100];
    let mut n = 0;
    while n < 100 {
        pairs[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        n += 1;
    }
    pairs
};

/// The two hex digits of every byte value, so a byte takes one load (the trace id is on every
/// line; digit by digit it cost about 220 instructions).
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0xf]];
        byte += 1;
    }
    pairs
};

fn hex(out: &mut Vec<u8>, value: u128) {
    let mut text = [[0u8; 2]; 16];
    for (pair, byte) in text.iter_mut().zip(value.to_be_bytes()) {
        *pair = HEX_PAIRS[usize::from(byte)];
    }
    out.extend_from_slice(text.as_flattened());
}

/// Text that needs no escaping in JSON (nor quoting in text, if it also has no spaces).
fn is_plain(text: &str) -> bool {
    text.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f)
}

/// Formats the time like every other log line (tracing-subscriber's RFC 3339 with
/// microseconds), formatting the date and time of day once per second.
#[derive(Default)]
struct Timestamps {
    second: u64,
    /// `2026-11-21T14:22:20.` for `second`; empty when not yet made (or unusable).
    prefix: String,
}

impl Timestamps {
    fn now(&mut self, out: &mut Vec<u8>) {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        if since_epoch.as_secs() != self.second || self.prefix.is_empty() {
            let mut full = String::with_capacity(32);
            let _ = SystemTime.format_time(&mut Writer::new(&mut full));
            self.second = since_epoch.as_secs();
            // The shape the splice below relies on: `...:SS.ffffffZ`.
            match full.rfind('.') {
                Some(dot) if full.len() == dot + 8 && full.ends_with('Z') => {
                    self.prefix = full[..=dot].to_string();
                }
                _ => {
                    self.prefix.clear();
                    out.extend_from_slice(full.as_bytes());
                    return;
                }
            }
        }
        out.extend_from_slice(self.prefix.as_bytes());
        let micros = since_epoch.subsec_micros();
        let mut buffer = itoa::Buffer::new();
        let digits = buffer.format(micros);
        out.extend(std::iter::repeat_n(
            b'0',
            6usize.saturating_sub(digits.len()),
        ));
        out.extend_from_slice(digits.as_bytes());
        out.push(b'Z');
    }
}

enum Value<'a> {
    Number(u64),
    Bool(bool),
    Text(&'a str),
    /// One of the server's own words (an outcome, a method label): written as it is, with no
    /// escaping to check for.
    Word(&'static str),
    /// A trace id, written as 32 hex digits.
    Hex(u128),
    /// Written as it is, unquoted in JSON too: a number that `Number` cannot hold.
    Raw(&'a str),
}

fn json_string(out: &mut Vec<u8>, text: &str) {
    if is_plain(text) {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> InvocationRecord {
        InvocationRecord {
            id: 7,
            route: "/api/...".into(),
            component: "api".into(),
            app: "app".into(),
            executor: "http",
            method: "GET",
            status: 500,
            outcome: "trap",
            error: Some("guest said \"no\"\nand left".into()),
            wall_time_us: 1234,
            guest_cpu_time_us: Some(900),
            trace_id: wasmgate_telemetry::TraceId(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c),
            ..InvocationRecord::default()
        }
    }

    #[test]
    fn lines_go_out_in_pipe_sized_writes_except_to_a_regular_file() {
        use std::os::fd::AsFd;
        let (_reader, writer) = std::io::pipe().unwrap();
        assert_eq!(batch_bytes(writer.as_fd()), PIPE_BATCH_BYTES);
        let file = tempfile::tempfile().unwrap();
        assert_eq!(batch_bytes(file.as_fd()), FILE_BATCH_BYTES);
    }

    #[test]
    fn trace_ids_are_32_lowercase_hex_digits() {
        for value in [
            0,
            1,
            u128::MAX,
            0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c,
            0xa << 124,
        ] {
            let mut out = Vec::new();
            hex(&mut out, value);
            assert_eq!(String::from_utf8(out).unwrap(), format!("{value:032x}"));
        }
    }

    #[test]
    fn numbers_are_written_in_decimal_at_every_width() {
        for n in [
            0,
            7,
            9,
            10,
            42,
            99,
            100,
            101,
            200,
            999,
            1000,
            1984,
            9999,
            10_000,
            12_345,
            999_999,
            u64::MAX,
        ] {
            let mut out = b"x".to_vec();
            number(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    #[test]
    fn json_lines_parse_and_carry_the_record() {
        let mut out = Vec::new();
        format_line(&mut out, &record(), true, &mut LineState::default());
        assert_eq!(out.last(), Some(&b'\n'));
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["message"], "invocation");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], TARGET);
        assert_eq!(line["invocation"], 7);
        assert_eq!(line["trace_id"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(line["route"], "/api/...");
        assert_eq!(line["status"], 500);
        assert_eq!(line["outcome"], "trap");
        assert_eq!(line["guest_cpu_us"], 900);
        assert_eq!(line["cold_start"], false);
        assert_eq!(line["error"], "guest said \"no\"\nand left");
        assert!(line.get("instructions").is_none(), "{line}");
        assert!(line.get("stdout_lines").is_none(), "{line}");
        assert!(line.get("exit_code").is_none(), "{line}");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'), "{line}");
    }

    #[test]
    fn json_lines_carry_output_counts_exit_code_and_backtrace_when_there_are_some() {
        let record = InvocationRecord {
            host_calls: Some(12),
            host_call_time_us: Some(40),
            stderr_lines: 2,
            stderr_bytes: 31,
            exit_code: Some(-1),
            backtrace: Some(
                "    0:  0x1c4 - guest::handle\n                    at src/lib.rs:9:5".into(),
            ),
            ..record()
        };
        let mut out = Vec::new();
        format_line(&mut out, &record, true, &mut LineState::default());
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["app"], "app");
        assert_eq!(line["host_calls"], 12);
        assert_eq!(line["host_call_us"], 40);
        assert_eq!(
            (&line["stderr_lines"], &line["stderr_bytes"]),
            (&2.into(), &31.into())
        );
        assert!(line.get("stdout_bytes").is_none(), "{line}");
        assert_eq!(line["exit_code"], -1);
        assert_eq!(line["backtrace"], record.backtrace.clone().unwrap());
        let exited = InvocationRecord {
            exit_code: Some(3),
            ..record
        };
        let mut out = Vec::new();
        format_line(&mut out, &exited, true, &mut LineState::default());
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["exit_code"], 3);
    }

    #[test]
    fn lines_of_several_routes_from_one_formatter_name_their_own_route() {
        let mut state = LineState::default();
        let other = InvocationRecord {
            route: "/shop/{id}".into(),
            component: "shop \"v2\"".into(),
            executor: "wagi",
            method: "POST",
            ..record()
        };
        for round in 0..3 {
            for (record, route, component, executor, method) in [
                (record(), "/api/...", "api", "http", "GET"),
                (other.clone(), "/shop/{id}", "shop \"v2\"", "wagi", "POST"),
            ] {
                let mut out = Vec::new();
                format_line(&mut out, &record, true, &mut state);
                let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
                assert_eq!(line["route"], route, "round {round}");
                assert_eq!(line["component"], component, "round {round}");
                assert_eq!(line["executor"], executor, "round {round}");
                assert_eq!(line["method"], method, "round {round}");
                assert_eq!(line["status"], 500, "round {round}");
                let mut out = Vec::new();
                format_line(&mut out, &record, false, &mut state);
                let text = String::from_utf8(out).unwrap();
                assert!(
                    text.contains(&format!(" executor={executor} method={method} ")),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn timestamps_look_like_every_other_log_line() {
        let mut clock = Timestamps::default();
        for _ in 0..3 {
            let mut ours = Vec::new();
            clock.now(&mut ours);
            let ours = String::from_utf8(ours).unwrap();
            let mut theirs = String::new();
            SystemTime
                .format_time(&mut Writer::new(&mut theirs))
                .unwrap();
            assert_eq!(ours.len(), theirs.len(), "{ours} vs {theirs}");
            // Same second (or the next one), same shape.
            assert_eq!(ours[..17], theirs[..17], "{ours} vs {theirs}");
            assert!(ours.ends_with('Z') && ours.as_bytes()[19] == b'.', "{ours}");
            assert!(ours[20..26].bytes().all(|b| b.is_ascii_digit()), "{ours}");
        }
    }

    #[test]
    fn text_lines_are_one_line_with_quoted_text() {
        let mut out = Vec::new();
        format_line(&mut out, &record(), false, &mut LineState::default());
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(
            text.contains(
                " INFO wasmgate::invocation: invocation invocation=7 \
                 trace_id=0af7651916cd43dd8448eb211c80319c app=app route=/api/... component=api"
            ),
            "{text}"
        );
        assert!(
            text.contains(" error=\"guest said \\\"no\\\"\\nand left\""),
            "{text}"
        );
    }
}

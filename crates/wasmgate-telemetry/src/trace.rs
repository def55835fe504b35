//! W3C Trace Context (`traceparent`): continued when a request carries one, started otherwise,
//! and passed on to outbound requests, so a request's trace id follows it across services.
//! The caller's `tracestate` (vendors' own entries) is passed on with it, unchanged: Wasmgate
//! adds no entry of its own.
//!
//! Only the identifiers are handled here; exporting spans is the tracer's job.

use std::fmt;

/// This server's span of one request, and the trace it belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceContext {
    pub trace_id: TraceId,
    /// This request's span.
    pub span_id: u64,
    /// The caller's span, when the request continued a trace.
    pub parent_span_id: Option<u64>,
    /// The caller's sampling decision (or ours: sampled).
    pub sampled: bool,
}

/// A 128-bit trace id, shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TraceId(pub u128);

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for TraceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

impl TraceContext {
    /// The context of a request with `traceparent` header value `header` (if any): a child
    /// span of the caller's, or the root span of a new trace when the header is absent or
    /// malformed (the spec says to ignore a malformed one).
    pub fn for_request(header: Option<&[u8]>) -> TraceContext {
        match header.and_then(parse_traceparent) {
            Some((trace_id, parent, flags)) => TraceContext {
                trace_id: TraceId(trace_id),
                span_id: new_span_id(),
                parent_span_id: Some(parent),
                sampled: flags & 1 == 1,
            },
            None => TraceContext {
                trace_id: TraceId(new_trace_id()),
                span_id: new_span_id(),
                parent_span_id: None,
                sampled: true,
            },
        }
    }

    /// A new span in the same trace, child of this one (an outbound call, say).
    pub fn child(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            span_id: new_span_id(),
            parent_span_id: Some(self.span_id),
            sampled: self.sampled,
        }
    }

    /// The `traceparent` header naming this span as the parent.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

/// Parses a `traceparent` value into (trace id, parent span id, flags); `None` if invalid.
pub fn parse_traceparent(value: &[u8]) -> Option<(u128, u64, u8)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let mut parts = text.splitn(5, '-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let parent = parts.next()?;
    let flags = parts.next()?;
    let rest = parts.next();
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !lower_hex(version, 2) || version == "ff" || !lower_hex(trace, 32) {
        return None;
    }
    if !lower_hex(parent, 16) || !lower_hex(flags, 2) {
        return None;
    }
    // Version 00 has exactly four fields; later versions may append more.
    if version == "00" && rest.is_some() {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok()?;
    let parent_id = u64::from_str_radix(parent, 16).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace_id != 0 && parent_id != 0).then_some((trace_id, parent_id, flags))
}

/// Longest `tracestate` passed on, in bytes: the spec asks to propagate at least 512.
pub const MAX_TRACESTATE: usize = 512;
/// Entries longer than this are the first dropped when a `tracestate` must be shortened.
const LONG_ENTRY: usize = 128;

/// The `tracestate` to pass on for a request that continued its caller's trace (`context`
/// has a parent): the request's `tracestate` headers joined into one list, or `None` when
/// there is none, the trace is ours, or the value is not printable ASCII. A list over
/// [`MAX_TRACESTATE`] bytes loses its entries over 128 bytes first, then entries from the end
/// (the spec's truncation order).
pub fn tracestate_to_propagate(
    context: &TraceContext,
    headers: &http::HeaderMap,
) -> Option<http::HeaderValue> {
    context.parent_span_id?;
    let mut values = headers.get_all(TRACESTATE).iter();
    let first = values.next()?;
    let second = values.next();
    if second.is_none() && first.len() <= MAX_TRACESTATE {
        // The usual case: one header, short enough, passed on as it came.
        return first.to_str().ok().map(|_| first.clone());
    }
    let mut entries: Vec<&str> = Vec::new();
    for value in std::iter::once(first).chain(second).chain(values) {
        let text = value.to_str().ok()?;
        entries.extend(text.split(',').map(str::trim).filter(|e| !e.is_empty()));
    }
    let length = |entries: &[&str]| {
        entries.iter().map(|e| e.len()).sum::<usize>() + entries.len().saturating_sub(1)
    };
    if length(&entries) > MAX_TRACESTATE {
        entries.retain(|e| e.len() <= LONG_ENTRY);
    }
    while length(&entries) > MAX_TRACESTATE {
        entries.pop();
    }
    if entries.is_empty() {
        return None;
    }
    http::HeaderValue::from_str(&entries.join(",")).ok()
}

/// The W3C `tracestate` header's name.
pub const TRACESTATE: &str = "tracestate";

fn new_trace_id() -> u128 {
    loop {
        let id = fastrand::u128(..);
        if id != 0 {
            return id;
        }
    }
}

pub(crate) fn new_span_id() -> u64 {
    loop {
        let id = fastrand::u64(..);
        if id != 0 {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(tracestates: &[&str]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for value in tracestates {
            headers.append(TRACESTATE, http::HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn tracestate_is_passed_on_only_with_the_callers_trace() {
        let continued = TraceContext::for_request(Some(VALID.as_bytes()));
        let ours = TraceContext::for_request(None);
        let one = headers(&["congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"]);
        assert_eq!(
            tracestate_to_propagate(&continued, &one).unwrap(),
            "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
        );
        // Without a valid traceparent, the spec says to discard tracestate.
        assert_eq!(tracestate_to_propagate(&ours, &one), None);
        assert_eq!(tracestate_to_propagate(&continued, &headers(&[])), None);
        // Several headers are one list, in order.
        let two = headers(&["congo=t61rcWkgMzE", " rojo=00f067aa0ba902b7 ,"]);
        assert_eq!(
            tracestate_to_propagate(&continued, &two).unwrap(),
            "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
        );
    }

    #[test]
    fn a_long_tracestate_loses_long_entries_first_then_from_the_end() {
        let continued = TraceContext::for_request(Some(VALID.as_bytes()));
        let long = format!("big={}", "x".repeat(200));
        let small: Vec<String> = (0..40).map(|i| format!("v{i:02}=abcdefgh")).collect();
        let mut all = vec![small[0].clone(), long];
        all.extend(small[1..].iter().cloned());
        let value = tracestate_to_propagate(&continued, &headers(&[&all.join(",")])).unwrap();
        let value = value.to_str().unwrap();
        assert!(value.len() <= MAX_TRACESTATE, "{}", value.len());
        assert!(!value.contains("big="), "{value}");
        // 40 entries of 12 bytes and commas are 519 bytes: the last one goes.
        assert!(value.starts_with("v00=abcdefgh,v01=abcdefgh,"), "{value}");
        assert!(value.ends_with("v38=abcdefgh"), "{value}");
    }

    #[test]
    fn a_valid_parent_is_continued() {
        let context = TraceContext::for_request(Some(VALID.as_bytes()));
        assert_eq!(
            context.trace_id.to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.parent_span_id, Some(0x00f067aa0ba902b7));
        assert!(context.sampled);
        assert_ne!(context.span_id, 0x00f067aa0ba902b7);
        let header = context.traceparent();
        assert!(header.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(header.ends_with("-01"));
        assert_eq!(
            parse_traceparent(header.as_bytes()).unwrap().1,
            context.span_id
        );

        let child = context.child();
        assert_eq!(child.trace_id, context.trace_id);
        assert_eq!(child.parent_span_id, Some(context.span_id));
    }

    #[test]
    fn invalid_parents_start_a_new_trace() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad.as_bytes()).is_none(), "{bad:?}");
            let context = TraceContext::for_request(Some(bad.as_bytes()));
            assert_eq!(context.parent_span_id, None, "{bad:?}");
            assert_ne!(context.trace_id.0, 0);
        }
        // A later version may carry more fields; the known prefix is used.
        assert!(
            parse_traceparent(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more")
                .is_some()
        );
        let unsampled = TraceContext::for_request(Some(
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        ));
        assert!(!unsampled.sampled);
        assert!(unsampled.traceparent().ends_with("-00"));
    }
}

//! Protobuf encoding of OTLP trace messages, written straight from Wasmgate's own span data
//! into one reused buffer.
//!
//! Building `opentelemetry-proto`'s message structs first would cost an allocation for every
//! attribute key and value (a SERVER span has about thirty), which measured as most of span
//! export's CPU on a hello request. Attributes, the bulk of a span, have lengths known before
//! they are written, so they are written front to back with no nesting; other nested messages
//! reserve one length byte and are moved only when their body turns out longer than 127 bytes. The field numbers are those of
//! `opentelemetry/proto/trace/v1/trace.proto`, `common/v1/common.proto`,
//! `resource/v1/resource.proto` and `collector/trace/v1/trace_service.proto`; the unit tests
//! decode the output with `opentelemetry-proto`'s types to keep the two in step.

use crate::spans::Value;

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// Field numbers, by message.
pub mod field {
    pub const REQUEST_RESOURCE_SPANS: u32 = 1;
    pub const RESOURCE_SPANS_RESOURCE: u32 = 1;
    pub const RESOURCE_SPANS_SCOPE_SPANS: u32 = 2;
    pub const RESOURCE_ATTRIBUTES: u32 = 1;
    pub const SCOPE_SPANS_SCOPE: u32 = 1;
    pub const SCOPE_SPANS_SPANS: u32 = 2;
    pub const SCOPE_NAME: u32 = 1;
    pub const SCOPE_VERSION: u32 = 2;
    pub const SPAN_TRACE_ID: u32 = 1;
    pub const SPAN_SPAN_ID: u32 = 2;
    pub const SPAN_PARENT_SPAN_ID: u32 = 4;
    pub const SPAN_NAME: u32 = 5;
    pub const SPAN_KIND: u32 = 6;
    pub const SPAN_START: u32 = 7;
    pub const SPAN_END: u32 = 8;
    pub const SPAN_ATTRIBUTES: u32 = 9;
    pub const SPAN_EVENTS: u32 = 11;
    pub const SPAN_STATUS: u32 = 15;
    pub const SPAN_FLAGS: u32 = 16;
    pub const EVENT_TIME: u32 = 1;
    pub const EVENT_NAME: u32 = 2;
    pub const EVENT_ATTRIBUTES: u32 = 3;
    pub const STATUS_MESSAGE: u32 = 2;
    pub const STATUS_CODE: u32 = 3;
    pub const KEY_VALUE_KEY: u32 = 1;
    pub const KEY_VALUE_VALUE: u32 = 2;
    pub const ANY_STRING: u32 = 1;
    pub const ANY_BOOL: u32 = 2;
    pub const ANY_INT: u32 = 3;
}

/// `SpanKind` and `StatusCode` values.
pub const KIND_INTERNAL: u64 = 1;
pub const KIND_SERVER: u64 = 2;
pub const KIND_CLIENT: u64 = 3;
pub const STATUS_ERROR: u64 = 2;
/// `SpanFlags`: the W3C trace flags live in the low byte.
pub const FLAG_SAMPLED: u32 = 1;

/// Bytes `value` takes as a varint.
#[inline(always)]
pub fn varint_len(value: u64) -> usize {
    // Most lengths and figures in a span fit one byte; skip the division for them.
    if value < 0x80 {
        return 1;
    }
    (64 - value.leading_zeros() as usize).div_ceil(7)
}

/// Writes protobuf fields into a byte slice sized beforehand.
///
/// Writing a byte is a bounds check and a store: `Vec::push`'s capacity check, length store
/// and out-of-line growth path measured as most of span encoding's instructions. A write past
/// the slice's end is not made but still counted, so [`Encoder::len`] says how much room the
/// message needs and [`append`] can retry with that much.
pub struct Encoder<'a> {
    out: &'a mut [u8],
    pos: usize,
}

/// Appends what `write` encodes to `buf`, giving it `room` bytes first and, if that was too
/// few, as many as it turned out to need. `write` may run twice, so it must write the same
/// bytes each time.
pub fn append<R>(buf: &mut Vec<u8>, room: usize, write: impl Fn(&mut Encoder<'_>) -> R) -> R {
    let start = buf.len();
    let mut room = room;
    loop {
        buf.resize(start + room, 0);
        let mut encoder = Encoder {
            out: &mut buf[start..],
            pos: 0,
        };
        let result = write(&mut encoder);
        let needed = encoder.pos;
        if needed <= room {
            buf.truncate(start + needed);
            return result;
        }
        room = needed;
    }
}

impl Encoder<'_> {
    #[inline(always)]
    fn put(&mut self, byte: u8) {
        if let Some(slot) = self.out.get_mut(self.pos) {
            *slot = byte;
        }
        self.pos += 1;
    }

    #[inline(always)]
    pub fn put_slice(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        if let Some(slots) = self.out.get_mut(self.pos..end) {
            slots.copy_from_slice(bytes);
        }
        self.pos = end;
    }

    #[inline(always)]
    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from(field << 3 | wire));
    }

    #[inline(always)]
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.put(value as u8 | 0x80);
            value >>= 7;
        }
        self.put(value as u8);
    }

    pub fn uint(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.key(field, VARINT);
            self.varint(value);
        }
    }

    #[inline(always)]
    pub fn int(&mut self, field: u32, value: i64) {
        // int64 is encoded as its two's-complement bits; no zig-zag.
        self.key(field, VARINT);
        self.varint(value as u64);
    }

    #[inline(always)]
    pub fn bool(&mut self, field: u32, value: bool) {
        self.key(field, VARINT);
        self.varint(u64::from(value));
    }

    pub fn fixed64(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.key(field, FIXED64);
            self.put_slice(&value.to_le_bytes());
        }
    }

    #[inline(always)]
    pub fn bytes(&mut self, field: u32, value: &[u8]) {
        self.key(field, LEN);
        self.varint(value.len() as u64);
        self.put_slice(value);
    }

    #[inline(always)]
    pub fn string(&mut self, field: u32, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    /// A nested message: `body` writes its fields, then its length is put in front. One byte
    /// is kept for the length; a longer body is moved along to make room.
    pub fn message(&mut self, field: u32, body: impl FnOnce(&mut Self)) {
        self.key(field, LEN);
        let start = self.pos;
        self.pos += 1;
        body(self);
        let len = self.pos - start - 1;
        if len < 0x80 {
            if let Some(slot) = self.out.get_mut(start) {
                *slot = len as u8;
            }
            return;
        }
        let width = varint_len(len as u64);
        let end = self.pos + width - 1;
        if end <= self.out.len() {
            self.out.copy_within(start + 1..self.pos, start + width);
            let mut value = len as u64;
            for byte in &mut self.out[start..start + width] {
                *byte = value as u8 | 0x80;
                value >>= 7;
            }
            self.out[start + width - 1] &= 0x7f;
        }
        self.pos = end;
    }

    /// A span's identity: trace id, span id, parent span id (when it has one) and flags. All
    /// are of known size, so they are written as one array of constant length; field by field,
    /// each tag and length went through the varint loop.
    #[inline(always)]
    pub fn span_ids(&mut self, trace_id: &[u8; 16], span_id: u64, parent: Option<u64>, flags: u32) {
        const FLAGS_TAG: [u8; 2] = [(field::SPAN_FLAGS << 3 | FIXED32) as u8 | 0x80, 1];
        let mut head = [0u8; 44];
        head[0] = (field::SPAN_TRACE_ID << 3 | LEN) as u8;
        head[1] = 16;
        head[2..18].copy_from_slice(trace_id);
        head[18] = (field::SPAN_SPAN_ID << 3 | LEN) as u8;
        head[19] = 8;
        head[20..28].copy_from_slice(&span_id.to_be_bytes());
        match parent {
            Some(parent) => {
                head[28] = (field::SPAN_PARENT_SPAN_ID << 3 | LEN) as u8;
                head[29] = 8;
                head[30..38].copy_from_slice(&parent.to_be_bytes());
                head[38..40].copy_from_slice(&FLAGS_TAG);
                head[40..44].copy_from_slice(&flags.to_le_bytes());
                self.put_slice(&head);
            }
            None => {
                head[28..30].copy_from_slice(&FLAGS_TAG);
                head[30..34].copy_from_slice(&flags.to_le_bytes());
                if let Some(without_parent) = head.first_chunk::<34>() {
                    self.put_slice(without_parent);
                }
            }
        }
    }

    /// A span's kind (a one-byte varint), start and end (Unix nanoseconds), in one array.
    #[inline(always)]
    pub fn span_times(&mut self, kind: u64, start: u64, end: u64) {
        let mut tail = [0u8; 20];
        tail[0] = (field::SPAN_KIND << 3 | VARINT) as u8;
        tail[1] = kind.min(0x7f) as u8;
        tail[2] = (field::SPAN_START << 3 | FIXED64) as u8;
        tail[3..11].copy_from_slice(&start.to_le_bytes());
        tail[11] = (field::SPAN_END << 3 | FIXED64) as u8;
        tail[12..20].copy_from_slice(&end.to_le_bytes());
        self.put_slice(&tail);
    }

    /// A `KeyValue` attribute in repeated field `field`.
    pub fn attribute(&mut self, field: u32, key: &str, value: &Value) {
        match value {
            Value::Str(text) => self.attribute_str(field, key, text),
            Value::Int(n) => self.attribute_int(field, key, *n),
            Value::Bool(b) => self.attribute_bool(field, key, *b),
        }
    }

    #[inline(always)]
    pub fn attribute_str(&mut self, field: u32, key: &str, value: &str) {
        self.attribute_text(field, key, value.as_bytes());
    }

    /// A string attribute from bytes the caller knows to be UTF-8 (they came from a `str`),
    /// which spares validating them again.
    #[inline(always)]
    pub fn attribute_text(&mut self, field: u32, key: &str, utf8: &[u8]) {
        let any_len = 1 + varint_len(utf8.len() as u64) + utf8.len();
        if let Some(window) = self.attribute_window(field, key, any_len) {
            let mut at = head_at(window, field, key.as_bytes(), any_len);
            at = varint_at(window, at, u64::from(field::ANY_STRING << 3 | LEN));
            at = varint_at(window, at, utf8.len() as u64);
            self.pos += at;
            self.put_slice(utf8);
            return;
        }
        self.attribute_head(field, key, any_len);
        self.bytes(field::ANY_STRING, utf8);
    }

    #[inline(always)]
    pub fn attribute_int(&mut self, field: u32, key: &str, value: i64) {
        let any_len = 1 + varint_len(value as u64);
        if let Some(window) = self.attribute_window(field, key, any_len) {
            let mut at = head_at(window, field, key.as_bytes(), any_len);
            at = varint_at(window, at, u64::from(field::ANY_INT << 3 | VARINT));
            // int64 is encoded as its two's-complement bits; no zig-zag.
            at = varint_at(window, at, value as u64);
            self.pos += at;
            return;
        }
        self.attribute_head(field, key, any_len);
        self.int(field::ANY_INT, value);
    }

    /// An integer attribute from a count or size, saturated at `i64::MAX` (OTLP's integers are
    /// signed).
    #[inline(always)]
    pub fn attribute_uint(&mut self, field: u32, key: &str, value: u64) {
        self.attribute_int(field, key, i64::try_from(value).unwrap_or(i64::MAX));
    }

    /// An IP address attribute.
    #[inline(always)]
    pub fn attribute_ip(&mut self, field: u32, key: &str, ip: std::net::IpAddr) {
        let (text, len) = ip_text(ip);
        self.attribute_text(field, key, &text[..len]);
    }

    #[inline(always)]
    pub fn attribute_bool(&mut self, field: u32, key: &str, value: bool) {
        if let Some(window) = self.attribute_window(field, key, 2) {
            let mut at = head_at(window, field, key.as_bytes(), 2);
            at = varint_at(window, at, u64::from(field::ANY_BOOL << 3 | VARINT));
            at = varint_at(window, at, u64::from(value));
            self.pos += at;
            return;
        }
        self.attribute_head(field, key, 2);
        self.bool(field::ANY_BOOL, value);
    }

    /// The next [`WINDOW`] bytes of the output, when an attribute's head can be written there
    /// in one go: a field number of one tag byte, a key of at most [`WINDOW_KEY_MAX`] bytes, a
    /// `KeyValue` short enough for one-byte lengths (the usual case; `any_len` is its value's
    /// length), and that much room left. Writing into a fixed-size window takes one bounds
    /// check per attribute instead of one per byte (a SERVER span has about 25 attributes).
    #[inline(always)]
    fn attribute_window(
        &mut self,
        field: u32,
        key: &str,
        any_len: usize,
    ) -> Option<&mut [u8; WINDOW]> {
        if field >= 16 || key.len() > WINDOW_KEY_MAX || kv_len(key.len(), any_len) >= 0x80 {
            return None;
        }
        let end = self.pos.checked_add(WINDOW)?;
        self.out.get_mut(self.pos..end)?.try_into().ok()
    }

    /// Runs `write` on a copy of this encoder, then takes its position back. An encoder local
    /// to a function whose writes are all inlined keeps its position in a register; one behind
    /// a `&mut` from the caller is loaded and stored around every byte.
    #[inline(always)]
    pub fn local<R>(&mut self, write: impl FnOnce(&mut Encoder<'_>) -> R) -> R {
        let mut local = Encoder {
            out: &mut *self.out,
            pos: self.pos,
        };
        let result = write(&mut local);
        self.pos = local.pos;
        result
    }

    /// The `KeyValue` up to its `AnyValue`'s fields, which take `any_len` bytes and follow.
    #[inline(always)]
    fn attribute_head(&mut self, field: u32, key: &str, any_len: usize) {
        self.key(field, LEN);
        self.varint(kv_len(key.len(), any_len) as u64);
        self.bytes(field::KEY_VALUE_KEY, key.as_bytes());
        self.key(field::KEY_VALUE_VALUE, LEN);
        self.varint(any_len as u64);
    }
}

/// Room an attribute's head and a number after it may take in a window: tag, length, the
/// key's tag, length and bytes, the value's tag and length (one byte each but the key), then
/// the `AnyValue`'s tag and a varint of up to ten bytes: at most 65 bytes.
const WINDOW: usize = 96;
const WINDOW_KEY_MAX: usize = 48;

/// A `KeyValue`'s length: its key field and its value field, whose body takes `any_len`.
#[inline(always)]
fn kv_len(key_len: usize, any_len: usize) -> usize {
    1 + varint_len(key_len as u64) + key_len + 1 + varint_len(any_len as u64) + any_len
}

/// Writes a `KeyValue` up to its `AnyValue`'s fields (which take `any_len` bytes) at the
/// start of `window`; returns where it stopped. [`Encoder::attribute_window`] has checked that
/// both lengths take one byte, so every byte's place is known, and with a literal key,
/// constant.
#[inline(always)]
fn head_at(window: &mut [u8; WINDOW], field: u32, key: &[u8], any_len: usize) -> usize {
    window[0] = (field << 3 | LEN) as u8;
    window[1] = kv_len(key.len(), any_len) as u8;
    window[2] = (field::KEY_VALUE_KEY << 3 | LEN) as u8;
    window[3] = key.len() as u8;
    let end = 4 + key.len();
    if let Some(slots) = window.get_mut(4..end) {
        slots.copy_from_slice(key);
    }
    if let Some([value_tag, value_len]) = window.get_mut(end..end + 2) {
        *value_tag = (field::KEY_VALUE_VALUE << 3 | LEN) as u8;
        *value_len = any_len as u8;
    }
    end + 2
}

/// Writes `value` as a varint at `at` in `window`; returns where it stopped. The window's size
/// is chosen so that every write lands inside it; `get_mut` keeps a mistake from panicking.
#[inline(always)]
fn varint_at(window: &mut [u8; WINDOW], mut at: usize, mut value: u64) -> usize {
    while value >= 0x80 {
        if let Some(slot) = window.get_mut(at) {
            *slot = value as u8 | 0x80;
        }
        value >>= 7;
        at += 1;
    }
    if let Some(slot) = window.get_mut(at) {
        *slot = value as u8;
    }
    at + 1
}

/// An IP address as text, formatted on the stack (IPv4 without `fmt`'s machinery: it is on
/// every SERVER span). An IPv6 address takes at most 45 characters.
fn ip_text(ip: std::net::IpAddr) -> ([u8; 48], usize) {
    let mut text = [0u8; 48];
    let len = match ip {
        std::net::IpAddr::V4(v4) => {
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            len
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write;
            let mut cursor = std::io::Cursor::new(&mut text[..]);
            let _ = write!(cursor, "{v6}");
            cursor.position() as usize
        }
    };
    (text, len)
}

/// What every export request has around its spans: the resource and the instrumentation scope,
/// encoded once. An exporter writes spans into a buffer after [`RequestFrame::headroom`] bytes
/// and then the request's head in front of them, so the batch is never copied.
pub struct RequestFrame {
    /// The `ResourceSpans.resource` field.
    resource: Vec<u8>,
    /// The `ScopeSpans.scope` field.
    scope: Vec<u8>,
}

impl RequestFrame {
    pub fn new(resource: &[(String, String)], scope: (&str, &str)) -> RequestFrame {
        let mut encoded = Vec::new();
        append(&mut encoded, 0, |out| {
            out.message(field::RESOURCE_SPANS_RESOURCE, |r| {
                for (key, value) in resource {
                    r.attribute_str(field::RESOURCE_ATTRIBUTES, key, value);
                }
            })
        });
        let mut scope_field = Vec::new();
        append(&mut scope_field, 0, |out| {
            out.message(field::SCOPE_SPANS_SCOPE, |s| {
                s.string(field::SCOPE_NAME, scope.0);
                s.string(field::SCOPE_VERSION, scope.1);
            })
        });
        RequestFrame {
            resource: encoded,
            scope: scope_field,
        }
    }

    /// Bytes to leave free in front of the spans: the longest head, plus `extra` (a transport's
    /// own framing).
    pub fn headroom(&self, extra: usize) -> usize {
        // Two message keys and two length varints of at most 10 bytes.
        self.resource.len() + self.scope.len() + 2 * 11 + extra
    }

    /// Writes the request's head into `buf` just before `spans_start`, where the encoded spans
    /// begin and run to the end of `buf`, and returns where the request starts. `buf` must have
    /// at least [`RequestFrame::headroom`] bytes before `spans_start`.
    pub fn write_head(&self, buf: &mut [u8], spans_start: usize) -> usize {
        let spans_len = buf.len() - spans_start;
        let scope_spans_len = self.scope.len() + spans_len;
        let resource_spans_len =
            self.resource.len() + 1 + varint_len(scope_spans_len as u64) + scope_spans_len;
        let mut head = Vec::with_capacity(self.headroom(0));
        append(&mut head, self.headroom(0), |out| {
            out.key(field::REQUEST_RESOURCE_SPANS, LEN);
            out.varint(resource_spans_len as u64);
            out.put_slice(&self.resource);
            out.key(field::RESOURCE_SPANS_SCOPE_SPANS, LEN);
            out.varint(scope_spans_len as u64);
            out.put_slice(&self.scope);
        });
        let start = spans_start - head.len();
        buf[start..spans_start].copy_from_slice(&head);
        start
    }
}

/// An `ExportTraceServiceRequest` of one resource and one scope around `spans`, which holds
/// already-encoded `ScopeSpans.spans` fields.
#[cfg(test)]
pub fn export_request(resource: &[(String, String)], scope: (&str, &str), spans: &[u8]) -> Vec<u8> {
    let frame = RequestFrame::new(resource, scope);
    let headroom = frame.headroom(0);
    let mut buf = vec![0; headroom];
    buf.extend_from_slice(spans);
    let start = frame.write_head(&mut buf, headroom);
    buf.split_off(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value;
    use prost::Message;

    #[test]
    fn lengths_over_127_bytes_are_prefixed_correctly() {
        let long = "x".repeat(300);
        let mut spans = Vec::new();
        append(&mut spans, 16, |out| {
            out.message(field::SCOPE_SPANS_SPANS, |span| {
                span.bytes(field::SPAN_TRACE_ID, &[1; 16]);
                span.string(field::SPAN_NAME, &long);
                span.attribute(field::SPAN_ATTRIBUTES, "n", &Value::Int(-5));
                span.attribute(field::SPAN_ATTRIBUTES, "b", &Value::Bool(true));
                span.fixed64(field::SPAN_START, 1_700_000_000_000_000_000);
            })
        });
        let request = export_request(
            &[("service.name".into(), "edge".into())],
            ("wasmgate", "0.1.0"),
            &spans,
        );
        let decoded = ExportTraceServiceRequest::decode(request.as_slice()).unwrap();
        let resource_spans = &decoded.resource_spans[0];
        let resource = resource_spans.resource.as_ref().unwrap();
        assert_eq!(resource.attributes[0].key, "service.name");
        let scope_spans = &resource_spans.scope_spans[0];
        assert_eq!(scope_spans.scope.as_ref().unwrap().name, "wasmgate");
        let span = &scope_spans.spans[0];
        assert_eq!(span.name, long);
        assert_eq!(span.trace_id, vec![1; 16]);
        assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
        let value = |i: usize| span.attributes[i].value.as_ref().unwrap().value.clone();
        assert_eq!(value(0), Some(any_value::Value::IntValue(-5)));
        assert_eq!(value(1), Some(any_value::Value::BoolValue(true)));
    }

    fn decode_spans(spans: &[u8]) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
        let request = export_request(&[], ("wasmgate", "0"), spans);
        let decoded = ExportTraceServiceRequest::decode(request.as_slice()).unwrap();
        decoded.resource_spans[0].scope_spans[0].spans.clone()
    }

    #[test]
    fn message_and_attribute_lengths_at_every_varint_width_boundary_decode() {
        // Bodies and values around 127/128 and 16383/16384 bytes: where a length takes one
        // more byte and a nested message's body has to move.
        for len in [
            0, 1, 100, 126, 127, 128, 129, 300, 16_370, 16_383, 16_384, 70_000,
        ] {
            let text = "v".repeat(len);
            let key = "k".repeat(len % 200);
            let mut spans = Vec::new();
            append(&mut spans, 16, |out| {
                out.message(field::SCOPE_SPANS_SPANS, |span| {
                    span.string(field::SPAN_NAME, &text);
                    span.attribute_str(field::SPAN_ATTRIBUTES, &key, &text);
                    span.attribute_int(field::SPAN_ATTRIBUTES, &key, len as i64);
                    span.attribute_int(field::SPAN_ATTRIBUTES, "negative", -(len as i64) - 1);
                    span.message(field::SPAN_STATUS, |status| {
                        status.string(field::STATUS_MESSAGE, &text);
                    });
                })
            });
            let decoded = decode_spans(&spans);
            assert_eq!(decoded.len(), 1, "len {len}");
            let span = &decoded[0];
            assert_eq!(span.name, text, "len {len}");
            assert_eq!(span.attributes[0].key, key);
            let value = |i: usize| span.attributes[i].value.as_ref().unwrap().value.clone();
            assert_eq!(value(0), Some(any_value::Value::StringValue(text.clone())));
            assert_eq!(value(1), Some(any_value::Value::IntValue(len as i64)));
            assert_eq!(
                value(2),
                Some(any_value::Value::IntValue(-(len as i64) - 1))
            );
            assert_eq!(span.status.as_ref().unwrap().message, text);
        }
    }

    #[test]
    fn attributes_written_in_a_window_are_the_bytes_written_one_by_one() {
        let long = "u".repeat(20_000);
        let keys = ["k", &"k".repeat(47), &"k".repeat(48), &"k".repeat(49)];
        let texts = [
            "",
            "v",
            &"v".repeat(100),
            &"v".repeat(127),
            &"v".repeat(200),
            &long,
        ];
        let ints = [0, 1, 127, 128, 16_383, 16_384, i64::MAX, -1, i64::MIN];
        for key in keys {
            for field in [field::SPAN_ATTRIBUTES, 17] {
                let encode = |windowed: bool| {
                    let mut out = Vec::new();
                    append(&mut out, 64 * 1024, |e| {
                        for text in texts {
                            if windowed {
                                e.attribute_str(field, key, text);
                            } else {
                                let any_len = 1 + varint_len(text.len() as u64) + text.len();
                                e.attribute_head(field, key, any_len);
                                e.string(field::ANY_STRING, text);
                            }
                        }
                        for n in ints {
                            if windowed {
                                e.attribute_int(field, key, n);
                            } else {
                                e.attribute_head(field, key, 1 + varint_len(n as u64));
                                e.int(field::ANY_INT, n);
                            }
                        }
                        for b in [false, true] {
                            if windowed {
                                e.attribute_bool(field, key, b);
                            } else {
                                e.attribute_head(field, key, 2);
                                e.bool(field::ANY_BOOL, b);
                            }
                        }
                    });
                    out
                };
                assert_eq!(
                    encode(true),
                    encode(false),
                    "key of {} bytes, field {field}",
                    key.len()
                );
            }
        }
        // And near the end of the room, where the window does not fit and the byte-by-byte
        // path takes over: every room from too small to enough gives the same bytes.
        let mut reference = Vec::new();
        append(&mut reference, 4096, |e| {
            e.attribute_int(
                field::SPAN_ATTRIBUTES,
                "wasmgate.peak_memory_bytes",
                1 << 20,
            );
            e.attribute_str(field::SPAN_ATTRIBUTES, "url.path", "/a/b");
        });
        for room in 0..reference.len() + WINDOW {
            let mut out = Vec::new();
            append(&mut out, room, |e| {
                e.attribute_int(
                    field::SPAN_ATTRIBUTES,
                    "wasmgate.peak_memory_bytes",
                    1 << 20,
                );
                e.attribute_str(field::SPAN_ATTRIBUTES, "url.path", "/a/b");
            });
            assert_eq!(out, reference, "room {room}");
        }
    }

    #[test]
    fn ip_attributes_are_written_as_their_usual_text() {
        let ips: [std::net::IpAddr; 6] = [
            "0.0.0.0".parse().unwrap(),
            "10.0.100.255".parse().unwrap(),
            "192.168.1.9".parse().unwrap(),
            "::1".parse().unwrap(),
            "2001:db8::8a2e:370:7334".parse().unwrap(),
            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
                .parse()
                .unwrap(),
        ];
        let mut spans = Vec::new();
        append(&mut spans, 16, |out| {
            out.message(field::SCOPE_SPANS_SPANS, |span| {
                for ip in ips {
                    span.attribute_ip(field::SPAN_ATTRIBUTES, "ip", ip);
                }
            })
        });
        let span = &decode_spans(&spans)[0];
        for (i, ip) in ips.iter().enumerate() {
            let value = span.attributes[i].value.as_ref().unwrap().value.clone();
            assert_eq!(value, Some(any_value::Value::StringValue(ip.to_string())));
        }
    }

    #[test]
    fn one_frame_heads_requests_of_any_size_in_the_room_it_asks_for() {
        let resource = [("service.name".to_string(), "edge".to_string())];
        let frame = RequestFrame::new(&resource, ("wasmgate", "1.2.3"));
        let mut buf = Vec::new();
        for count in [0, 1, 5, 2_000] {
            let headroom = frame.headroom(5);
            buf.clear();
            buf.resize(headroom, 0xee);
            for i in 0..count {
                append(&mut buf, 16, |out| {
                    out.message(field::SCOPE_SPANS_SPANS, |span| {
                        span.string(field::SPAN_NAME, &format!("span {i}"));
                    })
                });
            }
            let start = frame.write_head(&mut buf, headroom);
            assert!(start >= 5, "the transport's prefix still fits");
            let decoded = ExportTraceServiceRequest::decode(&buf[start..]).unwrap();
            let resource_spans = &decoded.resource_spans[0];
            let attributes = &resource_spans.resource.as_ref().unwrap().attributes;
            assert_eq!(attributes[0].key, "service.name");
            let scope_spans = &resource_spans.scope_spans[0];
            assert_eq!(scope_spans.scope.as_ref().unwrap().version, "1.2.3");
            assert_eq!(scope_spans.spans.len(), count);
            if count > 0 {
                assert_eq!(
                    scope_spans.spans[count - 1].name,
                    format!("span {}", count - 1)
                );
            }
        }
    }
}

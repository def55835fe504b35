//! Protobuf encoding of OTLP trace messages, written straight from Wasmgate's own span data
//! into one reused buffer.
//!
//! Building `opentelemetry-proto`'s message structs first would cost an allocation for every
//! attribute key and value (a SERVER span has about thirty), which measured as most of span
//! export's CPU on a hello request. The field numbers are those of
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

/// Appends protobuf fields to a byte buffer.
pub struct Encoder<'a> {
    pub buf: &'a mut Vec<u8>,
}

impl Encoder<'_> {
    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from(field << 3 | wire));
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push(value as u8 | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    pub fn uint(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.key(field, VARINT);
            self.varint(value);
        }
    }

    pub fn int(&mut self, field: u32, value: i64) {
        // int64 is encoded as its two's-complement bits; no zig-zag.
        self.key(field, VARINT);
        self.varint(value as u64);
    }

    pub fn bool(&mut self, field: u32, value: bool) {
        self.key(field, VARINT);
        self.varint(u64::from(value));
    }

    pub fn fixed64(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.key(field, FIXED64);
            self.buf.extend_from_slice(&value.to_le_bytes());
        }
    }

    pub fn fixed32(&mut self, field: u32, value: u32) {
        if value != 0 {
            self.key(field, FIXED32);
            self.buf.extend_from_slice(&value.to_le_bytes());
        }
    }

    pub fn bytes(&mut self, field: u32, value: &[u8]) {
        self.key(field, LEN);
        self.varint(value.len() as u64);
        self.buf.extend_from_slice(value);
    }

    pub fn string(&mut self, field: u32, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    /// A nested message: `body` writes its fields, then its length is put in front.
    pub fn message(&mut self, field: u32, body: impl FnOnce(&mut Encoder<'_>)) {
        self.key(field, LEN);
        let start = self.buf.len();
        body(&mut Encoder { buf: self.buf });
        let len = self.buf.len() - start;
        // Write the length's varint after the body, then rotate it in front.
        let mut value = len as u64;
        while value >= 0x80 {
            self.buf.push(value as u8 | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
        let prefix = self.buf.len() - start - len;
        self.buf[start..].rotate_right(prefix);
    }

    /// A string field whose bytes `write` appends (no intermediate `String`).
    pub fn message_string(&mut self, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
        self.message(field, |e| write(e.buf));
    }

    /// A `KeyValue` attribute in repeated field `field`.
    pub fn attribute(&mut self, field: u32, key: &str, value: &Value) {
        match value {
            Value::Str(text) => self.attribute_str(field, key, text),
            Value::Int(n) => self.attribute_with(field, key, |any| any.int(field::ANY_INT, *n)),
            Value::Bool(b) => self.attribute_with(field, key, |any| any.bool(field::ANY_BOOL, *b)),
        }
    }

    pub fn attribute_str(&mut self, field: u32, key: &str, value: &str) {
        self.attribute_with(field, key, |any| any.string(field::ANY_STRING, value));
    }

    /// A string attribute formatted in place (addresses).
    pub fn attribute_display(&mut self, field: u32, key: &str, value: &impl std::fmt::Display) {
        self.attribute_with(field, key, |any| {
            any.message_string(field::ANY_STRING, |buf| {
                use std::io::Write;
                let _ = write!(buf, "{value}");
            })
        });
    }

    fn attribute_with(&mut self, field: u32, key: &str, value: impl FnOnce(&mut Encoder<'_>)) {
        self.message(field, |kv| {
            kv.string(field::KEY_VALUE_KEY, key);
            kv.message(field::KEY_VALUE_VALUE, value);
        });
    }
}

/// An `ExportTraceServiceRequest` of one resource and one scope around `spans`, which holds
/// already-encoded `ScopeSpans.spans` fields.
pub fn export_request(resource: &[(String, String)], scope: (&str, &str), spans: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(spans.len() + 256);
    let mut out = Encoder { buf: &mut buf };
    out.message(field::REQUEST_RESOURCE_SPANS, |resource_spans| {
        resource_spans.message(field::RESOURCE_SPANS_RESOURCE, |r| {
            for (key, value) in resource {
                r.attribute_str(field::RESOURCE_ATTRIBUTES, key, value);
            }
        });
        resource_spans.message(field::RESOURCE_SPANS_SCOPE_SPANS, |scope_spans| {
            scope_spans.message(field::SCOPE_SPANS_SCOPE, |s| {
                s.string(field::SCOPE_NAME, scope.0);
                s.string(field::SCOPE_VERSION, scope.1);
            });
            scope_spans.buf.extend_from_slice(spans);
        });
    });
    buf
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
        let mut out = Encoder { buf: &mut spans };
        out.message(field::SCOPE_SPANS_SPANS, |span| {
            span.bytes(field::SPAN_TRACE_ID, &[1; 16]);
            span.string(field::SPAN_NAME, &long);
            span.attribute(field::SPAN_ATTRIBUTES, "n", &Value::Int(-5));
            span.attribute(field::SPAN_ATTRIBUTES, "b", &Value::Bool(true));
            span.fixed64(field::SPAN_START, 1_700_000_000_000_000_000);
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
}

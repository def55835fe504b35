//! The head of a WAGI guest's CGI response (its stdout, entirely guest-controlled).
//!
//! Invariants: neither function panics; the end of the head is inside the buffer, just past a
//! blank line; parsing the whole buffer and parsing only the head agree (nothing after the blank
//! line matters); a head that parses has a status from 100 to 599 and header names and values
//! `http` accepts, without the hop-by-hop headers a guest must not set for the client's
//! connection, so building the response cannot fail.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmgate_runtime::fuzzing::{find_head_end, parse_head, Head, HeadError};

fuzz_target!(|data: &[u8]| {
    let whole = parse_head(data);
    if let Some(end) = find_head_end(data) {
        assert!(end >= 1 && end <= data.len(), "end {end} of {}", data.len());
        let head = &data[..end];
        assert!(
            head.ends_with(b"\n\n")
                || head.ends_with(b"\n\r\n")
                || head == b"\n"
                || head == b"\r\n",
            "the head does not end with a blank line: {head:?}"
        );
        // No earlier blank line: the head ends at the first one.
        assert_eq!(find_head_end(&head[..end - 1]), None, "{head:?}");
        same(&whole, &parse_head(head));
    }
    if let Ok(head) = &whole {
        check_valid(head);
    }
});

fn same(a: &Result<Head, HeadError>, b: &Result<Head, HeadError>) {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.status, b.status);
            assert_eq!(a.headers, b.headers);
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("the whole buffer gave {a:?}, the head alone {b:?}"),
    }
}

fn check_valid(head: &Head) {
    assert!(
        (100..=599).contains(&head.status.as_u16()),
        "{:?}",
        head.status
    );
    let mut response = http::Response::builder().status(head.status.as_u16());
    for (name, value) in &head.headers {
        assert!(
            http::HeaderName::from_bytes(name.as_str().as_bytes()).is_ok(),
            "{name:?}"
        );
        assert!(
            http::HeaderValue::from_bytes(value.as_bytes()).is_ok(),
            "{value:?}"
        );
        for hop in [
            "connection",
            "transfer-encoding",
            "keep-alive",
            "upgrade",
            "status",
        ] {
            assert_ne!(name.as_str(), hop, "a {hop} header reached the response");
        }
        response = response.header(name, value);
    }
    response.body(()).expect("a parsed head builds a response");
}

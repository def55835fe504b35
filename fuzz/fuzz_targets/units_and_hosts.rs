//! Durations, sizes and `allowed_outbound_hosts` patterns on arbitrary text.
//!
//! Invariants: no parser panics; a parsed value written back out parses to the same value; a
//! parsed outbound pattern matches the destination it names; and matching a pattern against an
//! arbitrary destination never panics (the host a guest asks for is guest-controlled).

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use wasmgate_manifest::{
    parse_duration, parse_size, HostPattern, OutboundHost, PortPattern, SchemePattern,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first line is the text under test; the rest, if any, is a destination host to match.
    let (text, other_host) = match text.split_once('\n') {
        Some((text, rest)) => (text, Some(rest)),
        None => (text.as_ref(), None),
    };
    check_duration(text);
    check_size(text);
    check_outbound(text, other_host);
});

fn check_duration(text: &str) {
    let Ok(duration) = parse_duration(text) else {
        return;
    };
    // Written in seconds with as many digits as it takes, it must come back the same, give or
    // take the rounding of an f64 (a nanosecond in a year is below f64's precision).
    let written = format!("{}s", duration.as_secs_f64());
    let again = parse_duration(&written)
        .unwrap_or_else(|e| panic!("{text:?} parsed to {duration:?}, {written:?} did not: {e}"));
    let difference = again.abs_diff(duration);
    assert!(
        difference <= Duration::from_micros(1),
        "{text:?} -> {duration:?} -> {written:?} -> {again:?}"
    );
}

fn check_size(text: &str) {
    let Ok(size) = parse_size(text) else {
        return;
    };
    assert_eq!(parse_size(&size.to_string()), Ok(size), "{text:?}");
    assert_eq!(parse_size(&format!("{size}B")), Ok(size), "{text:?}");
}

fn check_outbound(text: &str, other_host: Option<&str>) {
    let Ok(pattern) = OutboundHost::parse(text) else {
        return;
    };
    let written = pattern.to_string();
    assert_eq!(
        OutboundHost::parse(&written).as_ref(),
        Ok(&pattern),
        "{text:?} written as {written:?}"
    );
    if let Some(host) = other_host {
        // Any answer is fine; it must not panic.
        let _ = pattern.matches("https", host, 443);
        let _ = pattern.matches_socket(host, 80);
    }
    let port = match pattern.port {
        PortPattern::Port(port) => port,
        PortPattern::Any => 8080,
        PortPattern::Default => match pattern.scheme {
            SchemePattern::Http => 80,
            _ => 443,
        },
    };
    let host = match &pattern.host {
        HostPattern::Name(name) => name.clone(),
        HostPattern::Subdomains(suffix) => format!("www.{suffix}"),
        HostPattern::Ip(ip) => ip.to_string(),
        HostPattern::Any => "anything.example".to_string(),
    };
    assert!(
        pattern.matches_socket(&host, port),
        "{text:?} does not match its own destination {host}:{port}"
    );
    let scheme = match pattern.scheme {
        SchemePattern::Http => "http".to_string(),
        SchemePattern::Https | SchemePattern::Any => "https".to_string(),
        SchemePattern::Other => written.split_once("://").map_or("", |s| s.0).to_string(),
    };
    assert!(
        pattern.matches(&scheme, &host, port),
        "{text:?} does not match its own destination {scheme}://{host}:{port}"
    );
    assert_eq!(pattern.is_http(), pattern.scheme != SchemePattern::Other);
}

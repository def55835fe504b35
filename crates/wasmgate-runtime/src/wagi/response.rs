//! Parsing the head of a CGI response: header lines up to the first empty line (`\n` or
//! `\r\n` line ends, mixed allowed). `Status:` sets the status, `Location:` without a status
//! gives 302, repeated headers are all kept. Anything malformed is an error the caller turns
//! into a 502, with a message that says what was wrong.

use http::{HeaderName, HeaderValue, StatusCode};

/// Largest header block accepted before the blank line.
pub const MAX_HEAD: usize = 64 << 10;

#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("header line {line} is not `Name: value`: {text:?}")]
    NotAHeader { line: usize, text: String },
    #[error("header line {line} has an invalid name {name:?}")]
    BadName { line: usize, name: String },
    #[error("header line {line} ({name}) has an invalid value")]
    BadValue { line: usize, name: String },
    #[error("invalid Status {0:?}: expected a code from 100 to 599, e.g. `Status: 404 Not Found`")]
    BadStatus(String),
}

/// Where the head ends: the index just past the blank line, if it has arrived yet.
pub fn find_head_end(buffer: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, &byte) in buffer.iter().enumerate() {
        if byte == b'\n' {
            let line = &buffer[line_start..i];
            if line.is_empty() || line == b"\r" {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

/// Hop-by-hop headers describe one connection; the guest's connection is not the client's.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == http::header::CONNECTION
        || name == http::header::TRANSFER_ENCODING
        || name == "keep-alive"
        || name == http::header::UPGRADE
}

/// Parses `head` (the bytes before and including the blank line).
pub fn parse_head(head: &[u8]) -> Result<Head, HeadError> {
    let mut headers = http::HeaderMap::new();
    let mut status = None;
    for (index, raw) in head.split(|&b| b == b'\n').enumerate() {
        let line_number = index + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(HeadError::NotAHeader {
                line: line_number,
                text: String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned(),
            });
        };
        let name_bytes = &line[..colon];
        let value_bytes = trim(&line[colon + 1..]);
        let name = HeaderName::from_bytes(name_bytes).map_err(|_| HeadError::BadName {
            line: line_number,
            name: String::from_utf8_lossy(name_bytes).into_owned(),
        })?;
        if name == "status" {
            let text = String::from_utf8_lossy(value_bytes).into_owned();
            let code = text
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (100..=599).contains(c))
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or(HeadError::BadStatus(text))?;
            status = Some(code);
            continue;
        }
        if is_hop_by_hop(&name) {
            continue;
        }
        let value = HeaderValue::from_bytes(value_bytes).map_err(|_| HeadError::BadValue {
            line: line_number,
            name: name.to_string(),
        })?;
        headers.append(name, value);
    }
    let status = status.unwrap_or(if headers.contains_key(http::header::LOCATION) {
        StatusCode::FOUND
    } else {
        StatusCode::OK
    });
    Ok(Head { status, headers })
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_blank_line_with_either_line_ending() {
        assert_eq!(find_head_end(b"A: b\n\nbody"), Some(6));
        assert_eq!(find_head_end(b"A: b\r\n\r\nbody"), Some(8));
        assert_eq!(find_head_end(b"A: b\r\n\nbody"), Some(7));
        assert_eq!(find_head_end(b"A: b\nB: c\n"), None);
        assert_eq!(find_head_end(b"\nbody"), Some(1));
    }

    #[test]
    fn status_and_headers() {
        let head = parse_head(b"Content-Type: text/plain\nStatus: 404 Not Found\n\n").unwrap();
        assert_eq!(head.status, 404);
        assert_eq!(head.headers["content-type"], "text/plain");
        assert!(!head.headers.contains_key("status"));
    }

    #[test]
    fn location_alone_is_a_redirect_unless_a_status_is_given() {
        assert_eq!(parse_head(b"Location: /there\n\n").unwrap().status, 302);
        assert_eq!(
            parse_head(b"Location: /there\nStatus: 301\n\n")
                .unwrap()
                .status,
            301
        );
    }

    #[test]
    fn repeated_headers_are_all_kept() {
        let head = parse_head(b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n").unwrap();
        let cookies: Vec<_> = head.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }

    #[test]
    fn values_are_trimmed_and_hop_by_hop_headers_dropped() {
        let head =
            parse_head(b"X-A:   spaced  \nConnection: close\nTransfer-Encoding: chunked\n\n")
                .unwrap();
        assert_eq!(head.headers["x-a"], "spaced");
        assert!(!head.headers.contains_key("connection"));
        assert!(!head.headers.contains_key("transfer-encoding"));
    }

    #[test]
    fn malformed_heads_say_what_is_wrong() {
        assert!(matches!(
            parse_head(b"not a header\n\n"),
            Err(HeadError::NotAHeader { line: 1, .. })
        ));
        assert!(matches!(
            parse_head(b"A: 1\nBad Name: x\n\n"),
            Err(HeadError::BadName { line: 2, .. })
        ));
        assert!(matches!(
            parse_head(b"X: a\x01b\n\n"),
            Err(HeadError::BadValue { line: 1, .. })
        ));
        assert_eq!(
            parse_head(b"Status: abc\n\n").unwrap_err(),
            HeadError::BadStatus("abc".into())
        );
        assert!(parse_head(b"Status: 99\n\n").is_err());
        assert!(parse_head(b"Status: 600\n\n").is_err());
    }

    #[test]
    fn an_empty_head_is_a_plain_200() {
        let head = parse_head(b"\n").unwrap();
        assert_eq!(head.status, 200);
        assert!(head.headers.is_empty());
    }
}

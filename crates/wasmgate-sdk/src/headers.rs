//! Conversions between the `http` crate's types and wasi:http's: header lists and methods.
//! Pure code, so it is unit-tested on the host.

use ::http::header::{HeaderMap, HeaderName, HeaderValue};
use ::http::Method;
use wasip2::http::types::Method as WasiMethod;

/// Headers the wasi:http host refuses from a guest on outgoing messages (connection-level
/// headers that the server manages itself). [`outgoing_pairs`] leaves them out.
const HOST_MANAGED: &[&str] = &[
    "connection",
    "host",
    "http2-settings",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// A header list from the host as a `HeaderMap`. Fails naming the first header whose name or
/// value is not valid HTTP.
pub(crate) fn header_map(pairs: Vec<(String, Vec<u8>)>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let value = HeaderValue::from_bytes(&value)
            .map_err(|_| format!("invalid value for header {name:?}"))?;
        map.append(header, value);
    }
    Ok(map)
}

/// A `HeaderMap` as the name/value pairs wasi:http takes, in order, repeated names kept,
/// without the headers the host manages itself.
pub(crate) fn outgoing_pairs(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(name, _)| !HOST_MANAGED.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
        .collect()
}

/// A wasi:http method as an `http` method; `None` for an extension method that is not a
/// valid token.
pub(crate) fn from_wasi_method(method: &WasiMethod) -> Option<Method> {
    Some(match method {
        WasiMethod::Get => Method::GET,
        WasiMethod::Head => Method::HEAD,
        WasiMethod::Post => Method::POST,
        WasiMethod::Put => Method::PUT,
        WasiMethod::Delete => Method::DELETE,
        WasiMethod::Connect => Method::CONNECT,
        WasiMethod::Options => Method::OPTIONS,
        WasiMethod::Trace => Method::TRACE,
        WasiMethod::Patch => Method::PATCH,
        WasiMethod::Other(other) => return Method::from_bytes(other.as_bytes()).ok(),
    })
}

/// An `http` method as a wasi:http method.
pub(crate) fn to_wasi_method(method: &Method) -> WasiMethod {
    match *method {
        Method::GET => WasiMethod::Get,
        Method::HEAD => WasiMethod::Head,
        Method::POST => WasiMethod::Post,
        Method::PUT => WasiMethod::Put,
        Method::DELETE => WasiMethod::Delete,
        Method::CONNECT => WasiMethod::Connect,
        Method::OPTIONS => WasiMethod::Options,
        Method::TRACE => WasiMethod::Trace,
        Method::PATCH => WasiMethod::Patch,
        ref other => WasiMethod::Other(other.as_str().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lists_keep_order_and_repeated_names() {
        let map = header_map(vec![
            ("Content-Type".into(), b"text/plain".to_vec()),
            ("x-tag".into(), b"a".to_vec()),
            ("x-tag".into(), b"b".to_vec()),
        ])
        .unwrap();
        assert_eq!(map["content-type"], "text/plain");
        let tags: Vec<_> = map.get_all("x-tag").iter().collect();
        assert_eq!(tags, ["a", "b"]);
        assert_eq!(
            outgoing_pairs(&map),
            vec![
                ("content-type".to_string(), b"text/plain".to_vec()),
                ("x-tag".to_string(), b"a".to_vec()),
                ("x-tag".to_string(), b"b".to_vec()),
            ]
        );
    }

    #[test]
    fn invalid_headers_are_named() {
        let error = header_map(vec![("bad name".into(), b"x".to_vec())]).unwrap_err();
        assert!(error.contains("\"bad name\""), "{error}");
        let error = header_map(vec![("x-ok".into(), b"line\nbreak".to_vec())]).unwrap_err();
        assert!(error.contains("\"x-ok\""), "{error}");
    }

    #[test]
    fn host_managed_headers_are_not_sent() {
        let mut map = HeaderMap::new();
        map.insert("host", HeaderValue::from_static("example.com"));
        map.insert("connection", HeaderValue::from_static("close"));
        map.insert("accept", HeaderValue::from_static("*/*"));
        assert_eq!(
            outgoing_pairs(&map),
            vec![("accept".to_string(), b"*/*".to_vec())]
        );
    }

    #[test]
    fn methods_round_trip() {
        for method in [Method::GET, Method::POST, Method::PATCH, Method::DELETE] {
            assert_eq!(from_wasi_method(&to_wasi_method(&method)), Some(method));
        }
        let purge = Method::from_bytes(b"PURGE").unwrap();
        assert!(matches!(to_wasi_method(&purge), WasiMethod::Other(ref m) if m == "PURGE"));
        assert_eq!(
            from_wasi_method(&WasiMethod::Other("PURGE".into())),
            Some(purge)
        );
        assert_eq!(
            from_wasi_method(&WasiMethod::Other("BAD METHOD".into())),
            None
        );
    }
}

//! The CGI environment of one request (RFC 3875, with WAGI's extensions), as WAGI guests
//! expect it. Pure: request parts and route in, variables out.

use crate::executor::{RequestContext, Scheme};
use wasmgate_manifest::RoutePath;

/// What the CGI variables are computed from.
pub struct CgiRequest<'a> {
    pub parts: &'a http::request::Parts,
    pub body_len: usize,
    pub context: &'a RequestContext,
}

pub const SERVER_SOFTWARE: &str = concat!("Wasmgate/", env!("CARGO_PKG_VERSION"));

/// `SCRIPT_NAME`: the route without its wildcard (`/cgi/...` gives `/cgi`, `/...` gives ``).
pub fn script_name(route: &RoutePath) -> &str {
    match route {
        RoutePath::Exact(path) => path,
        RoutePath::Prefix(prefix) => prefix,
    }
}

pub fn cgi_variables(request: &CgiRequest<'_>) -> Vec<(String, String)> {
    let parts = request.parts;
    let context = request.context;
    let route = &context.route;
    let script = script_name(&route.path);
    let raw_path = parts.uri.path();
    let raw_path_info = raw_path.strip_prefix(script).unwrap_or("");
    let path_info = percent_decode(raw_path_info);
    let query = parts.uri.query().unwrap_or("");
    let (server_name, server_port) = server_name_and_port(parts, context);
    let scheme = match context.scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    };
    let default_port = match context.scheme {
        Scheme::Http => "80",
        Scheme::Https => "443",
    };
    let authority = if server_port == default_port {
        server_name.clone()
    } else {
        format!("{server_name}:{server_port}")
    };
    let full_url = match parts.uri.query() {
        Some(q) => format!("{scheme}://{authority}{raw_path}?{q}"),
        None => format!("{scheme}://{authority}{raw_path}"),
    };
    let protocol = match parts.version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    };
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let remote_ip = context.remote_addr.ip().to_string();

    let mut vars = vec![
        ("AUTH_TYPE".into(), String::new()),
        ("CONTENT_LENGTH".into(), request.body_len.to_string()),
        ("CONTENT_TYPE".into(), content_type),
        ("GATEWAY_INTERFACE".into(), "CGI/1.1".into()),
        ("PATH_INFO".into(), path_info.clone()),
        ("PATH_TRANSLATED".into(), path_info),
        ("QUERY_STRING".into(), query.to_string()),
        ("REMOTE_ADDR".into(), remote_ip.clone()),
        ("REMOTE_HOST".into(), remote_ip),
        ("REMOTE_USER".into(), String::new()),
        ("REQUEST_METHOD".into(), parts.method.as_str().to_string()),
        ("SCRIPT_NAME".into(), script.to_string()),
        ("SERVER_NAME".into(), server_name),
        ("SERVER_PORT".into(), server_port),
        ("SERVER_PROTOCOL".into(), protocol.into()),
        ("SERVER_SOFTWARE".into(), SERVER_SOFTWARE.into()),
        ("X_MATCHED_ROUTE".into(), route.pattern.to_string()),
        ("X_FULL_URL".into(), full_url),
        ("X_RAW_PATH_INFO".into(), raw_path_info.to_string()),
    ];
    vars.extend(header_variables(&parts.headers, route.pass_authorization));
    vars
}

/// `HTTP_*` for each header, values of repeated headers joined with `, `. `Authorization` (and
/// `Proxy-Authorization`) only when the route opts in: a guest should not see credentials
/// meant for the gateway unless the operator says so.
fn header_variables(headers: &http::HeaderMap, pass_authorization: bool) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::with_capacity(headers.keys_len());
    for name in headers.keys() {
        if !pass_authorization
            && (name == http::header::AUTHORIZATION || name == http::header::PROXY_AUTHORIZATION)
        {
            continue;
        }
        let value = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        let var = format!(
            "HTTP_{}",
            name.as_str().to_ascii_uppercase().replace('-', "_")
        );
        vars.push((var, value));
    }
    vars
}

/// `SERVER_NAME` and `SERVER_PORT` from the Host the client asked for (the URI authority for
/// HTTP/2), falling back to the listener's own address.
fn server_name_and_port(
    parts: &http::request::Parts,
    context: &RequestContext,
) -> (String, String) {
    let host = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        });
    let local_port = context.local_addr.port().to_string();
    match host {
        Some(host) => match host.parse::<http::uri::Authority>() {
            Ok(authority) => (
                authority.host().to_string(),
                authority.port_u16().map_or(local_port, |p| p.to_string()),
            ),
            Err(_) => (host, local_port),
        },
        None => (context.local_addr.ip().to_string(), local_port),
    }
}

/// Decodes `%XX` escapes; malformed escapes are kept as written. Invalid UTF-8 after decoding
/// is replaced, since environment variables here are strings.
pub fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::RouteInfo;
    use std::sync::Arc;

    fn context(route: &str, pass_authorization: bool) -> RequestContext {
        let path = match route.strip_suffix("/...") {
            Some(prefix) => RoutePath::Prefix(prefix.into()),
            None => RoutePath::Exact(route.into()),
        };
        RequestContext {
            route: Arc::new(RouteInfo {
                pattern: route.into(),
                path,
                pass_authorization,
            }),
            scheme: Scheme::Http,
            remote_addr: "10.1.2.3:5555".parse().unwrap(),
            local_addr: "127.0.0.1:3000".parse().unwrap(),
            invocation_id: 1,
            trace: Default::default(),
        }
    }

    fn vars(
        request: http::Request<()>,
        route: &str,
        pass_authorization: bool,
        body_len: usize,
    ) -> Vec<(String, String)> {
        let (parts, ()) = request.into_parts();
        let context = context(route, pass_authorization);
        cgi_variables(&CgiRequest {
            parts: &parts,
            body_len,
            context: &context,
        })
    }

    fn get<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn wildcard_route_splits_script_name_and_decoded_path_info() {
        let request = http::Request::builder()
            .method("POST")
            .uri("/cgi/a%20b/c%2Fd?x=1&y=%20")
            .header("host", "example.com:8080")
            .header("content-type", "application/json")
            .header("x-custom", "one")
            .header("x-custom", "two")
            .body(())
            .unwrap();
        let vars = vars(request, "/cgi/...", false, 42);
        assert_eq!(get(&vars, "SCRIPT_NAME"), Some("/cgi"));
        assert_eq!(get(&vars, "PATH_INFO"), Some("/a b/c/d"));
        assert_eq!(get(&vars, "PATH_TRANSLATED"), Some("/a b/c/d"));
        assert_eq!(get(&vars, "X_RAW_PATH_INFO"), Some("/a%20b/c%2Fd"));
        assert_eq!(get(&vars, "QUERY_STRING"), Some("x=1&y=%20"));
        assert_eq!(get(&vars, "REQUEST_METHOD"), Some("POST"));
        assert_eq!(get(&vars, "CONTENT_LENGTH"), Some("42"));
        assert_eq!(get(&vars, "CONTENT_TYPE"), Some("application/json"));
        assert_eq!(get(&vars, "SERVER_NAME"), Some("example.com"));
        assert_eq!(get(&vars, "SERVER_PORT"), Some("8080"));
        assert_eq!(get(&vars, "SERVER_PROTOCOL"), Some("HTTP/1.1"));
        assert_eq!(get(&vars, "REMOTE_ADDR"), Some("10.1.2.3"));
        assert_eq!(get(&vars, "X_MATCHED_ROUTE"), Some("/cgi/..."));
        assert_eq!(
            get(&vars, "X_FULL_URL"),
            Some("http://example.com:8080/cgi/a%20b/c%2Fd?x=1&y=%20")
        );
        assert_eq!(get(&vars, "HTTP_X_CUSTOM"), Some("one, two"));
        assert_eq!(get(&vars, "HTTP_HOST"), Some("example.com:8080"));
        assert_eq!(get(&vars, "GATEWAY_INTERFACE"), Some("CGI/1.1"));
    }

    #[test]
    fn exact_route_has_empty_path_info_and_no_port_falls_back_to_listener() {
        let request = http::Request::builder()
            .uri("/hello")
            .header("host", "example.com")
            .body(())
            .unwrap();
        let vars = vars(request, "/hello", false, 0);
        assert_eq!(get(&vars, "SCRIPT_NAME"), Some("/hello"));
        assert_eq!(get(&vars, "PATH_INFO"), Some(""));
        assert_eq!(get(&vars, "SERVER_PORT"), Some("3000"));
        assert_eq!(get(&vars, "QUERY_STRING"), Some(""));
        assert_eq!(get(&vars, "CONTENT_LENGTH"), Some("0"));
        assert_eq!(get(&vars, "CONTENT_TYPE"), Some(""));
    }

    #[test]
    fn root_wildcard_has_empty_script_name() {
        let request = http::Request::builder().uri("/x/y").body(()).unwrap();
        let vars = vars(request, "/...", false, 0);
        assert_eq!(get(&vars, "SCRIPT_NAME"), Some(""));
        assert_eq!(get(&vars, "PATH_INFO"), Some("/x/y"));
        assert_eq!(get(&vars, "SERVER_NAME"), Some("127.0.0.1"));
    }

    #[test]
    fn authorization_is_withheld_unless_the_route_opts_in() {
        let build = || {
            http::Request::builder()
                .uri("/a")
                .header("authorization", "Bearer secret")
                .header("proxy-authorization", "Basic x")
                .body(())
                .unwrap()
        };
        let hidden = vars(build(), "/a", false, 0);
        assert_eq!(get(&hidden, "HTTP_AUTHORIZATION"), None);
        assert_eq!(get(&hidden, "HTTP_PROXY_AUTHORIZATION"), None);
        let shown = vars(build(), "/a", true, 0);
        assert_eq!(get(&shown, "HTTP_AUTHORIZATION"), Some("Bearer secret"));
    }

    #[test]
    fn http2_reports_its_protocol_and_authority() {
        let request = http::Request::builder()
            .uri("http://h2.example:9000/a")
            .version(http::Version::HTTP_2)
            .body(())
            .unwrap();
        let vars = vars(request, "/a", false, 0);
        assert_eq!(get(&vars, "SERVER_PROTOCOL"), Some("HTTP/2.0"));
        assert_eq!(get(&vars, "SERVER_NAME"), Some("h2.example"));
        assert_eq!(get(&vars, "SERVER_PORT"), Some("9000"));
    }

    #[test]
    fn percent_decoding_keeps_malformed_escapes() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }
}

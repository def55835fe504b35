//! The Wasmgate "hello" example: a small wasi:http 0.2 service.
//!
//! Routes:
//!
//! | request              | response                                                  |
//! |----------------------|-----------------------------------------------------------|
//! | `GET /`              | a greeting built from the `GREETING` environment variable |
//! | `GET /hello/{name}`  | `Hello, {name}!`                                          |
//! | `POST /echo`         | the request body, same content-type, plus `x-echo-bytes`  |
//! | `GET /headers`       | the request headers, one JSON string pair per line        |
//! | anything else        | 404 with a text body                                      |
//!
//! Wasmgate creates a fresh instance of this component for every request, so there is no
//! state to share or clean up between requests: each call to `handle` starts from scratch.

use wasip2::http::types::{
    ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasip2::io::streams::{OutputStream, StreamError};

/// `blocking-write-and-flush` accepts at most 4096 bytes per call (the WASI contract for
/// output streams), so bodies are written in pieces of this size.
const MAX_WRITE: usize = 4096;

/// How much to ask for per read of the request body. The host may return less.
const READ_CHUNK: u64 = 64 * 1024;

const TEXT: &str = "text/plain; charset=utf-8";

/// The type that implements the exported `wasi:http/incoming-handler` interface.
struct Hello;

// Generates the component export `wasi:http/incoming-handler#handle` and wires it to `Hello`.
wasip2::http::proxy::export!(Hello);

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        // Build the whole response first, then send it: every route here produces a small
        // body, and this keeps the routing code free of stream handling.
        let response = route(&request);
        send(response_out, response);
    }
}

/// A response held in memory until it is sent.
struct Response {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Response {
    fn new(status: u16, content_type: impl Into<Vec<u8>>, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![("content-type".to_string(), content_type.into())],
            body: body.into(),
        }
    }

    fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, TEXT, body.into())
    }

    fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

fn route(request: &IncomingRequest) -> Response {
    let method = request.method();
    let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_string());
    // Routes match on the path alone; a query string never changes which route runs.
    let path = path_with_query.split('?').next().unwrap_or("/");

    match (&method, path) {
        (Method::Get, "/") => greet(),
        (Method::Get, "/headers") => headers(request),
        (Method::Post, "/echo") => echo(request),
        (Method::Get, _) if path.starts_with("/hello/") => hello(&path["/hello/".len()..]),
        _ => Response::text(404, format!("Not found: {path}")),
    }
}

/// `GET /`: the greeting comes from the environment so that operators can change it in
/// wasmgate.toml (`environment = { GREETING = "..." }`) without rebuilding the component.
fn greet() -> Response {
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "Hello".to_string());
    Response::text(200, format!("{greeting}!"))
}

/// `GET /hello/{name}`: `name` is one path segment, percent-decoded so that
/// `/hello/J%C3%BCrgen` greets "Jürgen".
fn hello(segment: &str) -> Response {
    if segment.is_empty() || segment.contains('/') {
        return Response::text(
            404,
            "Not found: /hello/ takes exactly one name, e.g. /hello/world",
        );
    }
    let name = percent_decode(segment);
    Response::text(200, format!("Hello, {name}!"))
}

/// `POST /echo`: returns the body unchanged. The content-type is copied so that clients get
/// back exactly what they sent; `x-echo-bytes` lets them check nothing was lost on the way.
///
/// The whole body is held in memory. That is fine here because the component's memory limit
/// (`[component.hello.limits] memory` in wasmgate.toml) caps what one request can use: a body
/// bigger than that makes this instance fail, and only this request gets the error.
fn echo(request: &IncomingRequest) -> Response {
    let content_type = request
        .headers()
        .get("content-type")
        .into_iter()
        .next()
        .unwrap_or_else(|| b"application/octet-stream".to_vec());

    match read_body(request) {
        Ok(body) => {
            let len = body.len().to_string();
            Response::new(200, content_type, body).header("x-echo-bytes", len)
        }
        Err(error) => Response::text(400, format!("could not read the request body: {error}")),
    }
}

/// `GET /headers`: one `"name": "value"` pair per line inside braces. Header values are
/// bytes, not necessarily UTF-8, so invalid sequences are shown as U+FFFD. A header sent
/// several times appears once per value, in the order received.
fn headers(request: &IncomingRequest) -> Response {
    let entries = request.headers().entries();
    let lines: Vec<String> = entries
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value);
            format!("  {}: {}", json_string(name), json_string(&value))
        })
        .collect();
    let body = format!("{{\n{}\n}}\n", lines.join(",\n"));
    Response::new(200, "application/json", body)
}

/// Reads the request body to its end.
fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, String> {
    let body = request
        .consume()
        .map_err(|()| "the body was already taken".to_string())?;
    let stream = body
        .stream()
        .map_err(|()| "the body stream was already taken".to_string())?;
    let mut bytes = Vec::new();
    loop {
        // `blocking_read` waits until at least one byte is available or the stream ends.
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            // `Closed` is the normal end of the body.
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(error)) => return Err(error.to_debug_string()),
        }
    }
    // The stream is a child resource of the body: it must go first, or the host rejects
    // dropping the body.
    drop(stream);
    drop(body);
    Ok(bytes)
}

/// Sends `response` through `response_out`.
fn send(response_out: ResponseOutparam, response: Response) {
    let headers = match Fields::from_list(&response.headers) {
        Ok(headers) => headers,
        Err(error) => {
            // Only reachable if a header copied from the request is not valid in a response;
            // report it to the host instead of panicking, so the client gets a clean 500.
            let message = format!("invalid response header: {error:?}");
            ResponseOutparam::set(response_out, Err(ErrorCode::InternalError(Some(message))));
            return;
        }
    };
    let outgoing = OutgoingResponse::new(headers);
    // Every status used in this file is in 100..=599, which the host always accepts.
    outgoing
        .set_status_code(response.status)
        .expect("valid status code");
    let body = outgoing.body().expect("the body is taken only once");

    // Hand the response head to the host before writing the body, so the host can start
    // sending it; the body then streams behind it.
    ResponseOutparam::set(response_out, Ok(outgoing));

    let stream = body.write().expect("the body stream is taken only once");
    if write_all(&stream, &response.body).is_err() {
        // The client went away. Dropping the body without `finish` tells the host the
        // response is incomplete; there is no one left to report an error to.
        return;
    }
    // As with reading: the stream is a child of the body and must be dropped first.
    drop(stream);
    // `finish` marks the body complete (no trailers). Without it the host treats the
    // response as cut short.
    let _ = OutgoingBody::finish(body, None);
}

/// Writes all of `data`, in pieces small enough for `blocking-write-and-flush`.
fn write_all(stream: &OutputStream, data: &[u8]) -> Result<(), StreamError> {
    for piece in data.chunks(MAX_WRITE) {
        stream.blocking_write_and_flush(piece)?;
    }
    Ok(())
}

/// Decodes `%XX` escapes. Malformed escapes are kept as they are, and bytes that do not form
/// UTF-8 become U+FFFD, so any input gives a printable name.
fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                out.push(high * 16 + low);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Quotes `value` as a JSON string.
fn json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

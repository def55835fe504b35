//! The request handler: a plain function from [`Request`] to a [`Response`], exported as the
//! component's `wasi:http/incoming-handler` by [`http_handler!`](crate::http_handler).
//!
//! The SDK reads the whole request body before calling the handler (at most [`MAX_BODY`]
//! bytes; a larger body is answered with 413 without calling it), and writes the handler's
//! response in pieces of at most 4096 bytes, the most one `blocking-write-and-flush` takes,
//! then finishes the body so the host knows it is complete.

use crate::body::{self, ReadError};
use crate::headers;
use crate::Error;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

// The `http` crate's types that requests and responses are made of, so a component needs no
// `http` dependency of its own.
pub use ::http::{header, request, response, HeaderMap, HeaderValue, Method, StatusCode, Uri};

/// A request with its whole body.
pub type Request = ::http::Request<Vec<u8>>;

/// A response with its whole body.
pub type Response = ::http::Response<Vec<u8>>;

/// The largest request body the SDK reads: 16 MiB. Larger requests are answered
/// `413 Payload Too Large` and the handler is not called.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

const TEXT: &str = "text/plain; charset=utf-8";

/// Exports `handler` as the component's HTTP handler.
///
/// `handler` is a function (or a path to one) taking a [`Request`] and returning anything
/// that implements [`IntoResponse`]: a [`Response`], an [`Error`], a [`StatusCode`], or a
/// `Result` of those, so handlers can use `?`. Use the macro once per component, at the top
/// level of the crate.
///
/// ```no_run
/// use wasmgate_sdk::http::{text, Request, Response, StatusCode};
///
/// fn handle(request: Request) -> Response {
///     text(StatusCode::OK, format!("you asked for {}", request.uri().path()))
/// }
///
/// wasmgate_sdk::http_handler!(handle);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! http_handler {
    ($handler:path) => {
        const _: () = {
            struct WasmgateHandler;

            impl $crate::__private::wasip2::exports::http::incoming_handler::Guest
                for WasmgateHandler
            {
                fn handle(
                    request: $crate::__private::wasip2::http::types::IncomingRequest,
                    out: $crate::__private::wasip2::http::types::ResponseOutparam,
                ) {
                    $crate::http::__serve(request, out, $handler)
                }
            }

            $crate::__private::wasip2::http::proxy::export!(WasmgateHandler);
        };
    };
}

/// Whatever a handler may return.
pub trait IntoResponse {
    /// The response to send.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        empty(self)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            crate::log::write(
                crate::log::Level::Error,
                "wasmgate-sdk",
                &format!("answering {}: {}", self.status(), self.message()),
            );
        }
        text(self.status(), self.message())
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(response) => response.into_response(),
            Err(error) => error.into_response(),
        }
    }
}

/// A `text/plain` response.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    with_body(status, TEXT, body.into().into_bytes())
}

/// A response with no body.
pub fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Vec::new());
    *response.status_mut() = status;
    response
}

/// A 200 `application/json` response. If `value` cannot be serialized (a map with
/// non-string keys, a failing `Serialize` impl), the response is a 500 saying why.
#[cfg(feature = "json")]
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Response {
    json_with_status(StatusCode::OK, value)
}

/// An `application/json` response with any status; see [`json`].
#[cfg(feature = "json")]
pub fn json_with_status<T: serde::Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => with_body(status, "application/json", body),
        Err(error) => Error::internal(format!("serializing the response: {error}")).into_response(),
    }
}

fn with_body(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Conveniences on [`Request`].
pub trait RequestExt {
    /// The path's segments between `/`s, still percent-encoded, without empty ones:
    /// `/todos/42/` gives `["todos", "42"]`. Handy to `match` on.
    fn path_segments(&self) -> Vec<&str>;

    /// The first query parameter called `name`, percent-decoded (`+` as a space).
    fn query_param(&self, name: &str) -> Option<String>;

    /// The body as UTF-8 text; 400 if it is not.
    fn text(&self) -> Result<&str, Error>;

    /// The body parsed as JSON; 400 naming the problem (and its line and column) if it is
    /// not valid JSON of that shape.
    #[cfg(feature = "json")]
    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error>;
}

impl RequestExt for Request {
    fn path_segments(&self) -> Vec<&str> {
        self.uri()
            .path()
            .split('/')
            .filter(|segment| !segment.is_empty())
            .collect()
    }

    fn query_param(&self, name: &str) -> Option<String> {
        self.uri()
            .query()?
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(key, _)| percent_decode(&key.replace('+', " ")) == name)
            .map(|(_, value)| percent_decode(&value.replace('+', " ")))
    }

    fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(self.body())
            .map_err(|error| Error::bad_request(format!("the body is not UTF-8 text: {error}")))
    }

    #[cfg(feature = "json")]
    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(self.body())
            .map_err(|error| Error::bad_request(format!("invalid JSON body: {error}")))
    }
}

/// Decodes `%XX` escapes; malformed escapes are kept as written, and bytes that do not form
/// UTF-8 become U+FFFD.
pub fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|pair| {
                let text = std::str::from_utf8(pair).ok()?;
                u8::from_str_radix(text, 16).ok()
            });
            if let Some(byte) = hex {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serves one request: the glue [`http_handler!`](crate::http_handler) expands to.
#[doc(hidden)]
pub fn __serve<R: IntoResponse>(
    incoming: IncomingRequest,
    out: ResponseOutparam,
    handler: impl FnOnce(Request) -> R,
) {
    let response = match read_request(incoming) {
        Ok(request) => handler(request).into_response(),
        Err(error) => error.into_response(),
    };
    send(out, response);
}

/// The incoming request with its whole body, or the error to answer instead.
fn read_request(incoming: IncomingRequest) -> Result<Request, Error> {
    let method = headers::from_wasi_method(&incoming.method())
        .ok_or_else(|| Error::bad_request("invalid method"))?;
    let path = incoming
        .path_with_query()
        .unwrap_or_else(|| "/".to_string());
    let headers = headers::header_map(incoming.headers().entries()).map_err(Error::bad_request)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return Err(too_large());
    }
    let body = read_body(&incoming)?;
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = path
        .parse()
        .map_err(|_| Error::bad_request(format!("invalid request target {path:?}")))?;
    *request.headers_mut() = headers;
    Ok(request)
}

fn read_body(incoming: &IncomingRequest) -> Result<Vec<u8>, Error> {
    let body = incoming
        .consume()
        .map_err(|()| Error::internal("the request body was already taken"))?;
    let stream = body
        .stream()
        .map_err(|()| Error::internal("the request body stream was already taken"))?;
    let bytes = body::read_to_end(&stream, MAX_BODY).map_err(|error| match error {
        ReadError::TooLarge => too_large(),
        ReadError::Failed(error) => Error::bad_request(format!(
            "reading the request body: {}",
            error.to_debug_string()
        )),
    });
    // The stream is a child of the body: drop it first.
    drop(stream);
    drop(body);
    bytes
}

fn too_large() -> Error {
    Error::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than {MAX_BODY} bytes"),
    )
}

/// Hands `response` to the host and writes its body. A response the host refuses (a header it
/// does not allow a guest to set) is replaced by a 500 naming the header.
fn send(out: ResponseOutparam, response: Response) {
    let (parts, body) = response.into_parts();
    let fields = Fields::new();
    for (name, value) in headers::outgoing_pairs(&parts.headers) {
        if let Err(error) = fields.append(&name, &value) {
            let refused = Error::internal(format!(
                "the host refused response header {name:?} ({error:?})"
            ));
            return send(out, refused.into_response());
        }
    }
    let outgoing = OutgoingResponse::new(fields);
    // Every `StatusCode` is in 100..=999, the range the host accepts.
    let _ = outgoing.set_status_code(parts.status.as_u16());
    let Ok(outgoing_body) = outgoing.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(outgoing));
    let Ok(stream) = outgoing_body.write() else {
        return;
    };
    // If the client went away mid-body, stop: without `finish` the host treats the body as
    // cut short, which is what happened.
    if body::write_all(&stream, &body).is_ok() {
        drop(stream);
        let _ = OutgoingBody::finish(outgoing_body, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str) -> Request {
        let mut request = Request::new(Vec::new());
        *request.uri_mut() = uri.parse().unwrap();
        request
    }

    #[test]
    fn path_segments_skip_empty_ones() {
        assert_eq!(request("/todos/42/").path_segments(), ["todos", "42"]);
        assert!(request("/").path_segments().is_empty());
        assert_eq!(request("/a//b?x=1").path_segments(), ["a", "b"]);
    }

    #[test]
    fn query_params_are_decoded() {
        let request = request("/search?q=hello+w%C3%B6rld&flag&q=second");
        assert_eq!(request.query_param("q").as_deref(), Some("hello wörld"));
        assert_eq!(request.query_param("flag").as_deref(), Some(""));
        assert_eq!(request.query_param("missing"), None);
    }

    #[test]
    fn percent_decoding_keeps_malformed_escapes() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%E2%82%AC"), "€");
    }

    #[test]
    fn body_text_must_be_utf8() {
        let mut request = request("/");
        *request.body_mut() = vec![0xff, 0xfe];
        assert_eq!(
            request.text().unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        *request.body_mut() = b"hi".to_vec();
        assert_eq!(request.text().unwrap(), "hi");
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_bodies_parse_or_answer_400() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Todo {
            title: String,
        }
        let mut request = request("/");
        *request.body_mut() = br#"{"title": "milk"}"#.to_vec();
        assert_eq!(
            request.json::<Todo>().unwrap(),
            Todo {
                title: "milk".into()
            }
        );
        *request.body_mut() = br#"{"title": 5}"#.to_vec();
        let error = request.json::<Todo>().unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert!(error.message().contains("line 1"), "{}", error.message());
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_responses_have_content_type() {
        let response = json_with_status(StatusCode::CREATED, &serde_json::json!({"id": 1}));
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(response.body(), br#"{"id":1}"#);
    }

    #[test]
    fn results_become_responses() {
        let ok: Result<Response, Error> = Ok(text(StatusCode::OK, "fine"));
        assert_eq!(ok.into_response().body(), b"fine");
        let missing: Result<Response, Error> = Err(Error::not_found("no such todo"));
        let response = missing.into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.body(), b"no such todo");
        assert_eq!(StatusCode::NO_CONTENT.into_response().body(), b"");
    }
}

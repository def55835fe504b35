//! Outbound HTTP through `wasi:http/outgoing-handler`.
//!
//! The host only lets a component reach the destinations its manifest lists in
//! `allowed_outbound_hosts` (anything else fails with [`OutboundError::Denied`]) and refuses
//! private addresses unless the operator allows them ([`OutboundError::Prohibited`]). Both
//! bodies are whole in memory: the response body is read up to [`MAX_RESPONSE_BODY`] bytes.
//!
//! ```no_run
//! use std::time::Duration;
//! use wasmgate_sdk::http::{request, Method};
//! use wasmgate_sdk::outbound::{self, Options};
//!
//! # fn run() -> Result<(), outbound::OutboundError> {
//! let response = outbound::get("https://api.example.com/status")?;
//! println!("{} {} bytes", response.status(), response.body().len());
//!
//! let request = request::Builder::new()
//!     .method(Method::POST)
//!     .uri("https://api.example.com/items")
//!     .header("content-type", "application/json")
//!     .body(br#"{"name":"x"}"#.to_vec())
//!     .map_err(|error| outbound::OutboundError::InvalidRequest(error.to_string()))?;
//! let options = Options::new().first_byte_timeout(Duration::from_secs(2));
//! let created = outbound::send_with(request, &options)?;
//! # Ok(())
//! # }
//! ```

use crate::body::{self, ReadError};
use crate::headers;
use crate::http::{Request, Response};
use std::fmt;
use std::time::Duration;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingResponse, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};

/// The largest response body [`send`] reads: 16 MiB.
pub const MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;

/// Why an outbound request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundError {
    /// The destination is not in the component's `allowed_outbound_hosts`
    /// (`HttpRequestDenied`).
    Denied,
    /// The destination resolved to an address the host refuses, e.g. a private one
    /// (`DestinationIpProhibited`).
    Prohibited,
    /// Connecting, the first response byte, or a later one took longer than allowed.
    Timeout,
    /// The request could not be built: no scheme or host in the URL, or a header the host
    /// does not accept.
    InvalidRequest(String),
    /// The response body was larger than [`MAX_RESPONSE_BODY`].
    ResponseTooLarge,
    /// Anything else, with the host's error code, e.g. `ConnectionRefused`.
    Other(String),
}

impl fmt::Display for OutboundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboundError::Denied => {
                f.write_str("destination not allowed (add it to allowed_outbound_hosts)")
            }
            OutboundError::Prohibited => f.write_str("destination address prohibited"),
            OutboundError::Timeout => f.write_str("timed out"),
            OutboundError::InvalidRequest(why) => write!(f, "invalid request: {why}"),
            OutboundError::ResponseTooLarge => {
                write!(f, "response body larger than {MAX_RESPONSE_BODY} bytes")
            }
            OutboundError::Other(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for OutboundError {}

impl From<ErrorCode> for OutboundError {
    fn from(code: ErrorCode) -> OutboundError {
        match code {
            ErrorCode::HttpRequestDenied => OutboundError::Denied,
            ErrorCode::DestinationIpProhibited => OutboundError::Prohibited,
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout
            | ErrorCode::DnsTimeout => OutboundError::Timeout,
            other => {
                // Debug prints `ErrorCode::ConnectionRefused`; the WIT name is enough.
                let name = format!("{other:?}");
                let name = name.strip_prefix("ErrorCode::").unwrap_or(&name);
                OutboundError::Other(name.to_string())
            }
        }
    }
}

/// Timeouts for one request; unset ones use the host's defaults (which also cap the ones set
/// here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    connect_timeout: Option<Duration>,
    first_byte_timeout: Option<Duration>,
    between_bytes_timeout: Option<Duration>,
}

impl Options {
    /// No timeouts of its own: the host's defaults apply.
    pub fn new() -> Options {
        Options::default()
    }

    /// How long connecting may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Options {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long until the first byte of the response.
    pub fn first_byte_timeout(mut self, timeout: Duration) -> Options {
        self.first_byte_timeout = Some(timeout);
        self
    }

    /// How long between two chunks of the response body.
    pub fn between_bytes_timeout(mut self, timeout: Duration) -> Options {
        self.between_bytes_timeout = Some(timeout);
        self
    }

    /// The wasi:http request options, or `None` when nothing is set.
    fn to_wasi(&self) -> Option<RequestOptions> {
        if *self == Options::default() {
            return None;
        }
        let options = RequestOptions::new();
        // The setters only fail if the host does not support a timeout; the request then
        // runs with the host's own, which is the documented behaviour.
        if let Some(timeout) = self.connect_timeout {
            let _ = options.set_connect_timeout(Some(nanos(timeout)));
        }
        if let Some(timeout) = self.first_byte_timeout {
            let _ = options.set_first_byte_timeout(Some(nanos(timeout)));
        }
        if let Some(timeout) = self.between_bytes_timeout {
            let _ = options.set_between_bytes_timeout(Some(nanos(timeout)));
        }
        Some(options)
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// `GET url` with the host's default timeouts.
pub fn get(url: &str) -> Result<Response, OutboundError> {
    get_with(url, &Options::default())
}

/// `GET url` with timeouts.
pub fn get_with(url: &str, options: &Options) -> Result<Response, OutboundError> {
    let request = ::http::Request::get(url)
        .body(Vec::new())
        .map_err(|error| OutboundError::InvalidRequest(format!("{url:?}: {error}")))?;
    send_with(request, options)
}

/// Sends `request` with the host's default timeouts and returns the whole response.
/// The request's URI must be absolute (`https://host/path`).
pub fn send(request: Request) -> Result<Response, OutboundError> {
    send_with(request, &Options::default())
}

/// [`send`] with timeouts.
pub fn send_with(request: Request, options: &Options) -> Result<Response, OutboundError> {
    let (parts, body) = request.into_parts();
    let target = Target::of(&parts.uri)?;
    let fields = Fields::new();
    for (name, value) in headers::outgoing_pairs(&parts.headers) {
        fields.append(&name, &value).map_err(|error| {
            OutboundError::InvalidRequest(format!("header {name:?}: {error:?}"))
        })?;
    }
    let outgoing = OutgoingRequest::new(fields);
    let configured = outgoing
        .set_method(&headers::to_wasi_method(&parts.method))
        .is_ok()
        && outgoing.set_scheme(Some(&target.scheme)).is_ok()
        && outgoing.set_authority(Some(&target.authority)).is_ok()
        && outgoing
            .set_path_with_query(Some(&target.path_with_query))
            .is_ok();
    if !configured {
        return Err(OutboundError::InvalidRequest(format!(
            "the host refused the method or URL of {} {}",
            parts.method, parts.uri
        )));
    }
    let outgoing_body = outgoing
        .body()
        .map_err(|()| OutboundError::Other("the request body was already taken".into()))?;
    // Start the request first, then stream the body: writing a large body before `handle`
    // would wait forever for a request that has not started.
    let pending = outgoing_handler::handle(outgoing, options.to_wasi())?;
    write_request_body(outgoing_body, &body)?;
    pending.subscribe().block();
    let incoming = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(code.into()),
        Some(Err(())) | None => {
            return Err(OutboundError::Other(
                "the response was not delivered".into(),
            ))
        }
    };
    read_response(incoming)
}

fn write_request_body(outgoing_body: OutgoingBody, body: &[u8]) -> Result<(), OutboundError> {
    let stream = outgoing_body
        .write()
        .map_err(|()| OutboundError::Other("the request body stream was already taken".into()))?;
    let written = body::write_all(&stream, body);
    drop(stream);
    if let Err(error) = written {
        return Err(stream_error(error));
    }
    OutgoingBody::finish(outgoing_body, None)?;
    Ok(())
}

fn read_response(incoming: IncomingResponse) -> Result<Response, OutboundError> {
    let status = ::http::StatusCode::from_u16(incoming.status())
        .map_err(|_| OutboundError::Other(format!("invalid status {}", incoming.status())))?;
    let headers =
        headers::header_map(incoming.headers().entries()).map_err(OutboundError::Other)?;
    let body = incoming
        .consume()
        .map_err(|()| OutboundError::Other("the response body was already taken".into()))?;
    let stream = body
        .stream()
        .map_err(|()| OutboundError::Other("the response body stream was already taken".into()))?;
    let bytes = body::read_to_end(&stream, MAX_RESPONSE_BODY).map_err(|error| match error {
        ReadError::TooLarge => OutboundError::ResponseTooLarge,
        ReadError::Failed(error) => io_error(&error),
    });
    drop(stream);
    drop(body);
    let mut response = Response::new(bytes?);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

fn stream_error(error: wasip2::io::streams::StreamError) -> OutboundError {
    match error {
        wasip2::io::streams::StreamError::LastOperationFailed(error) => io_error(&error),
        wasip2::io::streams::StreamError::Closed => {
            OutboundError::Other("the connection closed while sending the body".into())
        }
    }
}

fn io_error(error: &wasip2::io::error::Error) -> OutboundError {
    match wasip2::http::types::http_error_code(error) {
        Some(code) => code.into(),
        None => OutboundError::Other(error.to_debug_string()),
    }
}

/// Where a request goes, in wasi:http's terms.
#[derive(Debug)]
struct Target {
    scheme: Scheme,
    authority: String,
    path_with_query: String,
}

impl Target {
    fn of(uri: &::http::Uri) -> Result<Target, OutboundError> {
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            Some(other) => Scheme::Other(other.to_string()),
            None => {
                return Err(OutboundError::InvalidRequest(format!(
                    "{uri} has no scheme; use an absolute URL such as https://host/path"
                )))
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| OutboundError::InvalidRequest(format!("{uri} has no host")))?
            .to_string();
        let path_with_query = uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        Ok(Target {
            scheme,
            authority,
            path_with_query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_urls_split_into_scheme_authority_and_path() {
        let target = Target::of(&"https://api.example.com:8443/a/b?c=d".parse().unwrap()).unwrap();
        assert!(matches!(target.scheme, Scheme::Https));
        assert_eq!(target.authority, "api.example.com:8443");
        assert_eq!(target.path_with_query, "/a/b?c=d");
        let bare = Target::of(&"http://127.0.0.1:3000".parse().unwrap()).unwrap();
        assert_eq!(bare.path_with_query, "/");
    }

    #[test]
    fn relative_urls_are_refused() {
        let error = Target::of(&"/health".parse().unwrap()).unwrap_err();
        assert!(
            matches!(error, OutboundError::InvalidRequest(ref why) if why.contains("no scheme"))
        );
    }

    #[test]
    fn host_error_codes_map_to_variants() {
        assert_eq!(
            OutboundError::from(ErrorCode::HttpRequestDenied),
            OutboundError::Denied
        );
        assert_eq!(
            OutboundError::from(ErrorCode::DestinationIpProhibited),
            OutboundError::Prohibited
        );
        assert_eq!(
            OutboundError::from(ErrorCode::HttpResponseTimeout),
            OutboundError::Timeout
        );
        assert_eq!(
            OutboundError::from(ErrorCode::ConnectionRefused),
            OutboundError::Other("ConnectionRefused".into())
        );
    }

    #[test]
    fn timeouts_convert_to_nanoseconds() {
        assert_eq!(nanos(Duration::from_millis(1500)), 1_500_000_000);
        assert_eq!(nanos(Duration::MAX), u64::MAX);
    }
}

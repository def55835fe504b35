//! CORS for one route: answer preflights here, and mark actual responses for the browser.
//!
//! Preflights are answered before authentication because browsers send them without
//! credentials; they never reach the guest. A preflight from an origin (or asking for a method
//! or header) the route does not allow gets 403 and no CORS headers, which the browser reports
//! as a CORS failure. Actual requests from other origins are served as usual but without
//! `Access-Control-Allow-Origin`, so the browser keeps the response from the page.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method};
use wasmgate_manifest::{AllowedOrigins, Cors};
use wasmgate_runtime::ResponseBody;

pub(crate) struct CorsPolicy {
    cors: Cors,
    allow_methods: HeaderValue,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
}

impl CorsPolicy {
    pub(crate) fn new(cors: &Cors) -> Result<CorsPolicy, String> {
        let list = |items: &[String]| -> Result<Option<HeaderValue>, String> {
            if items.is_empty() {
                return Ok(None);
            }
            HeaderValue::from_str(&items.join(", "))
                .map(Some)
                .map_err(|_| format!("{items:?} cannot be sent in a header"))
        };
        Ok(CorsPolicy {
            allow_methods: list(&cors.allow_methods)?
                .unwrap_or_else(|| HeaderValue::from_static("GET, HEAD, POST")),
            allow_headers: list(&cors.allow_headers)?,
            expose_headers: list(&cors.expose_headers)?,
            max_age: cors.max_age.map(|age| HeaderValue::from(age.as_secs())),
            cors: cors.clone(),
        })
    }

    /// `Some` for a CORS preflight: the answer to send, or why it is refused.
    pub(crate) fn preflight(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<Result<http::Response<ResponseBody>, String>> {
        let origin = headers.get(ORIGIN)?;
        let requested = headers.get(ACCESS_CONTROL_REQUEST_METHOD)?;
        if method != Method::OPTIONS {
            return None;
        }
        Some(self.answer_preflight(origin, requested, headers))
    }

    fn answer_preflight(
        &self,
        origin: &HeaderValue,
        requested: &HeaderValue,
        headers: &HeaderMap,
    ) -> Result<http::Response<ResponseBody>, String> {
        let origin_text = origin.to_str().unwrap_or("");
        if !self.cors.allow_origins.allows(origin_text) {
            return Err(format!(
                "CORS preflight from origin {origin_text:?}, which is not allowed"
            ));
        }
        let method = requested.to_str().unwrap_or("").trim();
        if !self
            .cors
            .allow_methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method))
        {
            return Err(format!(
                "CORS preflight for method {method:?}, which is not allowed"
            ));
        }
        for value in headers.get_all(ACCESS_CONTROL_REQUEST_HEADERS) {
            let text = value.to_str().unwrap_or("\u{0}");
            for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !self
                    .cors
                    .allow_headers
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(name))
                {
                    return Err(format!(
                        "CORS preflight for header {name:?}, which is not allowed"
                    ));
                }
            }
        }
        let mut response = wasmgate_runtime::text_response(http::StatusCode::NO_CONTENT, "");
        let response_headers = response.headers_mut();
        response_headers.remove(http::header::CONTENT_TYPE);
        self.allow_origin(origin, response_headers);
        response_headers.append(
            VARY,
            HeaderValue::from_static("Access-Control-Request-Method"),
        );
        response_headers.append(
            VARY,
            HeaderValue::from_static("Access-Control-Request-Headers"),
        );
        response_headers.insert(ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone());
        if let Some(allowed) = &self.allow_headers {
            response_headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, allowed.clone());
        }
        if let Some(age) = &self.max_age {
            response_headers.insert(ACCESS_CONTROL_MAX_AGE, age.clone());
        }
        Ok(response)
    }

    /// Adds the CORS headers to a response to an actual (non-preflight) request from `origin`.
    pub(crate) fn decorate(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        if let Some(origin) = origin {
            if self
                .cors
                .allow_origins
                .allows(origin.to_str().unwrap_or(""))
            {
                self.allow_origin(origin, headers);
                if let Some(exposed) = &self.expose_headers {
                    headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone());
                }
                return;
            }
        }
        if self.echoes_origin() {
            // The answer depends on Origin even when it carries no CORS headers: a cache must
            // not hand it to a request from an allowed origin.
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
    }

    /// Any origin without credentials is answered with `*`, which caches well; otherwise the
    /// allowed origin is echoed (browsers accept one origin, never a list).
    fn echoes_origin(&self) -> bool {
        !matches!(self.cors.allow_origins, AllowedOrigins::Any) || self.cors.allow_credentials
    }

    fn allow_origin(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        if self.echoes_origin() {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.append(VARY, HeaderValue::from_static("Origin"));
        } else {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
        if self.cors.allow_credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy(origins: AllowedOrigins, credentials: bool) -> CorsPolicy {
        CorsPolicy::new(&Cors {
            allow_origins: origins,
            allow_methods: vec!["GET".into(), "PUT".into()],
            allow_headers: vec!["content-type".into(), "authorization".into()],
            expose_headers: vec!["x-request-id".into()],
            allow_credentials: credentials,
            max_age: Some(Duration::from_secs(600)),
        })
        .unwrap()
    }

    fn app() -> AllowedOrigins {
        AllowedOrigins::List(vec!["https://app.example.com".into()])
    }

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    http::HeaderName::from_static(n),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn allowed_preflight_is_answered_with_the_policy() {
        let headers = request(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "PUT"),
            (
                "access-control-request-headers",
                "Content-Type, authorization",
            ),
        ]);
        let response = policy(app(), true)
            .preflight(&Method::OPTIONS, &headers)
            .unwrap()
            .unwrap();
        assert_eq!(response.status(), http::StatusCode::NO_CONTENT);
        let h = response.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "GET, PUT");
        assert_eq!(
            h[ACCESS_CONTROL_ALLOW_HEADERS],
            "content-type, authorization"
        );
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "600");
        assert!(h.get_all(VARY).iter().any(|v| v == "Origin"));
    }

    #[test]
    fn preflights_outside_the_policy_are_refused() {
        let p = policy(app(), false);
        for headers in [
            request(&[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "GET"),
            ]),
            request(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "DELETE"),
            ]),
            request(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-secret"),
            ]),
        ] {
            assert!(p.preflight(&Method::OPTIONS, &headers).unwrap().is_err());
        }
    }

    #[test]
    fn plain_options_and_non_options_are_not_preflights() {
        let p = policy(app(), false);
        let no_request_method = request(&[("origin", "https://app.example.com")]);
        assert!(p.preflight(&Method::OPTIONS, &no_request_method).is_none());
        let get = request(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "GET"),
        ]);
        assert!(p.preflight(&Method::GET, &get).is_none());
    }

    #[test]
    fn actual_responses_echo_allowed_origins_only() {
        let p = policy(app(), false);
        let mut allowed = HeaderMap::new();
        p.decorate(
            Some(&HeaderValue::from_static("https://app.example.com")),
            &mut allowed,
        );
        assert_eq!(
            allowed[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        assert_eq!(allowed[ACCESS_CONTROL_EXPOSE_HEADERS], "x-request-id");
        assert_eq!(allowed[VARY], "Origin");
        assert!(allowed.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
        let mut other = HeaderMap::new();
        p.decorate(
            Some(&HeaderValue::from_static("https://evil.example")),
            &mut other,
        );
        assert!(other.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        assert_eq!(other[VARY], "Origin");
    }

    #[test]
    fn any_origin_without_credentials_is_a_star() {
        let p = policy(AllowedOrigins::Any, false);
        let mut headers = HeaderMap::new();
        p.decorate(
            Some(&HeaderValue::from_static("https://x.example")),
            &mut headers,
        );
        assert_eq!(headers[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(headers.get(VARY).is_none());
    }
}

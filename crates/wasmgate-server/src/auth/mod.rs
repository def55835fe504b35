//! Route policy before the guest: CORS preflights, then credentials (API keys, JWT bearer
//! tokens), as an [`Executor`] wrapped around the route's own, so dispatch stays unaware.
//!
//! [`AuthPolicies::load`] checks, at startup, that every scheme a manifest route names is
//! defined by the runtime config (with the kind the route asked for) and loads the keys.
//! [`AuthPolicies::guard`] then wraps each route's executor. A refused request gets 401 (no
//! or bad credentials) or 403 (genuine credentials, not enough for this route) with an
//! RFC 6750 `WWW-Authenticate` challenge, never reaches the guest, and is recorded as an
//! invocation with outcome `denied`, so it shows up in metrics and `/api/invocations`.

mod api_key;
mod cors;
mod jwt;

use api_key::ApiKeyVerifier;
use cors::CorsPolicy;
use http::header::{AUTHORIZATION, ORIGIN, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use jwt::{JwtVerifier, RouteRules};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use wasmgate_manifest::{AuthScheme, Manifest, Route, RuntimeConfig};
use wasmgate_runtime::{text_response, Executor, Outcome, RequestContext, ResponseFuture};
use wasmgate_telemetry::{method_label, InvocationRecord, Telemetry};

use crate::limits::ClientIdentity;

/// The realm every challenge names.
const REALM: &str = "wasmgate";

/// The app's authentication schemes, loaded, and what each route requires.
pub struct AuthPolicies {
    schemes: BTreeMap<String, Scheme>,
    manifest: PathBuf,
    /// Component name -> executor label, for the records of denied requests.
    executors: BTreeMap<String, &'static str>,
}

enum Scheme {
    ApiKey(Arc<ApiKeyVerifier>),
    Jwt(Arc<JwtVerifier>),
}

/// A route or scheme that cannot be served as configured; stops startup.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuthSetupError(String);

impl AuthPolicies {
    /// Loads every scheme of the runtime config (reading JWKS files) and checks every route's
    /// `auth` against them.
    pub fn load(
        manifest: &Manifest,
        config: &RuntimeConfig,
    ) -> Result<AuthPolicies, AuthSetupError> {
        let mut schemes = BTreeMap::new();
        for (name, scheme) in &config.auth.schemes {
            let loaded = match scheme {
                AuthScheme::ApiKey(keys) => Scheme::ApiKey(Arc::new(ApiKeyVerifier::new(keys))),
                AuthScheme::Jwt(jwt) => {
                    Scheme::Jwt(Arc::new(JwtVerifier::load(jwt).map_err(|m| {
                        AuthSetupError(format!("{}: auth.jwt.{name}.jwks: {m}", config.describe()))
                    })?))
                }
            };
            schemes.insert(name.clone(), loaded);
        }
        let policies = AuthPolicies {
            schemes,
            manifest: manifest.path.clone(),
            executors: manifest
                .components
                .iter()
                .map(|(name, c)| (name.clone(), executor_label(&c.executor.to_string())))
                .collect(),
        };
        for route in &manifest.routes {
            if let Some(auth) = &route.auth {
                policies.scheme_for(route, auth, config)?;
            }
            if let Some(cors) = &route.cors {
                CorsPolicy::new(cors).map_err(|m| policies.route_error(route, "cors", m))?;
            }
        }
        Ok(policies)
    }

    /// `executor` as is when `route` has neither `auth` nor `cors`; otherwise wrapped in a
    /// guard applying them. Sub-routes a component adds below `route` get `route`'s guard too.
    pub fn guard(
        &self,
        route: &Route,
        executor: Arc<dyn Executor>,
        telemetry: &Arc<Telemetry>,
    ) -> Result<Arc<dyn Executor>, AuthSetupError> {
        if route.auth.is_none() && route.cors.is_none() {
            return Ok(executor);
        }
        let check = match &route.auth {
            None => None,
            Some(auth) => Some(match self.schemes.get(&auth.scheme) {
                Some(Scheme::ApiKey(verifier)) => Check::ApiKey {
                    scheme: auth.scheme.clone(),
                    verifier: verifier.clone(),
                },
                Some(Scheme::Jwt(verifier)) => Check::Jwt {
                    scheme: auth.scheme.clone(),
                    rules: RouteRules::new(auth, verifier)
                        .map_err(|m| self.route_error(route, "auth", m))?,
                    verifier: verifier.clone(),
                },
                None => {
                    return Err(self.route_error(
                        route,
                        "auth",
                        format!("scheme {:?} is not loaded", auth.scheme),
                    ))
                }
            }),
        };
        let cors = match &route.cors {
            Some(cors) => {
                Some(CorsPolicy::new(cors).map_err(|m| self.route_error(route, "cors", m))?)
            }
            None => None,
        };
        Ok(Arc::new(Guard {
            inner: executor,
            cors,
            check,
            telemetry: telemetry.clone(),
            component: route.component.as_str().into(),
            executor: self
                .executors
                .get(&route.component)
                .copied()
                .unwrap_or("other"),
        }))
    }

    fn scheme_for(
        &self,
        route: &Route,
        auth: &wasmgate_manifest::RouteAuth,
        config: &RuntimeConfig,
    ) -> Result<(), AuthSetupError> {
        let Some(scheme) = config.auth.schemes.get(&auth.scheme) else {
            let defined: Vec<&str> = config.auth.schemes.keys().map(String::as_str).collect();
            return Err(AuthSetupError(format!(
                "{}:{}: route {}: auth scheme {:?} is not defined in {} (defined: {}); add \
                 [auth.jwt.{}] or [auth.api_key.{}] there",
                self.manifest.display(),
                auth.line,
                route.path,
                auth.scheme,
                config.describe(),
                if defined.is_empty() {
                    "none".to_string()
                } else {
                    defined.join(", ")
                },
                auth.scheme,
                auth.scheme,
            )));
        };
        if let Some(kind) = auth.kind.filter(|k| *k != scheme.kind()) {
            return Err(AuthSetupError(format!(
                "{}:{}: route {}: auth asks for {kind} scheme {:?}, but {} defines it as \
                 [auth.{}.{}]",
                self.manifest.display(),
                auth.line,
                route.path,
                auth.scheme,
                config.describe(),
                scheme.kind(),
                auth.scheme,
            )));
        }
        Ok(())
    }

    fn route_error(&self, route: &Route, field: &str, message: String) -> AuthSetupError {
        AuthSetupError(format!(
            "{}:{}: route {}: {field}: {message}",
            self.manifest.display(),
            route.line,
            route.path
        ))
    }
}

/// A static label for the record of a denied request, from the component's executor kind.
fn executor_label(kind: &str) -> &'static str {
    match kind {
        "http" => "http",
        "wagi" => "wagi",
        "service" => "service",
        _ => "other",
    }
}

/// A route's credential check; `scheme` names the caller's identity for rate limits.
enum Check {
    ApiKey {
        scheme: String,
        verifier: Arc<ApiKeyVerifier>,
    },
    Jwt {
        scheme: String,
        verifier: Arc<JwtVerifier>,
        rules: RouteRules,
    },
}

/// The executor wrapper: preflight, then credentials, then the route's own executor.
struct Guard {
    inner: Arc<dyn Executor>,
    cors: Option<CorsPolicy>,
    check: Option<Check>,
    telemetry: Arc<Telemetry>,
    component: Arc<str>,
    executor: &'static str,
}

impl Executor for Guard {
    fn handle(
        self: Arc<Self>,
        mut request: http::Request<hyper::body::Incoming>,
        context: RequestContext,
    ) -> ResponseFuture {
        let started = Instant::now();
        let origin = request.headers().get(ORIGIN).cloned();
        if let Some(cors) = &self.cors {
            match cors.preflight(request.method(), request.headers()) {
                Some(Ok(answer)) => return Box::pin(async move { answer }),
                Some(Err(reason)) => {
                    let denial = Denial::forbidden(None, reason);
                    // A refused preflight carries no CORS headers: that is the refusal.
                    let response = denial.response(context.invocation_id);
                    self.record_denied(&request, &context, &denial, started);
                    return Box::pin(async move { response });
                }
                None => {}
            }
        }
        let admitted = match &self.check {
            None => Ok(None),
            Some(Check::ApiKey { scheme, verifier }) => verifier
                .admit(request.headers_mut())
                .map(|key| Some(format!("api_key:{scheme}:{key}"))),
            Some(Check::Jwt {
                scheme,
                verifier,
                rules,
            }) => verifier
                .admit(rules, request.headers_mut())
                .map(|sub| sub.map(|sub| format!("jwt:{scheme}:{sub}"))),
        };
        match admitted {
            // Per-client rate limits (the route's limiter, inside this guard) then count the
            // caller, not its address.
            Ok(Some(identity)) => {
                request
                    .extensions_mut()
                    .insert(ClientIdentity(identity.into()));
            }
            Ok(None) => {}
            Err(denial) => return self.refuse(&request, &context, denial, origin, started),
        }
        let response = self.inner.clone().handle(request, context);
        if self.cors.is_none() {
            return response;
        }
        Box::pin(async move {
            let mut response = response.await;
            if let Some(cors) = &self.cors {
                cors.decorate(origin.as_ref(), response.headers_mut());
            }
            response
        })
    }
}

impl Guard {
    fn refuse(
        &self,
        request: &http::Request<hyper::body::Incoming>,
        context: &RequestContext,
        denial: Denial,
        origin: Option<HeaderValue>,
        started: Instant,
    ) -> ResponseFuture {
        let mut response = denial.response(context.invocation_id);
        if let Some(cors) = &self.cors {
            // So that a page allowed to call the route can read why it was refused.
            cors.decorate(origin.as_ref(), response.headers_mut());
        }
        self.record_denied(request, context, &denial, started);
        Box::pin(async move { response })
    }

    fn record_denied<B>(
        &self,
        request: &http::Request<B>,
        context: &RequestContext,
        denial: &Denial,
        started: Instant,
    ) {
        let arrived_unix_ns = wasmgate_telemetry::spans::unix_ns_at(started);
        let started_at_ms = arrived_unix_ns / 1_000_000;
        let record = InvocationRecord {
            id: context.invocation_id,
            trace_id: context.trace.trace_id,
            started_at_ms,
            app: self.telemetry.app().clone(),
            route: context.route.pattern.clone(),
            component: self.component.clone(),
            executor: self.executor,
            method: method_label(request.method().as_str()),
            status: denial.status.as_u16(),
            outcome: Outcome::Denied.as_str(),
            error: Some(denial.description.clone()),
            wall_time_us: started.elapsed().as_micros() as u64,
            ..Default::default()
        };
        let span = wasmgate_runtime::request_span(
            &self.telemetry,
            context,
            Some(request),
            (started, arrived_unix_ns),
        );
        self.telemetry.emit_traced(record, span);
    }
}

/// Why a request was refused, and how to say so (RFC 6750 section 3).
#[derive(Debug)]
pub(crate) struct Denial {
    pub(crate) status: StatusCode,
    /// `invalid_request`, `invalid_token`, `insufficient_scope`; `None` when the request had
    /// no credentials at all (RFC 6750 3.1 asks for no error code then).
    pub(crate) error: Option<&'static str>,
    pub(crate) description: String,
    /// The scopes needed, for `insufficient_scope`.
    pub(crate) scope: Option<String>,
}

impl Denial {
    pub(crate) fn missing(description: impl Into<String>) -> Denial {
        Denial {
            status: StatusCode::UNAUTHORIZED,
            error: None,
            description: description.into(),
            scope: None,
        }
    }

    pub(crate) fn invalid_token(description: impl Into<String>) -> Denial {
        Denial {
            status: StatusCode::UNAUTHORIZED,
            error: Some("invalid_token"),
            description: description.into(),
            scope: None,
        }
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Denial {
        Denial {
            status: StatusCode::BAD_REQUEST,
            error: Some("invalid_request"),
            description: description.into(),
            scope: None,
        }
    }

    pub(crate) fn forbidden(error: Option<&'static str>, description: impl Into<String>) -> Denial {
        Denial {
            status: StatusCode::FORBIDDEN,
            error,
            description: description.into(),
            scope: None,
        }
    }

    fn challenge(&self) -> HeaderValue {
        let mut text = format!("Bearer realm=\"{REALM}\"");
        if let Some(error) = self.error {
            text.push_str(&format!(", error=\"{error}\""));
            text.push_str(&format!(
                ", error_description=\"{}\"",
                quoted_text(&self.description)
            ));
        }
        if let Some(scope) = &self.scope {
            text.push_str(&format!(", scope=\"{}\"", quoted_text(scope)));
        }
        HeaderValue::from_str(&text)
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"wasmgate\""))
    }

    fn response(&self, invocation_id: u64) -> http::Response<wasmgate_runtime::ResponseBody> {
        let what = match self.status {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            _ => "bad request",
        };
        let mut response = text_response(
            self.status,
            format!(
                "{what}: {} (invocation {invocation_id})\n",
                self.description
            ),
        );
        if self.status != StatusCode::FORBIDDEN || self.error.is_some() {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, self.challenge());
        }
        response
    }
}

/// RFC 6750 allows neither `"` nor `\` (nor non-ASCII) in `error_description` and `scope`.
fn quoted_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if (' '..='~').contains(&c) => c,
            _ => '?',
        })
        .collect()
}

/// The single value of header `name`, if present; two or more are refused, since proxies and
/// guests could disagree on which one counts.
pub(crate) fn single_header<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<Option<&'a HeaderValue>, Denial> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(Denial::invalid_request(format!(
            "more than one {name} header"
        )));
    }
    Ok(first)
}

/// The token of `Authorization: Bearer <token>` (the scheme name in any case).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<String, Denial> {
    let value = single_header(headers, AUTHORIZATION.as_str())?
        .ok_or_else(|| Denial::missing("no Authorization header"))?;
    let text = value
        .to_str()
        .map_err(|_| Denial::invalid_request("Authorization header is not text"))?;
    match text.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_string())
        }
        _ => Err(Denial::missing(
            "no bearer token in the Authorization header",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc_6750() {
        let missing = Denial::missing("no Authorization header").response(7);
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            missing.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"wasmgate\""
        );
        let bad = Denial::invalid_token("bad \"signature\"").response(7);
        assert_eq!(
            bad.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"wasmgate\", error=\"invalid_token\", error_description=\"bad 'signature'\""
        );
        let mut scope = Denial::forbidden(Some("insufficient_scope"), "needs scope");
        scope.scope = Some("read write".into());
        let scope = scope.response(7);
        assert_eq!(scope.status(), StatusCode::FORBIDDEN);
        assert!(scope.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .ends_with("scope=\"read write\""));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_other_schemes_count_as_missing() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer  abc "));
        assert_eq!(bearer_token(&headers).unwrap(), "abc");
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwdw=="),
        );
        let denial = bearer_token(&headers).unwrap_err();
        assert_eq!(denial.status, StatusCode::UNAUTHORIZED);
        assert_eq!(denial.error, None);
    }

    #[test]
    fn executor_labels_are_static() {
        assert_eq!(executor_label("http"), "http");
        assert_eq!(executor_label("something-new"), "other");
    }
}

//! What the admin listener answers: one function per endpoint, dispatched by path.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wasmgate_runtime::{
    percent_decode, text_response, ProfileError, ProfileLookup, ProfileRequest, ProfileTarget,
    Profiles, ResponseBody,
};
use wasmgate_telemetry::{
    openmetrics_to_classic, wants_openmetrics, InvocationQuery, Telemetry, CLASSIC_CONTENT_TYPE,
    OPENMETRICS_CONTENT_TYPE,
};

/// What the admin endpoints read from and act on.
pub struct AdminOptions {
    pub telemetry: Arc<Telemetry>,
    /// What `POST /api/reload` calls; `None` answers 404 there.
    pub reload: Option<Arc<dyn ReloadApp>>,
    /// Guest profile sessions (`/api/profiles`); `None` answers 404 there.
    pub profiles: Option<Arc<Profiles>>,
}

/// Loads the app again and switches to it, for `POST /api/reload`.
pub trait ReloadApp: Send + Sync {
    /// On success, what the operator is told about the new version (JSON); on failure, why
    /// it was refused (the running version keeps serving).
    fn reload(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<serde_json::Value, String>> + Send + '_>>;
}

pub(super) struct AdminState {
    telemetry: Arc<Telemetry>,
    reload: Option<Arc<dyn ReloadApp>>,
    profiles: Option<Arc<Profiles>>,
    /// Shared with live streams, which end when it turns true.
    stopping: Arc<AtomicBool>,
}

impl AdminState {
    pub(super) fn new(options: AdminOptions) -> AdminState {
        AdminState {
            telemetry: options.telemetry,
            reload: options.reload,
            profiles: options.profiles,
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// `/readyz` answers 503 from now on and live streams end.
    pub(super) fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    pub(super) async fn handle(
        &self,
        request: http::Request<Incoming>,
    ) -> http::Response<ResponseBody> {
        if request.uri().path() == "/api/profiles" && request.method() == http::Method::POST {
            return self.start_profile(request).await;
        }
        let request = &request;
        if request.uri().path() == "/api/reload" {
            return self.reload(request).await;
        }
        if request.method() != http::Method::GET && request.method() != http::Method::HEAD {
            return text(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "admin endpoints answer GET only\n",
            );
        }
        match request.uri().path() {
            "/metrics" => {
                let accept = request
                    .headers()
                    .get(http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok());
                self.telemetry.settle();
                let openmetrics = self.telemetry.metrics.encode();
                if wants_openmetrics(accept) {
                    respond(http::StatusCode::OK, OPENMETRICS_CONTENT_TYPE, openmetrics)
                } else {
                    respond(
                        http::StatusCode::OK,
                        CLASSIC_CONTENT_TYPE,
                        openmetrics_to_classic(&openmetrics),
                    )
                }
            }
            "/api/invocations" => match parse_query(request.uri().query().unwrap_or("")) {
                Ok(query) => {
                    self.telemetry.settle();
                    let records = self.telemetry.history.query(&query);
                    let records: Vec<&wasmgate_telemetry::InvocationRecord> =
                        records.iter().map(AsRef::as_ref).collect();
                    let body = serde_json::json!({ "invocations": records });
                    respond(http::StatusCode::OK, "application/json", body.to_string())
                }
                Err(message) => text(http::StatusCode::BAD_REQUEST, &format!("{message}\n")),
            },
            "/api/invocations/stream" => match parse_query(request.uri().query().unwrap_or("")) {
                Ok(query) => {
                    crate::follow::stream_response(&self.telemetry, query, self.stopping.clone())
                }
                Err(message) => text(http::StatusCode::BAD_REQUEST, &format!("{message}\n")),
            },
            "/api/routes" => {
                let body = serde_json::to_string(&self.telemetry.route_summary());
                json(body)
            }
            path if path.starts_with("/api/invocations/") => {
                self.invocation(&path["/api/invocations/".len()..])
            }
            "/api/profiles" => self.profiles_list(),
            path if path.starts_with("/api/profiles/") => {
                self.profile(&path["/api/profiles/".len()..])
            }
            "/healthz" => text(http::StatusCode::OK, "ok\n"),
            "/readyz" if self.stopping.load(Ordering::Relaxed) => {
                text(http::StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
            }
            "/readyz" => text(http::StatusCode::OK, "ready\n"),
            path => super::dashboard::asset(path).unwrap_or_else(|| {
                text(
                    http::StatusCode::NOT_FOUND,
                    "admin endpoints: / (dashboard) /metrics /api/routes /api/invocations \
                     /api/invocations/{id} /api/invocations/stream /api/profiles \
                     /api/profiles/{id} /healthz /readyz\n",
                )
            }),
        }
    }

    /// `GET /api/invocations/{id}`: one record, while the ring still holds it.
    fn invocation(&self, id: &str) -> http::Response<ResponseBody> {
        let Ok(id) = id.parse::<u64>() else {
            return text(
                http::StatusCode::BAD_REQUEST,
                &format!("an invocation id is a number, got {id:?}\n"),
            );
        };
        self.telemetry.settle();
        match self.telemetry.history.get(id) {
            Some(record) => json(serde_json::to_string(&*record)),
            None => text(
                http::StatusCode::NOT_FOUND,
                &format!("invocation {id} is not in the history (it keeps the most recent ones)\n"),
            ),
        }
    }
}

fn json(body: serde_json::Result<String>) -> http::Response<ResponseBody> {
    match body {
        Ok(body) => respond(http::StatusCode::OK, "application/json", body),
        Err(e) => text(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot encode the answer: {e}\n"),
        ),
    }
}

impl AdminState {
    async fn reload(&self, request: &http::Request<Incoming>) -> http::Response<ResponseBody> {
        if request.method() != http::Method::POST {
            let mut response = text(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "POST /api/reload reloads the app\n",
            );
            response
                .headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
            return response;
        }
        if is_cross_origin(request) {
            return text(
                http::StatusCode::FORBIDDEN,
                "cross-origin requests may not reload the app\n",
            );
        }
        let Some(reload) = &self.reload else {
            return text(
                http::StatusCode::NOT_FOUND,
                "this server does not reload (no app to reload)\n",
            );
        };
        match reload.reload().await {
            Ok(report) => respond(http::StatusCode::OK, "application/json", report.to_string()),
            Err(error) => respond(
                http::StatusCode::UNPROCESSABLE_ENTITY,
                "application/json",
                serde_json::json!({ "error": error }).to_string(),
            ),
        }
    }
}

/// `POST /api/profiles`: the body an operator sends.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    route: Option<String>,
    component: Option<String>,
    count: u32,
    interval_ms: Option<f64>,
    timeout_s: Option<f64>,
}

/// Largest `POST /api/profiles` body read.
const PROFILE_BODY_LIMIT: usize = 4096;

impl AdminState {
    /// `POST /api/profiles`: profile the next `count` invocations of a route or component.
    async fn start_profile(
        &self,
        request: http::Request<Incoming>,
    ) -> http::Response<ResponseBody> {
        if is_cross_origin(&request) {
            return text(
                http::StatusCode::FORBIDDEN,
                "cross-origin requests may not start profiles\n",
            );
        }
        let Some(profiles) = &self.profiles else {
            return text(
                http::StatusCode::NOT_FOUND,
                "this server does not profile\n",
            );
        };
        let body = http_body_util::Limited::new(request.into_body(), PROFILE_BODY_LIMIT);
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return json_error(
                    http::StatusCode::BAD_REQUEST,
                    &format!("the body must be JSON of at most {PROFILE_BODY_LIMIT} bytes"),
                )
            }
        };
        let request = match parse_profile_body(&body) {
            Ok(request) => request,
            Err(message) => return json_error(http::StatusCode::BAD_REQUEST, &message),
        };
        match profiles.start(request) {
            Ok(summary) => {
                let mut response = respond(
                    http::StatusCode::CREATED,
                    "application/json",
                    summary.to_json().to_string(),
                );
                if let Ok(location) = format!("/api/profiles/{}", summary.id).parse() {
                    response
                        .headers_mut()
                        .insert(http::header::LOCATION, location);
                }
                response
            }
            Err(e) => {
                let status = match e {
                    ProfileError::UnknownRoute(_) | ProfileError::UnknownComponent(_) => {
                        http::StatusCode::NOT_FOUND
                    }
                    ProfileError::TooMany { .. } => http::StatusCode::TOO_MANY_REQUESTS,
                    _ => http::StatusCode::UNPROCESSABLE_ENTITY,
                };
                json_error(status, &e.to_string())
            }
        }
    }

    /// `GET /api/profiles`: every session remembered, newest first.
    fn profiles_list(&self) -> http::Response<ResponseBody> {
        let Some(profiles) = &self.profiles else {
            return text(
                http::StatusCode::NOT_FOUND,
                "this server does not profile\n",
            );
        };
        let sessions: Vec<serde_json::Value> =
            profiles.list().iter().rev().map(|s| s.to_json()).collect();
        let body = serde_json::json!({ "profiles": sessions });
        respond(http::StatusCode::OK, "application/json", body.to_string())
    }

    /// `GET /api/profiles/{id}`: 202 with progress while collecting, 200 with the
    /// Firefox-profiler JSON when done.
    fn profile(&self, id: &str) -> http::Response<ResponseBody> {
        let Some(profiles) = &self.profiles else {
            return text(
                http::StatusCode::NOT_FOUND,
                "this server does not profile\n",
            );
        };
        let Ok(id) = id.parse::<u64>() else {
            return json_error(
                http::StatusCode::BAD_REQUEST,
                &format!("a profile id is a number, got {id:?}"),
            );
        };
        match profiles.lookup(id) {
            ProfileLookup::Missing => json_error(
                http::StatusCode::NOT_FOUND,
                &format!("no profile {id} (the server keeps the most recent ones)"),
            ),
            ProfileLookup::Collecting(summary) => respond(
                http::StatusCode::ACCEPTED,
                "application/json",
                summary.to_json().to_string(),
            ),
            ProfileLookup::Done(_, Some(profile)) => {
                let mut response =
                    respond(http::StatusCode::OK, "application/json", profile.to_vec());
                if let Ok(disposition) =
                    format!("attachment; filename=\"wasmgate-profile-{id}.json\"").parse()
                {
                    response
                        .headers_mut()
                        .insert(http::header::CONTENT_DISPOSITION, disposition);
                }
                response
            }
            ProfileLookup::Done(summary, None) => {
                let mut body = summary.to_json();
                body["error"] = "no invocation was profiled before the deadline".into();
                respond(http::StatusCode::GONE, "application/json", body.to_string())
            }
        }
    }
}

fn parse_profile_body(body: &[u8]) -> Result<ProfileRequest, String> {
    let body: ProfileBody = serde_json::from_slice(body).map_err(|e| {
        format!(
            "expected {{\"route\": \"/pattern\" or \"component\": \"name\", \"count\": N, \
             \"interval_ms\": optional, \"timeout_s\": optional}}: {e}"
        )
    })?;
    let target = match (body.route, body.component) {
        (Some(route), None) => ProfileTarget::Route(route),
        (None, Some(component)) => ProfileTarget::Component(component),
        _ => return Err("give exactly one of \"route\" and \"component\"".into()),
    };
    let seconds = |value: Option<f64>, scale: f64, key: &str| {
        value
            .map(|v| {
                std::time::Duration::try_from_secs_f64(v * scale)
                    .map_err(|_| format!("{key} must be a positive number, got {v}"))
            })
            .transpose()
    };
    Ok(ProfileRequest {
        target,
        count: body.count,
        interval: seconds(body.interval_ms, 1e-3, "interval_ms")?,
        timeout: seconds(body.timeout_s, 1.0, "timeout_s")?,
    })
}

fn json_error(status: http::StatusCode, message: &str) -> http::Response<ResponseBody> {
    let body = serde_json::json!({ "error": message });
    respond(status, "application/json", body.to_string())
}

/// A browser page from another origin can POST to a loopback admin listener without any
/// preflight; browsers say where such a request comes from, so refuse it when that is not
/// the admin listener itself. Tools like curl send no `Origin` and are unaffected.
fn is_cross_origin(request: &http::Request<Incoming>) -> bool {
    let Some(origin) = request.headers().get(http::header::ORIGIN) else {
        return false;
    };
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    match (origin_host, host) {
        (Some(origin_host), Some(host)) => !origin_host.eq_ignore_ascii_case(host),
        _ => true,
    }
}

/// `route=&outcome=&component=&limit=`; anything else is a 400 naming the key.
fn parse_query(query: &str) -> Result<InvocationQuery, String> {
    let mut parsed = InvocationQuery::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(&value.replace('+', " "));
        match key {
            "route" => parsed.route = Some(value),
            "outcome" => parsed.outcome = Some(value),
            "component" => parsed.component = Some(value),
            "limit" => {
                parsed.limit = Some(
                    value
                        .parse()
                        .map_err(|_| format!("limit must be a number, got {value:?}"))?,
                )
            }
            other => {
                return Err(format!(
                    "unknown parameter {other:?} (use route, outcome, component, limit)"
                ))
            }
        }
    }
    Ok(parsed)
}

fn respond(
    status: http::StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

fn text(status: http::StatusCode, body: &str) -> http::Response<ResponseBody> {
    text_response(status, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters() {
        let query = parse_query("route=%2Fapi%2F...&outcome=trap&limit=5").unwrap();
        assert_eq!(query.route.as_deref(), Some("/api/..."));
        assert_eq!(query.outcome.as_deref(), Some("trap"));
        assert_eq!(query.limit, Some(5));
        assert!(parse_query("limit=x").unwrap_err().contains("limit"));
        assert!(parse_query("bogus=1").unwrap_err().contains("bogus"));
        assert!(parse_query("").is_ok());
    }

    #[test]
    fn profile_bodies() {
        let parsed = parse_profile_body(br#"{"route": "/a", "count": 3, "interval_ms": 0.5}"#);
        let parsed = parsed.unwrap();
        assert_eq!(parsed.target, ProfileTarget::Route("/a".into()));
        assert_eq!(parsed.count, 3);
        assert_eq!(parsed.interval, Some(std::time::Duration::from_micros(500)));
        assert_eq!(parsed.timeout, None);
        let parsed = parse_profile_body(br#"{"component": "c", "count": 1, "timeout_s": 2}"#);
        assert_eq!(parsed.unwrap().target, ProfileTarget::Component("c".into()));
        for bad in [
            &br#"{"route": "/a", "component": "c", "count": 1}"#[..],
            br#"{"count": 1}"#,
            br#"{"route": "/a"}"#,
            br#"{"route": "/a", "count": 1, "interval_ms": -1}"#,
            br#"{"route": "/a", "count": 1, "extra": true}"#,
            b"not json",
        ] {
            assert!(
                parse_profile_body(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

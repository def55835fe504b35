//! What the admin listener answers: one function per endpoint, dispatched by path.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wasmgate_runtime::{percent_decode, text_response, ResponseBody};
use wasmgate_telemetry::{
    openmetrics_to_classic, wants_openmetrics, InvocationQuery, Telemetry, CLASSIC_CONTENT_TYPE,
    OPENMETRICS_CONTENT_TYPE,
};

/// What the admin endpoints read from and act on.
pub struct AdminOptions {
    pub telemetry: Arc<Telemetry>,
    /// What `POST /api/reload` calls; `None` answers 404 there.
    pub reload: Option<Arc<dyn ReloadApp>>,
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
    /// Shared with live streams, which end when it turns true.
    stopping: Arc<AtomicBool>,
}

impl AdminState {
    pub(super) fn new(options: AdminOptions) -> AdminState {
        AdminState {
            telemetry: options.telemetry,
            reload: options.reload,
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
            "/healthz" => text(http::StatusCode::OK, "ok\n"),
            "/readyz" if self.stopping.load(Ordering::Relaxed) => {
                text(http::StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
            }
            "/readyz" => text(http::StatusCode::OK, "ready\n"),
            path => super::dashboard::asset(path).unwrap_or_else(|| {
                text(
                    http::StatusCode::NOT_FOUND,
                    "admin endpoints: / (dashboard) /metrics /api/routes /api/invocations \
                     /api/invocations/{id} /api/invocations/stream /healthz /readyz\n",
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
    body: String,
) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(
        Full::new(Bytes::from(body))
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
}

//! `GET /api/invocations/stream`: invocation records as they happen, one JSON object per line
//! (NDJSON), until the client goes away or the server stops. What `wasmgate logs --follow`
//! reads.

use bytes::Bytes;
use http_body::Frame;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use wasmgate_runtime::{BoxError, ResponseBody};
use wasmgate_telemetry::{InvocationQuery, Telemetry};

/// How often an idle stream sends an empty line, so a dead client is noticed and proxies
/// keep the connection.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// How often the stream checks whether the server is stopping.
const STOP_CHECK: Duration = Duration::from_millis(500);

pub(crate) fn stream_response(
    telemetry: &Telemetry,
    query: InvocationQuery,
    stopping: Arc<AtomicBool>,
) -> http::Response<ResponseBody> {
    let mut live = telemetry.history.follow();
    let (lines, receiver) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut idle = Duration::ZERO;
        loop {
            let next = tokio::time::timeout(STOP_CHECK, live.recv()).await;
            if stopping.load(Ordering::Relaxed) {
                return;
            }
            let line = match next {
                Ok(Ok(record)) if query.matches(&record) => {
                    idle = Duration::ZERO;
                    match serde_json::to_vec(&*record) {
                        Ok(mut json) => {
                            json.push(b'\n');
                            Bytes::from(json)
                        }
                        Err(_) => continue,
                    }
                }
                Ok(Ok(_)) => continue,
                Ok(Err(RecvError::Lagged(skipped))) => {
                    Bytes::from(format!("{{\"skipped\":{skipped}}}\n"))
                }
                Ok(Err(RecvError::Closed)) => return,
                Err(_) => {
                    idle += STOP_CHECK;
                    if idle < KEEPALIVE {
                        continue;
                    }
                    idle = Duration::ZERO;
                    Bytes::from_static(b"\n")
                }
            };
            if lines.send(line).await.is_err() {
                return; // the client went away
            }
        }
    });
    let body = LineBody { receiver };
    let mut response = http::Response::new(ResponseBody::new(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-ndjson"),
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

struct LineBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl http_body::Body for LineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.get_mut()
            .receiver
            .poll_recv(cx)
            .map(|line| line.map(|bytes| Ok(Frame::data(bytes))))
    }
}

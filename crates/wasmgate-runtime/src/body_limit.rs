//! The request body size limit of a route, enforced while the body streams to the guest.
//!
//! The server refuses a request whose `Content-Length` is over the limit before it reaches an
//! executor; a body without a length (chunked, or HTTP/2 without the header) can only be
//! measured as it arrives. The server says the limit with a [`RequestBodyLimit`] in the
//! request's extensions, because the [`crate::Executor`] trait passes hyper's own body type,
//! which no wrapper can stand in for; each executor then caps the body it reads with it.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// The largest request body, in bytes, an executor may pass to its guest. Set by the server
/// (see `wasmgate-server`'s `limits`); executors must answer 413 once a body goes past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBodyLimit(pub u64);

impl RequestBodyLimit {
    /// The limit set on `request`, if any.
    pub fn of<B>(request: &http::Request<B>) -> Option<u64> {
        request.extensions().get::<RequestBodyLimit>().map(|l| l.0)
    }
}

/// Set once a [`CappedBody`] has gone past its limit: the guest saw a truncated body, so the
/// executor answers 413 instead of whatever the guest made of it.
#[derive(Clone, Default)]
pub(crate) struct Exceeded(Arc<AtomicBool>);

impl Exceeded {
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A request body that fails with `HttpRequestBodySize` once more than `limit` bytes came in.
pub(crate) struct CappedBody<B> {
    inner: B,
    seen: u64,
    limit: u64,
    exceeded: Exceeded,
}

impl<B> CappedBody<B> {
    pub(crate) fn new(inner: B, limit: Option<u64>) -> (CappedBody<B>, Exceeded) {
        let exceeded = Exceeded::default();
        let body = CappedBody {
            inner,
            seen: 0,
            limit: limit.unwrap_or(u64::MAX),
            exceeded: exceeded.clone(),
        };
        (body, exceeded)
    }
}

impl<B> Body for CappedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.exceeded.get() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen = this.seen.saturating_add(data.len() as u64);
                    if this.seen > this.limit {
                        this.exceeded.0.store(true, Ordering::Relaxed);
                        let error = wasmtime_wasi_http::Error::HttpRequestBodySize(Some(this.seen));
                        return Poll::Ready(Some(Err(error)));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.exceeded.get() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The 413 for a body that went past `limit`; recorded as `rejected`, as WAGI's refusals are.
pub(crate) fn too_large(
    pending: &crate::record::Pending,
    limit: Option<u64>,
    invocation_id: u64,
) -> http::Response<crate::ResponseBody> {
    let why = format!("request body over {} bytes", limit.unwrap_or(u64::MAX));
    pending.update(|r| {
        r.outcome = "rejected";
        r.status = http::StatusCode::PAYLOAD_TOO_LARGE.as_u16();
        r.error = Some(why.clone());
    });
    crate::text_response(
        http::StatusCode::PAYLOAD_TOO_LARGE,
        format!("{why} (invocation {invocation_id})\n"),
    )
}

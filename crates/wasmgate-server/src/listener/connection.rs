//! Serving one accepted connection until it ends: drained on shutdown, closed when it idles.
//!
//! hyper bounds the time an HTTP/1.1 client may take to send a request head, but HTTP/2 has
//! no such timer, and neither does the version sniffing in front of both: a client that
//! trickles the h2 preface, or opens a HEADERS frame and never ends it, would hold its
//! connection (and a connection slot) for ever. So every connection is watched from outside
//! the protocol: [`Activity`] counts the requests it has in flight (from complete headers
//! until the response body is dropped), and [`drive`] closes it gracefully (GOAWAY on
//! HTTP/2) once it has had none for the idle timeout, and drops it if it has not ended a
//! second later. A request running longer than that is never cut; a connection that has not
//! even finished its first request is.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;
use wasmgate_runtime::ResponseBody;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Requests in flight on one connection, and since when the count last changed. Nothing is
/// woken when it changes (that would cost every request a wake-up and a timer): the watcher
/// looks again when its own timer fires.
pub(crate) struct Activity {
    state: Mutex<ActivityState>,
}

struct ActivityState {
    in_flight: usize,
    since: Instant,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                since: Instant::now(),
            }),
        })
    }

    fn update(&self, change: impl FnOnce(&mut ActivityState)) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut state);
        state.since = Instant::now();
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.update(|state| state.in_flight += 1);
        InFlight(self.clone())
    }

    /// Restarts the idle clock, as if a request had just ended.
    fn touch(&self) {
        self.update(|_| {});
    }

    /// Resolves once no request has been in flight for `timeout`. While requests are in
    /// flight it looks again every `timeout`; that suffices because the deadline is counted
    /// from the moment the last one ended.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let (in_flight, since) = {
                let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                (state.in_flight, state.since)
            };
            if in_flight > 0 {
                tokio::time::sleep(timeout).await;
                continue;
            }
            let deadline = since + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// One request in flight; ends when dropped (with the response body, or unanswered).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.update(|state| state.in_flight -= 1);
    }
}

/// A connection's service, counting its requests into an [`Activity`].
pub(crate) struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Tracked<S> {
        Tracked { inner, activity }
    }
}

impl<S> Service<http::Request<Incoming>> for Tracked<S>
where
    S: Service<
        http::Request<Incoming>,
        Response = http::Response<ResponseBody>,
        Error = Infallible,
    >,
    S::Future: Unpin,
{
    type Response = http::Response<TrackedBody>;
    type Error = Infallible;
    type Future = TrackedFuture<S::Future>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        TrackedFuture {
            inner: self.inner.call(request),
            in_flight: Some(in_flight),
        }
    }
}

/// The service's answer; hands the in-flight mark on to the response body.
pub(crate) struct TrackedFuture<F> {
    inner: F,
    in_flight: Option<InFlight>,
}

impl<F> Future for TrackedFuture<F>
where
    F: Future<Output = Result<http::Response<ResponseBody>, Infallible>> + Unpin,
{
    type Output = Result<http::Response<TrackedBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Ok(response) = std::task::ready!(Pin::new(&mut self.inner).poll(cx));
        let in_flight = self.in_flight.take();
        Poll::Ready(Ok(response.map(|body| TrackedBody {
            inner: body,
            _in_flight: in_flight,
        })))
    }
}

/// A response body that keeps its request counted as in flight until it is dropped, so a
/// long streamed response is not taken for an idle connection.
pub(crate) struct TrackedBody {
    inner: ResponseBody,
    _in_flight: Option<InFlight>,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = <ResponseBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Tells connections to finish their requests and close; knows when all have.
pub(crate) struct Drain {
    stop: watch::Sender<bool>,
}

impl Drain {
    pub(crate) fn new() -> Drain {
        Drain {
            stop: watch::Sender::new(false),
        }
    }

    /// For one connection: [`drive`] holds it until the connection ends.
    pub(crate) fn watcher(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Connections being served.
    pub(crate) fn count(&self) -> usize {
        self.stop.receiver_count()
    }

    /// Asks every connection to close, then waits until all have.
    pub(crate) async fn shutdown(self) {
        self.stop.send_replace(true);
        self.stop.closed().await;
    }
}

/// How long a connection closed for idling may take to end once nothing is in flight. An
/// HTTP/2 close waits for the peer to answer a ping; a healthy peer does so within a round
/// trip, a slow client never does.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Serves `connection` to its end. `close` asks it to close gracefully (hyper's
/// `graceful_shutdown`: no new requests, those in flight finish); that happens when `stop`
/// turns true, or once no request has been in flight for `idle_timeout`. A closed connection
/// that has not ended after [`CLOSE_GRACE`] (at most `idle_timeout`) with nothing in flight
/// (a peer that never answers the GOAWAY's ping, a head that never completes) is dropped, so
/// neither a slow client nor a shutdown waits on it.
pub(crate) async fn drive<C, E>(
    connection: C,
    close: impl Fn(Pin<&mut C>),
    activity: Arc<Activity>,
    idle_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    tokio::pin!(connection);
    let mut closed = false;
    loop {
        let idle_after = if closed {
            idle_timeout.min(CLOSE_GRACE)
        } else {
            idle_timeout
        };
        let reason = tokio::select! {
            ended = connection.as_mut() => return ended,
            _ = stop.wait_for(|stop| *stop), if !closed => "shutting down",
            () = activity.idle_for(idle_after) => {
                if closed {
                    tracing::debug!("closed connection did not end; dropping it");
                    return Ok(());
                }
                "idle"
            }
        };
        tracing::debug!(reason, "closing a connection");
        close(connection.as_mut());
        // The grace counts from now, not from the last request.
        activity.touch();
        closed = true;
    }
}

/// Serves `io` with `service` (counted into a fresh [`Activity`]) through [`drive`].
pub(crate) async fn serve<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    idle_timeout: Duration,
    stop: watch::Receiver<bool>,
) -> Result<(), BoxError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<
            http::Request<Incoming>,
            Response = http::Response<ResponseBody>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Unpin + Send + 'static,
{
    let activity = Activity::new();
    let connection = builder
        .serve_connection(TokioIo::new(io), Tracked::new(service, activity.clone()))
        .into_owned();
    drive(
        connection,
        |connection| connection.graceful_shutdown(),
        activity,
        idle_timeout,
        stop,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn idle_waits_for_requests_in_flight() {
        let activity = Activity::new();
        let request = activity.begin();
        let idle = activity.idle_for(TIMEOUT);
        tokio::pin!(idle);
        assert!(
            tokio::time::timeout(TIMEOUT * 3, idle.as_mut())
                .await
                .is_err(),
            "idle while a request was in flight"
        );
        drop(request);
        let started = Instant::now();
        idle.await;
        assert!(started.elapsed() >= TIMEOUT);
    }

    #[tokio::test]
    async fn a_closed_idle_connection_that_never_ends_is_dropped() {
        let activity = Activity::new();
        let drain = Drain::new();
        let closed = std::sync::atomic::AtomicUsize::new(0);
        let started = Instant::now();
        let ended: Result<(), ()> = drive(
            std::future::pending::<Result<(), ()>>(),
            |_| {
                closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            },
            activity,
            TIMEOUT,
            drain.watcher(),
        )
        .await;
        assert!(ended.is_ok());
        assert_eq!(closed.into_inner(), 1);
        // Idle for the timeout, then the grace (capped at the timeout) to end.
        let took = started.elapsed();
        assert!(took >= TIMEOUT * 2 && took < TIMEOUT * 10, "{took:?}");
        assert_eq!(drain.count(), 0);
    }
}

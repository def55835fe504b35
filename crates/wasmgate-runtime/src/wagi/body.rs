//! The response body of a WAGI guest: whatever it writes to stdout after the head, streamed to
//! the client as it arrives, cut off with an error if it exceeds the output cap or if the guest
//! ends badly (trap, timeout) so the client can tell the response is incomplete.

use super::{Stop, Verdict};
use crate::executor::BoxError;
use bytes::Bytes;
use http_body::{Body, Frame};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, DuplexStream, ReadBuf};
use tokio::task::JoinHandle;

/// Read buffer sizes: most CGI bodies are small, so start small (a zeroed 64 KiB buffer per
/// request once cost a fifth of a hello request's CPU) and grow while reads fill it.
const FIRST_CHUNK: usize = 4 << 10;
const MAX_CHUNK: usize = 64 << 10;

pub struct CgiBody {
    reader: DuplexStream,
    leftover: Option<Bytes>,
    /// Output bytes the guest may still write.
    remaining: u64,
    scratch: Vec<u8>,
    /// The guest's task: its verdict decides whether EOF is a clean end.
    guest: JoinHandle<Verdict>,
    /// Stops the guest when its output passes the cap.
    stop: Arc<Stop>,
    reading: bool,
    done: bool,
}

impl CgiBody {
    /// `guest` resolves to the guest's verdict, which decides how the body ends.
    pub fn new(
        reader: DuplexStream,
        leftover: Bytes,
        remaining: u64,
        guest: JoinHandle<Verdict>,
        stop: Arc<Stop>,
    ) -> CgiBody {
        CgiBody {
            reader,
            leftover: Some(leftover),
            remaining,
            scratch: Vec::new(),
            guest,
            stop,
            reading: true,
            done: false,
        }
    }
}

impl Body for CgiBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(bytes) = this.leftover.take().filter(|b| !b.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        if this.reading {
            if this.scratch.is_empty() {
                this.scratch.resize(FIRST_CHUNK, 0);
            }
            let mut buf = ReadBuf::new(&mut this.scratch);
            match Pin::new(&mut this.reader).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Ready(Ok(())) if buf.filled().is_empty() => this.reading = false,
                Poll::Ready(Ok(())) => {
                    let n = buf.filled().len() as u64;
                    if n > this.remaining {
                        this.done = true;
                        this.stop.stop("output exceeded max_output");
                        return Poll::Ready(Some(Err("guest output exceeded max_output".into())));
                    }
                    this.remaining -= n;
                    let chunk = Bytes::copy_from_slice(buf.filled());
                    if chunk.len() == this.scratch.len() && this.scratch.len() < MAX_CHUNK {
                        let bigger = this.scratch.len() * 2;
                        this.scratch.resize(bigger, 0);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
            }
        }
        match Pin::new(&mut this.guest).poll(cx) {
            Poll::Pending => Poll::Pending,
            // A script may exit non-zero after writing a full response (an error page): the
            // response stands; only a trap, timeout or memory failure cuts it off.
            Poll::Ready(Ok(verdict)) if verdict.outcome == crate::outcome::Outcome::Ok => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(_) => {
                this.done = true;
                Poll::Ready(Some(Err("guest failed while writing its response".into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

//! A guest's stdout and stderr as WASI output streams that feed its invocation's
//! [`GuestOutput`], which logs each line as it is completed and counts and keeps them.
//!
//! Writes are never refused or blocked: the caps are [`GuestOutput`]'s, applied to what is
//! logged and kept, not to what the guest may write.

use bytes::Bytes;
use std::pin::Pin;
use std::task::{Context, Poll};
use wasmgate_telemetry::guest_output::{GuestOutput, Stream};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How much a guest may write in one call (WASI's `check-write`); any size would do, since
/// nothing is buffered beyond the line being written.
const WRITE_BUDGET: usize = 64 << 10;

/// One stream of one invocation's output.
#[derive(Clone)]
pub struct OutputPipe {
    output: GuestOutput,
    stream: Stream,
}

impl OutputPipe {
    pub fn new(output: &GuestOutput, stream: Stream) -> OutputPipe {
        OutputPipe {
            output: output.clone(),
            stream,
        }
    }
}

impl IsTerminal for OutputPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for OutputPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for OutputPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.output.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

impl tokio::io::AsyncWrite for OutputPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.output.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

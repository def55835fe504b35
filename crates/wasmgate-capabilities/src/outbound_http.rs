//! Outbound HTTP policy (placeholder while being written: everything denied).

use crate::stats::HostCalls;
use std::future::Future;
use std::sync::Arc;
use wasmgate_manifest::{Component, OutboundHttpConfig};
use wasmtime_wasi_http::WasiHttpHooks;

pub struct Policy;

impl Policy {
    pub fn new(_component: &Component, _config: &OutboundHttpConfig) -> Arc<Policy> {
        Arc::new(Policy)
    }

    pub fn deny_all() -> Arc<Policy> {
        Arc::new(Policy)
    }
}

pub struct Hooks {
    _policy: Arc<Policy>,
    _calls: HostCalls,
}

impl Hooks {
    pub fn new(policy: Arc<Policy>, calls: HostCalls) -> Hooks {
        Hooks {
            _policy: policy,
            _calls: calls,
        }
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
)>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        tracing::info!(uri = %request.uri(), "outbound HTTP request denied");
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

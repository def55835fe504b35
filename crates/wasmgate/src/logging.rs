//! Structured logs to stderr via `tracing`: JSON lines for machines, text for people.

use crate::cli::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// wasmtime-wasi wraps every WASI preview 1 call in an INFO-level span (`#[instrument]`); left
/// enabled, recording those spans cost a WAGI request a fifth of its CPU. They are quieted
/// unless `RUST_LOG` names these targets itself.
const QUIET_TARGETS: [&str; 2] = ["wasmtime_wasi", "wiggle"];

pub fn init(format: LogFormat) {
    let requested = std::env::var("RUST_LOG").unwrap_or_default();
    let mut directives = if requested.trim().is_empty() {
        "info".to_string()
    } else {
        requested.clone()
    };
    for target in QUIET_TARGETS {
        if !requested.contains(target) {
            directives.push_str(&format!(",{target}=warn"));
        }
    }
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("warning: ignoring RUST_LOG={requested:?}: {e}");
        EnvFilter::new("info,wasmtime_wasi=warn,wiggle=warn")
    });
    let json = is_json(format);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    } else {
        builder.init();
    }
}

/// Whether logs are JSON lines (`auto`: when stderr is not a terminal).
pub fn is_json(format: LogFormat) -> bool {
    match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    }
}

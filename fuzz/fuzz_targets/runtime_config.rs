//! Runtime config (`--runtime-config`) parsing on arbitrary UTF-8: never panics, and every error
//! names the file and, when it has one, a line inside the text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use wasmgate_manifest::RuntimeConfig;

fuzz_target!(|data: &[u8]| {
    // A runtime config is read with `read_to_string` like a manifest; the manifest target covers
    // what happens to bytes that are not UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/fuzz/runtime-config.toml");
    // `url_env` lookups: one name is set, every other is missing.
    let env = |name: &str| (name == "FUZZ_URL").then(|| "redis://127.0.0.1:6379".to_string());
    let Err(error) = RuntimeConfig::parse(text, path, env) else {
        return;
    };
    let shown = error.to_string();
    assert!(
        shown.contains("/fuzz/runtime-config.toml"),
        "error does not name the file: {shown}"
    );
    if let Some(line) = error.line() {
        assert!(
            shown.contains(&format!("/fuzz/runtime-config.toml:{line}:")),
            "error does not name line {line}: {shown}"
        );
        assert!(
            (1..=text.split('\n').count()).contains(&line),
            "line {line} outside the text: {shown}"
        );
    }
});

//! `wasmgate.toml` and WAGI `modules.toml` parsing on arbitrary input.
//!
//! Invariants: parsing never panics, and every error names the manifest file (and the line, when
//! it has one) so a user can find what to fix. Inputs are parsed as if read from
//! `fuzz/fixtures/app/`, where `app.wasm` and `static/` exist, so a well-formed input gets past
//! the path checks into the rest of validation.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use wasmgate_manifest::{Manifest, ManifestError};

fn fixture_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/app"))
}

/// Bytes that are not UTF-8 only reach the parser through a file (`Manifest::load`), so they
/// are written to one in a directory of this process's own.
fn scratch_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wasmgate-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        dir.join("wasmgate.toml")
    })
}

fn check_error(result: Result<Manifest, ManifestError>, path: &Path, text: &str) {
    let Err(error) = result else { return };
    let shown = error.to_string();
    let file = path.display().to_string();
    assert!(shown.contains(&file), "error does not name {file}: {shown}");
    if let Some(line) = error.line() {
        assert!(
            shown.contains(&format!("{file}:{line}:")),
            "error does not name line {line}: {shown}"
        );
        let lines = text.split('\n').count();
        assert!(
            (1..=lines).contains(&line),
            "line {line} outside the text's {lines} lines: {shown}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) => {
            // Detects the format from the content: a wasmgate.toml or a modules.toml.
            let path = fixture_dir().join("wasmgate.toml");
            check_error(Manifest::parse(text, &path), &path, text);
            // The same text read as a modules.toml by name, which every input reaches.
            let path = fixture_dir().join("modules.toml");
            check_error(Manifest::parse_wagi(text, &path), &path, text);
        }
        Err(_) => {
            let path = scratch_file();
            std::fs::write(path, data).expect("write the scratch manifest");
            let error = Manifest::load(path).expect_err("a manifest that is not UTF-8 must fail");
            assert!(error.line().is_none(), "not UTF-8 is a read error: {error}");
            check_error(Err(error), path, "");
        }
    }
});

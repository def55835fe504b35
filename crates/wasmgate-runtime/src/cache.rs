//! On-disk cache of compiled components, so a restart does not recompile.
//!
//! An entry is keyed by the SHA-256 of the component's bytes and a hash of the engine's
//! compilation settings (wasmtime version, target, tunables), so a changed component or a
//! different engine never finds a stale entry. Loading native code is trusted code execution,
//! so an entry is never taken on faith: it carries the SHA-256 of its own artifact, checked
//! before wasmtime sees it, and wasmtime's own header check runs after. Anything that fails
//! either check is deleted and rebuilt. Entries are written to a temporary file and renamed
//! into place, so a crash mid-write leaves no half entry.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

const MAGIC: &[u8; 8] = b"WGCACHE1";
const HEADER_LEN: usize = MAGIC.len() + 32;

/// What the cache did for one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheStatus {
    /// Loaded a verified entry.
    Hit,
    /// No entry: compiled and stored one.
    Miss,
    /// An entry existed but failed verification (corrupt, truncated, or from another engine);
    /// compiled anew and replaced it. The string says what was wrong.
    Rebuilt(String),
    /// Caching is off: compiled in memory only.
    Disabled,
}

/// A directory of compiled components. `None` directory means caching is off.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

/// `$XDG_CACHE_HOME/wasmgate`, else `$HOME/.cache/wasmgate`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("wasmgate"))
}

impl CompileCache {
    pub fn new(dir: Option<PathBuf>) -> CompileCache {
        CompileCache { dir }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Returns the compiled component or module for `wasm`, from the cache when a valid entry
    /// exists. Cache I/O problems are reported in the status and never fail the load.
    pub fn load_or_compile<T: Artifact>(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> wasmtime::Result<(T, CacheStatus)> {
        let Some(dir) = &self.dir else {
            return Ok((T::compile(engine, wasm)?, CacheStatus::Disabled));
        };
        let entry = dir.join(format!("{}-{}.cwasm", T::KIND, entry_key(engine, wasm)));
        let mut status = CacheStatus::Miss;
        match std::fs::read(&entry) {
            Ok(bytes) => match verified_artifact(&bytes) {
                Ok(artifact) => {
                    // SAFETY: `artifact` was produced by `Engine::precompile_component` of an
                    // engine with the same compatibility hash (it is in the key) and its
                    // SHA-256 matches the one written with it, so it is the bytes we wrote.
                    match unsafe { T::deserialize(engine, artifact) } {
                        Ok(component) => return Ok((component, CacheStatus::Hit)),
                        Err(e) => status = CacheStatus::Rebuilt(format!("{e:#}")),
                    }
                }
                Err(reason) => status = CacheStatus::Rebuilt(reason.to_string()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => status = CacheStatus::Rebuilt(format!("unreadable entry: {e}")),
        }
        let artifact = T::precompile(engine, wasm)?;
        if let Err(e) = write_entry(dir, &entry, &artifact) {
            tracing::warn!(path = %entry.display(), error = %e, "cannot write compile cache entry");
        }
        // SAFETY: produced just now by this engine.
        let compiled = unsafe { T::deserialize(engine, &artifact)? };
        Ok((compiled, status))
    }
}

/// What the cache can hold: components and core modules, in separate key spaces.
pub trait Artifact: Sized {
    const KIND: &'static str;
    fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self>;
    fn precompile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Vec<u8>>;
    /// # Safety
    /// `bytes` must come from [`Artifact::precompile`] of a compatible engine.
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self>;
}

impl Artifact for Component {
    const KIND: &'static str = "component";
    fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self> {
        Component::from_binary(engine, wasm)
    }
    fn precompile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Vec<u8>> {
        engine.precompile_component(wasm)
    }
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        // SAFETY: forwarded from the caller's contract.
        unsafe { Component::deserialize(engine, bytes) }
    }
}

impl Artifact for Module {
    const KIND: &'static str = "module";
    fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self> {
        Module::from_binary(engine, wasm)
    }
    fn precompile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Vec<u8>> {
        engine.precompile_module(wasm)
    }
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        // SAFETY: forwarded from the caller's contract.
        unsafe { Module::deserialize(engine, bytes) }
    }
}

fn entry_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut settings = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut settings);
    format!(
        "{}-{:016x}",
        hex::encode(Sha256::digest(wasm)),
        settings.finish()
    )
}

fn verified_artifact(bytes: &[u8]) -> Result<&[u8], &'static str> {
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err("entry has no valid header");
    }
    let (digest, artifact) = bytes[MAGIC.len()..].split_at(32);
    if Sha256::digest(artifact).as_slice() != digest {
        return Err("entry checksum mismatch (corrupt or truncated)");
    }
    Ok(artifact)
}

fn write_entry(dir: &Path, entry: &Path, artifact: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(MAGIC)?;
    file.write_all(&Sha256::digest(artifact))?;
    file.write_all(artifact)?;
    file.as_file().sync_data()?;
    file.persist(entry).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENT: &str = "(component (core module (func (export \"f\"))))";

    fn engine() -> Engine {
        Engine::default()
    }

    fn only_entry(dir: &Path) -> PathBuf {
        let entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries[0].clone()
    }

    #[test]
    fn second_load_hits() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(Some(dir.path().into()));
        let wasm = wat::parse_str(COMPONENT).unwrap();
        let (_, first) = cache
            .load_or_compile::<Component>(&engine(), &wasm)
            .unwrap();
        let (_, second) = cache
            .load_or_compile::<Component>(&engine(), &wasm)
            .unwrap();
        assert_eq!(first, CacheStatus::Miss);
        assert_eq!(second, CacheStatus::Hit);
    }

    #[test]
    fn a_corrupted_entry_is_detected_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(Some(dir.path().into()));
        let wasm = wat::parse_str(COMPONENT).unwrap();
        cache
            .load_or_compile::<Component>(&engine(), &wasm)
            .unwrap();
        let entry = only_entry(dir.path());
        let mut bytes = std::fs::read(&entry).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&entry, &bytes).unwrap();

        let (_, status) = cache
            .load_or_compile::<Component>(&engine(), &wasm)
            .unwrap();
        assert!(
            matches!(status, CacheStatus::Rebuilt(ref why) if why.contains("checksum")),
            "{status:?}"
        );
        let (_, status) = cache
            .load_or_compile::<Component>(&engine(), &wasm)
            .unwrap();
        assert_eq!(status, CacheStatus::Hit);
    }

    #[test]
    fn a_truncated_entry_is_detected_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(Some(dir.path().into()));
        let wasm = wat::parse_str(COMPONENT).unwrap();
        cache
            .load_or_compile::<Component>(&engine(), &wasm)
            .unwrap();
        std::fs::write(only_entry(dir.path()), b"WGCA").unwrap();
        let (_, status) = cache
            .load_or_compile::<Component>(&engine(), &wasm)
            .unwrap();
        assert!(matches!(status, CacheStatus::Rebuilt(_)), "{status:?}");
    }

    #[test]
    fn different_components_get_different_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(Some(dir.path().into()));
        let a = wat::parse_str(COMPONENT).unwrap();
        let b = wat::parse_str("(component (core module (func (export \"g\"))))").unwrap();
        cache.load_or_compile::<Component>(&engine(), &a).unwrap();
        let (_, status) = cache.load_or_compile::<Component>(&engine(), &b).unwrap();
        assert_eq!(status, CacheStatus::Miss);
    }

    #[test]
    fn modules_and_components_are_cached_apart() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(Some(dir.path().into()));
        let module = wat::parse_str("(module (func (export \"f\")))").unwrap();
        let (_, first) = cache.load_or_compile::<Module>(&engine(), &module).unwrap();
        let (_, second) = cache.load_or_compile::<Module>(&engine(), &module).unwrap();
        assert_eq!((first, second), (CacheStatus::Miss, CacheStatus::Hit));
        let name = only_entry(dir.path())
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("module-"), "{name}");
    }

    #[test]
    fn disabled_cache_writes_nothing() {
        let cache = CompileCache::new(None);
        let wasm = wat::parse_str(COMPONENT).unwrap();
        let (_, status) = cache
            .load_or_compile::<Component>(&engine(), &wasm)
            .unwrap();
        assert_eq!(status, CacheStatus::Disabled);
    }
}

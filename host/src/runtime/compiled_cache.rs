//! Compiled code cached on disk, so a restart does not recompile a plugin.
//!
//! An entry is `<dir>/<sha256 of the wasm>-<engine compatibility hash>.cwasm`, written to a
//! temporary file and renamed into place, so a reader never sees a torn entry. Only the host
//! writes into this directory; an entry that fails to deserialize is recompiled and replaced.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Result;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a component came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompileSource {
    /// Deserialized from the on-disk cache.
    Cache,
    /// Compiled now (and stored in the cache if there is one).
    Compiled,
}

pub(crate) fn entry_path(dir: &Path, engine: &Engine, wasm: &[u8]) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = hex::encode(Sha256::digest(wasm));
    dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
}

/// Compiles `wasm`, or loads it from `dir` when it was compiled before with the same engine
/// settings.
pub fn load(engine: &Engine, wasm: &[u8], dir: Option<&Path>) -> Result<(Component, CompileSource)> {
    let Some(dir) = dir else {
        return Ok((compile(engine, wasm)?, CompileSource::Compiled));
    };
    let path = entry_path(dir, engine, wasm);
    if path.exists() {
        match deserialize(engine, &path) {
            Ok(component) => return Ok((component, CompileSource::Cache)),
            Err(err) => tracing::warn!(path = %path.display(), %err, "discarding unusable compiled-code cache entry"),
        }
    }
    let component = compile(engine, wasm)?;
    if let Err(err) = store(&component, &path) {
        tracing::warn!(dir = %dir.display(), %err, "cannot write the compiled-code cache");
    }
    Ok((component, CompileSource::Compiled))
}

fn compile(engine: &Engine, wasm: &[u8]) -> Result<Component> {
    Component::new(engine, wasm).map_err(|e| anyhow::anyhow!("{e:?}"))
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> Result<Component> {
    // SAFETY: the file was produced by `Component::serialize` of this host (the directory is
    // the host's own and entries are renamed into place whole), and its name pins both the
    // wasm it came from and the engine settings it was compiled for; wasmtime also checks the
    // header against this engine before using it.
    unsafe { Component::deserialize_file(engine, path) }.map_err(|e| anyhow::anyhow!("{e:#}"))
}

fn store(component: &Component, path: &Path) -> Result<()> {
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    crate::base::write_replacing(path, &bytes)
}

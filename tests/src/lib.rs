//! Helpers shared by the integration tests: a runtime with a compiled-code cache shared by
//! every test process, and plugin loading shortcuts.

pub mod origin;
pub mod otlp;
pub mod pg;
pub mod proxy;
pub mod registry;
pub mod s3;

use storehost::capabilities::files::{DirGrant, DirMode};
use storehost::domain::Stores;
use storehost::runtime::{Plugin, PluginSpec, Runtime, RuntimeConfig};

/// A runtime whose compiled code is cached in a directory shared by every test process, so
/// each deserializes the built-in plugins instead of compiling them. Entries are keyed by the
/// wasm's hash and the engine's settings, so stale ones are never used.
pub fn runtime() -> Runtime {
    let cache = std::env::temp_dir().join("storehost-test-compiled-cache");
    Runtime::new(RuntimeConfig { compiled_cache: Some(cache), ..RuntimeConfig::default() }).expect("runtime")
}

/// The spec of a built-in plugin.
pub fn builtin(name: &str) -> PluginSpec {
    PluginSpec::new(name, format!("builtin:{name}"), storehost::builtin(name).expect("built-in plugin"))
}

/// The spec of the fs plugin on `dir` (preopened read-write as `/data`), without fsync.
pub fn fs_spec(dir: &std::path::Path) -> PluginSpec {
    let mut spec = scratch_dir_spec(builtin("fs"), dir);
    spec.config.insert("fsync".into(), "false".into());
    spec
}

/// `spec` with `dir` preopened read-write as `/data` (what the example plugins store in).
pub fn scratch_dir_spec(mut spec: PluginSpec, dir: &std::path::Path) -> PluginSpec {
    spec.dirs = vec![DirGrant { guest: "/data".into(), host: dir.to_path_buf(), mode: DirMode::Rw }];
    spec
}

pub async fn load(runtime: &Runtime, spec: PluginSpec) -> Plugin {
    Plugin::load(runtime, spec).await.expect("plugin loads")
}

pub async fn stores(runtime: &Runtime, spec: PluginSpec) -> Stores {
    storehost::origin::stores_of(&load(runtime, spec).await)
}

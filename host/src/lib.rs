//! storehost: a storage host whose origin stores are WebAssembly components.
//!
//! Layers, bottom up (each depends only on those below it): `base` (context, errors, names) ·
//! `domain` (types and traits) · `capabilities` (what plugins may import) · `runtime` (engine,
//! loading, pools, limits) · `origin` (the domains over plugins) · `metering` and `cache`
//! (decorators over any store) · `cluster` (the replication layer and the invalidation log) ·
//! `conformance` (the origin behaviour suite) · `app` (manifest and wiring) · `copy` (moving
//! data between origins) · `http` (the API).
//!
//! ```
//! use storehost::domain::{ArtifactStore, Ctx};
//! use storehost::origin::PluginArtifactStore;
//! use storehost::runtime::{Plugin, PluginSpec, Runtime, RuntimeConfig};
//!
//! # #[tokio::main] async fn main() -> anyhow::Result<()> {
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let spec = PluginSpec::new("memory", "builtin:memory", storehost::builtin("memory").unwrap());
//! let plugin = Plugin::load(&runtime, spec).await?;
//! let artifacts = PluginArtifactStore::new(plugin)?;
//! let ctx = Ctx::background();
//! artifacts.put(&ctx, "reports/today.txt", "hello".into(), Some("text/plain".into())).await?;
//! assert_eq!(&artifacts.get(&ctx, "reports/today.txt").await?.body[..], b"hello");
//! # Ok(()) }
//! ```

pub mod app;
pub mod base;
pub mod cache;
pub mod capabilities;
pub mod cluster;
pub mod conformance;
pub mod copy;
pub mod domain;
pub mod http;
pub mod metering;
pub mod origin;
pub mod runtime;

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The wasm of a built-in plugin (`builtin:NAME`).
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, wasm)| *wasm)
}

/// The path of a test component built with the workspace (`plugins/fixtures`).
#[doc(hidden)]
pub fn test_fixture(name: &str) -> Option<&'static str> {
    TEST_FIXTURES.iter().find(|(n, _)| *n == name).map(|(_, path)| *path)
}

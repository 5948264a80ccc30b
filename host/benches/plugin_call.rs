//! `cargo bench -p storehost --bench plugin_call`: what the wasm boundary costs.
//!
//! - a 4 KiB artifact get through the memory plugin vs the same domain logic (the plugin kit)
//!   compiled natively behind the same `ArtifactStore` trait object;
//! - a 4 KiB runner-artifact read through the fs plugin vs `std::fs::read` of the same file;
//! - a fresh plugin instance with the pooling allocator vs the on-demand allocator;
//! - loading a component from the compiled-code cache vs compiling it.

mod support;

use std::hint::black_box;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use storehost::capabilities::files::{DirGrant, DirMode};
use storehost::domain::{Artifact, ArtifactMeta, ArtifactPage, ArtifactStore, Ctx, Result, RunnerStore, StoreError};
use storehost::origin::{PluginArtifactStore, PluginRunnerStore};
use storehost::runtime::{Plugin, PluginSpec, Runtime, RuntimeConfig, compiled_cache};
use storehost_plugin_kit::bindings::exports::storehost::origin::artifacts::{ArtifactMeta as KitMeta, Guest};
use storehost_plugin_kit::{MemoryTables, Origin, StoreError as KitError};
use support::{Report, compare, time_async, time_sync};

/// The memory plugin's logic, native: the anchor for the boundary cost.
struct NativeMemory;

type Kit = Origin<MemoryTables>;

fn meta(m: KitMeta) -> ArtifactMeta {
    ArtifactMeta { key: m.key, size: m.size, content_type: m.content_type, sha256: m.sha256, created_at: m.created_at }
}

fn error(e: KitError) -> StoreError {
    match e {
        KitError::NotFound(m) => StoreError::NotFound(m),
        KitError::Conflict(m) => StoreError::Conflict(m),
        KitError::Invalid(m) => StoreError::Invalid(m),
        KitError::Unavailable(m) => StoreError::Unavailable(m),
        KitError::Internal(m) => StoreError::Internal(m),
    }
}

#[async_trait]
impl ArtifactStore for NativeMemory {
    async fn put(&self, _: &Ctx, key: &str, body: Bytes, content_type: Option<String>) -> Result<ArtifactMeta> {
        <Kit as Guest>::put(key.into(), body.to_vec(), content_type).map(meta).map_err(error)
    }
    async fn get(&self, _: &Ctx, key: &str) -> Result<Artifact> {
        let a = <Kit as Guest>::get(key.into()).map_err(error)?;
        Ok(Artifact::new(meta(a.meta), Bytes::from(a.body)))
    }
    async fn head(&self, _: &Ctx, key: &str) -> Result<ArtifactMeta> {
        <Kit as Guest>::head(key.into()).map(meta).map_err(error)
    }
    async fn list(&self, _: &Ctx, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ArtifactPage> {
        let p = <Kit as Guest>::list(prefix.into(), cursor.map(String::from), limit).map_err(error)?;
        Ok(ArtifactPage { items: p.items.into_iter().map(meta).collect(), next_cursor: p.next_cursor })
    }
    async fn get_url(&self, _: &Ctx, key: &str, expires: u32) -> Result<Option<String>> {
        <Kit as Guest>::get_url(key.into(), expires).map_err(error)
    }
    async fn delete(&self, _: &Ctx, key: &str) -> Result<()> {
        <Kit as Guest>::delete(key.into()).map_err(error)
    }
}

fn builtin(name: &str) -> PluginSpec {
    PluginSpec::new(name, format!("builtin:{name}"), storehost::builtin(name).unwrap())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let mut report = Report::new("plugin_call");
    let ctx = Ctx::background();
    let body = Bytes::from(vec![7u8; 4096]);

    // 1. A 4 KiB get: wasm memory plugin vs the same logic natively.
    let plugin = rt.block_on(Plugin::load(&runtime, builtin("memory"))).unwrap();
    let wasm: Arc<dyn ArtifactStore> = Arc::new(PluginArtifactStore::new(plugin).unwrap());
    let native: Arc<dyn ArtifactStore> = Arc::new(NativeMemory);
    for store in [&wasm, &native] {
        rt.block_on(store.put(&ctx, "bench/key", body.clone(), Some("application/octet-stream".into()))).unwrap();
    }
    let (ours, anchor) = compare(
        9,
        |n| {
            time_async(&rt, n, || async {
                black_box(wasm.get(&ctx, "bench/key").await.unwrap());
            })
        },
        |n| {
            time_async(&rt, n, || async {
                black_box(native.get(&ctx, "bench/key").await.unwrap());
            })
        },
    );
    report.add("artifact get 4 KiB, memory plugin", "wasm plugin", "native trait object", ours, anchor);
    println!("    added by the wasm boundary: {:.0} ns per get (target <= 2000 ns)", ours - anchor);

    // 2. A 4 KiB file read through the fs plugin vs std::fs::read.
    let dir = tempfile::tempdir().unwrap();
    let mut spec = builtin("fs");
    spec.dirs = vec![DirGrant { guest: "/data".into(), host: dir.path().into(), mode: DirMode::Rw }];
    spec.config.insert("fsync".into(), "false".into());
    let fs = PluginRunnerStore::new(rt.block_on(Plugin::load(&runtime, spec)).unwrap()).unwrap();
    rt.block_on(fs.write(&ctx, "r1", "file", body.clone())).unwrap();
    let path = dir.path().join("runs/r1/file=");
    assert_eq!(std::fs::read(&path).unwrap(), body, "the plugin's file layout changed");
    let (ours, anchor) = compare(
        9,
        |n| {
            time_async(&rt, n, || async {
                black_box(fs.read(&ctx, "r1", "file").await.unwrap());
            })
        },
        |n| {
            time_sync(n, || {
                black_box(std::fs::read(&path).unwrap());
            })
        },
    );
    report.add("file read 4 KiB", "fs plugin", "std::fs::read", ours, anchor);

    // 3. A fresh instance (instantiate + describe + init) of the memory plugin.
    let on_demand = Runtime::new(RuntimeConfig { pooling: false, ..RuntimeConfig::default() }).unwrap();
    let pooled = rt.block_on(Plugin::load(&runtime, builtin("memory"))).unwrap();
    let unpooled = rt.block_on(Plugin::load(&on_demand, builtin("memory"))).unwrap();
    let (ours, anchor) = compare(
        9,
        |n| time_async(&rt, n, || async { pooled.instantiate_once().await.unwrap() }),
        |n| time_async(&rt, n, || async { unpooled.instantiate_once().await.unwrap() }),
    );
    report.add("fresh instance, memory plugin", "pooling allocator", "on-demand allocator", ours, anchor);

    // 4. Loading the fs component: compiled-code cache hit vs compiling.
    let cache = tempfile::tempdir().unwrap();
    let wasm_bytes = storehost::builtin("fs").unwrap();
    compiled_cache::load(runtime.engine(), wasm_bytes, Some(cache.path())).unwrap();
    let (ours, anchor) = compare(
        5,
        |n| {
            time_sync(n, || {
                black_box(compiled_cache::load(runtime.engine(), wasm_bytes, Some(cache.path())).unwrap());
            })
        },
        |n| {
            time_sync(n, || {
                black_box(compiled_cache::load(runtime.engine(), wasm_bytes, None).unwrap());
            })
        },
    );
    report.add("load fs component", "compiled-code cache hit", "compile", ours, anchor);

    report.finish();
}

//! `cargo bench -p storehost --bench cached`: a cached artifact get (a memory hit through the
//! caching decorator, 4 KiB body) against a get of the same artifact from a bare
//! `moka::sync::Cache`, and against `std::fs::read` of the file the fs plugin keeps it in (what
//! the hit saves).

mod support;

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use storehost::cache::{CacheConfig, CachedArtifactStore};
use storehost::capabilities::files::{DirGrant, DirMode};
use storehost::domain::{Artifact, ArtifactOperation, ArtifactStore, Ctx};
use storehost::metering::{Metered, OriginMeter};
use storehost::origin::PluginArtifactStore;
use storehost::runtime::{Plugin, PluginSpec, Runtime, RuntimeConfig};
use support::{Report, compare, time_async, time_sync};

fn builtin(name: &str) -> PluginSpec {
    PluginSpec::new(name, format!("builtin:{name}"), storehost::builtin(name).unwrap())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let ctx = Ctx::background();
    let body = Bytes::from(vec![3u8; 4096]);
    let mut report = Report::new("cached");

    let dir = tempfile::tempdir().unwrap();
    let mut fs_spec = builtin("fs");
    fs_spec.dirs = vec![DirGrant { guest: "/data".into(), host: dir.path().into(), mode: DirMode::Rw }];
    fs_spec.config.insert("fsync".into(), "false".into());
    let fs: Arc<dyn ArtifactStore> = Arc::new(PluginArtifactStore::new(rt.block_on(Plugin::load(&runtime, fs_spec)).unwrap()).unwrap());
    let meter = Arc::new(OriginMeter::new());
    let cached = CachedArtifactStore::new(Arc::new(Metered::new(fs.clone(), meter.clone())), CacheConfig::default()).unwrap();
    rt.block_on(fs.put(&ctx, "bench/artifact", body.clone(), None)).unwrap();
    let artifact = rt.block_on(cached.get(&ctx, "bench/artifact")).unwrap();
    let moka: moka::sync::Cache<String, Artifact> = moka::sync::Cache::new(10_000);
    moka.insert("bench/artifact".to_string(), artifact);
    let file = dir.path().join("artifacts/bench/artifact=");
    // The plugin keeps the body after a header of its metadata: the anchor reads the same file.
    assert!(std::fs::read(&file).unwrap().ends_with(&body), "the fs plugin's file layout changed");

    let hit = |n| {
        time_async(&rt, n, || async {
            black_box(cached.get(&ctx, "bench/artifact").await.unwrap());
        })
    };
    let (ours, anchor) = compare(9, hit, |n| {
        time_sync(n, || {
            black_box(moka.get("bench/artifact").unwrap());
        })
    });
    report.add("artifact get 4 KiB", "cached (memory hit)", "moka::sync::Cache get", ours, anchor);
    let (ours, anchor) = compare(9, hit, |n| {
        time_sync(n, || {
            black_box(std::fs::read(&file).unwrap());
        })
    });
    report.add("artifact get 4 KiB", "cached (memory hit)", "std::fs::read of its file", ours, anchor);
    let origin_gets = meter.snapshot().calls_of(ArtifactOperation::Get);
    assert_eq!(origin_gets, 1, "every timed cached get was a memory hit");
    report.finish();
}

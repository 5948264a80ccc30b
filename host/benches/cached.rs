//! `cargo bench -p storehost --bench cached`: a cached artifact get (a memory hit) against the
//! same get through the fs plugin and through the memory plugin, 4 KiB bodies.

mod support;

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use storehost::cache::{CacheConfig, CachedArtifactStore};
use storehost::capabilities::files::{DirGrant, DirMode};
use storehost::domain::{ArtifactOperation, ArtifactStore, Ctx};
use storehost::metering::{Metered, OriginMeter};
use storehost::origin::PluginArtifactStore;
use storehost::runtime::{Plugin, PluginSpec, Runtime, RuntimeConfig};
use support::{Report, compare, time_async};

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
    let memory: Arc<dyn ArtifactStore> = Arc::new(PluginArtifactStore::new(rt.block_on(Plugin::load(&runtime, builtin("memory"))).unwrap()).unwrap());
    let meter = Arc::new(OriginMeter::new());
    let cached = CachedArtifactStore::new(Arc::new(Metered::new(fs.clone(), meter.clone())), CacheConfig::default()).unwrap();
    for store in [&fs, &memory] {
        rt.block_on(store.put(&ctx, "bench/artifact", body.clone(), None)).unwrap();
    }
    rt.block_on(cached.get(&ctx, "bench/artifact")).unwrap();

    let hit = |n| {
        time_async(&rt, n, || async {
            black_box(cached.get(&ctx, "bench/artifact").await.unwrap());
        })
    };
    let (ours, anchor) = compare(9, hit, |n| {
        time_async(&rt, n, || async {
            black_box(fs.get(&ctx, "bench/artifact").await.unwrap());
        })
    });
    report.add("artifact get 4 KiB", "cached (memory hit)", "fs plugin", ours, anchor);
    let (ours, anchor) = compare(9, hit, |n| {
        time_async(&rt, n, || async {
            black_box(memory.get(&ctx, "bench/artifact").await.unwrap());
        })
    });
    report.add("artifact get 4 KiB", "cached (memory hit)", "memory plugin", ours, anchor);
    let origin_gets = meter.snapshot().calls_of(ArtifactOperation::Get);
    assert_eq!(origin_gets, 1, "every timed cached get was a memory hit");
    report.finish();
}

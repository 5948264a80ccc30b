//! The caching decorators over the mock plugin, through the real wasm boundary: every
//! assertion on origin traffic reads the mock's own call counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use storehost::app::{DomainMetrics, render_prometheus};
use storehost::base::ErrorKind;
use storehost::cache::{CacheConfig, CacheMetrics, CachedArtifactStore, CachedProjectStore, CachedUiStore, CachedWorkspaceStore, DiskStoreConfig};
use storehost::domain::*;
use storehost::metering::{Metered, OriginMeter};
use storehost::origin::mock::{Fault, FaultRule, MockControl};
use storehost::origin::{PluginArtifactStore, PluginProjectArtifactStore, PluginProjectStore, PluginUiStore, PluginWorkspaceStore};
use storehost::runtime::{Plugin, PluginSpec};
use storehost_primitives::MockClock;
use storehost_tests::{builtin, load, runtime};

async fn mock(configure: impl FnOnce(&mut PluginSpec)) -> (Plugin, MockControl) {
    let mut spec = builtin("mock");
    spec.settings.instances = 1;
    configure(&mut spec);
    let plugin = load(&runtime(), spec).await;
    (plugin.clone(), MockControl::new(plugin).unwrap())
}

/// A cached artifact store over the plugin with a meter between them, as the server wires it.
struct Cached {
    store: CachedArtifactStore,
    meter: Arc<OriginMeter<ArtifactOperation>>,
}

impl std::ops::Deref for Cached {
    type Target = CachedArtifactStore;

    fn deref(&self) -> &CachedArtifactStore {
        &self.store
    }
}

impl Cached {
    fn metrics(&self) -> DomainMetrics {
        DomainMetrics::new(self.meter.snapshot(), Some(&self.store))
    }
}

fn artifacts_over(plugin: &Plugin, config: CacheConfig) -> Cached {
    let meter = Arc::new(OriginMeter::new());
    let origin = Arc::new(Metered::new(Arc::new(PluginArtifactStore::new(plugin.clone()).unwrap()), meter.clone()));
    Cached { store: CachedArtifactStore::new(origin, config).unwrap(), meter }
}

fn ctx() -> Ctx {
    Ctx::background()
}

async fn count(control: &MockControl, method: &str) -> u64 {
    control.call_count(method).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_get_is_a_hit() {
    let (plugin, control) = mock(|_| {}).await;
    let store = artifacts_over(&plugin, CacheConfig::default());
    PluginArtifactStore::new(plugin).unwrap().put(&ctx(), "k", Bytes::from_static(b"v"), None).await.unwrap();
    for _ in 0..3 {
        assert_eq!(&store.get(&ctx(), "k").await.unwrap().body[..], b"v");
    }
    assert_eq!(count(&control, "artifacts.get").await, 1);
    let m = store.metrics();
    let blob = m.cache("blob").unwrap().stats;
    assert_eq!((blob.hits, blob.misses), (2, 1));
    assert_eq!(m.origin.calls_of(ArtifactOperation::Get), 1);
    let mut text = String::new();
    render_prometheus(&mut text, &[m]);
    assert!(text.contains("storehost_cache_requests_total{domain=\"artifact\",cache=\"blob\",result=\"hit\"} 2"), "{text}");
    assert!(text.contains("storehost_origin_calls_total{domain=\"artifact\",operation=\"get\"} 1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_then_get_needs_no_origin_get() {
    let (plugin, control) = mock(|_| {}).await;
    let store = artifacts_over(&plugin, CacheConfig::default());
    store.put(&ctx(), "k", Bytes::from_static(b"new"), Some("text/plain".into())).await.unwrap();
    let got = store.get(&ctx(), "k").await.unwrap();
    assert_eq!((&got.body[..], got.meta.content_type.as_deref()), (&b"new"[..], Some("text/plain")));
    assert_eq!(count(&control, "artifacts.get").await, 0);
    assert_eq!(count(&control, "artifacts.put").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_invalidates_exactly_the_covering_lists_and_the_keys_urls() {
    let (plugin, control) = mock(|_| {}).await;
    let store = artifacts_over(&plugin, CacheConfig::default());
    for key in ["a/1", "a/b/2", "c/3"] {
        store.put(&ctx(), key, Bytes::from_static(b"x"), None).await.unwrap();
    }
    // Cache pages for four prefixes and URLs for two keys.
    let prefixes = ["", "a/", "a/b/", "c/"];
    for p in prefixes {
        store.list(&ctx(), p, None, 10).await.unwrap();
    }
    for key in ["a/b/2", "c/3"] {
        store.get_url(&ctx(), key, 600).await.unwrap();
    }
    control.reset_counts().await.unwrap();
    store.put(&ctx(), "a/b/new", Bytes::from_static(b"x"), None).await.unwrap();
    for p in prefixes {
        store.list(&ctx(), p, None, 10).await.unwrap();
    }
    // "", "a/" and "a/b/" hold the new key; "c/" does not.
    assert_eq!(count(&control, "artifacts.list").await, 3);
    let page = store.list(&ctx(), "a/b/", None, 10).await.unwrap();
    assert!(page.items.iter().any(|m| m.key == "a/b/new"), "the refreshed page misses the new key");
    store.put(&ctx(), "a/b/2", Bytes::from_static(b"y"), None).await.unwrap();
    store.get_url(&ctx(), "a/b/2", 600).await.unwrap();
    store.get_url(&ctx(), "c/3", 600).await.unwrap();
    assert_eq!(count(&control, "artifacts.get-url").await, 1, "only the written key's URL is reloaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_entries_expire_before_the_url_does() {
    let (plugin, control) = mock(|_| {}).await;
    let clock = MockClock::new();
    let store = artifacts_over(&plugin, CacheConfig::default().ttl(Duration::from_secs(3600)).clock(clock.clone()));
    store.put(&ctx(), "k", Bytes::from_static(b"x"), None).await.unwrap();
    store.get_url(&ctx(), "k", 60).await.unwrap();
    clock.advance(Duration::from_secs(29));
    store.get_url(&ctx(), "k", 60).await.unwrap();
    assert_eq!(count(&control, "artifacts.get-url").await, 1, "still cached at 29 s of a 60 s URL");
    clock.advance(Duration::from_secs(2));
    store.get_url(&ctx(), "k", 60).await.unwrap();
    assert_eq!(count(&control, "artifacts.get-url").await, 2, "a URL 31 s into its 60 s life must not be served from cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_save_caches_and_add_artifact_invalidates_only_that_project() {
    let (plugin, control) = mock(|_| {}).await;
    let origin: Arc<dyn ProjectStore> = Arc::new(PluginProjectStore::new(plugin.clone()).unwrap());
    let meta: Arc<dyn ProjectArtifactStore> = Arc::new(PluginProjectArtifactStore::new(plugin).unwrap());
    let store = CachedProjectStore::new(origin, meta, CacheConfig::default());
    let input = |id: &str| ProjectInput { id: id.into(), name: id.into(), state: "{}".into() };
    let saved = store.save(&ctx(), input("p1"), None).await.unwrap();
    assert_eq!(ProjectStore::get(&store, &ctx(), "p1").await.unwrap(), saved);
    assert_eq!(count(&control, "projects.get").await, 0, "save cached the returned project");
    let artifact = |name: &str| ProjectArtifact { name: name.into(), artifact_key: "k".into(), size: 1, kind: "log".into(), created_at: 1 };
    for p in ["p1", "p2"] {
        store.add(&ctx(), p, artifact("first")).await.unwrap();
        ProjectArtifactStore::list(&store, &ctx(), p).await.unwrap();
    }
    control.reset_counts().await.unwrap();
    store.add(&ctx(), "p1", artifact("second")).await.unwrap();
    let p1 = ProjectArtifactStore::list(&store, &ctx(), "p1").await.unwrap();
    ProjectArtifactStore::list(&store, &ctx(), "p2").await.unwrap();
    assert_eq!(p1.len(), 2);
    assert_eq!(count(&control, "project-artifacts.list").await, 1, "only p1's list was reloaded");
    // A stale expected version is a conflict, and the cache then drops its copy.
    let err = store.save(&ctx(), input("p1"), Some(7)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    ProjectStore::get(&store, &ctx(), "p1").await.unwrap();
    assert_eq!(count(&control, "projects.get").await, 1);
}

/// An origin that applies ops through the plugin but returns no document, or a given one.
struct Answering {
    inner: PluginUiStore,
    answer: parking_lot::Mutex<Option<Option<Arc<UiDocument>>>>,
}

#[async_trait]
impl UiStore for Answering {
    async fn get(&self, ctx: &Ctx, id: &str) -> Result<Arc<UiDocument>> {
        self.inner.get(ctx, id).await
    }
    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<DocumentPage> {
        self.inner.list(ctx, cursor, limit).await
    }
    async fn apply_ops(&self, ctx: &Ctx, id: &str, v: Option<u64>, ops: Vec<UiOp>) -> Result<Option<Arc<UiDocument>>> {
        let applied = self.inner.apply_ops(ctx, id, v, ops).await?;
        Ok(self.answer.lock().clone().unwrap_or(applied))
    }
}

fn insert(id: &str) -> UiOp {
    UiOp::InsertNode { node: UiNode { id: id.into(), parent: None, kind: "k".into(), props: vec![] }, index: 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_ops_caches_newer_documents_and_invalidates_on_none() {
    let (plugin, control) = mock(|_| {}).await;
    let origin = Arc::new(Answering { inner: PluginUiStore::new(plugin).unwrap(), answer: Default::default() });
    let store = CachedUiStore::new(origin.clone(), CacheConfig::default());
    let v1 = store.apply_ops(&ctx(), "d", None, vec![insert("a")]).await.unwrap().unwrap();
    assert_eq!(store.get(&ctx(), "d").await.unwrap(), v1);
    assert_eq!(count(&control, "ui-documents.get").await, 0, "apply-ops cached the returned document");
    let v2 = store.apply_ops(&ctx(), "d", None, vec![insert("b")]).await.unwrap().unwrap();
    assert_eq!(v2.version, 2);
    // An origin answering with an older document must not replace the newer cached one.
    *origin.answer.lock() = Some(Some(v1.clone()));
    store.apply_ops(&ctx(), "d", None, vec![insert("c")]).await.unwrap();
    assert_eq!(store.get(&ctx(), "d").await.unwrap().version, 2, "an older version replaced a newer one");
    // An origin that returns no document: the cache drops its copy.
    *origin.answer.lock() = Some(None);
    store.apply_ops(&ctx(), "d", None, vec![insert("e")]).await.unwrap();
    let fresh = store.get(&ctx(), "d").await.unwrap();
    assert_eq!(fresh.version, 4);
    assert_eq!(count(&control, "ui-documents.get").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_documents_are_shared_immutably() {
    let (plugin, _) = mock(|_| {}).await;
    let store = CachedUiStore::new(Arc::new(PluginUiStore::new(plugin).unwrap()), CacheConfig::default());
    store.apply_ops(&ctx(), "d", None, vec![insert("a")]).await.unwrap();
    let mut first = store.get(&ctx(), "d").await.unwrap();
    let second = store.get(&ctx(), "d").await.unwrap();
    assert!(Arc::ptr_eq(&first, &second), "both callers share one document, no copy");
    // The only way to change a document is to make one's own copy.
    assert!(Arc::get_mut(&mut first).is_none());
    Arc::make_mut(&mut first).nodes.clear();
    assert_eq!(store.get(&ctx(), "d").await.unwrap().nodes.len(), 1, "one caller's change reached another");
    assert_eq!(second.nodes.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_mutations_invalidate_exactly_what_they_change() {
    let (plugin, control) = mock(|_| {}).await;
    let store = CachedWorkspaceStore::new(Arc::new(PluginWorkspaceStore::new(plugin).unwrap()), CacheConfig::default());
    for ws in ["A", "B"] {
        store.create(&ctx(), WorkspaceInput { id: ws.into(), project_id: "p".into(), name: ws.into() }).await.unwrap();
        store.create_tab(&ctx(), ws, TabInput { id: "t1".into(), title: "t".into(), kind: "k".into() }).await.unwrap();
    }
    let warm = || async {
        for ws in ["A", "B"] {
            store.get(&ctx(), ws).await.unwrap();
            store.list_tabs(&ctx(), ws).await.unwrap();
            store.get_tab(&ctx(), ws, "t1").await.unwrap();
        }
    };
    let reads = || async {
        let mut out = Vec::new();
        for m in ["workspaces.get", "workspaces.list-tabs", "workspaces.get-tab"] {
            out.push(control.call_count(m).await.unwrap());
        }
        control.reset_counts().await.unwrap();
        out
    };
    warm().await;
    reads().await;

    store.create_tab(&ctx(), "A", TabInput { id: "t2".into(), title: "t".into(), kind: "k".into() }).await.unwrap();
    warm().await;
    assert_eq!(reads().await, [0, 1, 0], "create-tab: only A's tab list is reloaded");
    assert_eq!(store.get_tab(&ctx(), "A", "t2").await.unwrap().position, 1);

    let ws = store.select_tab(&ctx(), "A", "t2").await.unwrap();
    warm().await;
    assert_eq!(reads().await, [0, 0, 0], "select-tab: the returned workspace is cached, nothing else changes");
    assert_eq!(store.get(&ctx(), "A").await.unwrap(), ws);

    store.update_tab_run(&ctx(), "A", "t1", Some("run-9".into())).await.unwrap();
    warm().await;
    assert_eq!(reads().await, [0, 1, 0], "update-tab-run: the tab is cached, A's list is reloaded");
    assert_eq!(store.get_tab(&ctx(), "A", "t1").await.unwrap().run_id.as_deref(), Some("run-9"));
    let listed = store.list_tabs(&ctx(), "A").await.unwrap();
    assert_eq!(listed.iter().find(|t| t.id == "t1").unwrap().run_id.as_deref(), Some("run-9"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_misses_make_one_origin_call() {
    let (plugin, control) = mock(|s| {
        s.config.insert("fault.artifacts.get.hot".into(), "delay-ms=100".into());
    })
    .await;
    PluginArtifactStore::new(plugin.clone()).unwrap().put(&ctx(), "hot", Bytes::from_static(b"v"), None).await.unwrap();
    let store = Arc::new(artifacts_over(&plugin, CacheConfig::default()));
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get(&ctx(), "hot").await.unwrap() })
        })
        .collect();
    for call in calls {
        assert_eq!(&call.await.unwrap().body[..], b"v");
    }
    assert_eq!(count(&control, "artifacts.get").await, 1);
    assert_eq!(store.metrics().cache("blob").unwrap().coalescing.coalesced, 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_errors_are_not_cached() {
    let (plugin, control) = mock(|_| {}).await;
    let store = artifacts_over(&plugin, CacheConfig::default());
    store.put(&ctx(), "k", Bytes::from_static(b"v"), None).await.unwrap();
    store.invalidate_key("k");
    let down = StoreError::Unavailable("db down".into());
    control.add_fault(FaultRule::new("artifacts.get", Fault::Fail(down.clone())).times(1)).await.unwrap();
    assert_eq!(store.get(&ctx(), "k").await.unwrap_err(), down);
    assert_eq!(&store.get(&ctx(), "k").await.unwrap().body[..], b"v");
    assert_eq!(count(&control, "artifacts.get").await, 2);
    assert_eq!(store.metrics().origin.errors_of(ErrorKind::Unavailable), 1);
    // Nor is a missing key.
    assert_eq!(store.get(&ctx(), "missing").await.unwrap_err().kind(), ErrorKind::NotFound);
    store.put(&ctx(), "missing", Bytes::from_static(b"now"), None).await.unwrap();
    assert_eq!(&store.get(&ctx(), "missing").await.unwrap().body[..], b"now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapped_write_invalidates() {
    let (plugin, control) = mock(|_| {}).await;
    let store = artifacts_over(&plugin, CacheConfig::default());
    store.put(&ctx(), "k", Bytes::from_static(b"old"), None).await.unwrap();
    store.get(&ctx(), "k").await.unwrap();
    control.add_fault(FaultRule::new("artifacts.put", Fault::Trap).times(1)).await.unwrap();
    let err = store.put(&ctx(), "k", Bytes::from_static(b"new"), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PluginTrapped);
    // The cached "old" may no longer be what the origin holds: the next read goes to the origin
    // (a fresh mock instance, which has lost its data).
    assert_eq!(store.get(&ctx(), "k").await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(count(&control, "artifacts.get").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_deadline_reaches_the_origin_through_the_cache() {
    let (plugin, _) = mock(|s| {
        s.config.insert("fault.artifacts.get.slow".into(), "delay-ms=5000".into());
    })
    .await;
    let store = artifacts_over(&plugin, CacheConfig::default());
    let started = Instant::now();
    let err = store.get(&Ctx::with_timeout(Duration::from_millis(150)), "slow").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PluginTimeout);
    assert!(started.elapsed() < Duration::from_millis(400), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_hit_is_promoted_and_survives_a_restart() {
    let (plugin, control) = mock(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let config = || CacheConfig::default().disk(DiskStoreConfig::new(dir.path().join("artifact")));
    PluginArtifactStore::new(plugin.clone()).unwrap().put(&ctx(), "k", Bytes::from(vec![5u8; 4096]), None).await.unwrap();
    {
        let store = artifacts_over(&plugin, config());
        store.get(&ctx(), "k").await.unwrap();
        store.flush().unwrap();
    }
    assert_eq!(count(&control, "artifacts.get").await, 1);
    // A new cache over the same directory: served from disk, then from memory.
    let store = artifacts_over(&plugin, config());
    for _ in 0..2 {
        assert_eq!(store.get(&ctx(), "k").await.unwrap().body.len(), 4096);
    }
    assert_eq!(count(&control, "artifacts.get").await, 1, "the disk tier answered");
    let m = store.metrics();
    assert_eq!(m.disk.unwrap().hits, 1);
    assert_eq!(m.cache("blob").unwrap().stats.hits, 1);
}

/// An origin whose calls take a random time before and after reaching the plugin, so that a
/// load can finish after a write that started later.
struct Jittery {
    inner: PluginArtifactStore,
    seed: AtomicU64,
}

impl Jittery {
    async fn pause(&self) {
        // xorshift: cheap, deterministic per run.
        let mut x = self.seed.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        tokio::time::sleep(Duration::from_micros(x % 3000)).await;
    }
}

#[async_trait]
impl ArtifactStore for Jittery {
    async fn put(&self, ctx: &Ctx, key: &str, body: Bytes, ct: Option<String>) -> Result<ArtifactMeta> {
        self.pause().await;
        let r = self.inner.put(ctx, key, body, ct).await;
        self.pause().await;
        r
    }
    async fn get(&self, ctx: &Ctx, key: &str) -> Result<Artifact> {
        self.pause().await;
        let r = self.inner.get(ctx, key).await;
        self.pause().await;
        r
    }
    async fn head(&self, ctx: &Ctx, key: &str) -> Result<ArtifactMeta> {
        self.inner.head(ctx, key).await
    }
    async fn list(&self, ctx: &Ctx, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ArtifactPage> {
        self.inner.list(ctx, prefix, cursor, limit).await
    }
    async fn get_url(&self, ctx: &Ctx, key: &str, expires: u32) -> Result<Option<String>> {
        self.inner.get_url(ctx, key, expires).await
    }
    async fn delete(&self, ctx: &Ctx, key: &str) -> Result<()> {
        self.inner.delete(ctx, key).await
    }
}

/// Random reads and writes on a few keys, over an origin that serves calls concurrently with
/// random latency: a read never returns a value older than the last write acknowledged before
/// the read began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_never_go_back_behind_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = storehost_tests::fs_spec(dir.path());
    spec.settings.instances = 8;
    let plugin = load(&runtime(), spec).await;
    let origin = Arc::new(Jittery { inner: PluginArtifactStore::new(plugin).unwrap(), seed: AtomicU64::new(42) });
    let store = Arc::new(CachedArtifactStore::new(origin, CacheConfig::default()).unwrap());
    const KEYS: usize = 3;
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::new();
    // One writer per key keeps each key's versions in origin order.
    for k in 0..KEYS {
        let (store, acked) = (store.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for version in 1..=120u64 {
                store.put(&ctx(), &format!("k{k}"), Bytes::from(version.to_le_bytes().to_vec()), None).await.unwrap();
                acked[k].store(version, Ordering::SeqCst);
                // Evict, so that reads keep going to the origin while writes continue.
                store.invalidate_key(&format!("k{k}"));
            }
        }));
    }
    for r in 0..12u64 {
        let (store, acked) = (store.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..300u64 {
                let k = ((i * 7 + r) % KEYS as u64) as usize;
                let floor = acked[k].load(Ordering::SeqCst);
                match store.get(&ctx(), &format!("k{k}")).await {
                    Ok(a) => {
                        let seen = u64::from_le_bytes(a.body[..8].try_into().unwrap());
                        assert!(seen >= floor, "k{k}: read version {seen} after version {floor} was acknowledged");
                    }
                    Err(e) => assert!(floor == 0 && e.kind() == ErrorKind::NotFound, "k{k}: {e} after version {floor}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// An origin whose first get reads the plugin, then waits for `release` before answering.
struct Parked {
    inner: PluginArtifactStore,
    entered: tokio::sync::Notify,
    release: tokio::sync::Notify,
    parked_once: std::sync::atomic::AtomicBool,
}

impl Parked {
    fn new(plugin: &Plugin) -> Arc<Self> {
        Arc::new(Parked {
            inner: PluginArtifactStore::new(plugin.clone()).unwrap(),
            entered: Default::default(),
            release: Default::default(),
            parked_once: Default::default(),
        })
    }
}

#[async_trait]
impl ArtifactStore for Parked {
    async fn put(&self, ctx: &Ctx, key: &str, body: Bytes, ct: Option<String>) -> Result<ArtifactMeta> {
        self.inner.put(ctx, key, body, ct).await
    }
    async fn get(&self, ctx: &Ctx, key: &str) -> Result<Artifact> {
        let read = self.inner.get(ctx, key).await;
        if !self.parked_once.swap(true, Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        read
    }
    async fn head(&self, ctx: &Ctx, key: &str) -> Result<ArtifactMeta> {
        self.inner.head(ctx, key).await
    }
    async fn list(&self, ctx: &Ctx, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ArtifactPage> {
        self.inner.list(ctx, prefix, cursor, limit).await
    }
    async fn get_url(&self, ctx: &Ctx, key: &str, expires: u32) -> Result<Option<String>> {
        self.inner.get_url(ctx, key, expires).await
    }
    async fn delete(&self, ctx: &Ctx, key: &str) -> Result<()> {
        self.inner.delete(ctx, key).await
    }
}

async fn parked_store() -> (Arc<Parked>, Arc<CachedArtifactStore>, tokio::task::JoinHandle<Result<Artifact>>) {
    let plugin = load(&runtime(), builtin("memory")).await;
    let origin = Parked::new(&plugin);
    let store = Arc::new(CachedArtifactStore::new(origin.clone(), CacheConfig::default()).unwrap());
    origin.inner.put(&ctx(), "k", Bytes::from_static(b"old"), None).await.unwrap();
    // A load that has read "old" and is parked before answering.
    let slow = {
        let store = store.clone();
        tokio::spawn(async move { store.get(&ctx(), "k").await })
    };
    origin.entered.notified().await;
    (origin, store, slow)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_that_began_before_a_write_does_not_cache_over_it() {
    let (origin, store, slow) = parked_store().await;
    store.put(&ctx(), "k", Bytes::from_static(b"new"), None).await.unwrap();
    origin.release.notify_one();
    assert_eq!(&slow.await.unwrap().unwrap().body[..], b"old", "the overlapping read may see the old value");
    assert_eq!(&store.get(&ctx(), "k").await.unwrap().body[..], b"new", "a later read must not");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_a_write_does_not_join_an_older_load() {
    let (origin, store, slow) = parked_store().await;
    store.put(&ctx(), "k", Bytes::from_static(b"new"), None).await.unwrap();
    store.invalidate_key("k");
    let fresh = tokio::time::timeout(Duration::from_secs(2), store.get(&ctx(), "k")).await;
    origin.release.notify_one();
    let fresh = fresh.expect("the read waited on the load that began before the write");
    assert_eq!(&fresh.unwrap().body[..], b"new");
    slow.await.unwrap().unwrap();
}

//! The artifact cache decorator (seed: `internal/cache/artifact/cached_store.go`).
//!
//! Read-through `get` (memory, then disk, then origin), `list` and `get_url`; write-through
//! `put`, which caches the new blob and invalidates the list pages whose prefix the key falls
//! under and the key's URLs; `delete` invalidates all three. A URL is cached for half its
//! lifetime (at most the TTL), so a cached URL is never one about to expire.
//!
//! Streamed reads and writes (`open_read`, `open_write`) keep bodies up to `memory_max_body` in
//! the memory tier as `get` and `put` do; larger ones go through it untouched, and the disk
//! tier keeps them as files, serving ranges from them (see [`super::stream`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use storehost_primitives::DiskStore;

use super::peer::{PeerAnswer, PeerSource};
use super::stream::{self, CachingSink, OnWritten};
use super::{CacheConfig, CacheMetrics, Lookup, NamedCache, ReadThrough, Written, read_through, stale, weight_str, written};
use crate::domain::{Artifact, ArtifactMeta, ArtifactPage, ArtifactReader, ArtifactSink, ArtifactStore, ByteRange, Ctx, Result, Served, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ListKey {
    prefix: String,
    cursor: Option<String>,
    limit: u32,
}

pub struct CachedArtifactStore {
    origin: Arc<dyn ArtifactStore>,
    blobs: Arc<ReadThrough<String, Artifact>>,
    /// With peer fill: copies of bodies other replicas own, kept for the keys read often here.
    hot: Option<ReadThrough<String, Artifact>>,
    /// With peer fill: the ring of key owners (set once the host joined its cluster).
    peers: OnceLock<Arc<dyn PeerSource>>,
    lists: ReadThrough<ListKey, ArtifactPage>,
    urls: ReadThrough<(String, u32), Option<String>>,
    disk: Option<Arc<DiskStore>>,
    /// Set once a reload handed the disk tier to the store that replaces this one: from then on
    /// this one neither reads nor writes it.
    retired: AtomicBool,
    ttl: Duration,
    memory_max_body: u64,
}

fn meta_weight(m: &ArtifactMeta) -> usize {
    weight_str(&m.key) + weight_str(&m.sha256) + m.content_type.as_deref().map_or(0, weight_str) + 32
}

/// Disk tier record: `[u32 LE metadata length][metadata JSON][body]`.
fn encode(a: &Artifact) -> Vec<u8> {
    let mut out = stream::header(&a.meta);
    out.extend_from_slice(&a.body);
    out
}

fn decode(bytes: Bytes) -> Option<Artifact> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let meta: ArtifactMeta = serde_json::from_slice(bytes.get(4..4 + len)?).ok()?;
    let body = bytes.slice(4 + len..);
    (body.len() as u64 == meta.size).then_some(Artifact { meta, body, served: Served::Disk })
}

impl CachedArtifactStore {
    /// Wraps `origin`. Fails only when the disk tier cannot be opened.
    pub fn new(origin: Arc<dyn ArtifactStore>, config: CacheConfig) -> anyhow::Result<Self> {
        Self::with_disk(origin, config, None)
    }

    /// [`new`](Self::new), on `disk` (a tier handed over by [`hand_over_disk`](Self::hand_over_disk))
    /// instead of opening `config.disk`, when given.
    pub fn with_disk(origin: Arc<dyn ArtifactStore>, config: CacheConfig, disk: Option<Arc<DiskStore>>) -> anyhow::Result<Self> {
        let disk = match (disk, &config.disk) {
            (Some(disk), _) => Some(disk),
            (None, Some(disk)) => Some(Arc::new(DiskStore::open(disk.clone())?)),
            (None, None) => None,
        };
        let blob_weight = |k: &String, a: &Artifact| weight_str(k) + meta_weight(&a.meta) + a.body.len();
        let blob_share = if config.peer_fill { 0.7 } else { 0.8 };
        Ok(Self {
            origin,
            blobs: Arc::new(ReadThrough::new(&config.tier(blob_share), blob_weight)),
            hot: config.peer_fill.then(|| ReadThrough::new(&config.tier(0.1), blob_weight)),
            peers: OnceLock::new(),
            lists: ReadThrough::new(&config.tier(0.1), |k: &ListKey, p: &ArtifactPage| {
                weight_str(&k.prefix) + p.items.iter().map(meta_weight).sum::<usize>() + 64
            }),
            urls: ReadThrough::new(&config.tier(0.1), |k: &(String, u32), u: &Option<String>| {
                weight_str(&k.0) + u.as_deref().map_or(0, weight_str) + 16
            }),
            disk,
            retired: AtomicBool::new(false),
            ttl: config.ttl,
            memory_max_body: config.memory_max_body,
        })
    }

    /// Drops the cached blob of `key`, in memory and on disk.
    pub fn invalidate_key(&self, key: &str) {
        let key = key.to_string();
        self.blobs.invalidate_then(&key, || self.disk_delete(&key));
        if let Some(hot) = &self.hot {
            hot.invalidate(&key);
        }
        self.invalidate_urls(&key);
    }

    /// Drops every cached list page that could hold `key`.
    pub fn invalidate_lists_for(&self, key: &str) {
        self.lists.invalidate_if(|k, _| key.starts_with(&k.prefix));
    }

    /// Drops the cached URLs of `key`.
    pub fn invalidate_urls(&self, key: &str) {
        self.urls.invalidate_if(|(k, _), _| k == key);
    }

    /// Drops everything cached under `prefix` (blobs, lists and URLs).
    pub fn invalidate_prefix(&self, prefix: &str) {
        self.blobs.invalidate_if(|k, _| k.starts_with(prefix));
        if let Some(hot) = &self.hot {
            hot.invalidate_if(|k, _| k.starts_with(prefix));
        }
        self.lists.invalidate_if(|k, _| k.prefix.starts_with(prefix) || prefix.starts_with(&k.prefix));
        self.urls.invalidate_if(|(k, _), _| k.starts_with(prefix));
        if let Some(disk) = self.disk_tier() {
            for key in disk.keys().into_iter().filter(|k| k.starts_with(prefix)) {
                let _ = disk.delete(&key);
            }
        }
    }

    /// Drops everything cached, in memory and on disk.
    pub fn clear(&self) {
        self.clear_memory();
        if let Some(disk) = self.disk_tier() {
            clear_disk(disk);
        }
    }

    /// Drops everything the memory tier holds (loads in flight are kept from filling it).
    fn clear_memory(&self) {
        self.blobs.invalidate_if(|_, _| true);
        if let Some(hot) = &self.hot {
            hot.invalidate_if(|_, _| true);
        }
        self.lists.invalidate_if(|_, _| true);
        self.urls.invalidate_if(|_, _| true);
    }

    /// For a store replacing this one over another origin (a reload): this store's disk tier,
    /// emptied, if it is the one `wanted` describes. This store stops using it (first, so that
    /// no load of the old origin still running can fill it) and drops what it holds in memory.
    pub fn hand_over_disk(&self, wanted: Option<&storehost_primitives::DiskStoreConfig>) -> Option<Arc<DiskStore>> {
        let disk = self.disk.as_ref().filter(|d| wanted.is_some_and(|w| w.dir == d.dir()))?;
        self.retired.store(true, Ordering::Release);
        self.clear_memory();
        clear_disk(disk);
        Some(disk.clone())
    }

    /// The disk tier, unless it was handed over.
    fn disk_tier(&self) -> Option<&Arc<DiskStore>> {
        self.disk.as_ref().filter(|_| !self.retired.load(Ordering::Acquire))
    }

    /// The disk tier's directory, if there is one.
    pub fn disk_dir(&self) -> Option<&std::path::Path> {
        self.disk.as_deref().map(DiskStore::dir)
    }

    fn disk_get(&self, key: &str) -> Option<Artifact> {
        let disk = self.disk_tier()?;
        match disk.get(key) {
            Ok(Some(bytes)) => decode(bytes),
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(%err, key, "disk cache read failed");
                None
            }
        }
    }

    fn disk_put(&self, artifact: &Artifact) {
        if let Some(disk) = self.disk_tier()
            && let Err(err) = disk.put(&artifact.meta.key, &encode(artifact))
        {
            tracing::warn!(%err, key = %artifact.meta.key, "disk cache write failed");
        }
    }

    fn disk_delete(&self, key: &str) {
        if let Some(disk) = self.disk_tier()
            && let Err(err) = disk.delete(key)
        {
            tracing::warn!(%err, key, "disk cache delete failed");
        }
    }

    /// Drops everything cached about `key`: its blob (in memory and on disk), its URLs, and the
    /// lists that could hold it. What a write of `key` invalidates, here or on another host.
    pub fn forget(&self, key: &str) {
        self.invalidate_key(key);
        self.invalidate_lists_for(key);
    }

    /// Fills from the ring of key owners (peer fill) from now on, if this cache was made for it.
    pub fn set_peers(&self, peers: Arc<dyn PeerSource>) {
        if self.hot.is_some() {
            let _ = self.peers.set(peers);
        }
    }

    /// The member to ask for `key`: with peer fill, for a read no member asked for, when
    /// another member owns `key` and can be asked.
    fn owner(&self, ctx: &Ctx, key: &str) -> Option<(&dyn PeerSource, Arc<str>)> {
        let peers = self.peers.get().filter(|_| !ctx.is_from_peer())?;
        Some((peers.as_ref(), peers.ask(key)?))
    }

    /// Whether a write of `key` is kept in this host's tiers: unless another member owns it.
    fn keeps(&self, key: &str) -> bool {
        self.peers.get().is_none_or(|peers| !peers.owned_elsewhere(key))
    }

    /// A read of `key`, which `owner` owns: a hot copy; else the owner's answer (one in
    /// a sample, see [`PeerSource::admit`] kept as a hot copy); else, when the owner
    /// could not answer, the origin's, which this host does not cache.
    async fn read_unowned(
        &self,
        ctx: &Ctx,
        peers: &dyn PeerSource,
        owner: &Arc<str>,
        key: &str,
        range: ByteRange,
        lookup: &Lookup,
    ) -> Result<ArtifactReader> {
        let hot = self.hot.as_ref().expect("peers are set only with a hot tier");
        let owned = key.to_string();
        if let Some(artifact) = hot.get(&owned) {
            lookup.found("memory", "hit");
            return Ok(ArtifactReader::sliced(Artifact { served: Served::Memory, ..artifact }, range));
        }
        let ticket = hot.ticket(&owned);
        match lookup.around(peers.read(ctx, owner, key, range, self.memory_max_body)).await {
            PeerAnswer::Whole(artifact) => {
                lookup.found("peer", "hit");
                if peers.admit() {
                    hot.complete(ticket, owned, Some(artifact.clone()), || {});
                }
                Ok(ArtifactReader::sliced(artifact, range))
            }
            PeerAnswer::Read(reader) => {
                lookup.found("peer", "hit");
                Ok(reader)
            }
            PeerAnswer::NotFound => {
                lookup.found("peer", "miss");
                Err(StoreError::NotFound(format!("no artifact {key:?}")))
            }
            PeerAnswer::Failed => {
                lookup.found("origin", "miss");
                lookup.around(self.origin.open_read(ctx, key, range)).await
            }
        }
    }

    /// `get`, recording in `lookup` which tier answered: memory, disk, then the origin (or,
    /// with peer fill, the key's owner).
    async fn get_looked_up(&self, ctx: &Ctx, key: &str, lookup: &Lookup) -> Result<Artifact> {
        let owned = key.to_string();
        if let Some(artifact) = self.blobs.get(&owned) {
            lookup.found("memory", "hit");
            return Ok(Artifact { served: Served::Memory, ..artifact });
        }
        if let Some((peers, owner)) = self.owner(ctx, key) {
            let reader = self.read_unowned(ctx, peers, &owner, key, ByteRange::ALL, lookup).await?;
            let served = reader.served;
            return Ok(Artifact { served, ..stream::gather(reader).await? });
        }
        let (from_disk, loaded) = (AtomicBool::new(false), AtomicBool::new(false));
        let load = async {
            loaded.store(true, Ordering::Relaxed);
            if let Some(artifact) = self.disk_get(key) {
                from_disk.store(true, Ordering::Relaxed);
                return Ok(artifact);
            }
            self.origin.get(ctx, key).await
        };
        let filled = self.blobs.fill(&owned, None, load, |artifact| {
            if !from_disk.load(Ordering::Relaxed) {
                self.disk_put(artifact)
            }
        });
        match lookup.around(filled).await {
            Ok(artifact) => {
                lookup.found(
                    if from_disk.load(Ordering::Relaxed) { "disk" } else { "origin" },
                    match (loaded.load(Ordering::Relaxed), from_disk.load(Ordering::Relaxed)) {
                        (false, _) => "coalesced",
                        (true, true) => "hit",
                        (true, false) => "miss",
                    },
                );
                Ok(artifact)
            }
            Err(e) => match stale(&self.blobs, ctx, &owned, &e) {
                Some(artifact) => {
                    lookup.found("memory", "stale");
                    Ok(artifact)
                }
                None => {
                    lookup.failed();
                    Err(e)
                }
            },
        }
    }

    /// `open_read` without the stale answer: memory, disk, then the origin, recording in
    /// `lookup` which answered.
    async fn open_read_fresh(&self, ctx: &Ctx, key: &str, range: ByteRange, lookup: &Lookup) -> Result<ArtifactReader> {
        let owned = key.to_string();
        if let Some(artifact) = self.blobs.get(&owned) {
            lookup.found("memory", "hit");
            return Ok(ArtifactReader::sliced(Artifact { served: Served::Memory, ..artifact }, range));
        }
        if let Some((peers, owner)) = self.owner(ctx, key) {
            return self.read_unowned(ctx, peers, &owner, key, range, lookup).await;
        }
        if let Some(disk) = self.disk_tier()
            && let Some(entry) = stream::open_entry(disk, key)
        {
            if entry.meta.size <= self.memory_max_body {
                return Ok(ArtifactReader::sliced(self.get_looked_up(ctx, key, lookup).await?, range));
            }
            lookup.found("disk", "hit");
            return Ok(stream::read_entry(disk.clone(), entry, range));
        }
        lookup.found("origin", "miss");
        if !range.is_all() {
            return lookup.around(self.origin.open_read(ctx, key, range)).await;
        }
        // The whole body: gathered into the memory tier when small, in one coalesced load.
        let large = parking_lot::Mutex::new(None);
        let loaded = AtomicBool::new(false);
        let ticket = self.blobs.ticket(&owned);
        let load = async {
            loaded.store(true, Ordering::Relaxed);
            let reader = self.origin.open_read(ctx, key, range).await?;
            if reader.meta.size <= self.memory_max_body {
                return stream::gather(reader).await;
            }
            *large.lock() = Some(reader);
            Err(StoreError::Unavailable(LARGE.into()))
        };
        let filled = lookup.around(self.blobs.fill(&owned, None, load, |artifact| self.disk_put(artifact))).await;
        if !loaded.load(Ordering::Relaxed) {
            lookup.found("origin", "coalesced");
        }
        let reader = match filled {
            Ok(artifact) => return Ok(ArtifactReader::sliced(artifact, range)),
            Err(_) if large.lock().is_some() => large.into_inner().expect("checked"),
            // A coalesced caller of a load that found the body large: read it itself.
            Err(StoreError::Unavailable(why)) if why == LARGE => lookup.around(self.origin.open_read(ctx, key, range)).await?,
            Err(e) => return Err(e),
        };
        Ok(match self.disk_tier() {
            Some(disk) => stream::tee_to_disk(disk, self.blobs.clone(), ticket, reader),
            None => reader,
        })
    }
}

#[async_trait]
impl ArtifactStore for CachedArtifactStore {
    async fn put(&self, ctx: &Ctx, key: &str, body: Bytes, content_type: Option<String>) -> Result<ArtifactMeta> {
        let result = self.origin.put(ctx, key, body.clone(), content_type).await;
        match written(&result) {
            // Another member owns the key: what this host held of it goes, and the owner's entry
            // goes with the write's invalidation.
            Written::Done(_) if !self.keeps(key) => self.forget(key),
            Written::Done(meta) => {
                let artifact = Artifact::new(meta.clone(), body);
                self.blobs.store_then(key.to_string(), artifact.clone(), || self.disk_put(&artifact));
                self.invalidate_lists_for(key);
                self.invalidate_urls(key);
            }
            Written::Stale => self.forget(key),
            Written::Refused => {}
        }
        result
    }

    /// Memory, then disk, then the origin; the artifact says which answered.
    async fn get(&self, ctx: &Ctx, key: &str) -> Result<Artifact> {
        self.get_looked_up(ctx, key, &Lookup::new("artifact", "blob")).await
    }

    async fn head(&self, ctx: &Ctx, key: &str) -> Result<ArtifactMeta> {
        let lookup = Lookup::new("artifact", "blob");
        let owned = key.to_string();
        if let Some(artifact) = self.blobs.get(&owned).or_else(|| self.hot.as_ref()?.get(&owned)) {
            lookup.found("memory", "hit");
            return Ok(artifact.meta);
        }
        match lookup.around(self.origin.head(ctx, key)).await {
            Err(e) => match stale(&self.blobs, ctx, &owned, &e) {
                Some(artifact) => {
                    lookup.found("memory", "stale");
                    Ok(artifact.meta)
                }
                None => {
                    lookup.failed();
                    Err(e)
                }
            },
            result => {
                lookup.found("origin", "miss");
                result
            }
        }
    }

    async fn list(&self, ctx: &Ctx, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ArtifactPage> {
        let key = ListKey { prefix: prefix.to_string(), cursor: cursor.map(String::from), limit };
        read_through(&self.lists, Lookup::new("artifact", "list"), ctx, &key, self.origin.list(ctx, prefix, cursor, limit)).await
    }

    async fn get_url(&self, ctx: &Ctx, key: &str, expires_in_secs: u32) -> Result<Option<String>> {
        let ttl = Duration::from_secs(u64::from(expires_in_secs) / 2).min(self.ttl);
        if ttl.is_zero() {
            return self.origin.get_url(ctx, key, expires_in_secs).await;
        }
        let load = self.origin.get_url(ctx, key, expires_in_secs);
        self.urls.get_or_load_with_ttl(&(key.to_string(), expires_in_secs), Some(ttl), load).await
    }

    async fn delete(&self, ctx: &Ctx, key: &str) -> Result<()> {
        let result = self.origin.delete(ctx, key).await;
        if !matches!(written(&result), Written::Refused) {
            self.forget(key);
        }
        result
    }

    /// Memory, then disk, then the origin. A whole small body from the origin fills the tiers
    /// as `get` does (coalesced); a large whole one is teed into the disk tier; a range of one
    /// not cached goes straight to the origin.
    async fn open_read(&self, ctx: &Ctx, key: &str, range: ByteRange) -> Result<ArtifactReader> {
        let lookup = Lookup::new("artifact", "blob");
        match self.open_read_fresh(ctx, key, range, &lookup).await {
            Err(e) => match stale(&self.blobs, ctx, &key.to_string(), &e) {
                Some(artifact) => {
                    lookup.found("memory", "stale");
                    Ok(ArtifactReader::sliced(artifact, range))
                }
                None => {
                    lookup.failed();
                    Err(e)
                }
            },
            result => result,
        }
    }

    async fn open_write(self: Arc<Self>, ctx: &Ctx, key: &str, content_type: Option<String>, size_hint: Option<u64>) -> Result<ArtifactSink> {
        let inner = self.origin.clone().open_write(ctx, key, content_type, size_hint).await?;
        let small = size_hint.is_none_or(|size| size <= self.memory_max_body).then(bytes::BytesMut::new);
        let max = self.memory_max_body;
        Ok(Box::new(CachingSink { inner, cache: self, key: key.to_string(), small, max }))
    }

    fn streams(&self) -> bool {
        self.origin.streams()
    }

    fn read_call(&self) -> &'static str {
        self.origin.read_call()
    }

    fn max_key_bytes(&self) -> usize {
        self.origin.max_key_bytes()
    }
}

fn clear_disk(disk: &DiskStore) {
    if let Err(err) = disk.clear() {
        tracing::warn!(%err, "disk cache clear failed");
    }
}

/// What a load that found a large body reports to the callers coalesced with it (which then
/// read the origin themselves).
const LARGE: &str = "the body is too large for the memory tier";

impl OnWritten for CachedArtifactStore {
    /// As `put`: a small body is cached, a large one only invalidates what was cached.
    fn written(&self, key: &str, result: &Result<ArtifactMeta>, body: Option<Bytes>) {
        match written(result) {
            Written::Done(meta) => {
                match body.filter(|b| b.len() as u64 == meta.size && self.keeps(key)) {
                    Some(body) => {
                        let artifact = Artifact::new(meta.clone(), body);
                        self.blobs.store_then(key.to_string(), artifact.clone(), || self.disk_put(&artifact));
                    }
                    None => self.invalidate_key(key),
                }
                self.invalidate_lists_for(key);
                self.invalidate_urls(key);
            }
            Written::Stale => self.forget(key),
            Written::Refused => {}
        }
    }
}

impl CacheMetrics for CachedArtifactStore {
    fn caches(&self) -> Vec<NamedCache> {
        let mut caches = vec![NamedCache::of("blob", &self.blobs), NamedCache::of("list", &self.lists), NamedCache::of("url", &self.urls)];
        caches.extend(self.hot.as_ref().map(|hot| NamedCache::of("hot", hot)));
        caches
    }

    fn disk(&self) -> Option<storehost_primitives::DiskStats> {
        self.disk.as_deref().map(DiskStore::stats)
    }

    /// Flushes the disk tier's index.
    fn flush(&self) -> anyhow::Result<()> {
        if let Some(disk) = &self.disk {
            disk.flush()?;
        }
        Ok(())
    }
}

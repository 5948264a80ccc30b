//! Caching decorators: one `Cached*Store` per domain, implementing the same trait as the store
//! it wraps, so services are given the cached store and never the origin (the seed's "Unified
//! Domain Pattern"). They cache and nothing else: the origin calls under them are metered by
//! `crate::metering`, which the wiring puts between a cache and its origin.
//!
//! Layers, outermost first: memory tier (LRU+TTL, coalesced loads, generation-guarded fills) →
//! disk tier (artifact blobs, when configured; a disk hit is promoted to memory) → the wrapped
//! store. Failures are never cached; what a write's result means for the cache is decided in
//! one place ([`written`]). Invalidation is a method of each store (by key, by prefix, by
//! project, by workspace), so invalidation events from other hosts can call the same methods.

pub mod artifact;
mod invalidation;
pub mod peer;
pub mod project;
mod stream;
pub mod ui;
pub mod workspace;

use std::time::Duration;

pub use artifact::CachedArtifactStore;
pub use invalidation::{Caches, Invalidation};
pub use peer::{PeerAnswer, PeerSource};
pub use project::CachedProjectStore;
pub use storehost_primitives::{CacheStats, CoalescerStats, DiskStats, DiskStoreConfig, FsyncPolicy, SharedClock, TierConfig};
pub use ui::CachedUiStore;
pub use workspace::CachedWorkspaceStore;

use crate::base::{Ctx, ErrorKind, Result, StoreError};

/// The memory tier of a cached store.
pub(crate) type ReadThrough<K, V> = storehost_primitives::ReadThrough<K, V, StoreError>;

/// Cache settings of one domain.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// Time to live of cached entries.
    pub ttl: Duration,
    /// Memory budget of the domain's caches together.
    pub max_bytes: u64,
    /// Entry bound of each cache, if any.
    pub max_entries: Option<u64>,
    /// The disk tier (artifact blobs only).
    pub disk: Option<DiskStoreConfig>,
    /// Bodies larger than this go through without entering the memory tier (artifact blobs
    /// only); the disk tier, if any, keeps them as files.
    pub memory_max_body: u64,
    /// The clock TTLs are measured with (the system clock by default).
    pub clock: Option<SharedClock>,
    /// How long past its TTL an entry may still answer a read whose origin is unavailable or
    /// timed out (`None`: never). Such entries stay inside the memory budget and go first.
    pub stale_if_error: Option<Duration>,
    /// The replicas share one cache (artifact blobs only): a tenth of the budget holds hot
    /// copies of keys other replicas own.
    pub peer_fill: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(600),
            max_bytes: 64 << 20,
            max_entries: None,
            disk: None,
            memory_max_body: Self::DEFAULT_MEMORY_MAX_BODY,
            clock: None,
            stale_if_error: None,
            peer_fill: false,
        }
    }
}

impl CacheConfig {
    /// The default largest body the memory tier keeps.
    pub const DEFAULT_MEMORY_MAX_BODY: u64 = 8 << 20;

    pub fn memory_max_body(mut self, max: u64) -> Self {
        self.memory_max_body = max;
        self
    }

    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    pub fn disk(mut self, disk: DiskStoreConfig) -> Self {
        self.disk = Some(disk);
        self
    }

    pub fn stale_if_error(mut self, keep: Duration) -> Self {
        self.stale_if_error = Some(keep);
        self
    }

    pub fn clock(mut self, clock: impl storehost_primitives::Clock + 'static) -> Self {
        self.clock = Some(SharedClock(std::sync::Arc::new(clock)));
        self
    }

    /// The settings of one of the domain's caches, given its share of the memory budget.
    pub(crate) fn tier(&self, share: f64) -> TierConfig {
        TierConfig {
            ttl: self.ttl,
            max_bytes: ((self.max_bytes as f64) * share).max(1.0) as u64,
            max_entries: self.max_entries,
            clock: self.clock.clone(),
            keep_stale: self.stale_if_error,
        }
    }
}

/// One cache of a domain, by name (`blob`, `list`, `project`, …), with its counters.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedCache {
    pub name: &'static str,
    pub stats: CacheStats,
    pub coalescing: CoalescerStats,
}

impl NamedCache {
    pub(crate) fn of<K, V>(name: &'static str, tier: &ReadThrough<K, V>) -> Self
    where
        K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        Self { name, stats: tier.stats(), coalescing: tier.coalescing() }
    }
}

/// What a cached store reports of its caches.
pub trait CacheMetrics: Send + Sync {
    /// Its memory caches.
    fn caches(&self) -> Vec<NamedCache>;
    /// Its disk tier, if it has one.
    fn disk(&self) -> Option<DiskStats> {
        None
    }
    /// Persists what it keeps on disk (at shutdown).
    fn flush(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// What a write's result means for what caches hold of what the write touched (here, and on
/// other hosts sharing the origin).
#[derive(Debug)]
pub enum Written<'a, T> {
    /// The origin acknowledged the write: cache what it returned.
    Done(&'a T),
    /// The write may have happened (its outcome is unknown), or it lost to another writer (a
    /// conflict): what is cached may be older than the origin, so drop it.
    Stale,
    /// The origin refused the write and nothing changed: what is cached stays.
    Refused,
}

/// The one rule for every cached write: see [`Written`].
pub fn written<T>(result: &Result<T>) -> Written<'_, T> {
    match result {
        Ok(value) => Written::Done(value),
        Err(e) if e.kind() == ErrorKind::Conflict || e.outcome_unknown() => Written::Stale,
        Err(_) => Written::Refused,
    }
}

/// A cache lookup, traced (with traces on): the domain and the cache looked in, then what
/// answered (`storehost.cache.tier`: `memory`, `disk` or `origin`) and how
/// (`storehost.cache.result`: `hit`, `miss`, `stale`, or `coalesced`: a miss answered by another
/// caller's load). A lookup that goes past the memory tier is a span of its own, the origin call
/// of a miss its child; a memory hit, which takes a small fraction of what a span costs, is
/// recorded on the span it happened in (the request's).
pub(crate) struct Lookup {
    domain: &'static str,
    cache: &'static str,
    span: std::sync::OnceLock<tracing::Span>,
}

impl Lookup {
    pub(crate) fn new(domain: &'static str, cache: &'static str) -> Self {
        Self { domain, cache, span: std::sync::OnceLock::new() }
    }

    /// The lookup's span, made at its first use past the memory tier.
    fn span(&self) -> &tracing::Span {
        self.span.get_or_init(|| {
            if !crate::base::telemetry::on() {
                return tracing::Span::none();
            }
            let (domain, cache) = (self.domain, self.cache);
            tracing::info_span!(
                target: "storehost::cache",
                "cache lookup",
                otel.name = %format_args!("cache {domain}.{cache}"),
                storehost.cache.domain = domain,
                storehost.cache.name = cache,
                storehost.cache.tier = tracing::field::Empty,
                storehost.cache.result = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
            )
        })
    }

    /// Records which tier answered, and how: a memory hit on the current span, anything else
    /// on the lookup's.
    pub(crate) fn found(&self, tier: &'static str, result: &'static str) {
        if !crate::base::telemetry::on() {
            return;
        }
        if (tier, result) == ("memory", "hit") && self.span.get().is_none() {
            let current = tracing::Span::current();
            current.record("storehost.cache.domain", self.domain).record("storehost.cache.name", self.cache);
            current.record("storehost.cache.tier", tier).record("storehost.cache.result", result);
        } else {
            self.span().record("storehost.cache.tier", tier).record("storehost.cache.result", result);
        }
    }

    /// Records a miss whose origin read failed, with nothing stale to answer instead.
    pub(crate) fn failed(&self) {
        self.span().record("otel.status_code", "ERROR");
        self.found("origin", "miss");
    }

    /// Runs `f` (what the lookup does past the memory tier) inside the lookup's span.
    pub(crate) async fn around<T>(&self, f: impl Future<Output = T>) -> T {
        tracing::Instrument::instrument(f, self.span().clone()).await
    }
}

/// A read through `tier`: the cached value; or `load`'s (one load per key at a time), which is
/// then cached; or, when the origin could not answer (it is unavailable or timed out), what
/// `tier` keeps of `key` past its TTL under `stale_if_error`, recorded in `ctx` as a stale answer
/// of that age. Invalidated entries are gone, so a write is never answered around.
pub(crate) async fn read_through<K, V>(
    tier: &ReadThrough<K, V>,
    lookup: Lookup,
    ctx: &Ctx,
    key: &K,
    load: impl Future<Output = Result<V>>,
) -> Result<V>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    if let Some(value) = tier.get(key) {
        lookup.found("memory", "hit");
        return Ok(value);
    }
    let loaded = std::sync::atomic::AtomicBool::new(false);
    let load = async {
        loaded.store(true, std::sync::atomic::Ordering::Relaxed);
        load.await
    };
    match lookup.around(tier.fill(key, None, load, |_| {})).await {
        Ok(value) => {
            lookup.found("origin", if loaded.load(std::sync::atomic::Ordering::Relaxed) { "miss" } else { "coalesced" });
            Ok(value)
        }
        Err(e) => match stale(tier, ctx, key, &e) {
            Some(value) => {
                lookup.found("memory", "stale");
                Ok(value)
            }
            None => {
                lookup.failed();
                Err(e)
            }
        },
    }
}

/// What `tier` keeps of `key` past its TTL, when `error` says the origin could not answer; see
/// [`read_through`].
pub(crate) fn stale<K, V>(tier: &ReadThrough<K, V>, ctx: &Ctx, key: &K, error: &StoreError) -> Option<V>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    if !matches!(error.kind(), ErrorKind::Unavailable | ErrorKind::PluginTimeout) {
        return None;
    }
    let (value, age) = tier.get_stale(key)?;
    tracing::debug!(%error, age_ms = age.as_millis() as u64, "the origin could not answer; answering from an expired entry");
    ctx.record_stale(age);
    Some(value)
}

/// Approximate bytes of a string held in a cache entry.
pub(crate) fn weight_str(s: &str) -> usize {
    s.len() + std::mem::size_of::<String>()
}

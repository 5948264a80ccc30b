//! The memory tier shared by every cached store: read-through with load coalescing, and
//! writes that can never be overtaken by an older load.
//!
//! A load that started before a write may finish after it. Every key therefore has a
//! generation (striped: a collision only costs a skipped insert); writes and invalidations bump
//! it, a load inserts only if the generation it started under is still current, and loads are
//! coalesced per `(key, generation)`, so a read that starts after a write never joins a load
//! that started before it. Check-and-insert runs under a striped lock.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use storehost_primitives::{CacheStats, Clock, Coalescer, CoalescerStats, MemoryCache, Timestamp};

use crate::domain::{Result, StoreError};

const STRIPES: usize = 1024;

/// A clock shared by several caches (tests inject a mock one).
#[derive(Clone)]
pub struct SharedClock(pub Arc<dyn Clock>);

impl Clock for SharedClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

impl std::fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedClock")
    }
}

/// Settings of one memory cache.
#[derive(Clone, Debug)]
pub struct TierConfig {
    pub ttl: Duration,
    pub max_bytes: u64,
    pub max_entries: Option<u64>,
    pub clock: Option<SharedClock>,
}

pub struct ReadThrough<K, V> {
    cache: MemoryCache<K, V>,
    coalescer: Coalescer<(K, u64), V, StoreError>,
    generations: Box<[AtomicU64]>,
    /// Bumped by predicate invalidation, which cannot name the keys it drops.
    epoch: AtomicU64,
    locks: Box<[Mutex<()>]>,
    hasher: std::hash::RandomState,
}

impl<K, V> ReadThrough<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(config: &TierConfig, weigher: impl Fn(&K, &V) -> usize + Send + Sync + 'static) -> Self {
        let mut builder = MemoryCache::builder().default_ttl(config.ttl).max_bytes(config.max_bytes).weigher(weigher);
        if let Some(n) = config.max_entries {
            builder = builder.max_entries(n);
        }
        if let Some(clock) = &config.clock {
            builder = builder.clock(clock.clone());
        }
        Self {
            cache: builder.build(),
            coalescer: Coalescer::new(),
            generations: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            epoch: AtomicU64::new(0),
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn stripe(&self, key: &K) -> usize {
        (self.hasher.hash_one(key) as usize) % STRIPES
    }

    fn generation(&self, stripe: usize) -> u64 {
        // The epoch in the high bits: any predicate invalidation also changes every key's value.
        self.generations[stripe].load(Ordering::Acquire).wrapping_add(self.epoch.load(Ordering::Acquire) << 32)
    }

    /// The cached value, if any.
    pub fn get(&self, key: &K) -> Option<V> {
        self.cache.get(key)
    }

    /// The cached value, or the result of `load` (one load per key at a time), which is then
    /// cached unless a write or an invalidation happened while it ran. Errors are not cached.
    pub async fn get_or_load(&self, key: &K, load: impl Future<Output = Result<V>>) -> Result<V> {
        self.get_or_load_with_ttl(key, None, load).await
    }

    /// [`get_or_load`](Self::get_or_load), caching the value for `ttl` instead of the default.
    pub async fn get_or_load_with_ttl(&self, key: &K, ttl: Option<Duration>, load: impl Future<Output = Result<V>>) -> Result<V> {
        self.get_or_load_then(key, ttl, load, |_| {}).await
    }

    /// [`get_or_load_with_ttl`](Self::get_or_load_with_ttl); `cached` runs (under the key's
    /// lock) when the loaded value is cached, to update a second tier in the same order.
    pub async fn get_or_load_then(
        &self,
        key: &K,
        ttl: Option<Duration>,
        load: impl Future<Output = Result<V>>,
        cached: impl FnOnce(&V),
    ) -> Result<V> {
        self.lookup(key, ttl, load, cached).await.map(|(value, _)| value)
    }

    /// [`get_or_load_then`](Self::get_or_load_then), also telling whether the value came from
    /// memory (`true`) or from `load` (`false`).
    pub async fn lookup(
        &self,
        key: &K,
        ttl: Option<Duration>,
        load: impl Future<Output = Result<V>>,
        cached: impl FnOnce(&V),
    ) -> Result<(V, bool)> {
        if let Some(value) = self.cache.get(key) {
            return Ok((value, true));
        }
        let stripe = self.stripe(key);
        let started = self.generation(stripe);
        self.coalescer
            .run((key.clone(), started), async {
                let value = load.await?;
                let _guard = self.locks[stripe].lock();
                if self.generation(stripe) == started {
                    match ttl {
                        Some(ttl) => self.cache.insert_with_ttl(key.clone(), value.clone(), ttl),
                        None => self.cache.insert(key.clone(), value.clone()),
                    };
                    cached(&value);
                }
                Ok(value)
            })
            .await
            .map(|value| (value, false))
    }

    /// Caches a value a write returned.
    pub fn store(&self, key: K, value: V) {
        self.store_then(key, value, || {})
    }

    /// [`store`](Self::store); `also` runs under the key's lock (a second tier's update).
    pub fn store_then(&self, key: K, value: V, also: impl FnOnce()) {
        let stripe = self.stripe(&key);
        let _guard = self.locks[stripe].lock();
        self.generations[stripe].fetch_add(1, Ordering::AcqRel);
        self.cache.insert(key, value);
        also();
    }

    /// Caches a value a write returned unless the cached one is at least as new
    /// (`is_newer(new, cached)` decides).
    pub fn store_if_newer(&self, key: K, value: V, is_newer: impl Fn(&V, &V) -> bool) {
        let stripe = self.stripe(&key);
        let _guard = self.locks[stripe].lock();
        self.generations[stripe].fetch_add(1, Ordering::AcqRel);
        match self.cache.get(&key) {
            Some(cached) if !is_newer(&value, &cached) => {}
            _ => {
                self.cache.insert(key, value);
            }
        }
    }

    /// Drops the key's entry, and keeps loads in flight from re-inserting an older value.
    pub fn invalidate(&self, key: &K) {
        self.invalidate_then(key, || {})
    }

    /// [`invalidate`](Self::invalidate); `also` runs under the key's lock.
    pub fn invalidate_then(&self, key: &K, also: impl FnOnce()) {
        let stripe = self.stripe(key);
        let _guard = self.locks[stripe].lock();
        self.generations[stripe].fetch_add(1, Ordering::AcqRel);
        self.cache.delete(key);
        also();
    }

    /// Drops every entry whose key matches; loads in flight are kept from inserting.
    pub fn invalidate_if(&self, predicate: impl FnMut(&K, &V) -> bool) -> u64 {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_if(predicate)
    }

    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }

    pub fn coalescing(&self) -> CoalescerStats {
        self.coalescer.stats()
    }
}

//! The memory LRU+TTL cache.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::{Clock, ClockSource, Timestamp};
use crate::lru_table::LruTable;

type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> usize + Send + Sync>;

/// The shape of a [`MemoryCache`]: budgets, default TTL, sharding.
///
/// `None` means unbounded (or, for `default_ttl`, entries that never expire unless inserted with
/// [`MemoryCache::insert_with_ttl`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryCacheConfig {
    /// The most entries held at once.
    pub max_entries: Option<u64>,
    /// The most weight (bytes, as the weigher counts them) held at once.
    pub max_bytes: Option<u64>,
    /// The TTL of entries inserted with [`MemoryCache::insert`].
    pub default_ttl: Option<Duration>,
    /// The number of shards (rounded up to a power of two); by default derived from the CPU
    /// count and the budgets.
    pub shards: Option<usize>,
    /// How long an expired entry is kept for [`MemoryCache::get_stale`] (RFC 5861's
    /// `stale-if-error`). Kept entries stay inside the budgets and go first when room is needed.
    pub keep_stale: Option<Duration>,
}

impl MemoryCacheConfig {
    /// An unbounded configuration without TTL.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`MemoryCacheConfig::max_entries`].
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = Some(max_entries);
        self
    }

    /// Sets [`MemoryCacheConfig::max_bytes`].
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// Sets [`MemoryCacheConfig::default_ttl`].
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Sets [`MemoryCacheConfig::shards`].
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Sets [`MemoryCacheConfig::keep_stale`].
    pub fn keep_stale(mut self, keep: Duration) -> Self {
        self.keep_stale = Some(keep);
        self
    }

    fn shard_count(&self) -> usize {
        if let Some(n) = self.shards {
            return n.clamp(1, 1 << 16).next_power_of_two();
        }
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        let mut n = (cpus * 8).next_power_of_two().min(256);
        if let Some(max) = self.max_entries {
            while n > 1 && max / (n as u64) < 64 {
                n /= 2;
            }
        }
        if let Some(max) = self.max_bytes {
            while n > 1 && max / (n as u64) < 4 << 20 {
                n /= 2;
            }
        }
        n
    }
}

/// What [`MemoryCache::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The key was new.
    Inserted,
    /// The key was present and its value was replaced.
    Updated,
    /// The entry weighs more than the budget allows and was not stored; an older value under the
    /// same key was removed so that it cannot be served in place of the refused one.
    Refused,
}

/// Counters of a cache, as a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads that returned a value.
    pub hits: u64,
    /// Reads that found nothing, or found an expired entry.
    pub misses: u64,
    /// Inserts of a new key.
    pub inserts: u64,
    /// Inserts that replaced the value of a present key.
    pub updates: u64,
    /// Entries removed to make room.
    pub evictions: u64,
    /// Entries removed because their TTL had passed.
    pub expirations: u64,
    /// Inserts refused because the entry weighs more than the budget.
    pub refusals: u64,
    /// Entries removed by `delete`, `clear` or invalidation.
    pub invalidations: u64,
    /// Expired entries returned by [`MemoryCache::get_stale`].
    pub stale_hits: u64,
    /// Entries held now.
    pub entries: u64,
    /// Weight held now.
    pub bytes: u64,
}

/// Builds a [`MemoryCache`] with a weigher or a clock; see [`MemoryCache::builder`].
pub struct MemoryCacheBuilder<K, V> {
    config: MemoryCacheConfig,
    weigher: Option<Weigher<K, V>>,
    clock: ClockSource,
}

impl<K: Hash + Eq, V: Clone> MemoryCacheBuilder<K, V> {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: MemoryCacheConfig) -> Self {
        self.config = config;
        self
    }

    /// See [`MemoryCacheConfig::max_entries`].
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.config.max_entries = Some(max_entries);
        self
    }

    /// See [`MemoryCacheConfig::max_bytes`]. Requires a [`weigher`](Self::weigher).
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.config.max_bytes = Some(max_bytes);
        self
    }

    /// See [`MemoryCacheConfig::default_ttl`].
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.config.default_ttl = Some(ttl);
        self
    }

    /// See [`MemoryCacheConfig::shards`].
    pub fn shards(mut self, shards: usize) -> Self {
        self.config.shards = Some(shards);
        self
    }

    /// Keeps expired entries this long for [`MemoryCache::get_stale`].
    pub fn keep_stale(mut self, keep: Duration) -> Self {
        self.config.keep_stale = Some(keep);
        self
    }

    /// How much an entry weighs against `max_bytes`, typically `key.len() + value.len()`.
    /// Called once per insert, outside any lock.
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> usize + Send + Sync + 'static) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// The clock that TTLs are measured with (the system clock by default).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = ClockSource::custom(clock);
        self
    }

    /// The cache.
    ///
    /// # Panics
    /// If `max_bytes` is set without a weigher: the cache could not tell what an entry weighs.
    pub fn build(self) -> MemoryCache<K, V> {
        assert!(self.config.max_bytes.is_none() || self.weigher.is_some(), "MemoryCache: max_bytes needs a weigher (MemoryCacheBuilder::weigher)");
        let n = self.config.shard_count();
        let shards = (0..n)
            .map(|i| {
                CachePadded(Mutex::new(Shard {
                    table: LruTable::new(),
                    bytes: 0,
                    max_entries: share(self.config.max_entries, n, i),
                    max_bytes: share(self.config.max_bytes, n, i),
                    tick: 0,
                    counters: Counters::default(),
                }))
            })
            .collect();
        MemoryCache {
            shards,
            shard_mask: n - 1,
            hasher: foldhash::fast::RandomState::default(),
            weigher: self.weigher,
            default_ttl: self.config.default_ttl,
            keep_stale: self.config.keep_stale.unwrap_or(Duration::ZERO),
            clock: self.clock,
        }
    }
}

/// Shard `i`'s part of a global budget split over `n` shards; the parts add up to the budget.
fn share(budget: Option<u64>, n: usize, i: usize) -> u64 {
    match budget {
        None => u64::MAX,
        Some(b) => b / n as u64 + u64::from((i as u64) < b % n as u64),
    }
}

/// A concurrent, sharded LRU cache with TTLs, an entry budget and a byte budget.
///
/// Values are shared, not copied: store `Arc<T>` or [`bytes::Bytes`] and `get` returns a clone
/// of the handle.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use storehost_primitives::{MemoryCache, MockClock};
///
/// let clock = MockClock::new();
/// let cache: MemoryCache<String, Bytes> = MemoryCache::builder()
///     .max_entries(10_000)
///     .max_bytes(64 << 20)
///     .weigher(|k: &String, v: &Bytes| k.len() + v.len())
///     .default_ttl(Duration::from_secs(60))
///     .clock(clock.clone())
///     .build();
///
/// cache.insert("projects/1".to_string(), Bytes::from_static(b"{}"));
/// assert_eq!(cache.get("projects/1"), Some(Bytes::from_static(b"{}")));
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(cache.get("projects/1"), None);
/// assert_eq!(cache.stats().expirations, 1);
/// ```
///
/// # Design
/// The key space is split over shards by hash; each shard is a mutex around a hash table with an
/// intrusive recency list (no allocation per entry) and its own counters. Every operation
/// locks one shard for a few dozen nanoseconds, so there is no global lock and no atomic counter
/// on the hot path; `stats()` adds the shards up.
///
/// Eviction takes the least recently used entry of the shard that needs room. Within a shard of
/// fewer than 64 entries the order is exact. In a larger shard a read does not move an entry that
/// is already among the most recently used eighth of the shard (it is far from eviction either
/// way): hot entries are then read without writing to their own or their neighbours' cache
/// lines, which two threads would otherwise pass back and forth. An entry read is therefore never
/// further than `len / 8` from the front, against 0 for exact LRU.
///
/// Budgets are split evenly over the shards: `max_entries` and `max_bytes` are global limits that
/// are never exceeded, enforced as per-shard limits that add up to them. Consequences:
/// - LRU order holds within a shard and approximately across shards (the victim is the least
///   recently used entry *of the shard that needs room*);
/// - the largest entry admitted is `max_bytes / shards` (see [`MemoryCache::max_entry_weight`]);
///   a larger one is refused and counted. Without an explicit shard count the cache picks fewer
///   shards for small budgets (at least 64 entries and 4 MiB per shard), and
///   [`MemoryCacheConfig::shards`]`(1)` gives global LRU order and a global byte budget.
///
/// An entry expires at `insert time + ttl`: at exactly that instant it is already a miss. Expired
/// entries are dropped when they are read (a miss and an expiration), when they reach the LRU end,
/// or by [`MemoryCache::purge_expired`]; until then they count in `entries` and `bytes`. With
/// [`keep_stale`](MemoryCacheConfig::keep_stale), a read that finds an entry expired less than
/// that long ago leaves it for [`MemoryCache::get_stale`] and moves it to the LRU end, so the
/// budgets make room from kept entries before fresh ones.
pub struct MemoryCache<K, V> {
    shards: Box<[LockedShard<K, V>]>,
    shard_mask: usize,
    hasher: foldhash::fast::RandomState,
    weigher: Option<Weigher<K, V>>,
    default_ttl: Option<Duration>,
    /// How long past its expiry an entry stays for [`MemoryCache::get_stale`].
    keep_stale: Duration,
    clock: ClockSource,
}

/// Keeps each shard's lock on its own cache lines, so that threads working on neighbouring
/// shards do not invalidate each other's lines.
#[repr(align(128))]
struct CachePadded<T>(T);

type LockedShard<K, V> = CachePadded<Mutex<Shard<K, V>>>;

/// A cached value: with an `Arc` value, 32 bytes (40 for an `Arc<[u8]>`), so that a slot of the
/// table (key, entry, links) is little more than the key and the value.
struct Entry<V> {
    value: V,
    expires_at: Timestamp,
    weight: u32,
    /// The shard's `tick` when the entry last moved to the most recently used end.
    promoted_at: u32,
    /// How long it was to live, from which its age follows.
    lifetime: Lifetime,
}

/// An entry's time to live in four bytes: milliseconds below 2^31 (24 days), whole seconds with
/// the top bit set above; `NONE` for an entry without one. Its insertion time is `expires_at`
/// less it, to within the unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lifetime(u32);

impl Lifetime {
    const NONE: Lifetime = Lifetime(u32::MAX);
    const SECONDS: u32 = 1 << 31;

    fn new(ttl: Option<Duration>) -> Lifetime {
        match ttl {
            None => Lifetime::NONE,
            Some(ttl) if ttl.as_millis() < u128::from(Self::SECONDS) => Lifetime(ttl.as_millis() as u32),
            Some(ttl) => Lifetime(Self::SECONDS | ttl.as_secs().min(u64::from(Self::SECONDS - 2)) as u32),
        }
    }

    /// How long ago an entry expiring at `expires_at` was inserted; zero for one without a TTL
    /// (it never goes stale).
    fn age(self, expires_at: Timestamp, now: Timestamp) -> Duration {
        let ttl = match self.0 {
            u32::MAX => return Duration::ZERO,
            n if n & Self::SECONDS == 0 => Duration::from_millis(u64::from(n)),
            n => Duration::from_secs(u64::from(n & !Self::SECONDS)),
        };
        now.saturating_duration_since(Timestamp::from_unix_nanos(expires_at.as_unix_nanos().saturating_sub(ttl.as_nanos() as u64)))
    }
}

#[derive(Default)]
#[repr(C)]
struct Counters {
    hits: u64,
    misses: u64,
    inserts: u64,
    updates: u64,
    evictions: u64,
    expirations: u64,
    refusals: u64,
    invalidations: u64,
    stale_hits: u64,
}

/// `repr(C)` so that the fields a read writes (the hit and miss counters) sit right after the
/// lock, on the cache line a read has to own anyway.
#[repr(C)]
struct Shard<K, V> {
    counters: Counters,
    table: LruTable<K, Entry<V>>,
    bytes: u64,
    max_entries: u64,
    max_bytes: u64,
    /// Counts moves to the most recently used end (promotions and inserts).
    tick: u32,
}

impl<K: Hash + Eq, V: Clone> MemoryCache<K, V> {
    /// A cache with this configuration, the system clock and no weigher.
    ///
    /// # Panics
    /// If `config.max_bytes` is set: a byte budget needs a weigher, so use
    /// [`MemoryCache::builder`].
    pub fn new(config: MemoryCacheConfig) -> Self {
        Self::builder().config(config).build()
    }

    /// A builder, for a weigher or a clock.
    pub fn builder() -> MemoryCacheBuilder<K, V> {
        MemoryCacheBuilder { config: MemoryCacheConfig::default(), weigher: None, clock: ClockSource::System }
    }

    /// The value under `key`, if present and not expired. Marks the entry most recently used
    /// (unless it already is among the most recent eighth of a large shard; see
    /// [`MemoryCache`]).
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shard(hash).lock();
        let Some(idx) = shard.table.find(hash, key) else {
            shard.counters.misses += 1;
            return None;
        };
        let expires_at = shard.table.slot(idx).item.expires_at;
        if expires_at != Timestamp::NEVER {
            let now = self.clock.now();
            if now >= expires_at {
                if now < expires_at + self.keep_stale {
                    // Kept for `get_stale`, and the first to go when room is needed.
                    shard.table.demote(idx);
                } else {
                    shard.remove(idx, &self.hasher);
                    shard.counters.expirations += 1;
                }
                shard.counters.misses += 1;
                return None;
            }
        }
        if !shard.is_recent(idx) {
            shard.promote(idx);
        }
        shard.counters.hits += 1;
        Some(shard.table.slot(idx).item.value.clone())
    }

    /// The value under `key` even if it has expired, as long as it expired less than
    /// [`keep_stale`](MemoryCacheConfig::keep_stale) ago, with its age (the time since it was
    /// inserted). For answering when the origin cannot: an entry removed by `delete`, `clear` or
    /// an invalidation is gone, and is never returned. Does not touch recency.
    pub fn get_stale<Q>(&self, key: &Q) -> Option<(V, Duration)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shard(hash).lock();
        let idx = shard.table.find(hash, key)?;
        let entry = &shard.table.slot(idx).item;
        let now = self.clock.now();
        if entry.expires_at != Timestamp::NEVER && now >= entry.expires_at + self.keep_stale {
            return None;
        }
        let answer = (entry.value.clone(), entry.lifetime.age(entry.expires_at, now));
        shard.counters.stale_hits += 1;
        Some(answer)
    }

    /// Whether `key` is present and not expired, without counting a read or touching recency.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.peek(key).is_some()
    }

    /// Inserts with the default TTL. See [`InsertOutcome`] for refusals.
    pub fn insert(&self, key: K, value: V) -> InsertOutcome {
        self.insert_expiring(key, value, self.default_ttl)
    }

    /// Inserts with its own TTL instead of the default one.
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) -> InsertOutcome {
        self.insert_expiring(key, value, Some(ttl))
    }

    fn insert_expiring(&self, key: K, value: V, ttl: Option<Duration>) -> InsertOutcome {
        let weight = self.weigher.as_ref().map_or(0, |w| w(&key, &value));
        let now = self.clock.now();
        let expires_at = ttl.map_or(Timestamp::NEVER, |ttl| now + ttl);
        let hash = self.hasher.hash_one(&key);
        let mut shard = self.shard(hash).lock();
        let entry = Entry { value, expires_at, weight: 0, promoted_at: 0, lifetime: Lifetime::new(ttl) };
        shard.insert(hash, key, entry, weight, &self.hasher, &self.clock)
    }

    /// Removes `key`; returns whether it was present (expired or not).
    pub fn delete<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shard(hash).lock();
        match shard.table.find(hash, key) {
            Some(idx) => {
                shard.remove(idx, &self.hasher);
                shard.counters.invalidations += 1;
                true
            }
            None => false,
        }
    }

    /// Removes every entry and frees the memory they used.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.0.lock();
            let removed = shard.table.clear();
            shard.counters.invalidations += removed.len() as u64;
            shard.bytes = 0;
            drop(shard);
            drop(removed);
        }
    }

    /// Removes every entry for which `predicate` returns true; returns how many were removed.
    /// Takes each shard's lock in turn, so it costs O(entries); `predicate` runs under that lock
    /// and must not use the cache.
    pub fn invalidate_if(&self, mut predicate: impl FnMut(&K, &V) -> bool) -> u64 {
        let mut count = 0;
        for shard in self.shards.iter() {
            let mut guard = shard.0.lock();
            let shard = &mut *guard;
            let mut bytes = 0u64;
            let mut removed = 0u64;
            shard.table.retain(
                &self.hasher,
                |k, e| !predicate(k, &e.value),
                |_, e| {
                    bytes += u64::from(e.weight);
                    removed += 1;
                },
            );
            shard.bytes -= bytes;
            shard.counters.invalidations += removed;
            count += removed;
        }
        count
    }

    /// Removes every entry whose key starts with `prefix`; returns how many were removed.
    pub fn invalidate_prefix(&self, prefix: &str) -> u64
    where
        K: AsRef<str>,
    {
        self.invalidate_if(|k, _| k.as_ref().starts_with(prefix))
    }

    /// Removes every expired entry now rather than when it is next read or evicted (those kept
    /// for [`get_stale`](Self::get_stale) stay until their time is up); returns how many were
    /// removed.
    pub fn purge_expired(&self) -> u64 {
        let now = self.clock.now();
        let keep = self.keep_stale;
        let mut count = 0;
        for shard in self.shards.iter() {
            let mut guard = shard.0.lock();
            let shard = &mut *guard;
            let mut bytes = 0u64;
            let mut removed = 0u64;
            shard.table.retain(
                &self.hasher,
                |_, e| now < e.expires_at + keep,
                |_, e| {
                    bytes += u64::from(e.weight);
                    removed += 1;
                },
            );
            shard.bytes -= bytes;
            shard.counters.expirations += removed;
            count += removed;
        }
        count
    }

    /// The counters and current size.
    pub fn stats(&self) -> CacheStats {
        let mut s = CacheStats::default();
        for shard in self.shards.iter() {
            let shard = shard.0.lock();
            let c = &shard.counters;
            s.hits += c.hits;
            s.misses += c.misses;
            s.inserts += c.inserts;
            s.updates += c.updates;
            s.evictions += c.evictions;
            s.expirations += c.expirations;
            s.refusals += c.refusals;
            s.invalidations += c.invalidations;
            s.stale_hits += c.stale_hits;
            s.entries += shard.table.len() as u64;
            s.bytes += shard.bytes;
        }
        s
    }

    /// The number of entries held (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().table.len()).sum()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The heaviest entry the cache admits: the smallest shard's byte budget, or `None` without
    /// a byte budget (entries up to `u32::MAX` bytes are admitted then).
    pub fn max_entry_weight(&self) -> Option<u64> {
        let smallest = self.shards.iter().map(|s| s.0.lock().max_bytes).min().unwrap_or(u64::MAX);
        (smallest != u64::MAX).then_some(smallest)
    }

    /// Every live key in the cache, in no particular order.
    pub fn keys(&self) -> Vec<K>
    where
        K: Clone,
    {
        let now = self.clock.now();
        let mut keys = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.0.lock();
            keys.extend(shard.table.iter_lru_first().filter(|s| now < s.item.expires_at).map(|s| s.key.clone()));
        }
        keys
    }

    fn peek<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash).lock();
        let entry = &shard.table.slot(shard.table.find(hash, key)?).item;
        if entry.expires_at != Timestamp::NEVER && self.clock.now() >= entry.expires_at {
            return None;
        }
        Some(entry.value.clone())
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Mutex<Shard<K, V>> {
        // The hash table uses the low bits (bucket) and the top seven bits (tag); take the shard
        // from the middle so that the three are independent.
        &self.shards[(hash >> 32) as usize & self.shard_mask].0
    }
}

/// Shards with fewer entries than this keep exact LRU order: every read promotes.
const EXACT_LRU_BELOW: usize = 64;

impl<K: Hash + Eq, V> Shard<K, V> {
    /// Whether the entry at `idx` is among the most recently used eighth of the shard, where a
    /// read leaves it in place. Each promotion or insert moves one entry to the front, so an
    /// entry promoted fewer than `len / 8` ticks ago is at most that far from the front.
    #[inline]
    fn is_recent(&self, idx: u32) -> bool {
        let len = self.table.len();
        let promoted_at = self.table.slot(idx).item.promoted_at;
        len >= EXACT_LRU_BELOW && (self.tick.wrapping_sub(promoted_at) as usize) < len / 8
    }

    fn promote(&mut self, idx: u32) {
        self.tick = self.tick.wrapping_add(1);
        let tick = self.tick;
        self.table.slot_mut(idx).item.promoted_at = tick;
        self.table.touch(idx);
    }

    fn insert<S: BuildHasher>(&mut self, hash: u64, key: K, mut entry: Entry<V>, weight: usize, hasher: &S, clock: &ClockSource) -> InsertOutcome {
        let existing = self.table.find(hash, &key);
        let admitted = u32::try_from(weight).ok().filter(|&w| u64::from(w) <= self.max_bytes);
        let Some(weight) = admitted.filter(|_| self.max_entries > 0) else {
            if let Some(idx) = existing {
                self.remove(idx, hasher);
            }
            self.counters.refusals += 1;
            return InsertOutcome::Refused;
        };
        entry.weight = weight;
        match existing {
            Some(idx) => {
                let old = std::mem::replace(&mut self.table.slot_mut(idx).item, entry);
                self.bytes = self.bytes - u64::from(old.weight) + u64::from(weight);
                self.promote(idx);
                // The entry just updated is the most recent one and fits on its own, so eviction
                // stops before reaching it.
                self.evict_until(0, 0, hasher, clock);
                self.counters.updates += 1;
                InsertOutcome::Updated
            }
            None => {
                // Make room first, so that the budgets hold at every moment.
                self.evict_until(1, u64::from(weight), hasher, clock);
                self.tick = self.tick.wrapping_add(1);
                entry.promoted_at = self.tick;
                self.table.insert_new(hash, key, entry, hasher);
                self.bytes += u64::from(weight);
                self.counters.inserts += 1;
                InsertOutcome::Inserted
            }
        }
    }

    /// Evicts from the LRU end until `extra_entries` and `extra_bytes` more would fit.
    fn evict_until<S: BuildHasher>(&mut self, extra_entries: u64, extra_bytes: u64, hasher: &S, clock: &ClockSource) {
        let mut now = None;
        while self.table.len() as u64 + extra_entries > self.max_entries || self.bytes + extra_bytes > self.max_bytes {
            let Some(idx) = self.table.lru() else { break };
            let expires_at = self.table.slot(idx).item.expires_at;
            let expired = expires_at != Timestamp::NEVER && *now.get_or_insert_with(|| clock.now()) >= expires_at;
            self.remove(idx, hasher);
            if expired {
                self.counters.expirations += 1;
            } else {
                self.counters.evictions += 1;
            }
        }
    }

    fn remove<S: BuildHasher>(&mut self, idx: u32, hasher: &S) {
        let (_, entry) = self.table.remove(idx, hasher);
        self.bytes -= u64::from(entry.weight);
    }
}

impl<K: Hash + Eq, V: Clone> fmt::Debug for MemoryCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("shards", &self.shards.len())
            .field("default_ttl", &self.default_ttl)
            .field("clock", &self.clock)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {

    /// An entry holds its value, its expiry and 12 bytes more: a slot of a `String` key is
    /// the key, the value and 40 bytes.
    #[test]
    fn an_entry_is_its_value_and_24_bytes() {
        assert_eq!(std::mem::size_of::<Entry<Arc<Vec<u8>>>>(), 32);
        assert_eq!(std::mem::size_of::<crate::lru_table::Slot<String, Entry<Arc<Vec<u8>>>>>(), 64);
        assert_eq!(std::mem::size_of::<crate::lru_table::Slot<String, Entry<Arc<[u8]>>>>(), 72);
    }

    #[test]
    fn lifetimes_give_ages_to_within_their_unit() {
        let now = Timestamp::from_unix_nanos(1_000_000_000_000_000_000);
        for ttl in [Duration::from_millis(1), Duration::from_secs(60), Duration::from_secs(30 * 24 * 3600), Duration::from_secs(80 * 365 * 24 * 3600)]
        {
            let expires_at = Timestamp::from_unix_nanos(now.as_unix_nanos() + 5_000_000_000);
            let inserted = expires_at.as_unix_nanos().saturating_sub(ttl.as_nanos() as u64);
            let age = Lifetime::new(Some(ttl)).age(expires_at, now);
            let exact = now.saturating_duration_since(Timestamp::from_unix_nanos(inserted));
            assert!(age.abs_diff(exact) < Duration::from_secs(1), "{ttl:?}: {age:?} vs {exact:?}");
        }
        assert_eq!(Lifetime::new(None).age(Timestamp::NEVER, now), Duration::ZERO);
    }

    use super::*;
    use crate::clock::MockClock;

    type Cache = MemoryCache<String, Arc<str>>;

    fn v(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    fn k(s: &str) -> String {
        s.to_string()
    }

    /// One shard: exact global LRU and budgets.
    fn single(clock: &MockClock) -> MemoryCacheBuilder<String, Arc<str>> {
        MemoryCache::builder().shards(1).clock(clock.clone())
    }

    fn weighed(clock: &MockClock) -> MemoryCacheBuilder<String, Arc<str>> {
        single(clock).weigher(|k: &String, v: &Arc<str>| k.len() + v.len())
    }

    #[test]
    fn get_insert_update_delete() {
        let cache = single(&MockClock::new()).build();
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.insert(k("a"), v("1")), InsertOutcome::Inserted);
        assert_eq!(cache.insert(k("a"), v("2")), InsertOutcome::Updated);
        assert_eq!(cache.get("a").as_deref(), Some("2"));
        assert!(cache.contains_key("a"));
        assert!(cache.delete("a"));
        assert!(!cache.delete("a"));
        assert_eq!(cache.get("a"), None);
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.inserts, s.updates, s.invalidations), (1, 2, 1, 1, 1));
        assert_eq!((s.entries, s.bytes), (0, 0));
    }

    #[test]
    fn expiry_is_exactly_at_insert_time_plus_ttl() {
        let clock = MockClock::new();
        let cache = single(&clock).default_ttl(Duration::from_secs(10)).build();
        cache.insert(k("a"), v("1"));
        clock.advance(Duration::from_secs(10) - Duration::from_nanos(1));
        assert_eq!(cache.get("a").as_deref(), Some("1"), "one nanosecond before expiry");
        clock.advance(Duration::from_nanos(1));
        assert_eq!(cache.get("a"), None, "exactly at expiry");
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.expirations, s.entries), (1, 1, 1, 0));
    }

    #[test]
    fn per_entry_ttl_overrides_the_default() {
        let clock = MockClock::new();
        let cache = single(&clock).default_ttl(Duration::from_secs(60)).build();
        cache.insert_with_ttl(k("short"), v("s"), Duration::from_secs(1));
        cache.insert(k("default"), v("d"));
        let forever = single(&clock).build();
        forever.insert(k("forever"), v("f"));
        clock.advance(Duration::from_secs(1));
        assert_eq!(cache.get("short"), None);
        assert!(cache.get("default").is_some());
        clock.advance(Duration::from_secs(59));
        assert_eq!(cache.get("default"), None);
        clock.advance(Duration::from_secs(1 << 40));
        assert!(forever.get("forever").is_some(), "no TTL never expires");
        // A zero TTL is expired on arrival.
        cache.insert_with_ttl(k("zero"), v("z"), Duration::ZERO);
        assert_eq!(cache.get("zero"), None);
    }

    #[test]
    fn updating_an_entry_renews_its_ttl() {
        let clock = MockClock::new();
        let cache = single(&clock).default_ttl(Duration::from_secs(10)).build();
        cache.insert(k("a"), v("1"));
        clock.advance(Duration::from_secs(8));
        cache.insert(k("a"), v("2"));
        clock.advance(Duration::from_secs(8));
        assert_eq!(cache.get("a").as_deref(), Some("2"));
    }

    #[test]
    fn lru_order_follows_gets() {
        let cache = single(&MockClock::new()).max_entries(3).build();
        for key in ["a", "b", "c"] {
            cache.insert(k(key), v(key));
        }
        // Reading "a" makes "b" the least recently used.
        assert!(cache.get("a").is_some());
        cache.insert(k("d"), v("d"));
        assert_eq!(cache.get("b"), None);
        assert!(cache.get("c").is_some());
        // Order is now a, c, d: reading "d" leaves "a" least recently used.
        assert!(cache.get("d").is_some());
        cache.insert(k("e"), v("e"));
        assert_eq!(cache.get("a"), None);
        let mut keys = cache.keys();
        keys.sort();
        assert_eq!(keys, ["c", "d", "e"]);
        assert_eq!(cache.stats().evictions, 2);
    }

    #[test]
    fn large_shards_leave_recent_entries_in_place() {
        let cache = single(&MockClock::new()).max_entries(128).build();
        for i in 0..128 {
            cache.insert(format!("k{i:03}"), v("x"));
        }
        // k120 is 7 places from the front, inside the most recent eighth (16): it stays.
        assert!(cache.get("k120").is_some());
        // k000 is the least recently used: reading it moves it to the front.
        assert!(cache.get("k000").is_some());
        cache.insert(k("new"), v("x"));
        assert!(cache.contains_key("k000"));
        assert!(!cache.contains_key("k001"), "the least recently used entry is evicted");
        // With one shard, `keys` lists least recently used first.
        let keys = cache.keys();
        let pos = |key: &str| keys.iter().position(|x| x == key).unwrap();
        assert!(pos("k119") < pos("k120") && pos("k120") < pos("k121"));
        assert!(pos("k127") < pos("k000") && pos("k000") < pos("new"));
    }

    #[test]
    fn updates_count_as_use() {
        let cache = single(&MockClock::new()).max_entries(2).build();
        cache.insert(k("a"), v("1"));
        cache.insert(k("b"), v("1"));
        cache.insert(k("a"), v("2"));
        cache.insert(k("c"), v("1"));
        assert_eq!(cache.get("b"), None);
        assert_eq!(cache.get("a").as_deref(), Some("2"));
    }

    #[test]
    fn byte_budget_evicts_lru_entries_and_refuses_oversized_ones() {
        let cache = weighed(&MockClock::new()).max_bytes(10).build();
        assert_eq!(cache.insert(k("a"), v("1234")), InsertOutcome::Inserted); // 5
        assert_eq!(cache.insert(k("b"), v("1234")), InsertOutcome::Inserted); // 10
        assert_eq!(cache.insert(k("c"), v("12")), InsertOutcome::Inserted); // evicts a
        assert_eq!(cache.stats().bytes, 8);
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.insert(k("big"), v("12345678")), InsertOutcome::Refused); // 11 > 10
        assert_eq!(cache.get("big"), None);
        assert_eq!(cache.stats().bytes, 8, "a refusal evicts nothing");
        // Exactly the budget is admitted and evicts everything else.
        assert_eq!(cache.insert(k("full"), v("123456")), InsertOutcome::Inserted);
        let s = cache.stats();
        assert_eq!((s.entries, s.bytes, s.refusals, s.evictions), (1, 10, 1, 3));
    }

    #[test]
    fn a_refused_update_removes_the_old_value() {
        let cache = weighed(&MockClock::new()).max_bytes(10).build();
        cache.insert(k("a"), v("1"));
        assert_eq!(cache.insert(k("a"), v("0123456789")), InsertOutcome::Refused);
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.stats().bytes, 0);
    }

    #[test]
    fn a_growing_update_evicts_others() {
        let cache = weighed(&MockClock::new()).max_bytes(10).build();
        cache.insert(k("a"), v("12"));
        cache.insert(k("b"), v("12"));
        cache.insert(k("a"), v("12345678"));
        assert_eq!(cache.get("b"), None);
        assert_eq!(cache.stats().bytes, 9);
    }

    #[test]
    fn expired_entries_at_the_lru_end_count_as_expirations() {
        let clock = MockClock::new();
        let cache = single(&clock).max_entries(2).build();
        cache.insert_with_ttl(k("a"), v("1"), Duration::from_secs(1));
        cache.insert(k("b"), v("1"));
        clock.advance(Duration::from_secs(2));
        cache.insert(k("c"), v("1"));
        let s = cache.stats();
        assert_eq!((s.expirations, s.evictions, s.entries), (1, 0, 2));
    }

    #[test]
    fn purge_expired_removes_only_expired_entries() {
        let clock = MockClock::new();
        let cache = single(&clock).build();
        cache.insert_with_ttl(k("a"), v("1"), Duration::from_secs(1));
        cache.insert_with_ttl(k("b"), v("1"), Duration::from_secs(5));
        cache.insert(k("c"), v("1"));
        clock.advance(Duration::from_secs(1));
        assert_eq!(cache.purge_expired(), 1);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.stats().expirations, 1);
    }

    #[test]
    fn expired_entries_are_kept_for_get_stale_and_evicted_first() {
        let clock = MockClock::new();
        let cache = single(&clock).max_entries(3).keep_stale(Duration::from_secs(10)).build();
        cache.insert_with_ttl(k("a"), v("1"), Duration::from_secs(1));
        cache.insert_with_ttl(k("b"), v("2"), Duration::from_secs(60));
        // `a` is now the most recently used.
        assert!(cache.get("a").is_some());
        clock.advance(Duration::from_secs(2));
        // Expired: a miss for `get`, still there for `get_stale`, with its age.
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get_stale("a"), Some((v("1"), Duration::from_secs(2))));
        assert_eq!(cache.get_stale("b"), Some((v("2"), Duration::from_secs(2))));
        assert_eq!(cache.stats().stale_hits, 2);
        // The expired entry went to the LRU end: room is made from it, not from `b`, even
        // though `b` was used less recently.
        cache.insert(k("c"), v("3"));
        cache.insert(k("d"), v("4"));
        assert_eq!(cache.get_stale("a"), None);
        assert!(cache.get("b").is_some() && cache.get("c").is_some() && cache.get("d").is_some());
        // Past the keep time, and after a delete, nothing is returned.
        cache.insert_with_ttl(k("e"), v("5"), Duration::from_secs(1));
        clock.advance(Duration::from_secs(5));
        assert_eq!(cache.get("e"), None);
        assert!(cache.get_stale("e").is_some());
        clock.advance(Duration::from_secs(6));
        assert_eq!(cache.get_stale("e"), None);
        cache.delete("b");
        assert_eq!(cache.get_stale("b"), None);
        // Without `keep_stale`, an expired entry is gone at its first read.
        let plain = single(&clock).build();
        plain.insert_with_ttl(k("a"), v("1"), Duration::from_secs(1));
        clock.advance(Duration::from_secs(1));
        assert_eq!(plain.get_stale("a"), None);
    }

    #[test]
    fn purge_expired_keeps_entries_kept_for_get_stale() {
        let clock = MockClock::new();
        let cache = single(&clock).keep_stale(Duration::from_secs(5)).build();
        cache.insert_with_ttl(k("a"), v("1"), Duration::from_secs(1));
        cache.insert_with_ttl(k("b"), v("1"), Duration::from_secs(10));
        clock.advance(Duration::from_secs(2));
        assert_eq!(cache.purge_expired(), 0);
        clock.advance(Duration::from_secs(4));
        assert_eq!(cache.purge_expired(), 1);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn prefix_and_predicate_invalidation() {
        let cache = weighed(&MockClock::new()).shards(4).build();
        for key in ["list/a/", "list/a/b/", "list/b/", "blob/a", "list"] {
            cache.insert(k(key), v("x"));
        }
        assert_eq!(cache.invalidate_prefix("list/a/"), 2);
        let mut keys = cache.keys();
        keys.sort();
        assert_eq!(keys, ["blob/a", "list", "list/b/"]);
        assert_eq!(cache.invalidate_if(|k, _| k.len() == 4), 1);
        assert_eq!(cache.len(), 2);
        let s = cache.stats();
        assert_eq!(s.invalidations, 3);
        assert_eq!(s.bytes, ("blob/a".len() + "list/b/".len() + 2) as u64);
    }

    #[test]
    fn clear_empties_every_shard() {
        let cache = weighed(&MockClock::new()).shards(8).build();
        for i in 0..100 {
            cache.insert(format!("k{i}"), v("x"));
        }
        cache.clear();
        let s = cache.stats();
        assert_eq!((s.entries, s.bytes, s.invalidations), (0, 0, 100));
        assert!(cache.is_empty());
        cache.insert(k("again"), v("x"));
        assert!(cache.get("again").is_some());
    }

    #[test]
    fn stats_count_every_kind_of_event() {
        let clock = MockClock::new();
        let cache = weighed(&clock).max_entries(2).max_bytes(100).build();
        cache.insert(k("a"), v("1")); // insert
        cache.insert(k("a"), v("2")); // update
        cache.insert(k("b"), v("1")); // insert
        cache.insert(k("c"), v("1")); // insert, evicts a
        cache.insert(k("huge"), v(&"x".repeat(200))); // refusal
        cache.insert_with_ttl(k("t"), v("1"), Duration::from_secs(1)); // insert, evicts b
        clock.advance(Duration::from_secs(1));
        assert!(cache.get("c").is_some()); // hit
        assert!(cache.get("t").is_none()); // miss + expiration
        assert!(cache.get("a").is_none()); // miss
        cache.delete("c"); // invalidation
        assert_eq!(
            cache.stats(),
            CacheStats {
                hits: 1,
                misses: 2,
                inserts: 4,
                updates: 1,
                evictions: 2,
                expirations: 1,
                refusals: 1,
                invalidations: 1,
                stale_hits: 0,
                entries: 0,
                bytes: 0,
            }
        );
    }

    #[test]
    fn budgets_are_split_over_shards_and_add_up() {
        let cache: MemoryCache<u64, u64> = MemoryCache::builder().shards(8).max_entries(100).max_bytes(1003).weigher(|_, v| *v as usize).build();
        assert_eq!(cache.shard_count(), 8);
        assert_eq!(cache.max_entry_weight(), Some(125));
        let (entries, bytes): (u64, u64) = cache
            .shards
            .iter()
            .map(|s| {
                let s = s.0.lock();
                (s.max_entries, s.max_bytes)
            })
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert_eq!((entries, bytes), (100, 1003));
        for i in 0..10_000 {
            cache.insert(i, i % 50);
            assert!(cache.stats().entries <= 100);
            assert!(cache.stats().bytes <= 1003);
        }
    }

    #[test]
    fn default_shard_count_shrinks_for_small_budgets() {
        let config = MemoryCacheConfig::new().max_entries(100);
        assert_eq!(config.shard_count(), 1);
        let config = MemoryCacheConfig::new().max_bytes(8 << 20);
        assert!(config.shard_count() <= 2);
        assert!(MemoryCacheConfig::new().shard_count() >= 8);
        assert_eq!(MemoryCacheConfig::new().shards(5).shard_count(), 8);
    }

    #[test]
    #[should_panic(expected = "needs a weigher")]
    fn a_byte_budget_without_a_weigher_is_rejected() {
        let _ = Cache::new(MemoryCacheConfig::new().max_bytes(10));
    }

    #[test]
    fn concurrent_use_from_threads_keeps_the_budget() {
        let cache: Arc<MemoryCache<u64, u64>> = Arc::new(MemoryCache::builder().shards(4).max_bytes(4000).weigher(|_, v| *v as usize).build());
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let cache = cache.clone();
                scope.spawn(move || {
                    for i in 0..20_000u64 {
                        let key = (i * 7 + t) % 500;
                        if i % 3 == 0 {
                            cache.insert(key, (i % 100) + 1);
                        } else {
                            let _ = cache.get(&key);
                        }
                    }
                });
            }
        });
        let s = cache.stats();
        assert!(s.bytes <= 4000);
        assert_eq!(s.hits + s.misses, 4 * 20_000 - 4 * 6667);
    }

    mod budget_model {
        //! The cache (one shard) against a model: a list in recency order with weights and
        //! expiry times. After every operation the two agree on what is held, and the byte and
        //! entry budgets hold.
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Op {
            Insert { key: u8, size: u16, ttl: Option<u8> },
            Get { key: u8 },
            Delete { key: u8 },
            Advance { secs: u8 },
            InvalidatePrefix { digit: u8 },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0..24u8, 0..700u16, proptest::option::of(1..10u8))
                    .prop_map(|(key, size, ttl)| Op::Insert { key, size, ttl }),
                4 => (0..24u8).prop_map(|key| Op::Get { key }),
                1 => (0..24u8).prop_map(|key| Op::Delete { key }),
                1 => (0..4u8).prop_map(|secs| Op::Advance { secs }),
                1 => (0..10u8).prop_map(|digit| Op::InvalidatePrefix { digit }),
            ]
        }

        struct ModelEntry {
            key: String,
            weight: u64,
            expires_at: Option<u64>,
        }

        /// Most recently used last.
        #[derive(Default)]
        struct Model {
            entries: Vec<ModelEntry>,
            now: u64,
            max_bytes: u64,
            max_entries: u64,
        }

        impl Model {
            fn position(&self, key: &str) -> Option<usize> {
                self.entries.iter().position(|e| e.key == key)
            }

            fn expired(&self, e: &ModelEntry) -> bool {
                e.expires_at.is_some_and(|t| self.now >= t)
            }

            fn bytes(&self) -> u64 {
                self.entries.iter().map(|e| e.weight).sum()
            }

            fn insert(&mut self, key: String, weight: u64, ttl: Option<u64>) -> InsertOutcome {
                let existing = self.position(&key);
                if weight > self.max_bytes {
                    if let Some(i) = existing {
                        self.entries.remove(i);
                    }
                    return InsertOutcome::Refused;
                }
                let outcome = match existing {
                    Some(i) => {
                        self.entries.remove(i);
                        InsertOutcome::Updated
                    }
                    None => InsertOutcome::Inserted,
                };
                while self.entries.len() as u64 + 1 > self.max_entries || self.bytes() + weight > self.max_bytes {
                    self.entries.remove(0);
                }
                self.entries.push(ModelEntry { key, weight, expires_at: ttl.map(|t| self.now + t) });
                outcome
            }

            fn get(&mut self, key: &str) -> bool {
                let Some(i) = self.position(key) else { return false };
                let e = self.entries.remove(i);
                if self.expired(&e) {
                    return false;
                }
                self.entries.push(e);
                true
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
            #[test]
            fn matches_the_model_and_never_exceeds_the_budget(
                max_bytes in 1u64..3000,
                max_entries in 1u64..12,
                ops in proptest::collection::vec(op(), 1..300),
            ) {
                let clock = MockClock::new();
                let cache: MemoryCache<String, usize> = MemoryCache::builder()
                    .shards(1)
                    .max_bytes(max_bytes)
                    .max_entries(max_entries)
                    .weigher(|k: &String, v: &usize| k.len() + v)
                    .clock(clock.clone())
                    .build();
                let mut model = Model { max_bytes, max_entries, ..Model::default() };
                for op in ops {
                    match op {
                        Op::Insert { key, size, ttl } => {
                            let key = format!("{key}");
                            let weight = key.len() as u64 + u64::from(size);
                            let ttl = ttl.map(u64::from);
                            let expected = model.insert(key.clone(), weight, ttl);
                            let got = match ttl {
                                Some(t) => cache.insert_with_ttl(key, size as usize, Duration::from_secs(t)),
                                None => cache.insert(key, size as usize),
                            };
                            prop_assert_eq!(got, expected);
                        }
                        Op::Get { key } => {
                            let key = format!("{key}");
                            prop_assert_eq!(cache.get(&key).is_some(), model.get(&key));
                        }
                        Op::Delete { key } => {
                            let key = format!("{key}");
                            let expected = model.position(&key).map(|i| model.entries.remove(i)).is_some();
                            prop_assert_eq!(cache.delete(&key), expected);
                        }
                        Op::Advance { secs } => {
                            clock.advance(Duration::from_secs(u64::from(secs)));
                            model.now += u64::from(secs);
                        }
                        Op::InvalidatePrefix { digit } => {
                            let prefix = format!("{digit}");
                            let before = model.entries.len();
                            model.entries.retain(|e| !e.key.starts_with(&prefix));
                            prop_assert_eq!(cache.invalidate_prefix(&prefix), (before - model.entries.len()) as u64);
                        }
                    }
                    let stats = cache.stats();
                    prop_assert!(stats.bytes <= max_bytes, "bytes {} > budget {}", stats.bytes, max_bytes);
                    prop_assert!(stats.entries <= max_entries);
                    prop_assert_eq!(stats.bytes, model.bytes());
                    prop_assert_eq!(stats.entries, model.entries.len() as u64);
                    let mut held = cache.keys();
                    held.sort();
                    let mut expected: Vec<String> = model
                        .entries
                        .iter()
                        .filter(|e| !model.expired(e))
                        .map(|e| e.key.clone())
                        .collect();
                    expected.sort();
                    prop_assert_eq!(held, expected);
                }
            }

            #[test]
            fn sharded_cache_never_exceeds_the_global_budget(
                max_bytes in 1u64..20_000,
                sizes in proptest::collection::vec((0..200u16, 0..2000u16), 1..400),
            ) {
                let cache: MemoryCache<u16, u16> = MemoryCache::builder()
                    .shards(8)
                    .max_bytes(max_bytes)
                    .weigher(|_, v: &u16| *v as usize)
                    .build();
                for (key, size) in sizes {
                    let outcome = cache.insert(key, size);
                    // Shard budgets differ by at most one byte.
                    let smallest_share = cache.max_entry_weight().unwrap();
                    if u64::from(size) <= smallest_share {
                        prop_assert_ne!(outcome, InsertOutcome::Refused);
                    } else if u64::from(size) > smallest_share + 1 {
                        prop_assert_eq!(outcome, InsertOutcome::Refused);
                    }
                    prop_assert!(cache.stats().bytes <= max_bytes);
                }
            }
        }
    }
}

//! Read-through over a [`MemoryCache`]: loads coalesced per key, and writes that can never be
//! overtaken by an older load.
//!
//! A load that started before a write may finish after it. Every key therefore has a
//! generation (striped: a collision only costs a skipped insert); writes and invalidations bump
//! it, a load inserts only if the generation it started under is still current, and loads are
//! coalesced per `(key, generation)`, so a read that starts after a write never joins a load
//! that started before it. Check-and-insert runs under a striped lock.

use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::{CacheStats, Clock, Coalescer, CoalescerStats, MemoryCache, Timestamp};

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
    /// How long expired entries are kept for [`ReadThrough::get_stale`] (`None`: not at all).
    pub keep_stale: Option<Duration>,
}

/// Where a key's generation stood when a fill began; see [`ReadThrough::ticket`].
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    stripe: usize,
    generation: u64,
}

/// A [`MemoryCache`] read through a loader: [`lookup`](Self::lookup) answers from memory or
/// runs one load per key and generation, and every write ([`store`](Self::store),
/// [`invalidate`](Self::invalidate), …) keeps loads that started before it from inserting.
/// `E` is the loader's error: never cached, handed to every coalesced caller.
pub struct ReadThrough<K, V, E> {
    cache: MemoryCache<K, V>,
    coalescer: Coalescer<(K, u64), V, E>,
    generations: Box<[AtomicU64]>,
    /// Bumped by predicate invalidation, which cannot name the keys it drops.
    epoch: AtomicU64,
    locks: Box<[Mutex<()>]>,
    hasher: std::hash::RandomState,
}

impl<K, V, E> ReadThrough<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    pub fn new(config: &TierConfig, weigher: impl Fn(&K, &V) -> usize + Send + Sync + 'static) -> Self {
        let mut builder = MemoryCache::builder().default_ttl(config.ttl).max_bytes(config.max_bytes).weigher(weigher);
        if let Some(n) = config.max_entries {
            builder = builder.max_entries(n);
        }
        if let Some(clock) = &config.clock {
            builder = builder.clock(clock.clone());
        }
        if let Some(keep) = config.keep_stale {
            builder = builder.keep_stale(keep);
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

    /// The cached value even if expired, while it is kept (see [`TierConfig::keep_stale`]), and
    /// its age: for answering when the origin cannot. Written and invalidated keys are never
    /// returned older than the write.
    pub fn get_stale(&self, key: &K) -> Option<(V, Duration)> {
        self.cache.get_stale(key)
    }

    /// The cached value, or the result of `load` (one load per key at a time), which is then
    /// cached unless a write or an invalidation happened while it ran. Errors are not cached.
    pub async fn get_or_load(&self, key: &K, load: impl Future<Output = Result<V, E>>) -> Result<V, E> {
        self.get_or_load_with_ttl(key, None, load).await
    }

    /// [`get_or_load`](Self::get_or_load), caching the value for `ttl` instead of the default.
    pub async fn get_or_load_with_ttl(&self, key: &K, ttl: Option<Duration>, load: impl Future<Output = Result<V, E>>) -> Result<V, E> {
        if let Some(value) = self.cache.get(key) {
            return Ok(value);
        }
        self.fill(key, ttl, load, |_| {}).await
    }

    /// After [`get`](Self::get) missed: runs `load` (one load per key and generation at a time)
    /// and caches its value for `ttl` (`None`: the default) unless a write or an invalidation
    /// happened while it ran; `cached` then runs under the key's lock, to update a second tier
    /// in the same order. Errors are not cached.
    pub async fn fill(&self, key: &K, ttl: Option<Duration>, load: impl Future<Output = Result<V, E>>, cached: impl FnOnce(&V)) -> Result<V, E> {
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
    }

    /// Starts a fill that runs outside [`fill`](Self::fill) (a body streamed from the origin,
    /// which may turn out too large to cache): take the ticket before the origin is read, and
    /// [`complete`](Self::complete) it after.
    pub fn ticket(&self, key: &K) -> Ticket {
        let stripe = self.stripe(key);
        Ticket { stripe, generation: self.generation(stripe) }
    }

    /// Caches `value` (if any) and runs `also` under the key's lock, unless a write or an
    /// invalidation happened since `ticket` was taken; returns whether it did.
    pub fn complete(&self, ticket: Ticket, key: K, value: Option<V>, also: impl FnOnce()) -> bool {
        let _guard = self.locks[ticket.stripe].lock();
        if self.generation(ticket.stripe) != ticket.generation {
            return false;
        }
        if let Some(value) = value {
            self.cache.insert(key, value);
        }
        also();
        true
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::MockClock;

    fn tier(clock: &MockClock, max_bytes: u64) -> TierConfig {
        TierConfig { ttl: Duration::from_secs(60), max_bytes, max_entries: None, clock: Some(SharedClock(Arc::new(clock.clone()))), keep_stale: None }
    }

    fn cache(clock: &MockClock) -> ReadThrough<String, Arc<str>, Arc<str>> {
        ReadThrough::new(&tier(clock, 1 << 20), |k: &String, v: &Arc<str>| k.len() + v.len())
    }

    fn k(s: &str) -> String {
        s.to_string()
    }

    fn v(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().build().unwrap()
    }

    #[test]
    fn concurrent_misses_run_one_load() {
        rt().block_on(async {
            let cache = Arc::new(cache(&MockClock::new()));
            let calls = Arc::new(AtomicUsize::new(0));
            let gate = Arc::new(tokio::sync::Notify::new());
            let mut tasks = Vec::new();
            for _ in 0..5 {
                let (cache, calls, gate) = (cache.clone(), calls.clone(), gate.clone());
                tasks.push(tokio::spawn(async move {
                    cache
                        .get_or_load(&k("doc"), async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            gate.notified().await;
                            Ok(v("loaded"))
                        })
                        .await
                }));
            }
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            gate.notify_one();
            for t in tasks {
                assert_eq!(t.await.unwrap().as_deref(), Ok("loaded"));
            }
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            // Cached now: a later call does not load.
            let again = cache.get_or_load(&k("doc"), async { Err(v("not called")) }).await;
            assert_eq!(again.as_deref(), Ok("loaded"));
            let (s, c) = (cache.stats(), cache.coalescing());
            assert_eq!((c.loads, c.coalesced, s.inserts, s.hits), (1, 4, 1, 1));
        });
    }

    #[test]
    fn failures_are_not_cached() {
        rt().block_on(async {
            let cache = cache(&MockClock::new());
            let doc = k("doc");
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let leader = cache.get_or_load(&doc, async {
                rx.await.unwrap();
                Err(v("unavailable"))
            });
            let waiter = cache.get_or_load(&doc, async { Ok(v("never")) });
            let release = async {
                tokio::task::yield_now().await;
                tx.send(()).unwrap();
            };
            let (a, b, ()) = tokio::join!(leader, waiter, release);
            assert_eq!(a.unwrap_err().as_ref(), "unavailable");
            assert_eq!(b.unwrap_err().as_ref(), "unavailable");
            assert_eq!(cache.stats().entries, 0);
            let ok = cache.get_or_load(&k("doc"), async { Ok(v("fresh")) }).await;
            assert_eq!(ok.as_deref(), Ok("fresh"));
            assert!(cache.get(&k("doc")).is_some());
        });
    }

    #[test]
    fn kept_stale_values_are_the_last_written_and_never_an_invalidated_one() {
        rt().block_on(async {
            let clock = MockClock::new();
            let config = TierConfig { keep_stale: Some(Duration::from_secs(600)), ..tier(&clock, 1 << 20) };
            let cache: ReadThrough<String, Arc<str>, Arc<str>> = ReadThrough::new(&config, |k: &String, v: &Arc<str>| k.len() + v.len());
            cache.get_or_load(&k("a"), async { Ok(v("loaded")) }).await.unwrap();
            cache.store(k("b"), v("old"));
            cache.store(k("b"), v("written"));
            clock.advance(Duration::from_secs(61));
            assert_eq!(cache.get(&k("a")), None);
            assert_eq!(cache.get_stale(&k("a")), Some((v("loaded"), Duration::from_secs(61))));
            assert_eq!(cache.get_stale(&k("b")).map(|(value, _)| value), Some(v("written")));
            cache.invalidate(&k("a"));
            cache.invalidate_if(|key, _| key == "b");
            assert_eq!((cache.get_stale(&k("a")), cache.get_stale(&k("b"))), (None, None));
            // Kept only for the configured time past expiry.
            cache.store(k("c"), v("c"));
            clock.advance(Duration::from_secs(60 + 600));
            assert_eq!(cache.get_stale(&k("c")), None);
        });
    }

    #[test]
    fn an_oversized_value_is_returned_without_being_cached() {
        rt().block_on(async {
            let cache: ReadThrough<String, Arc<str>, ()> = ReadThrough::new(&tier(&MockClock::new(), 8), |_, v: &Arc<str>| v.len());
            let big = cache.get_or_load(&k("doc"), async { Ok(v("0123456789")) }).await;
            assert_eq!(big.as_deref(), Ok("0123456789"));
            assert_eq!(cache.stats().entries, 0);
            assert_eq!(cache.stats().refusals, 1);
        });
    }

    #[test]
    fn a_loaded_value_expires_at_its_own_ttl() {
        rt().block_on(async {
            let clock = MockClock::new();
            let cache = cache(&clock);
            let loaded = cache.get_or_load_with_ttl(&k("url"), Some(Duration::from_secs(5)), async { Ok(v("u1")) }).await;
            assert_eq!(loaded.as_deref(), Ok("u1"));
            clock.advance(Duration::from_secs(5));
            assert_eq!(cache.get(&k("url")), None);
        });
    }

    #[test]
    fn a_load_that_began_before_a_write_does_not_overwrite_it() {
        rt().block_on(async {
            let cache = cache(&MockClock::new());
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let doc = k("doc");
            let old_load = cache.get_or_load(&doc, async {
                rx.await.unwrap();
                Ok(v("old"))
            });
            let write = async {
                tokio::task::yield_now().await;
                cache.store(k("doc"), v("new"));
                tx.send(()).unwrap();
            };
            let (old, ()) = tokio::join!(old_load, write);
            assert_eq!(old.as_deref(), Ok("old"), "the load's caller gets what it loaded");
            assert_eq!(cache.get(&k("doc")).as_deref(), Some("new"), "the write's value stays cached");
            cache.invalidate(&k("doc"));
            assert_eq!(cache.get(&k("doc")), None);
        });
    }
}

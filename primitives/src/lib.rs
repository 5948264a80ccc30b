//! Cache primitives for storehost: a memory LRU+TTL cache, load coalescing and an injectable
//! clock. No wasm, no HTTP.
//!
//! - [`MemoryCache`]: concurrent (`&self`, sharded), O(1) get and insert, LRU eviction under an
//!   entry budget and a weighed byte budget, a default TTL and per-entry TTLs, prefix and
//!   predicate invalidation, counters, and [`MemoryCache::get_or_load`] for read-through use.
//! - [`Coalescer`]: concurrent requests for one key share one load; usable on its own around
//!   any async call.
//! - [`Clock`]: [`SystemClock`] in production, [`MockClock`] in tests so that they never sleep.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use storehost_primitives::{MemoryCache, MockClock};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = MockClock::new();
//! let cache: MemoryCache<String, Bytes> = MemoryCache::builder()
//!     .max_bytes(256 << 20)
//!     .weigher(|key: &String, value: &Bytes| key.len() + value.len())
//!     .default_ttl(Duration::from_secs(30))
//!     .clock(clock.clone())
//!     .build();
//!
//! // Read-through: concurrent misses on one key make one origin call.
//! let doc = cache
//!     .get_or_load("artifacts/a.json".to_string(), async {
//!         Ok::<_, std::sync::Arc<str>>(Bytes::from_static(b"{\"a\":1}"))
//!     })
//!     .await
//!     .unwrap();
//! assert_eq!(cache.get("artifacts/a.json"), Some(doc));
//!
//! // Writes elsewhere invalidate what they change.
//! cache.invalidate_prefix("artifacts/");
//! assert_eq!(cache.stats().entries, 0);
//! # });
//! ```

mod clock;
mod coalesce;
mod disk_store;
mod index_log;
mod lru_table;
mod memory_cache;

pub use clock::{Clock, MockClock, SystemClock, Timestamp};
pub use coalesce::{Coalescer, CoalescerStats};
pub use disk_store::{DiskError, DiskStats, DiskStore, DiskStoreConfig, FsyncPolicy, MAX_KEY_LEN, RecoveryReport};
pub use memory_cache::{CacheStats, InsertOutcome, MemoryCache, MemoryCacheBuilder, MemoryCacheConfig};

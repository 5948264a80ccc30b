//! Cache primitives for storehost: a memory LRU+TTL cache, a disk LRU+TTL store, load
//! coalescing and an injectable clock. No wasm, no HTTP.
//!
//! - [`MemoryCache`]: concurrent (`&self`, sharded), O(1) get and insert, LRU eviction under an
//!   entry budget and a weighed byte budget, a default TTL and per-entry TTLs, prefix and
//!   predicate invalidation, counters.
//! - [`ReadThrough`]: a memory cache read through a loader, with loads coalesced per key and
//!   generation-guarded fills (a load that began before a write or an invalidation never caches
//!   its older value).
//! - [`DiskStore`]: values as files under a directory with a persistent, checksummed index;
//!   LRU+TTL with entry and byte budgets; crash-safe (temporary file + rename, torn and damaged
//!   entries are misses); one process at a time per directory.
//! - [`Coalescer`]: concurrent requests for one key share one load; usable on its own around
//!   any async call.
//! - [`Clock`]: [`SystemClock`] in production, [`MockClock`] in tests so that they never sleep.
//!
//! A two-tier read-through cache in front of a slow origin:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use storehost_primitives::{DiskStore, DiskStoreConfig, MockClock, ReadThrough, SharedClock, TierConfig};
//!
//! /// What the origin failed with; `Clone` so that every coalesced caller gets it.
//! type OriginError = Arc<str>;
//!
//! async fn origin_get(key: &str) -> Result<Bytes, OriginError> {
//!     Ok(Bytes::from(format!("contents of {key}")))
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = MockClock::new();
//! let tier = TierConfig {
//!     ttl: Duration::from_secs(30),
//!     max_bytes: 256 << 20,
//!     max_entries: None,
//!     clock: Some(SharedClock(Arc::new(clock.clone()))),
//!     keep_stale: None,
//! };
//! let memory: ReadThrough<String, Bytes, OriginError> =
//!     ReadThrough::new(&tier, |key: &String, value: &Bytes| key.len() + value.len());
//! let dir = tempfile::tempdir().unwrap();
//! let disk = DiskStore::open_with_clock(
//!     DiskStoreConfig::new(dir.path()).max_bytes(1 << 30).default_ttl(Duration::from_secs(3600)),
//!     clock.clone(),
//! )
//! .unwrap();
//!
//! let key = "artifacts/a.json".to_string();
//! // Memory first, then disk (a disk hit is promoted), then the origin: concurrent misses on
//! // one key make one origin call, and a failure is never cached.
//! let value = memory
//!     .get_or_load(&key, async {
//!         if let Some(hit) = disk.get(&key).map_err(|e| OriginError::from(e.to_string()))? {
//!             return Ok(hit);
//!         }
//!         let fresh = origin_get(&key).await?;
//!         disk.put(&key, &fresh).map_err(|e| OriginError::from(e.to_string()))?;
//!         Ok::<_, OriginError>(fresh)
//!     })
//!     .await
//!     .unwrap();
//! assert_eq!(memory.get(&key), Some(value.clone()));
//! assert_eq!(disk.get(&key).unwrap(), Some(value));
//!
//! // A write elsewhere invalidates what it changes: a key, or every key under a prefix. A load
//! // that began before the invalidation does not put the older value back.
//! memory.invalidate_if(|k, _| k.starts_with("artifacts/"));
//! disk.delete(&key).unwrap();
//! assert_eq!(memory.stats().entries, 0);
//!
//! // Time is injected: expiry is tested by advancing the clock, not by sleeping.
//! memory.store(key.clone(), Bytes::from_static(b"v2"));
//! clock.advance(Duration::from_secs(30));
//! assert_eq!(memory.get(&key), None);
//! assert_eq!(memory.stats().expirations, 1);
//! # });
//! ```

mod clock;
mod coalesce;
mod disk_store;
mod index_log;
mod lru_table;
mod memory_cache;
mod read_through;

pub use clock::{Clock, MockClock, SystemClock, Timestamp};
pub use coalesce::{Coalescer, CoalescerStats};
pub use disk_store::{
    DiskError, DiskStats, DiskStore, DiskStoreConfig, DiskValue, DiskWriter, FsyncPolicy, MAX_KEY_LEN, RecoveryReport, ValueDigest,
};
pub use memory_cache::{CacheStats, InsertOutcome, MemoryCache, MemoryCacheBuilder, MemoryCacheConfig};
pub use read_through::{ReadThrough, SharedClock, Ticket, TierConfig};

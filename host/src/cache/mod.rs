//! Caching decorators: one `Cached*Store` per domain, implementing the same trait as the origin
//! it wraps, so services are given the cached store and never the origin (the seed's "Unified
//! Domain Pattern").
//!
//! Layers, outermost first: memory tier (LRU+TTL, coalesced loads) → disk tier (artifact
//! blobs, when configured; a disk hit is promoted to memory) → origin (a plugin), with every
//! origin call counted by an [`OriginMeter`]. Failures are never cached; a write whose outcome
//! is unknown (timeout, trap, unavailable) invalidates what it touched. Invalidation is a method
//! of each store (by key, by prefix, by project, by workspace), so invalidation events from
//! other hosts can call the same methods.

pub mod artifact;
pub mod metrics;
pub mod project;
pub mod read_through;
pub mod runner;
pub mod ui;
pub mod workspace;

use std::time::Duration;

pub use artifact::CachedArtifactStore;
pub use metrics::{DomainMetrics, MetricsSource, OriginMeter, OriginStats};
pub use project::CachedProjectStore;
pub use read_through::{SharedClock, TierConfig};
pub use runner::MeteredRunnerStore;
pub use storehost_primitives::{DiskStoreConfig, FsyncPolicy};
pub use ui::CachedUiStore;
pub use workspace::CachedWorkspaceStore;

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
    /// The clock TTLs are measured with (the system clock by default).
    pub clock: Option<SharedClock>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { ttl: Duration::from_secs(600), max_bytes: 64 << 20, max_entries: None, disk: None, clock: None }
    }
}

impl CacheConfig {
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
        }
    }
}

/// Approximate bytes of a string held in a cache entry.
pub(crate) fn weight_str(s: &str) -> usize {
    s.len() + std::mem::size_of::<String>()
}

/// True when `result` is a failure after which the write may or may not have happened.
pub(crate) fn outcome_unknown<T>(result: &crate::domain::Result<T>) -> bool {
    result.as_ref().is_err_and(crate::domain::StoreError::outcome_unknown)
}

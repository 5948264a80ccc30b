//! Counters of one plugin, for `/metrics` and `/v1/admin/plugins`.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a plugin's counters and its pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PluginStats {
    pub calls: u64,
    pub errors: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub cancellations: u64,
    pub rejected: u64,
    pub instances_created: u64,
    pub instances_discarded: u64,
    pub pool_size: u32,
    pub pool_in_use: u32,
    pub pool_idle: u32,
    pub pool_waiting: u32,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) calls: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) traps: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) cancellations: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) instances_created: AtomicU64,
    pub(crate) instances_discarded: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// The counters, with the pool's gauges left at zero for the caller to fill.
    pub(crate) fn snapshot(&self) -> PluginStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PluginStats {
            calls: get(&self.calls),
            errors: get(&self.errors),
            traps: get(&self.traps),
            timeouts: get(&self.timeouts),
            cancellations: get(&self.cancellations),
            rejected: get(&self.rejected),
            instances_created: get(&self.instances_created),
            instances_discarded: get(&self.instances_discarded),
            ..PluginStats::default()
        }
    }
}

//! Counters of one plugin, for `/metrics` and `/v1/admin/plugins`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::base::{ErrorKind, LatencyHistogram};

/// A snapshot of a plugin's counters and its pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PluginStats {
    pub calls: u64,
    /// Calls that failed: the plugin or its backend (unavailable, internal, trapped, timed
    /// out) or the caller (cancelled). The origin's answers about the data are not failures.
    pub errors: u64,
    /// Failed calls by kind (only kinds seen).
    pub errors_by_kind: Vec<(ErrorKind, u64)>,
    /// Calls answered `not-found`, `conflict` or `invalid`, by kind (only kinds seen).
    pub answers_by_kind: Vec<(ErrorKind, u64)>,
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
    /// Calls by duration: counts per bucket of [`crate::base::LATENCY_BUCKETS`] (the last
    /// for longer ones), and their sum.
    pub latency_buckets: Vec<u64>,
    pub latency_sum_ns: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) calls: AtomicU64,
    /// Calls that ended in an error, by kind.
    by_kind: [AtomicU64; ErrorKind::ALL.len()],
    pub(crate) traps: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) cancellations: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) instances_created: AtomicU64,
    pub(crate) instances_discarded: AtomicU64,
    /// How long the guest took over each call.
    pub(crate) latency: LatencyHistogram,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// Counts a call that ended in an error of `kind`.
    pub(crate) fn error(&self, kind: ErrorKind) {
        bump(&self.by_kind[kind.index()]);
    }

    /// The counters, with the pool's gauges left at zero for the caller to fill.
    pub(crate) fn snapshot(&self) -> PluginStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let seen = |answers: bool| -> Vec<(ErrorKind, u64)> {
            ErrorKind::ALL
                .into_iter()
                .filter(|k| k.is_answer() == answers)
                .map(|k| (k, get(&self.by_kind[k.index()])))
                .filter(|(_, n)| *n > 0)
                .collect()
        };
        let errors_by_kind = seen(false);
        let (latency_buckets, latency_sum) = self.latency.snapshot();
        PluginStats {
            calls: get(&self.calls),
            errors: errors_by_kind.iter().map(|(_, n)| n).sum(),
            errors_by_kind,
            answers_by_kind: seen(true),
            traps: get(&self.traps),
            timeouts: get(&self.timeouts),
            cancellations: get(&self.cancellations),
            rejected: get(&self.rejected),
            instances_created: get(&self.instances_created),
            instances_discarded: get(&self.instances_discarded),
            latency_buckets,
            latency_sum_ns: latency_sum.as_nanos() as u64,
            ..PluginStats::default()
        }
    }
}

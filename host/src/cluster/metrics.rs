use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::metering::LatencyHistogram;

/// A host's counters of its part in the cluster.
#[derive(Default)]
pub(crate) struct ClusterMetrics {
    pub(crate) published: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) publish_failures: AtomicU64,
    pub(crate) backlog: AtomicU64,
    pub(crate) applied: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) full_flushes: AtomicU64,
    pub(crate) read_failures: AtomicU64,
    pub(crate) stale_bypasses: AtomicU64,
    pub(crate) min_seq_bypasses: AtomicU64,
    pub(crate) apply_latency: LatencyHistogram,
}

/// A snapshot of a host's cluster state and counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterStats {
    pub host_id: String,
    /// Every event up to here is applied.
    pub applied: u64,
    /// Events this host has heard of and not yet applied.
    pub lag: u64,
    /// Whether the caches are trusted (the last successful read of the log is recent).
    pub synced: bool,
    /// Since the last successful read of the log began.
    pub sync_age: Option<Duration>,
    /// Invalidations this host appended to the log.
    pub published: u64,
    /// Appends (each one statement and one notification for every write that was waiting).
    pub batches: u64,
    pub publish_failures: u64,
    /// Invalidations waiting to be appended again.
    pub backlog: u64,
    /// Other hosts' invalidations applied.
    pub applied_events: u64,
    /// This host's own events, passed over.
    pub skipped: u64,
    /// Events applied by a read no notification woke (a poll, or the listener's return).
    pub replayed: u64,
    /// Times the listener lost its connection.
    pub gaps: u64,
    /// Times every cache was dropped (the log no longer reached back to this host's position).
    pub full_flushes: u64,
    pub read_failures: u64,
    /// Reads sent to the origin because the host was not synced.
    pub stale_bypasses: u64,
    /// Reads sent to the origin because the host had not applied a caller's position in time.
    pub min_seq_bypasses: u64,
    /// From an event's commit to its application here: counts per bucket of
    /// `crate::metering::LATENCY_BUCKETS`, and the sum.
    pub apply_latency_buckets: Vec<u64>,
    pub apply_latency_sum: Duration,
}

impl ClusterMetrics {
    pub(crate) fn snapshot(&self) -> ClusterStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (apply_latency_buckets, apply_latency_sum) = self.apply_latency.snapshot();
        ClusterStats {
            published: load(&self.published),
            batches: load(&self.batches),
            publish_failures: load(&self.publish_failures),
            backlog: load(&self.backlog),
            applied_events: load(&self.applied),
            skipped: load(&self.skipped),
            replayed: load(&self.replayed),
            gaps: load(&self.gaps),
            full_flushes: load(&self.full_flushes),
            read_failures: load(&self.read_failures),
            stale_bypasses: load(&self.stale_bypasses),
            min_seq_bypasses: load(&self.min_seq_bypasses),
            apply_latency_buckets,
            apply_latency_sum,
            ..ClusterStats::default()
        }
    }
}

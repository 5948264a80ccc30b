//! The metrics of every domain (its origin calls from the meter, its caches from the cache),
//! rendered as Prometheus text.

use std::fmt::Write as _;
use std::time::Duration;

use crate::base::Domain;
use crate::cache::{CacheMetrics, CacheStats, CoalescerStats, DiskStats, NamedCache};
use crate::cluster::ClusterStats;
use crate::metering::{LATENCY_BUCKETS, OriginStats};

/// Everything known of one domain.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainMetrics {
    pub domain: Domain,
    /// Its memory caches (none when the domain is not cached).
    pub caches: Vec<NamedCache>,
    /// The disk tier, where the domain has one.
    pub disk: Option<DiskStats>,
    pub origin: OriginStats,
}

impl DomainMetrics {
    /// A domain's metrics from its meter's snapshot and, when it is cached, its cache.
    pub fn new(origin: OriginStats, cache: Option<&dyn CacheMetrics>) -> Self {
        DomainMetrics { domain: origin.domain, caches: cache.map(|c| c.caches()).unwrap_or_default(), disk: cache.and_then(|c| c.disk()), origin }
    }

    pub fn cache(&self, name: &str) -> Option<&NamedCache> {
        self.caches.iter().find(|c| c.name == name)
    }

    /// The memory caches and the disk tier, the latter as a cache named `disk`.
    pub fn tiers(&self) -> impl Iterator<Item = NamedCache> + '_ {
        let disk = self.disk.as_ref().map(|disk| NamedCache {
            name: "disk",
            stats: CacheStats {
                hits: disk.hits,
                misses: disk.misses,
                inserts: disk.inserts,
                evictions: disk.evictions,
                expirations: disk.expirations,
                entries: disk.entries,
                bytes: disk.bytes,
                ..CacheStats::default()
            },
            coalescing: CoalescerStats::default(),
        });
        self.caches.iter().cloned().chain(disk)
    }
}

/// Renders domain metrics as Prometheus text exposition.
pub fn render_prometheus(out: &mut String, domains: &[DomainMetrics]) {
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let per_cache = |f: &dyn Fn(&NamedCache) -> Vec<(&'static str, u64)>| {
        let mut rows = Vec::new();
        for d in domains {
            for c in d.tiers() {
                for (extra, v) in f(&c) {
                    let extra = if extra.is_empty() { String::new() } else { format!(",{extra}") };
                    rows.push((format!("domain=\"{}\",cache=\"{}\"{extra}", d.domain, c.name), v as f64));
                }
            }
        }
        rows
    };
    family(
        "storehost_cache_requests_total",
        "counter",
        "Cache lookups by result; stale counts misses then answered from an expired entry because the origin could not answer.",
        per_cache(&|c| vec![("result=\"hit\"", c.stats.hits), ("result=\"miss\"", c.stats.misses), ("result=\"stale\"", c.stats.stale_hits)]),
    );
    family("storehost_cache_evictions_total", "counter", "Entries evicted to make room.", per_cache(&|c| vec![("", c.stats.evictions)]));
    family("storehost_cache_expirations_total", "counter", "Entries dropped at their TTL.", per_cache(&|c| vec![("", c.stats.expirations)]));
    family(
        "storehost_cache_coalesced_total",
        "counter",
        "Reads that shared another read's origin load.",
        per_cache(&|c| vec![("", c.coalescing.coalesced)]),
    );
    family("storehost_cache_entries", "gauge", "Entries held.", per_cache(&|c| vec![("", c.stats.entries)]));
    family("storehost_cache_bytes", "gauge", "Bytes held.", per_cache(&|c| vec![("", c.stats.bytes)]));

    let mut calls = Vec::new();
    let mut errors = Vec::new();
    for d in domains {
        for (op, n) in &d.origin.by_operation {
            calls.push((format!("domain=\"{}\",operation=\"{op}\"", d.domain), *n as f64));
        }
        for (kind, n) in &d.origin.errors {
            errors.push((format!("domain=\"{}\",kind=\"{kind}\"", d.domain), *n as f64));
        }
    }
    family("storehost_origin_calls_total", "counter", "Calls to the origin by operation.", calls);
    family("storehost_origin_errors_total", "counter", "Origin errors by kind.", errors);
    let latencies = domains.iter().map(|d| (format!("domain=\"{}\"", d.domain), d.origin.latency_buckets.as_slice(), d.origin.latency_sum));
    render_histogram(out, "storehost_origin_latency_seconds", "Origin call latency.", latencies);
}

/// Renders a histogram family over [`LATENCY_BUCKETS`]: per series its labels, its counts per
/// bucket (not cumulative, the last for larger values) and the sum of the values.
pub fn render_histogram<'a>(out: &mut String, name: &str, help: &str, series: impl IntoIterator<Item = (String, &'a [u64], Duration)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (labels, buckets, sum) in series {
        let mut cumulative = 0;
        for (i, n) in buckets.iter().enumerate() {
            cumulative += n;
            let le = LATENCY_BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}\n{name}_count{{{labels}}} {cumulative}", sum.as_secs_f64());
    }
}

/// Renders a host's cluster state and counters as Prometheus text.
pub fn render_cluster(out: &mut String, s: &ClusterStats) {
    let host = format!("host=\"{}\"", s.host_id);
    let counters: [(&str, &str, u64); 12] = [
        ("storehost_cluster_events_published_total", "Invalidations this host appended to the log.", s.published),
        ("storehost_cluster_batches_total", "Appends to the log (one statement and one notification each).", s.batches),
        ("storehost_cluster_publish_failures_total", "Appends that failed (their invalidations are retried).", s.publish_failures),
        ("storehost_cluster_events_applied_total", "Other hosts' invalidations applied.", s.applied_events),
        ("storehost_cluster_events_skipped_total", "This host's own events, passed over.", s.skipped),
        ("storehost_cluster_events_replayed_total", "Events applied by a read no notification woke (a poll, the listener's return).", s.replayed),
        ("storehost_cluster_gaps_total", "Times the listener lost its connection.", s.gaps),
        ("storehost_cluster_full_flushes_total", "Times every cache was dropped.", s.full_flushes),
        ("storehost_cluster_read_failures_total", "Reads of the log that failed.", s.read_failures),
        ("storehost_cluster_stale_bypasses_total", "Reads sent to the origin because the host was not synced.", s.stale_bypasses),
        (
            "storehost_cluster_min_seq_bypasses_total",
            "Reads sent to the origin because a requested position was not applied in time.",
            s.min_seq_bypasses,
        ),
        ("storehost_cluster_applied_position", "The log position up to which every event is applied.", s.applied),
    ];
    for (name, help, value) in counters {
        let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{host}}} {value}");
    }
    let gauges = [
        ("storehost_cluster_lag_events", "Events heard of and not yet applied.", s.lag.to_string()),
        ("storehost_cluster_backlog_events", "Invalidations waiting to be appended again.", s.backlog.to_string()),
        ("storehost_cluster_synced", "1 while the caches are trusted (the last read of the log is recent).", u8::from(s.synced).to_string()),
        (
            "storehost_cluster_sync_age_seconds",
            "Since the last successful read of the log began.",
            s.sync_age.map_or("+Inf".into(), |a| a.as_secs_f64().to_string()),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{{host}}} {value}");
    }
    render_histogram(
        out,
        "storehost_cluster_apply_latency_seconds",
        "From an event's commit to its application on this host.",
        [(host, s.apply_latency_buckets.as_slice(), s.apply_latency_sum)],
    );
}

/// The peer-fill series of a host in a cluster (`[domains.artifact] peer_fill`).
pub fn render_peers(out: &mut String, host_id: &str, s: &crate::cluster::PeerStats) {
    let host = format!("host=\"{host_id}\"");
    let name = "storehost_peer_requests_total";
    let _ = writeln!(
        out,
        "# HELP {name} Reads of keys another member owns, asked of the owner, by result (skipped: the owner had just failed).\n# TYPE {name} counter"
    );
    for (result, n) in s.requests {
        let _ = writeln!(out, "{name}{{{host},result=\"{result}\"}} {n}");
    }
    let series = [
        ("storehost_peer_served_total", "counter", "Reads this host answered for other members, as the keys' owner.", s.served),
        ("storehost_peer_hot_copies_total", "counter", "Owners' answers kept as hot copies.", s.hot),
        ("storehost_peer_ring_changes_total", "counter", "Changes of the ring of members seen.", s.ring_changes),
        ("storehost_peer_members", "gauge", "Live members on the ring, this host among them.", s.members.len() as u64),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{host}}} {value}");
    }
}

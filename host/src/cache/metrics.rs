//! Metrics of every domain: cache requests by result, evictions, expirations, coalesced loads,
//! origin calls and errors by kind, origin latency; rendered as Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use storehost_primitives::{CacheStats, CoalescerStats, DiskStats};

use crate::domain::{Result, StoreError};

/// Upper bounds of the latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 16] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

const ERROR_KINDS: [&str; 8] =
    ["not-found", "conflict", "invalid", "unavailable", "internal", "plugin-trapped", "plugin-timeout", "cancelled"];

/// Counts the calls a cached store makes to its origin.
#[derive(Default)]
pub struct OriginMeter {
    calls: AtomicU64,
    errors: [AtomicU64; ERROR_KINDS.len()],
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_ns: AtomicU64,
    /// Calls per operation (`get`, `put`, …).
    by_operation: Mutex<Vec<(&'static str, u64)>>,
}

impl OriginMeter {
    /// Runs one origin call and records it.
    pub async fn call<T>(&self, operation: &'static str, call: impl Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let result = call.await;
        self.record(operation, started.elapsed(), result.as_ref().err());
        result
    }

    fn record(&self, operation: &'static str, elapsed: Duration, error: Option<&StoreError>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        {
            let mut ops = self.by_operation.lock();
            match ops.iter_mut().find(|(op, _)| *op == operation) {
                Some((_, n)) => *n += 1,
                None => ops.push((operation, 1)),
            }
        }
        if let Some(e) = error {
            let i = ERROR_KINDS.iter().position(|k| *k == e.kind()).unwrap_or(4);
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ns.fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> OriginStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OriginStats {
            calls: load(&self.calls),
            errors: ERROR_KINDS.iter().zip(&self.errors).map(|(k, n)| (*k, load(n))).filter(|(_, n)| *n > 0).collect(),
            by_operation: self.by_operation.lock().clone(),
            latency_buckets: self.buckets.iter().map(load).collect(),
            latency_sum: Duration::from_nanos(load(&self.latency_sum_ns)),
        }
    }
}

/// A snapshot of an [`OriginMeter`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OriginStats {
    pub calls: u64,
    /// Errors by kind (only kinds seen).
    pub errors: Vec<(&'static str, u64)>,
    pub by_operation: Vec<(&'static str, u64)>,
    /// Counts per bucket of [`LATENCY_BUCKETS`] (not cumulative), plus one for larger values.
    pub latency_buckets: Vec<u64>,
    pub latency_sum: Duration,
}

impl OriginStats {
    /// Calls of one operation.
    pub fn calls_of(&self, operation: &str) -> u64 {
        self.by_operation.iter().find(|(op, _)| *op == operation).map_or(0, |(_, n)| *n)
    }

    pub fn errors_of(&self, kind: &str) -> u64 {
        self.errors.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n)
    }
}

/// One cache of a domain.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedCache {
    /// `blob`, `list`, `url`, `project`, … .
    pub name: &'static str,
    pub stats: CacheStats,
    pub coalescing: CoalescerStats,
}

/// Everything a cached store (or the runner store) knows about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainMetrics {
    pub domain: &'static str,
    pub caches: Vec<NamedCache>,
    /// The disk tier, where the domain has one.
    pub disk: Option<DiskStats>,
    pub origin: OriginStats,
}

impl DomainMetrics {
    pub fn cache(&self, name: &str) -> Option<&NamedCache> {
        self.caches.iter().find(|c| c.name == name)
    }
}

/// Anything that reports [`DomainMetrics`].
pub trait MetricsSource: Send + Sync {
    fn metrics(&self) -> DomainMetrics;
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
            for c in &d.caches {
                for (extra, v) in f(c) {
                    let extra = if extra.is_empty() { String::new() } else { format!(",{extra}") };
                    rows.push((format!("domain=\"{}\",cache=\"{}\"{extra}", d.domain, c.name), v as f64));
                }
            }
            if let Some(disk) = &d.disk {
                let c = NamedCache {
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
                };
                for (extra, v) in f(&c) {
                    let extra = if extra.is_empty() { String::new() } else { format!(",{extra}") };
                    rows.push((format!("domain=\"{}\",cache=\"disk\"{extra}", d.domain), v as f64));
                }
            }
        }
        rows
    };
    family(
        "storehost_cache_requests_total",
        "counter",
        "Cache lookups by result.",
        per_cache(&|c| vec![("result=\"hit\"", c.stats.hits), ("result=\"miss\"", c.stats.misses)]),
    );
    family("storehost_cache_evictions_total", "counter", "Entries evicted to make room.", per_cache(&|c| vec![("", c.stats.evictions)]));
    family("storehost_cache_expirations_total", "counter", "Entries dropped at their TTL.", per_cache(&|c| vec![("", c.stats.expirations)]));
    family("storehost_cache_coalesced_total", "counter", "Reads that shared another read's origin load.", per_cache(&|c| vec![("", c.coalescing.coalesced)]));
    family("storehost_cache_entries", "gauge", "Entries held.", per_cache(&|c| vec![("", c.stats.entries)]));
    family("storehost_cache_bytes", "gauge", "Bytes held.", per_cache(&|c| vec![("", c.stats.bytes)]));

    let mut calls = Vec::new();
    let mut errors = Vec::new();
    let mut buckets = Vec::new();
    for d in domains {
        for (op, n) in &d.origin.by_operation {
            calls.push((format!("domain=\"{}\",operation=\"{op}\"", d.domain), *n as f64));
        }
        for (kind, n) in &d.origin.errors {
            errors.push((format!("domain=\"{}\",kind=\"{kind}\"", d.domain), *n as f64));
        }
        let mut cumulative = 0;
        for (i, n) in d.origin.latency_buckets.iter().enumerate() {
            cumulative += n;
            let le = LATENCY_BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            buckets.push((format!("domain=\"{}\",le=\"{le}\"", d.domain), cumulative as f64));
        }
    }
    family("storehost_origin_calls_total", "counter", "Calls to the origin by operation.", calls);
    family("storehost_origin_errors_total", "counter", "Origin errors by kind.", errors);
    let _ = writeln!(out, "# HELP storehost_origin_latency_seconds Origin call latency.\n# TYPE storehost_origin_latency_seconds histogram");
    for (labels, v) in buckets {
        let _ = writeln!(out, "storehost_origin_latency_seconds_bucket{{{labels}}} {v}");
    }
    for d in domains {
        let _ = writeln!(out, "storehost_origin_latency_seconds_sum{{domain=\"{}\"}} {}", d.domain, d.origin.latency_sum.as_secs_f64());
        let _ = writeln!(out, "storehost_origin_latency_seconds_count{{domain=\"{}\"}} {}", d.domain, d.origin.calls);
    }
}

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::base::{Domain, ErrorKind, Result, StoreError};
use crate::domain::Operation;

/// Upper bounds of the latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 16] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A latency histogram over [`LATENCY_BUCKETS`], safe to record into from any thread.
#[derive(Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl LatencyHistogram {
    pub fn record(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Counts per bucket (not cumulative, the last for larger values) and the sum.
    pub fn snapshot(&self) -> (Vec<u64>, Duration) {
        (self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect(), Duration::from_nanos(self.sum_ns.load(Ordering::Relaxed)))
    }
}

/// The upper bound of the bucket that holds the `q` quantile (0 < q ≤ 1) of a histogram's values
/// (counts per bucket of [`LATENCY_BUCKETS`], the last for larger values: infinity); `None`
/// without values.
pub fn latency_quantile(buckets: &[u64], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut cumulative = 0;
    buckets.iter().enumerate().find_map(|(i, n)| {
        cumulative += n;
        (cumulative >= rank).then(|| LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY))
    })
}

/// Counts the calls made to one domain's store: per operation, errors by kind, latency.
pub struct OriginMeter<O: Operation> {
    calls: Box<[AtomicU64]>,
    errors: [AtomicU64; ErrorKind::ALL.len()],
    latency: LatencyHistogram,
    operations: PhantomData<O>,
}

impl<O: Operation> Default for OriginMeter<O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O: Operation> OriginMeter<O> {
    pub fn new() -> Self {
        Self {
            calls: O::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            errors: Default::default(),
            latency: LatencyHistogram::default(),
            operations: PhantomData,
        }
    }

    /// Runs one call of `operation` and records it.
    pub async fn call<T>(&self, operation: O, call: impl Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let result = call.await;
        self.record(operation, started.elapsed(), result.as_ref().err());
        result
    }

    fn record(&self, operation: O, elapsed: Duration, error: Option<&StoreError>) {
        self.calls[operation.index()].fetch_add(1, Ordering::Relaxed);
        if let Some(e) = error {
            self.errors[e.kind().index()].fetch_add(1, Ordering::Relaxed);
        }
        self.latency.record(elapsed);
    }

    pub fn snapshot(&self) -> OriginStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let by_operation: Vec<(&'static str, u64)> = O::ALL.iter().zip(self.calls.iter()).map(|(op, n)| (op.name(), load(n))).collect();
        let (latency_buckets, latency_sum) = self.latency.snapshot();
        OriginStats {
            domain: O::DOMAIN,
            calls: by_operation.iter().map(|(_, n)| n).sum(),
            errors: ErrorKind::ALL.into_iter().zip(&self.errors).map(|(k, n)| (k, load(n))).filter(|(_, n)| *n > 0).collect(),
            by_operation,
            latency_buckets,
            latency_sum,
        }
    }
}

/// A snapshot of an [`OriginMeter`].
#[derive(Clone, Debug, PartialEq)]
pub struct OriginStats {
    pub domain: Domain,
    pub calls: u64,
    /// Errors by kind (only kinds seen).
    pub errors: Vec<(ErrorKind, u64)>,
    /// Calls of every operation of the domain, in declaration order.
    pub by_operation: Vec<(&'static str, u64)>,
    /// Counts per bucket of [`LATENCY_BUCKETS`] (not cumulative), plus one for larger values.
    pub latency_buckets: Vec<u64>,
    pub latency_sum: Duration,
}

impl OriginStats {
    /// Calls of one operation.
    pub fn calls_of(&self, operation: impl Operation) -> u64 {
        self.by_operation.iter().find(|(op, _)| *op == operation.name()).map_or(0, |(_, n)| *n)
    }

    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n)
    }
}

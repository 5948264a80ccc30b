use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::base::{Domain, ErrorKind, LatencyHistogram, Result, StoreError};
use crate::domain::Operation;

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

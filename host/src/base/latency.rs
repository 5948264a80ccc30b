//! A latency histogram over fixed buckets, shared by every layer that times calls (plugin calls,
//! origin calls, the cluster's applications), and the quantiles read off it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantile_is_the_bound_of_the_bucket_that_holds_it() {
        let mut buckets = vec![0; LATENCY_BUCKETS.len() + 1];
        assert_eq!(latency_quantile(&buckets, 0.5), None);
        buckets[2] = 98; // ≤ 250 µs
        buckets[6] = 1; // ≤ 5 ms
        buckets[LATENCY_BUCKETS.len()] = 1; // over 10 s
        assert_eq!(latency_quantile(&buckets, 0.5), Some(0.00025));
        assert_eq!(latency_quantile(&buckets, 0.98), Some(0.00025));
        assert_eq!(latency_quantile(&buckets, 0.99), Some(0.005));
        assert_eq!(latency_quantile(&buckets, 1.0), Some(f64::INFINITY));
        let histogram = LatencyHistogram::default();
        histogram.record(Duration::from_micros(30));
        histogram.record(Duration::from_millis(3));
        let (counts, sum) = histogram.snapshot();
        assert_eq!((counts[0], counts[6], sum), (1, 1, Duration::from_micros(3030)));
    }
}

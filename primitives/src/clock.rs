//! Time as the caches see it: a wall-clock [`Timestamp`] read from an injectable [`Clock`].
//!
//! Wall-clock time (not a monotonic `Instant`) because the disk store persists expiry times and
//! must compare them after a restart. Tests inject a [`MockClock`] and advance it instead of
//! sleeping.

use std::fmt;
use std::ops::Add;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time: nanoseconds since the UNIX epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The UNIX epoch.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// Later than every real time; used internally as "never expires".
    pub(crate) const NEVER: Timestamp = Timestamp(u64::MAX);

    /// A timestamp `nanos` nanoseconds after the UNIX epoch.
    pub const fn from_unix_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }

    /// Nanoseconds since the UNIX epoch.
    pub const fn as_unix_nanos(self) -> u64 {
        self.0
    }

    /// The timestamp of a [`SystemTime`] (saturating at the epoch and at year 2554).
    pub fn from_system_time(time: SystemTime) -> Self {
        let nanos = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Timestamp(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// `self + duration`, saturating instead of overflowing.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(nanos))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        self.saturating_add(rhs)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = Duration::from_nanos(self.0);
        write!(f, "Timestamp({}.{:09})", d.as_secs(), d.subsec_nanos())
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
///
/// On Linux and FreeBSD it reads `CLOCK_REALTIME_COARSE`, which costs a few nanoseconds (a vDSO
/// read of the last tick) instead of ~20 ns, at a resolution of one scheduler tick (1–4 ms).
/// Cache TTLs are seconds or more, so an expiry may be seen up to one tick late; tests that need
/// an exact edge use [`MockClock`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Timestamp {
        coarse_now()
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
#[inline]
fn coarse_now() -> Timestamp {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    let nanos = (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64);
    Timestamp(nanos)
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
#[inline]
fn coarse_now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

/// A clock that moves only when told to, for tests.
///
/// Clones share the same time, so a test keeps one handle and gives a clone to the cache.
///
/// ```
/// use std::time::Duration;
/// use storehost_primitives::{Clock, MockClock};
///
/// let clock = MockClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now().saturating_duration_since(start), Duration::from_secs(5));
/// ```
#[derive(Clone, Debug)]
pub struct MockClock {
    nanos: Arc<AtomicU64>,
}

impl MockClock {
    /// A mock clock starting at 2024-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self::starting_at(Timestamp::from_unix_nanos(1_704_067_200 * 1_000_000_000))
    }

    /// A mock clock starting at `start`.
    pub fn starting_at(start: Timestamp) -> Self {
        MockClock { nanos: Arc::new(AtomicU64::new(start.as_unix_nanos())) }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock to `to` (which may be earlier than now).
    pub fn set(&self, to: Timestamp) {
        self.nanos.store(to.as_unix_nanos(), Ordering::SeqCst);
    }
}

impl Default for MockClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MockClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.nanos.load(Ordering::SeqCst))
    }
}

/// The clock a cache holds: the system clock without dynamic dispatch, or an injected one.
#[derive(Clone)]
pub(crate) enum ClockSource {
    System,
    Custom(Arc<dyn Clock>),
}

impl ClockSource {
    pub(crate) fn custom(clock: impl Clock + 'static) -> Self {
        ClockSource::Custom(Arc::new(clock))
    }

    #[inline]
    pub(crate) fn now(&self) -> Timestamp {
        match self {
            ClockSource::System => SystemClock.now(),
            ClockSource::Custom(clock) => clock.now(),
        }
    }
}

impl fmt::Debug for ClockSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockSource::System => f.write_str("SystemClock"),
            ClockSource::Custom(_) => f.write_str("CustomClock"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_close_to_system_time() {
        let precise = Timestamp::from_system_time(SystemTime::now());
        let coarse = SystemClock.now();
        let skew = if precise > coarse { precise.saturating_duration_since(coarse) } else { coarse.saturating_duration_since(precise) };
        assert!(skew < Duration::from_millis(100), "skew {skew:?}");
    }

    #[test]
    fn mock_clock_advances_and_sets_shared_time() {
        let clock = MockClock::new();
        let other = clock.clone();
        let start = clock.now();
        other.advance(Duration::from_millis(1500));
        assert_eq!(clock.now().saturating_duration_since(start), Duration::from_millis(1500));
        clock.set(start);
        assert_eq!(other.now(), start);
    }

    #[test]
    fn timestamp_arithmetic_saturates() {
        assert_eq!(Timestamp::NEVER + Duration::from_secs(1), Timestamp::NEVER);
        assert_eq!(Timestamp::EPOCH.saturating_duration_since(Timestamp::NEVER), Duration::ZERO);
        assert_eq!(Timestamp::from_system_time(UNIX_EPOCH), Timestamp::EPOCH);
    }
}

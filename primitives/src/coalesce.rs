//! Load coalescing: concurrent requests for one key share a single load.
//!
//! The first caller for a key becomes the *leader* and runs its load; callers arriving while it
//! runs *wait* and receive a clone of its result, success or error. Nothing is remembered after
//! the load completes: a failure is never cached, and the next caller starts a new load.
//!
//! Cancellation: if the leader's future is dropped (or its load panics) before it finishes, its
//! waiters wake up and retry; one of them becomes the new leader and runs its own load. A waiter
//! that is dropped simply stops waiting.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::watch;

type FlightResult<V, E> = Option<Result<V, E>>;

/// One load in progress. Waiters hold only receivers, so when the leader's handle and the map's
/// handle are gone the sender drops and waiters see the load as abandoned.
struct Flight<V, E> {
    result: watch::Sender<FlightResult<V, E>>,
}

/// Counters of a coalescer, as a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoalescerStats {
    /// Loads started (each leader's load counts once).
    pub loads: u64,
    /// Callers that received the result of another caller's load instead of loading.
    pub coalesced: u64,
    /// Loads running now.
    pub in_flight: u64,
}

/// The key-to-flight map behind [`Coalescer`].
///
/// Flights are stored type-erased so that one map (one per cache) can serve loads with different
/// error types; a caller whose types do not match a running flight loads on its own.
pub(crate) struct FlightMap<K> {
    flights: Mutex<std::collections::HashMap<K, Arc<dyn Any + Send + Sync>, foldhash::fast::RandomState>>,
    loads: AtomicU64,
    coalesced: AtomicU64,
}

enum Role<V, E> {
    Lead(Arc<Flight<V, E>>),
    Wait(watch::Receiver<FlightResult<V, E>>),
    Alone,
}

impl<K: Hash + Eq> FlightMap<K> {
    pub(crate) fn new() -> Self {
        FlightMap { flights: Mutex::new(Default::default()), loads: AtomicU64::new(0), coalesced: AtomicU64::new(0) }
    }

    pub(crate) fn stats(&self) -> CoalescerStats {
        CoalescerStats {
            loads: self.loads.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
            in_flight: self.flights.lock().len() as u64,
        }
    }
}

impl<K: Hash + Eq + Clone> FlightMap<K> {
    pub(crate) async fn run<V, E>(&self, key: K, load: impl Future<Output = Result<V, E>>) -> Result<V, E>
    where
        V: Clone + Send + Sync + 'static,
        E: Clone + Send + Sync + 'static,
    {
        loop {
            match self.join::<V, E>(&key) {
                Role::Wait(mut rx) => {
                    let outcome = rx.wait_for(Option::is_some).await.map(|r| r.clone());
                    match outcome {
                        Ok(Some(result)) => {
                            self.coalesced.fetch_add(1, Ordering::Relaxed);
                            return result;
                        }
                        // The leader was dropped before finishing: try again, perhaps as leader.
                        _ => continue,
                    }
                }
                Role::Lead(flight) => {
                    self.loads.fetch_add(1, Ordering::Relaxed);
                    let guard = LeaderGuard { map: self, key: &key, flight: &flight };
                    let result = load.await;
                    flight.result.send_replace(Some(result.clone()));
                    drop(guard);
                    return result;
                }
                Role::Alone => {
                    self.loads.fetch_add(1, Ordering::Relaxed);
                    return load.await;
                }
            }
        }
    }

    fn join<V, E>(&self, key: &K) -> Role<V, E>
    where
        V: Send + Sync + 'static,
        E: Send + Sync + 'static,
    {
        let mut flights = self.flights.lock();
        if let Some(any) = flights.get(key) {
            return match any.clone().downcast::<Flight<V, E>>() {
                Ok(flight) => Role::Wait(flight.result.subscribe()),
                Err(_) => Role::Alone,
            };
        }
        let flight = Arc::new(Flight { result: watch::channel(None).0 });
        flights.insert(key.clone(), flight.clone());
        Role::Lead(flight)
    }
}

/// Removes the leader's flight from the map when the leader finishes, is dropped or panics.
struct LeaderGuard<'a, K: Hash + Eq, V, E> {
    map: &'a FlightMap<K>,
    key: &'a K,
    flight: &'a Arc<Flight<V, E>>,
}

impl<K: Hash + Eq, V, E> Drop for LeaderGuard<'_, K, V, E> {
    fn drop(&mut self) {
        let mut flights = self.map.flights.lock();
        let ours = flights.get(self.key).is_some_and(|any| std::ptr::addr_eq(Arc::as_ptr(any), Arc::as_ptr(self.flight)));
        if ours {
            flights.remove(self.key);
        }
    }
}

/// Runs at most one load per key at a time and shares its result with concurrent callers.
///
/// The host's cache decorators put one around origin calls so that a burst of misses on one key
/// makes one plugin call. `V` and `E` must be `Clone` (wrap an error in `Arc` if it is not).
///
/// # Examples
///
/// ```
/// use storehost_primitives::Coalescer;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let coalescer: Coalescer<String, u64, String> = Coalescer::new();
/// let (a, b) = tokio::join!(
///     coalescer.run("answer".to_string(), async {
///         tokio::task::yield_now().await; // still loading when the second caller arrives
///         Ok(42)
///     }),
///     coalescer.run("answer".to_string(), async { unreachable!("coalesced") }),
/// );
/// assert_eq!((a, b), (Ok(42), Ok(42)));
/// assert_eq!(coalescer.stats().loads, 1);
/// assert_eq!(coalescer.stats().coalesced, 1);
/// # });
/// ```
pub struct Coalescer<K, V, E> {
    flights: FlightMap<K>,
    _types: PhantomData<fn() -> (V, E)>,
}

impl<K, V, E> Coalescer<K, V, E>
where
    K: Hash + Eq + Clone,
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// An empty coalescer.
    pub fn new() -> Self {
        Coalescer { flights: FlightMap::new(), _types: PhantomData }
    }

    /// Runs `load` for `key`, unless a load for `key` is already running, in which case waits
    /// for that load and returns a clone of its result; `load` is then dropped without being
    /// polled. If the running load is abandoned (its caller dropped), waiters retry.
    ///
    /// # Errors
    /// The error of the load whose result this call receives.
    pub async fn run(&self, key: K, load: impl Future<Output = Result<V, E>>) -> Result<V, E> {
        self.flights.run(key, load).await
    }

    /// Counters: loads started, callers coalesced, loads in flight.
    pub fn stats(&self) -> CoalescerStats {
        self.flights.stats()
    }
}

impl<K, V, E> Default for Coalescer<K, V, E>
where
    K: Hash + Eq + Clone,
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, E> fmt::Debug for Coalescer<K, V, E>
where
    K: Hash + Eq + Clone,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coalescer").field("stats", &self.flights.stats()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::sync::{Notify, oneshot};

    type Co = Coalescer<&'static str, u32, String>;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().build().unwrap()
    }

    /// Yields to the scheduler enough times for spawned tasks to reach their first await.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[test]
    fn concurrent_callers_share_one_load() {
        rt().block_on(async {
            let co = Arc::new(Co::new());
            let gate = Arc::new(Notify::new());
            let calls = Arc::new(AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let (co, gate, calls) = (co.clone(), gate.clone(), calls.clone());
                tasks.push(tokio::spawn(async move {
                    co.run("k", async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        gate.notified().await;
                        Ok(7)
                    })
                    .await
                }));
            }
            settle().await;
            assert_eq!(co.stats().in_flight, 1);
            gate.notify_one();
            for t in tasks {
                assert_eq!(t.await.unwrap(), Ok(7));
            }
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            assert_eq!(co.stats(), CoalescerStats { loads: 1, coalesced: 7, in_flight: 0 });
        });
    }

    #[test]
    fn errors_reach_every_waiter_and_are_not_remembered() {
        rt().block_on(async {
            let co = Co::new();
            let (tx, rx) = oneshot::channel::<()>();
            let leader = co.run("k", async {
                rx.await.unwrap();
                Err("origin down".to_string())
            });
            let waiter = co.run("k", async { Ok(1) });
            let release = async {
                settle().await;
                tx.send(()).unwrap();
            };
            let (a, b, ()) = tokio::join!(leader, waiter, release);
            assert_eq!(a, Err("origin down".to_string()));
            assert_eq!(b, Err("origin down".to_string()));
            // The failure is gone: the next call loads again.
            assert_eq!(co.run("k", async { Ok(2) }).await, Ok(2));
            assert_eq!(co.stats().loads, 2);
        });
    }

    #[test]
    fn different_keys_load_independently() {
        rt().block_on(async {
            let co = Co::new();
            let (a, b) = tokio::join!(co.run("a", async { Ok(1) }), co.run("b", async { Ok(2) }));
            assert_eq!((a, b), (Ok(1), Ok(2)));
            assert_eq!(co.stats().loads, 2);
            assert_eq!(co.stats().coalesced, 0);
        });
    }

    #[test]
    fn a_dropped_leader_hands_over_to_a_waiter() {
        rt().block_on(async {
            let co = Arc::new(Co::new());
            let leader = {
                let co = co.clone();
                tokio::spawn(async move { co.run("k", std::future::pending()).await })
            };
            settle().await;
            let waiter = {
                let co = co.clone();
                tokio::spawn(async move { co.run("k", async { Ok(99) }).await })
            };
            settle().await;
            assert!(!waiter.is_finished());
            leader.abort();
            assert!(leader.await.unwrap_err().is_cancelled());
            // The waiter retries, becomes the leader and runs its own load.
            assert_eq!(waiter.await.unwrap(), Ok(99));
            assert_eq!(co.stats(), CoalescerStats { loads: 2, coalesced: 0, in_flight: 0 });
        });
    }

    #[test]
    fn a_panicking_load_does_not_strand_waiters() {
        rt().block_on(async {
            let co = Arc::new(Co::new());
            let leader = {
                let co = co.clone();
                tokio::spawn(async move {
                    co.run("k", async {
                        tokio::task::yield_now().await;
                        panic!("load panicked")
                    })
                    .await
                })
            };
            let waiter = {
                let co = co.clone();
                tokio::spawn(async move { co.run("k", async { Ok(5) }).await })
            };
            assert!(leader.await.unwrap_err().is_panic());
            assert_eq!(waiter.await.unwrap(), Ok(5));
        });
    }

    #[test]
    fn works_across_threads() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        rt.block_on(async {
            let co = Arc::new(Coalescer::<u32, u32, Arc<str>>::new());
            let gate = Arc::new(tokio::sync::Semaphore::new(0));
            let mut tasks = Vec::new();
            for _ in 0..32 {
                let (co, gate) = (co.clone(), gate.clone());
                tasks.push(tokio::spawn(async move {
                    co.run(1, async {
                        let _permit = gate.acquire().await.unwrap();
                        Ok(11)
                    })
                    .await
                }));
            }
            // Callers that arrive after the load finished start loads of their own, so only the
            // total is fixed.
            while co.stats().in_flight == 0 {
                tokio::task::yield_now().await;
            }
            gate.add_permits(1);
            for t in tasks {
                assert_eq!(t.await.unwrap(), Ok(11));
            }
            let stats = co.stats();
            assert_eq!(stats.loads + stats.coalesced, 32);
            assert!(stats.loads >= 1);
        });
    }
}

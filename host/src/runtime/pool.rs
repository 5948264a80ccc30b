//! Warm instances of one plugin: at most `instances` calls run at once, up to `queue` more
//! wait for a free instance, and any further call fails at once with `unavailable`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::base::{Ctx, StoreError};

pub(crate) struct Pool<W> {
    idle: Mutex<Vec<W>>,
    slots: Arc<Semaphore>,
    size: u32,
    waiting: AtomicU32,
    queue: u32,
}

/// One call counted among those waiting, until it is dropped.
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The right to run one call, with the warm instance to run it on (if one was idle).
pub(crate) struct Lease<W> {
    _permit: OwnedSemaphorePermit,
    pub(crate) warm: Option<W>,
}

impl<W> Pool<W> {
    pub(crate) fn new(size: u32, queue: u32) -> Self {
        Self { idle: Mutex::new(Vec::new()), slots: Arc::new(Semaphore::new(size as usize)), size, waiting: AtomicU32::new(0), queue }
    }

    /// Adds a warm instance (at start-up).
    pub(crate) fn put_idle(&self, warm: W) {
        self.idle.lock().push(warm);
    }

    /// A permit and the instance to use with it. A call that finds every instance busy waits
    /// (in a boxed future: the common case stays small) until one is free, `deadline()` passes
    /// or the caller cancels.
    pub(crate) async fn acquire(&self, plugin: &str, ctx: &Ctx, deadline: impl FnOnce() -> Instant) -> Result<Lease<W>, StoreError> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => Box::pin(self.wait(plugin, ctx, deadline())).await?,
        };
        let warm = self.idle.lock().pop();
        Ok(Lease { _permit: permit, warm })
    }

    /// Waits for a permit, as one of at most `queue` callers.
    async fn wait(&self, plugin: &str, ctx: &Ctx, deadline: Instant) -> Result<OwnedSemaphorePermit, StoreError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(StoreError::Unavailable(format!(
                "plugin {plugin}: all {} instances busy and {} calls already waiting",
                self.size, self.queue
            )));
        }
        // Counted out however the wait ends, also when the caller is dropped while waiting (a
        // client that went away).
        let _counted = Waiting(&self.waiting);
        tokio::select! {
            permit = self.slots.clone().acquire_owned() => Ok(permit.expect("the semaphore is never closed")),
            _ = tokio::time::sleep_until(deadline.into()) => Err(StoreError::Unavailable(format!(
                "plugin {plugin}: no instance became free before the call's deadline"
            ))),
            _ = ctx.cancellation().cancelled() => Err(StoreError::Cancelled),
        }
    }

    /// Returns a healthy instance; the lease's slot frees when it is dropped.
    pub(crate) fn release(&self, warm: W, lease: Lease<W>) {
        self.idle.lock().push(warm);
        drop(lease);
    }

    pub(crate) fn in_use(&self) -> u32 {
        self.size - self.slots.available_permits() as u32
    }

    pub(crate) fn idle(&self) -> u32 {
        self.idle.lock().len() as u32
    }

    pub(crate) fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Relaxed)
    }

    pub(crate) fn size(&self) -> u32 {
        self.size
    }
}

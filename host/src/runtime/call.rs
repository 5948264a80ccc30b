//! Calling a plugin: a pooled instance, the call's deadline and the caller's cancellation, and
//! what a failed call means (a trap, a timeout, a cancellation) for the instance and the caller.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use wasmtime::Store;

use super::bindings::WitStoreError;
use super::instance::{DeadlineReached, PluginState};
use super::interfaces::Guests;
use super::plugin::{Plugin, PluginInner};
use super::stats::bump;
use crate::base::{Ctx, StoreError};

/// A future borrowing an instance's store for the length of one call.
pub(crate) type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

/// How a call that did not return normally ended.
enum Failed {
    Trap { error: wasmtime::Error, memory_exceeded: bool },
    Timeout,
    Cancelled,
}

impl Plugin {
    /// Calls an export on a pooled instance, under the call's deadline (the plugin's timeout
    /// or the caller's, whichever is first) and the caller's cancellation. A trap, a timeout or
    /// a cancellation throws the instance away; the next call gets a fresh one.
    pub(crate) async fn call<R, F>(&self, ctx: &Ctx, method: &'static str, f: F) -> Result<R, StoreError>
    where
        R: Send,
        F: for<'a> FnOnce(&'a Guests, &'a mut Store<PluginState>) -> Option<CallFuture<'a, Result<R, WitStoreError>>> + Send,
    {
        let inner = self.inner();
        bump(&inner.counters.calls);
        if ctx.is_cancelled() {
            bump(&inner.counters.cancellations);
            inner.counters.error(crate::base::ErrorKind::Cancelled);
            return Err(StoreError::Cancelled);
        }
        let started = Instant::now();
        let own_deadline = started + inner.settings.timeout;
        let deadline = ctx.get_deadline().map_or(own_deadline, |d| d.min(own_deadline));
        let mut lease = inner.pool.acquire(&inner.spec.name, ctx, deadline).await.inspect_err(|e| {
            if matches!(e, StoreError::Unavailable(_)) {
                bump(&inner.counters.rejected)
            }
            inner.counters.error(e.kind());
        })?;
        let mut warm = match lease.warm.take() {
            Some(warm) => warm,
            None => inner.instantiate().await.inspect_err(|e| inner.counters.error(e.kind()))?.0,
        };
        warm.store.data_mut().set_deadline(Some(deadline));
        let Some(call) = f(&warm.guests, &mut warm.store) else {
            inner.pool.release(warm, lease);
            return Err(StoreError::Internal(format!("plugin {} does not export the interface of {method}", inner.spec.name)));
        };
        let outcome = tokio::select! {
            biased;
            result = tokio::time::timeout_at(deadline.into(), call) => match result {
                Ok(Ok(result)) => Ok(result),
                Ok(Err(error)) => Err(Failed::Trap { error, memory_exceeded: false }),
                Err(_) => Err(Failed::Timeout),
            },
            _ = ctx.cancellation().cancelled() => Err(Failed::Cancelled),
        };
        match outcome {
            Ok(result) => {
                warm.store.data_mut().set_deadline(None);
                inner.pool.release(warm, lease);
                result.map_err(|e| {
                    let e = StoreError::from(e);
                    inner.counters.error(e.kind());
                    e
                })
            }
            Err(failed) => {
                let failed = match failed {
                    Failed::Trap { error, .. } => Failed::Trap { error, memory_exceeded: warm.store.data().memory_exceeded() },
                    other => other,
                };
                bump(&inner.counters.instances_discarded);
                drop(warm);
                drop(lease);
                let error = inner.classify(failed, method, started);
                inner.counters.error(error.kind());
                Err(error)
            }
        }
    }
}

impl PluginInner {
    /// The caller's error for a call that did not return, counted by kind.
    fn classify(&self, failed: Failed, method: &str, started: Instant) -> StoreError {
        let plugin = self.spec.name.clone();
        let method = method.to_string();
        let timeout = || {
            bump(&self.counters.timeouts);
            StoreError::PluginTimeout { plugin: plugin.clone(), method: method.clone(), elapsed: started.elapsed() }
        };
        match failed {
            Failed::Timeout => timeout(),
            Failed::Cancelled => {
                bump(&self.counters.cancellations);
                StoreError::Cancelled
            }
            Failed::Trap { error, .. } if error.downcast_ref::<DeadlineReached>().is_some() => timeout(),
            Failed::Trap { error, memory_exceeded } => {
                bump(&self.counters.traps);
                let message = if memory_exceeded {
                    format!("memory limit of {} bytes exceeded", self.settings.memory_limit)
                } else if let Some(code) = error.downcast_ref::<wasmtime::Trap>() {
                    format!("wasm trap: {code}")
                } else {
                    format!("{error:#}")
                };
                tracing::debug!(plugin = %plugin, method = %method, trap = %format!("{error:#}"), "trap details");
                tracing::warn!(plugin = %plugin, method = %method, %message, "plugin trapped; instance replaced");
                StoreError::PluginTrapped { plugin, method, message }
            }
        }
    }
}

//! Calling a plugin: a pooled instance, the call's deadline and the caller's cancellation, and
//! what a failed call means (a trap, a timeout, a cancellation) for the instance and the caller.
//!
//! A stream (a body read or written in chunks) holds its instance for its whole length: a
//! [`Session`] is the instance, leased from the pool, and the guest's resource on it. Each of
//! its calls has the deadline and cancellation of a call; when the stream ends, or is dropped,
//! the resource is dropped in the guest (a writer dropped unfinished aborts there) and the
//! instance goes back to the pool.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use tracing::Instrument as _;
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::instance::{DeadlineReached, PluginState, Warm};
use super::interfaces::Guests;
use super::plugin::{Plugin, PluginInner};
use super::pool::Lease;
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
    /// a cancellation throws the instance away; the next call gets a fresh one. `f` returns
    /// `None` when the instance does not export what it calls.
    pub(crate) async fn call<R, F>(&self, ctx: &Ctx, method: &'static str, f: F) -> Result<R, StoreError>
    where
        R: Send,
        F: for<'a> FnOnce(&'a Guests, &'a mut Store<PluginState>) -> Option<CallFuture<'a, Result<R, StoreError>>> + Send,
    {
        let span = self.span(method);
        let call = async {
            let (mut warm, lease) = waited(&span, self.lease(ctx)).await?;
            let (result, healthy) = self.inner().run(&mut warm, ctx, method, f).await;
            self.inner().give_back(warm, lease, healthy);
            ended(&span, result)
        };
        call.instrument(span.clone()).await
    }

    /// The span of a call to `method` (with traces on; a disabled one otherwise). A call that
    /// opens a stream keeps its span for the stream's length: its later calls run in it.
    fn span(&self, method: &'static str) -> tracing::Span {
        if !crate::base::telemetry::on() {
            return tracing::Span::none();
        }
        tracing::info_span!(
            target: "storehost::origin",
            "origin call",
            otel.name = method,
            rpc.system = "wasm-component",
            rpc.service = %self.inner().spec.name,
            rpc.method = method,
            storehost.wait_us = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
        )
    }

    /// Opens a stream: calls `f` on a leased instance, which keeps it (and the guest resource
    /// `f` returns) until the session ends.
    pub(crate) async fn open_session<T, F>(&self, ctx: &Ctx, method: &'static str, f: F) -> Result<(T, Session), StoreError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a Guests, &'a mut Store<PluginState>) -> Option<CallFuture<'a, Result<(T, ResourceAny), StoreError>>> + Send,
    {
        let (value, opened) = self
            .open_body::<T, std::convert::Infallible, _>(ctx, method, |guests, store| {
                let call = f(guests, store)?;
                Some(Box::pin(async move { Ok(call.await?.map(|(value, resource)| (value, Handed::Guest(resource)))) }) as CallFuture<'_, _>)
            })
            .await?;
        match opened {
            Opened::Session(session) => Ok((value, session)),
            Opened::Host(never) => match never {},
        }
    }

    /// As [`Plugin::open_session`], for a call whose answer may instead be something of the
    /// host's (a file the host reads itself): then there is no session, and the instance goes
    /// back to the pool at once.
    pub(crate) async fn open_body<T, H, F>(&self, ctx: &Ctx, method: &'static str, f: F) -> Result<(T, Opened<H>), StoreError>
    where
        T: Send + 'static,
        H: Send + 'static,
        F: for<'a> FnOnce(&'a Guests, &'a mut Store<PluginState>) -> Option<CallFuture<'a, Result<(T, Handed<H>), StoreError>>> + Send,
    {
        let span = self.span(method);
        let (mut warm, lease) = waited(&span, self.lease(ctx)).instrument(span.clone()).await?;
        let (result, healthy) = self.inner().run(&mut warm, ctx, method, f).instrument(span.clone()).await;
        let result = ended(&span, result);
        match result {
            Ok((value, Handed::Guest(resource))) => Ok((
                value,
                Opened::Session(Session { plugin: self.clone(), held: Some(Held { warm, lease, resource: Some(resource), healthy: true }), span }),
            )),
            Ok((value, Handed::Host(host))) => {
                self.inner().give_back(warm, lease, healthy);
                Ok((value, Opened::Host(host)))
            }
            Err(e) => {
                self.inner().give_back(warm, lease, healthy);
                Err(e)
            }
        }
    }

    /// A permit to call, and an instance: an idle one, or a fresh one.
    async fn lease(&self, ctx: &Ctx) -> Result<(Warm, Lease<Warm>), StoreError> {
        let inner = self.inner();
        bump(&inner.counters.calls);
        if ctx.is_cancelled() {
            bump(&inner.counters.cancellations);
            inner.counters.error(crate::base::ErrorKind::Cancelled);
            return Err(StoreError::Cancelled);
        }
        let mut lease = inner.pool.acquire(&inner.spec.name, ctx, || inner.deadline(ctx, Instant::now())).await.inspect_err(|e| {
            if matches!(e, StoreError::Unavailable(_)) {
                bump(&inner.counters.rejected)
            }
            inner.counters.error(e.kind());
        })?;
        let warm = match lease.warm.take() {
            Some(warm) => warm,
            None => {
                // Boxed: starting an instance is rare, and its future is large (kilobytes moved
                // with every call's future otherwise).
                let started =
                    Box::pin(inner.instantiate()).await.map_err(|e| e.within(&format!("plugin \"{}\" starting an instance", inner.spec.name)));
                started.inspect_err(|e| inner.counters.error(e.kind()))?.0
            }
        };
        Ok((warm, lease))
    }
}

impl PluginInner {
    /// When a call starting at `now` must end: the plugin's timeout or the caller's deadline.
    fn deadline(&self, ctx: &Ctx, now: Instant) -> Instant {
        let own = now + self.settings.timeout;
        ctx.get_deadline().map_or(own, |d| d.min(own))
    }

    /// Runs one call on `warm`. Also says whether the instance may be used again (not after a
    /// trap, a timeout or a cancellation, which may have left it anywhere).
    async fn run<R, F>(&self, warm: &mut Warm, ctx: &Ctx, method: &'static str, f: F) -> (Result<R, StoreError>, bool)
    where
        F: for<'a> FnOnce(&'a Guests, &'a mut Store<PluginState>) -> Option<CallFuture<'a, Result<R, StoreError>>>,
    {
        let started = Instant::now();
        let deadline = self.deadline(ctx, started);
        warm.begin(deadline);
        let Some(call) = f(&warm.guests, &mut warm.store) else {
            return (Err(StoreError::Internal(format!("plugin {} does not export the interface of {method}", self.spec.name))), true);
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
        self.counters.latency.record(started.elapsed());
        match outcome {
            Ok(result) => {
                warm.store.data_mut().set_deadline(None);
                (result.inspect_err(|e| self.counters.error(e.kind())), true)
            }
            Err(failed) => {
                let failed = match failed {
                    Failed::Trap { error, .. } => Failed::Trap { error, memory_exceeded: warm.store.data().memory_exceeded() },
                    other => other,
                };
                let error = self.classify(failed, method, started);
                self.counters.error(error.kind());
                (Err(error), false)
            }
        }
    }

    /// Returns a healthy instance to the pool, or throws a spent one away.
    fn give_back(&self, warm: Warm, lease: Lease<Warm>, healthy: bool) {
        if healthy {
            self.pool.release(warm, lease);
        } else {
            bump(&self.counters.instances_discarded);
            drop(warm);
            drop(lease);
        }
    }

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
                    trap_message(*code)
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

/// Awaits `lease`, recording in `span` how long the call waited for an instance.
async fn waited<T>(span: &tracing::Span, lease: impl Future<Output = T>) -> T {
    if span.is_disabled() {
        return lease.await;
    }
    let started = Instant::now();
    let leased = lease.await;
    span.record("storehost.wait_us", started.elapsed().as_micros() as i64);
    leased
}

/// Marks `span` failed when the call failed for a reason of the plugin's or its backend's (an
/// answer such as `not-found` is not a failure).
fn ended<R>(span: &tracing::Span, result: Result<R, StoreError>) -> Result<R, StoreError> {
    if let Err(e) = &result
        && !e.kind().is_answer()
    {
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_description", tracing::field::display(e));
    }
    result
}

/// A trap as its plugin's author reads it: what wasm says (which already begins `wasm trap:`),
/// and for `unreachable`, how a program ends up there.
fn trap_message(code: wasmtime::Trap) -> String {
    if code == wasmtime::Trap::UnreachableCodeReached {
        format!("{code}: how C's abort(), a Rust panic or an uncaught exception ends a component (its log may say why)")
    } else {
        code.to_string()
    }
}

/// What a call that opens a body hands back besides its value.
pub(crate) enum Handed<H> {
    /// A guest resource to read or write through: the instance is held for it.
    Guest(ResourceAny),
    /// Something of the host's, taken out of the instance (a file the host reads itself).
    Host(H),
}

/// An opened body: a session over the guest's resource, or what the host took.
pub(crate) enum Opened<H> {
    Session(Session),
    Host(H),
}

/// An instance held for a stream, with the guest resource the stream reads or writes.
pub(crate) struct Session {
    plugin: Plugin,
    held: Option<Held>,
    /// The span of the call that opened the stream: it lasts as long as the stream, and the
    /// stream's calls run in it (with traces on).
    span: tracing::Span,
}

struct Held {
    warm: Warm,
    lease: Lease<Warm>,
    resource: Option<ResourceAny>,
    healthy: bool,
}

impl Session {
    /// Calls a method of the session's resource, as [`Plugin::call`] calls an export. After a
    /// failed call (a trap, a timeout, a cancellation) the session is spent: every later call
    /// fails at once, and the instance is thrown away when the session ends.
    pub(crate) async fn call<R, F>(&mut self, ctx: &Ctx, method: &'static str, f: F) -> Result<R, StoreError>
    where
        F: for<'a> FnOnce(&'a Guests, &'a mut Store<PluginState>, ResourceAny) -> Option<CallFuture<'a, Result<R, StoreError>>>,
    {
        let plugin = self.plugin.clone();
        let inner = plugin.inner();
        let spent = || StoreError::Unavailable(format!("plugin {}: {method}: the stream failed before", inner.spec.name));
        let Some(held) = self.held.as_mut().filter(|h| h.healthy) else { return Err(spent()) };
        let Some(resource) = held.resource else { return Err(spent()) };
        bump(&inner.counters.calls);
        let (result, healthy) =
            inner.run(&mut held.warm, ctx, method, move |guests, store| f(guests, store, resource)).instrument(self.span.clone()).await;
        held.healthy = healthy;
        ended(&self.span, result)
    }

    /// Ends the stream: drops the guest's resource (a writer not finished is aborted there) and
    /// returns the instance to the pool.
    pub(crate) async fn close(mut self) {
        if let Some(held) = self.held.take() {
            held.close(&self.plugin).await;
        }
    }
}

impl Held {
    async fn close(mut self, plugin: &Plugin) {
        let inner = plugin.inner();
        if let Some(resource) = self.resource.take()
            && self.healthy
        {
            let deadline = Instant::now() + inner.settings.timeout;
            self.warm.begin(deadline);
            let dropped = tokio::time::timeout_at(deadline.into(), resource.resource_drop_async(&mut self.warm.store)).await;
            self.healthy = matches!(dropped, Ok(Ok(())));
            if !self.healthy {
                tracing::warn!(plugin = %inner.spec.name, "dropping a stream's resource failed; instance replaced");
            }
            self.warm.store.data_mut().set_deadline(None);
        }
        inner.give_back(self.warm, self.lease, self.healthy);
    }
}

impl Drop for Session {
    /// A stream dropped before it ended (a client gone mid-transfer) is closed in the
    /// background; without a runtime to do it on, its instance is thrown away.
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        let plugin = self.plugin.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { held.close(&plugin).await });
            }
            Err(_) => plugin.inner().give_back(held.warm, held.lease, false),
        }
    }
}

//! One plugin instance: its store (WASI context, capability state, memory cap), instantiated,
//! described and initialised.

use std::fmt;
use std::time::Instant;

use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::interfaces::Guests;
use super::plugin::PluginInner;
use super::spec::PluginInfo;
use super::stats::bump;
use crate::base::StoreError;
use crate::capabilities::{CapabilityHost, InstanceCapabilities, files};

/// What a plugin instance's `Store` holds: its WASI context (preopened directories only), its
/// capability state, and its memory cap.
pub(crate) struct PluginState {
    wasi: WasiCtx,
    capabilities: InstanceCapabilities,
    memory: MemoryCap,
}

impl PluginState {
    /// When the running call must end; checked at every epoch tick and by host functions.
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.capabilities.deadline = deadline;
    }

    fn deadline(&self) -> Option<Instant> {
        self.capabilities.deadline
    }

    /// Takes a host resource the guest handed back (a file it opened, returned as a body) out
    /// of the instance's table.
    pub(crate) fn take<T: 'static>(&mut self, resource: wasmtime::component::Resource<T>) -> wasmtime::Result<T> {
        Ok(self.capabilities.table.delete(resource)?)
    }

    /// Whether the instance was stopped for growing past its memory cap.
    pub(crate) fn memory_exceeded(&self) -> bool {
        self.memory.exceeded
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.capabilities.table }
    }
}

impl CapabilityHost for PluginState {
    fn capabilities(&mut self) -> &mut InstanceCapabilities {
        &mut self.capabilities
    }
}

/// The memory cap of an instance (the plugin's `memory_limit`). Growing past it traps the call,
/// and the limiter remembers why.
struct MemoryCap {
    limit: usize,
    exceeded: bool,
}

/// The trap raised when an instance grows its memory past its cap.
#[derive(Debug)]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) limit: usize,
}

impl fmt::Display for MemoryLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "memory limit of {} bytes exceeded", self.limit)
    }
}

impl std::error::Error for MemoryLimitExceeded {}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            return Err(MemoryLimitExceeded { limit: self.limit }.into());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// The trap raised when a call runs past its deadline.
#[derive(Debug)]
pub(crate) struct DeadlineReached;

impl fmt::Display for DeadlineReached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline reached")
    }
}

impl std::error::Error for DeadlineReached {}

/// A ready instance: its store and its typed exports. The exports are a handle for each function
/// of every interface (about a KiB): boxed, so that leasing an instance, holding it for a stream
/// and giving it back move two pointers, not them.
pub(crate) struct Warm {
    pub(crate) store: Store<PluginState>,
    pub(crate) guests: Box<Guests>,
}

impl Warm {
    /// Starts a call (or a stream's clean-up) that must end by `deadline`: host functions and
    /// the epoch check see it, and the guest yields to the executor at the next epoch tick, not
    /// at one that passed while the instance was idle (a call that ends before the tick runs
    /// through; yielding at the start of most calls let more calls than instances run at once
    /// on a thread, and the rest queued for the pool).
    pub(crate) fn begin(&mut self, deadline: Instant) {
        begin(&mut self.store, deadline);
    }
}

/// See [`Warm::begin`]; also how a fresh instance's instantiation, `describe` and `init` start.
fn begin(store: &mut Store<PluginState>, deadline: Instant) {
    store.data_mut().set_deadline(Some(deadline));
    store.set_epoch_deadline(1);
}

impl PluginInner {
    /// A fresh instance: instantiated, described and initialised with the plugin's config.
    pub(crate) async fn instantiate(&self) -> Result<(Warm, PluginInfo), StoreError> {
        let name = &self.spec.name;
        let fail = |what: &str, e: &dyn fmt::Display| StoreError::Unavailable(format!("plugin {name}: {what}: {e:#}"));
        let wasi = files::wasi_ctx(&self.spec.dirs).map_err(|e| fail("preparing its sandbox", &e))?;
        let state = PluginState {
            wasi,
            capabilities: InstanceCapabilities::new(self.capabilities.clone()),
            memory: MemoryCap { limit: self.settings.memory_limit as usize, exceeded: false },
        };
        let mut store = Store::new(self.runtime.engine(), state);
        store.limiter(|s| &mut s.memory);
        begin(&mut store, Instant::now() + self.settings.timeout);
        // At every epoch tick the plugin yields to the executor (so it never holds a worker
        // thread for long) and is stopped once its call is past its deadline.
        store.epoch_deadline_callback(|ctx| match ctx.data().deadline() {
            Some(deadline) if Instant::now() >= deadline => Err(wasmtime::Error::new(DeadlineReached)),
            _ => Ok(UpdateDeadline::Yield(1)),
        });
        let instance = self.pre.instantiate_async(&mut store).await.map_err(|e| fail("instantiating", &e))?;
        let guests = self.indices.load(&mut store, &instance).map_err(|e| fail("binding exports", &e))?;
        let init = !self.spec.skip_init;
        // 0.1.0 describes the instance before its init; 0.2.0 after it, so that what it says
        // may depend on its configuration.
        let info = match &guests {
            Guests::V1(g) => {
                let plugin = g.plugin.as_ref().expect("every plugin exports `plugin` (checked at load)");
                let info = plugin.call_describe(&mut store).await.map_err(|e| fail("describe()", &e))?;
                if init {
                    self.init(plugin.call_init(&mut store, &self.config_list)).await?;
                }
                PluginInfo { name: info.name, version: info.version, stateful: info.stateful, max_key_bytes: PluginInfo::MAX_KEY_BYTES }
            }
            Guests::V2(g) => {
                let plugin = g.plugin.as_ref().expect("every plugin exports `plugin` (checked at load)");
                if init {
                    self.init(plugin.call_init(&mut store, &self.config_list)).await?;
                }
                let info = plugin.call_describe(&mut store).await.map_err(|e| fail("describe()", &e))?;
                let max_key_bytes = info.max_key_bytes.map_or(PluginInfo::MAX_KEY_BYTES, |n| n.min(PluginInfo::MAX_KEY_BYTES));
                PluginInfo { name: info.name, version: info.version, stateful: info.stateful, max_key_bytes }
            }
        };
        store.data_mut().set_deadline(None);
        bump(&self.counters.instances_created);
        Ok((Warm { store, guests: Box::new(guests) }, info))
    }

    /// Awaits an instance's `init`, bounded by the plugin's timeout.
    async fn init<E: Into<StoreError>>(&self, init: impl Future<Output = wasmtime::Result<Result<(), E>>>) -> Result<(), StoreError> {
        let timeout = self.settings.timeout;
        // Guest code is stopped by the epoch deadline; this bounds what init awaits in the host
        // (a statement, a request), which epochs cannot interrupt.
        tokio::time::timeout(timeout, init)
            .await
            .map_err(|_| StoreError::Unavailable(format!("init() did not finish within {timeout:?}")))?
            .map_err(|e| StoreError::Unavailable(format!("init(): {e:#}")))?
            .map_err(Into::into)
            .map_err(|e| match e {
                StoreError::Invalid(m) => StoreError::Invalid(format!("init(): {m}")),
                other => StoreError::Unavailable(format!("init(): {other}")),
            })
    }
}

//! The plugin runtime: one engine, components compiled once (and cached on disk), a pool of
//! warm instances per plugin, and every call bounded by a deadline, a memory cap and a queue.

pub(crate) mod bindings;
mod call;
pub mod compiled_cache;
mod instance;
mod interfaces;
mod load;
mod plugin;
mod pool;
mod spec;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// A file a plugin opened and handed back as a body, which the host reads itself.
pub use crate::capabilities::files::HostFile;
pub(crate) use call::{CallFuture, Handed, Opened, Session};
pub use compiled_cache::CompileSource;
pub(crate) use interfaces::Guests;
pub use interfaces::{Exports, Interface, OriginVersion, WIT_VERSION};
pub use load::{Inspection, inspect};
pub use plugin::Plugin;
pub use spec::{LoadError, PluginInfo, PluginSettings, PluginSpec};
pub use stats::PluginStats;

/// How often the epoch advances. A plugin running wasm yields to the async executor at every
/// tick, so a call is cut within one tick of its deadline and a busy plugin never holds a
/// worker thread for longer than this.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Engine-wide settings.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where compiled code is cached; `None` compiles every time.
    pub compiled_cache: Option<PathBuf>,
    /// Upper bound for any plugin's linear memory (the pooling allocator reserves this much
    /// address space per slot; each plugin's `memory_limit` is enforced below it).
    pub max_memory: u64,
    /// Instances of all plugins alive at once.
    pub max_instances: u32,
    /// Preallocate instance slots (the pooling allocator). Off: every instance maps its own
    /// memory, which is slower to create but reserves nothing up front.
    pub pooling: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self { compiled_cache: None, max_memory: 4 << 30, max_instances: 256, pooling: true }
    }
}

/// The shared engine. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    config: RuntimeConfig,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self> {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 8)
            .total_memories(config.max_instances * 2)
            .total_tables(config.max_instances * 4)
            .max_memory_size(config.max_memory as usize)
            .max_memories_per_component(4)
            .max_tables_per_component(8);
        let mut wasm = Config::new();
        wasm.epoch_interruption(true).wasm_component_model(true).allocation_strategy(if config.pooling {
            InstanceAllocationStrategy::Pooling(pooling)
        } else {
            InstanceAllocationStrategy::OnDemand
        });
        let engine = Engine::new(&wasm).map_err(|e| anyhow::anyhow!("{e:#}"))?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (ticking, stop) = (engine.clone(), stop_ticker.clone());
        std::thread::Builder::new().name("storehost-epoch".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                ticking.increment_epoch();
            }
        })?;
        Ok(Self { inner: Arc::new(RuntimeInner { engine, config, stop_ticker }) })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }
}

//! A loaded plugin: its checked component, its capabilities and its pool of warm instances.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::InstancePre;

use super::Runtime;
use super::compiled_cache::CompileSource;
use super::instance::{PluginState, Warm};
use super::interfaces::{Exports, Indices};
use super::pool::Pool;
use super::spec::{PluginInfo, PluginSettings, PluginSpec};
use super::stats::{Counters, PluginStats};
use crate::base::StoreError;
use crate::capabilities::PluginCapabilities;

/// A loaded plugin: its compiled component, checked against the contracts and its grants, and
/// its pool of warm instances. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

pub(crate) struct PluginInner {
    pub(crate) spec: PluginSpec,
    pub(crate) runtime: Runtime,
    pub(crate) pre: InstancePre<PluginState>,
    pub(crate) indices: Indices,
    pub(crate) exports: Exports,
    pub(crate) imports: Vec<String>,
    pub(crate) info: PluginInfo,
    pub(crate) settings: PluginSettings,
    pub(crate) config_list: Vec<(String, String)>,
    pub(crate) capabilities: Arc<PluginCapabilities>,
    pub(crate) compile_source: CompileSource,
    pub(crate) compile_time: Duration,
    pub(crate) pool: Pool<Warm>,
    pub(crate) counters: Counters,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin").field("name", &self.inner.spec.name).field("source", &self.inner.spec.source).finish()
    }
}

impl Plugin {
    pub(crate) fn from_inner(inner: PluginInner) -> Self {
        Self { inner: Arc::new(inner) }
    }

    pub(crate) fn inner(&self) -> &PluginInner {
        &self.inner
    }

    pub fn name(&self) -> &str {
        &self.inner.spec.name
    }

    /// Whether `other` is this very load (a clone of it), not merely the same component.
    pub fn is(&self, other: &Plugin) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// What it was loaded from.
    pub fn spec(&self) -> &PluginSpec {
        &self.inner.spec
    }

    pub fn source(&self) -> &str {
        &self.inner.spec.source
    }

    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    pub fn exports(&self) -> &Exports {
        &self.inner.exports
    }

    /// Imported interface names, as in the component's type.
    pub fn imports(&self) -> &[String] {
        &self.inner.imports
    }

    pub fn settings(&self) -> &PluginSettings {
        &self.inner.settings
    }

    /// Whether the component came from the compiled-code cache, and how long loading it took.
    pub fn compile_source(&self) -> (CompileSource, Duration) {
        (self.inner.compile_source, self.inner.compile_time)
    }

    pub fn stats(&self) -> PluginStats {
        let pool = &self.inner.pool;
        PluginStats {
            pool_size: pool.size(),
            pool_in_use: pool.in_use(),
            pool_idle: pool.idle(),
            pool_waiting: pool.waiting(),
            ..self.inner.counters.snapshot()
        }
    }

    /// Creates an instance outside the pool and drops it: what replacing a failed instance
    /// costs (used by the benchmarks).
    pub async fn instantiate_once(&self) -> Result<(), StoreError> {
        self.inner.instantiate().await.map(drop)
    }
}

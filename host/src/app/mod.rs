//! Wiring: from a manifest to loaded plugins and one store per domain, each built in layers:
//!
//! ```text
//! cache (Cached*Store, when the domain is cached) → meter (Metered) → origin (Plugin*Store)
//! ```
//!
//! The meter sits under the cache, so it counts the calls that reach the origin, and the
//! cache's own counters count what it answered.

pub mod manifest;
pub mod metrics;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

pub use manifest::{Manifest, ManifestError};
pub use metrics::{DomainMetrics, render_cluster, render_prometheus};

use crate::base::Domain;
use crate::cache::{CacheConfig, CachedArtifactStore, CachedProjectStore, CachedUiStore, CachedWorkspaceStore, Caches, DiskStoreConfig};
use crate::capabilities::files::{DirGrant, DirMode};
use crate::cluster::{Node, Replicated};
use crate::domain::{
    ArtifactOperation, ArtifactStore, Operation, ProjectArtifactStore, ProjectOperation, ProjectStore, RunnerOperation, Stores, UiOperation, UiStore,
    WorkspaceOperation, WorkspaceStore,
};
use crate::metering::{Metered, OriginMeter, OriginStats};
use crate::origin::{PluginArtifactStore, PluginProjectArtifactStore, PluginProjectStore, PluginRunnerStore, PluginUiStore, PluginWorkspaceStore};
use crate::runtime::{Plugin, PluginSettings, PluginSpec, Runtime, RuntimeConfig};

/// Something that can report an [`OriginStats`] snapshot: any domain's meter.
trait Meter: Send + Sync {
    fn snapshot(&self) -> OriginStats;
}

impl<O: Operation> Meter for OriginMeter<O> {
    fn snapshot(&self) -> OriginStats {
        OriginMeter::snapshot(self)
    }
}

/// A running configuration: the runtime, the loaded plugins, and the domain stores.
pub struct App {
    pub manifest: Manifest,
    pub runtime: Runtime,
    pub plugins: BTreeMap<String, Plugin>,
    /// What services use: each domain's outermost layer.
    pub stores: Stores,
    /// The plugin-backed origins alone (no meter, no cache), for probes.
    pub origins: Stores,
    pub caches: Caches,
    /// This host's part in a cluster (`[cluster]`).
    pub cluster: Option<Node>,
    meters: Vec<Arc<dyn Meter>>,
}

impl App {
    /// Loads every plugin of the manifest and binds the domains to them.
    ///
    /// # Errors
    /// The first plugin that fails to load (naming it and the reason), or a domain bound to a
    /// plugin that does not export its interface.
    pub async fn build(manifest: Manifest) -> Result<App> {
        let runtime = Runtime::new(runtime_config(&manifest))?;
        let mut plugins = BTreeMap::new();
        for name in manifest.plugins.keys() {
            let spec = plugin_spec(&manifest, name)?;
            let plugin = Plugin::load(&runtime, spec).await?;
            plugins.insert(name.clone(), plugin);
        }
        let origins = bind_domains(&manifest, &plugins)?;
        let mut layers = Layers::over(&manifest, &origins)?;
        let cluster = match &manifest.cluster {
            Some(config) => {
                let position = layers.caches.artifact.as_ref().and_then(|c| c.disk_dir()).map(|d| d.with_extension("position"));
                let node =
                    Node::start(config.clone(), layers.caches.clone(), position).await.with_context(|| format!("{}: cluster", manifest.origin))?;
                layers.replicate(&node);
                Some(node)
            }
            None => None,
        };
        Ok(App { manifest, runtime, plugins, stores: layers.stores, origins, caches: layers.caches, cluster, meters: layers.meters })
    }

    /// The metrics of every bound domain: its origin calls and, when it is cached, its caches.
    pub fn metrics(&self) -> Vec<DomainMetrics> {
        self.meters
            .iter()
            .map(|meter| {
                let origin = meter.snapshot();
                let cache = self.caches.metrics_of(origin.domain);
                DomainMetrics::new(origin, cache)
            })
            .collect()
    }

    /// Persists what the caches keep on disk, and the disk tier's position in the cluster's log
    /// (at shutdown).
    pub fn flush(&self) -> Result<()> {
        for domain in Domain::ALL {
            if let Some(cache) = self.caches.metrics_of(domain) {
                cache.flush()?;
            }
        }
        if let Some(node) = &self.cluster {
            node.flush()?;
        }
        Ok(())
    }
}

/// The layers over the origins: what services use, the caches, the meters.
#[derive(Default)]
struct Layers {
    stores: Stores,
    /// The metered origins, under the caches.
    metered: Stores,
    caches: Caches,
    meters: Vec<Arc<dyn Meter>>,
}

impl Layers {
    /// Puts a meter over each origin and, where the domain is cached, a cache over the meter.
    fn over(manifest: &Manifest, origins: &Stores) -> Result<Layers> {
        let mut layers = Layers::default();
        let origins = origins.clone();
        if let Some(origin) = origins.artifact {
            let metered: Arc<dyn ArtifactStore> = Arc::new(Metered::new(origin, layers.meter::<ArtifactOperation>()));
            layers.metered.artifact = Some(metered.clone());
            layers.stores.artifact = Some(match cache_config(manifest, Domain::Artifact) {
                Some(config) => {
                    let cached = Arc::new(
                        CachedArtifactStore::new(metered, config)
                            .with_context(|| format!("{}: cache.disk: opening the disk cache", manifest.origin))?,
                    );
                    layers.caches.artifact = Some(cached.clone());
                    cached
                }
                None => metered,
            });
        }
        if let (Some(origin), Some(meta)) = (origins.project, origins.project_artifacts) {
            let meter = layers.meter::<ProjectOperation>();
            let origin: Arc<dyn ProjectStore> = Arc::new(Metered::new(origin, meter.clone()));
            let meta: Arc<dyn ProjectArtifactStore> = Arc::new(Metered::new(meta, meter));
            layers.metered.project = Some(origin.clone());
            layers.metered.project_artifacts = Some(meta.clone());
            match cache_config(manifest, Domain::Project) {
                Some(config) => {
                    let cached = Arc::new(CachedProjectStore::new(origin, meta, config));
                    layers.stores.project = Some(cached.clone());
                    layers.stores.project_artifacts = Some(cached.clone());
                    layers.caches.project = Some(cached);
                }
                None => {
                    layers.stores.project = Some(origin);
                    layers.stores.project_artifacts = Some(meta);
                }
            }
        }
        if let Some(origin) = origins.ui {
            let metered: Arc<dyn UiStore> = Arc::new(Metered::new(origin, layers.meter::<UiOperation>()));
            layers.metered.ui = Some(metered.clone());
            layers.stores.ui = Some(match cache_config(manifest, Domain::Ui) {
                Some(config) => {
                    let cached = Arc::new(CachedUiStore::new(metered, config));
                    layers.caches.ui = Some(cached.clone());
                    cached
                }
                None => metered,
            });
        }
        if let Some(origin) = origins.workspace {
            let metered: Arc<dyn WorkspaceStore> = Arc::new(Metered::new(origin, layers.meter::<WorkspaceOperation>()));
            layers.metered.workspace = Some(metered.clone());
            layers.stores.workspace = Some(match cache_config(manifest, Domain::Workspace) {
                Some(config) => {
                    let cached = Arc::new(CachedWorkspaceStore::new(metered, config));
                    layers.caches.workspace = Some(cached.clone());
                    cached
                }
                None => metered,
            });
        }
        // Runner files are never cached (the seed keeps them apart), only metered.
        if let Some(origin) = origins.runner {
            layers.stores.runner = Some(Arc::new(Metered::new(origin, layers.meter::<RunnerOperation>())));
        }
        Ok(layers)
    }

    /// Puts the replication layer over every cacheable domain: its writes publish their
    /// invalidations, and its reads leave the cache while the host is not synced. Runner files
    /// are never cached, so they need none.
    fn replicate(&mut self, node: &Node) {
        /// The origin under a domain's cache, or `None` where the front store is the origin.
        fn under<S: ?Sized>(front: &Arc<S>, metered: &Option<Arc<S>>) -> Option<Arc<S>> {
            metered.clone().filter(|m| !Arc::ptr_eq(m, front))
        }
        let (stores, metered) = (&mut self.stores, &self.metered);
        if let Some(front) = stores.artifact.take() {
            let origin = under(&front, &metered.artifact);
            stores.artifact = Some(Arc::new(Replicated::new(front, origin, node)));
        }
        if let Some(front) = stores.project.take() {
            let origin = under(&front, &metered.project);
            stores.project = Some(Arc::new(Replicated::new(front, origin, node)));
        }
        if let Some(front) = stores.project_artifacts.take() {
            let origin = under(&front, &metered.project_artifacts);
            stores.project_artifacts = Some(Arc::new(Replicated::new(front, origin, node)));
        }
        if let Some(front) = stores.ui.take() {
            let origin = under(&front, &metered.ui);
            stores.ui = Some(Arc::new(Replicated::new(front, origin, node)));
        }
        if let Some(front) = stores.workspace.take() {
            let origin = under(&front, &metered.workspace);
            stores.workspace = Some(Arc::new(Replicated::new(front, origin, node)));
        }
    }

    /// A new meter of a domain's operations, reported by [`App::metrics`].
    fn meter<O: Operation>(&mut self) -> Arc<OriginMeter<O>> {
        let meter = Arc::new(OriginMeter::<O>::new());
        self.meters.push(meter.clone());
        meter
    }
}

/// Shares of `[cache.memory] max_bytes` for domains that set no budget of their own.
fn memory_share(domain: Domain) -> f64 {
    match domain {
        Domain::Artifact => 0.6,
        Domain::Project => 0.1,
        Domain::Ui | Domain::Workspace => 0.15,
        Domain::Runner => 0.0,
    }
}

/// The cache settings of a domain from `[cache]` and `[domains.NAME]`; `None` when it is not
/// cached (runner files never are).
pub fn cache_config(manifest: &Manifest, domain: Domain) -> Option<CacheConfig> {
    if domain == Domain::Runner {
        return None;
    }
    let config = manifest.domains.get(domain)?;
    if config.cache == Some(false) {
        return None;
    }
    let memory = manifest.cache.memory.as_ref();
    let defaults = CacheConfig::default();
    let total = memory.and_then(|m| m.max_bytes).map(|s| s.0);
    let mut cache = CacheConfig {
        ttl: config.ttl.or(memory.and_then(|m| m.ttl)).map_or(defaults.ttl, |t| t.0),
        max_bytes: config.max_bytes.map(|s| s.0).or(total.map(|t| (t as f64 * memory_share(domain)) as u64)).unwrap_or(defaults.max_bytes),
        max_entries: memory.and_then(|m| m.max_entries),
        memory_max_body: memory.and_then(|m| m.max_body).map_or(defaults.memory_max_body, |s| s.0),
        ..defaults
    };
    // The disk tier holds artifact blobs, unless the domain turns it off.
    if let (Some(disk), Domain::Artifact, true) = (&manifest.cache.disk, domain, config.disk != Some(false)) {
        let mut tier = DiskStoreConfig::new(manifest.resolve(&disk.dir).join("artifact"));
        if let Some(max) = disk.max_bytes {
            tier = tier.max_bytes(max.0);
        }
        if let Some(max) = disk.max_entries {
            tier = tier.max_entries(max);
        }
        tier = tier.default_ttl(disk.ttl.map_or(cache.ttl, |t| t.0));
        cache.disk = Some(tier);
    }
    Some(cache)
}

pub fn runtime_config(manifest: &Manifest) -> RuntimeConfig {
    let defaults = RuntimeConfig::default();
    RuntimeConfig {
        compiled_cache: manifest.runtime.compiled_cache.as_deref().map(|p| manifest.resolve(p)),
        max_memory: manifest.runtime.max_memory.map_or(defaults.max_memory, |s| s.0),
        max_instances: manifest.runtime.max_instances.unwrap_or(defaults.max_instances),
        pooling: defaults.pooling,
    }
}

/// Reads a plugin's component and turns its manifest table into a [`PluginSpec`]. Read-write
/// directories that do not exist yet are created.
pub fn plugin_spec(manifest: &Manifest, name: &str) -> Result<PluginSpec> {
    let cfg = &manifest.plugins[name];
    let key = |field: &str| format!("{}: plugins.{name}.{field}", manifest.origin);
    let wasm: Arc<[u8]> = match cfg.source.strip_prefix("builtin:") {
        Some(builtin) => match crate::builtin(builtin) {
            Some(wasm) => wasm.into(),
            None => bail!(
                "{}: no built-in plugin {builtin:?} (built-ins: {})",
                key("source"),
                crate::BUILTINS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        },
        None => {
            let path = manifest.resolve(Path::new(&cfg.source));
            std::fs::read(&path).with_context(|| format!("{}: cannot read {}", key("source"), path.display()))?.into()
        }
    };
    let defaults = PluginSettings::default();
    let settings = PluginSettings {
        instances: cfg.instances.unwrap_or(defaults.instances),
        timeout: cfg.timeout.map_or(defaults.timeout, |d| d.0),
        memory_limit: cfg.memory_limit.map_or(defaults.memory_limit, |s| s.0),
        queue: cfg.queue.unwrap_or(defaults.queue),
    };
    let max_memory = runtime_config(manifest).max_memory;
    if settings.memory_limit > max_memory {
        bail!("{}: {} bytes is over runtime.max_memory ({max_memory} bytes)", key("memory_limit"), settings.memory_limit);
    }
    let mut dirs = Vec::new();
    for (guest, dir) in &cfg.dirs {
        let host = manifest.resolve(&dir.host);
        if dir.mode == DirMode::Rw {
            std::fs::create_dir_all(&host).with_context(|| format!("{}: creating {}", key(&format!("dirs.{guest:?}.host")), host.display()))?;
        } else if !host.is_dir() {
            bail!("{}: {} is not a directory", key(&format!("dirs.{guest:?}.host")), host.display());
        }
        dirs.push(DirGrant { guest: guest.clone(), host, mode: dir.mode });
    }
    let grants = cfg.grants();
    if let Some((field, problem)) = grants.object_store.as_ref().and_then(|g| g.problem()) {
        bail!("{}: {problem}", key(&field.map_or("object_store".to_string(), |f| format!("object_store.{f}"))));
    }
    let mut spec = PluginSpec::new(name, cfg.source.clone(), wasm);
    spec.settings = settings;
    spec.config = cfg.config.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
    spec.dirs = dirs;
    spec.grants = grants;
    Ok(spec)
}

/// The plugin-backed origin of every bound domain.
fn bind_domains(manifest: &Manifest, plugins: &BTreeMap<String, Plugin>) -> Result<Stores> {
    let d = &manifest.domains;
    let bind = |domain: Domain, field: &str, name: &str| -> Result<Plugin> {
        plugins.get(name).cloned().with_context(|| format!("{}: domains.{domain}.{field}: no plugin {name:?}", manifest.origin))
    };
    let context = |domain: Domain, field: &str| format!("{}: domains.{domain}.{field}", manifest.origin);
    let mut stores = Stores::default();
    if let Some(c) = &d.artifact {
        let store = PluginArtifactStore::new(bind(Domain::Artifact, "origin", &c.origin)?).with_context(|| context(Domain::Artifact, "origin"))?;
        stores.artifact = Some(Arc::new(store));
    }
    if let Some(c) = &d.project {
        let state = PluginProjectStore::new(bind(Domain::Project, "origin", &c.origin)?).with_context(|| context(Domain::Project, "origin"))?;
        let meta_name = c.artifacts.as_deref().unwrap_or(&c.origin);
        let meta =
            PluginProjectArtifactStore::new(bind(Domain::Project, "artifacts", meta_name)?).with_context(|| context(Domain::Project, "artifacts"))?;
        stores.project = Some(Arc::new(state));
        stores.project_artifacts = Some(Arc::new(meta));
    }
    if let Some(c) = &d.ui {
        let store = PluginUiStore::new(bind(Domain::Ui, "origin", &c.origin)?).with_context(|| context(Domain::Ui, "origin"))?;
        stores.ui = Some(Arc::new(store));
    }
    if let Some(c) = &d.workspace {
        let store = PluginWorkspaceStore::new(bind(Domain::Workspace, "origin", &c.origin)?).with_context(|| context(Domain::Workspace, "origin"))?;
        stores.workspace = Some(Arc::new(store));
    }
    if let Some(c) = &d.runner {
        let store = PluginRunnerStore::new(bind(Domain::Runner, "origin", &c.origin)?).with_context(|| context(Domain::Runner, "origin"))?;
        stores.runner = Some(Arc::new(store));
    }
    Ok(stores)
}

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
pub mod oci;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sha2::Digest as _;

pub use manifest::{Manifest, ManifestError, Source};
pub use metrics::{DomainMetrics, render_cluster, render_peers, render_prometheus};

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
use crate::runtime::{LoadError, Plugin, PluginSettings, PluginSpec, Runtime, RuntimeConfig};

/// Something that can report an [`OriginStats`] snapshot: any domain's meter.
trait Meter: Send + Sync {
    fn snapshot(&self) -> OriginStats;
    /// The meter itself, for a reload to carry it over to the domain's new origin.
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<O: Operation> Meter for OriginMeter<O> {
    fn snapshot(&self) -> OriginStats {
        OriginMeter::snapshot(self)
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// When and from what a plugin was loaded: what `/v1/admin/plugins` shows of each.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PluginLoad {
    /// 1 at start-up; each reload that loads the plugin anew adds one.
    pub generation: u64,
    /// Lower-case hex SHA-256 of the component's bytes.
    pub sha256: String,
    /// Unix milliseconds.
    pub loaded_at_ms: u64,
}

impl PluginLoad {
    fn of(plugin: &Plugin, generation: u64) -> Self {
        let sha256 = hex::encode(sha2::Sha256::digest(&plugin.spec().wasm));
        let loaded_at_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Self { generation, sha256, loaded_at_ms }
    }
}

/// A running configuration: the runtime, the loaded plugins, and the domain stores.
pub struct App {
    pub manifest: Manifest,
    pub runtime: Runtime,
    pub plugins: BTreeMap<String, Plugin>,
    /// Each plugin's generation, source hash and load time.
    pub loads: BTreeMap<String, PluginLoad>,
    /// What services use: each domain's outermost layer.
    pub stores: Stores,
    /// The plugin-backed origins alone (no meter, no cache), for probes.
    pub origins: Stores,
    pub caches: Caches,
    /// This host's part in a cluster (`[cluster]`).
    pub cluster: Option<Arc<Node>>,
    /// The layers under the replication layer, which a reload keeps where nothing they rest on
    /// changed.
    layers: Layers,
}

/// What a reload did.
#[derive(Clone, Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub struct ReloadReport {
    /// Plugins loaded anew (their component or their settings changed, or they are new).
    pub loaded: Vec<String>,
    /// Plugins kept as they were, with their instances and connections.
    pub kept: Vec<String>,
    /// Plugins no longer in the manifest.
    pub removed: Vec<String>,
    /// Domains whose caches start empty (their origin or their cache settings changed).
    #[schema(value_type = Vec<String>)]
    pub cleared: Vec<Domain>,
    /// Manifest keys that changed but take effect only at a restart; until then the old values
    /// stay in force.
    pub restart_required: Vec<String>,
}

/// Why a reload changed nothing: the manifest key at fault (when there is one) and the reason.
#[derive(Debug, Clone, serde::Serialize, thiserror::Error)]
#[error("{message}")]
pub struct ReloadError {
    pub key: Option<String>,
    pub message: String,
}

impl ReloadError {
    fn new(key: Option<String>, error: impl std::fmt::Display) -> Self {
        Self { key, message: error.to_string() }
    }
}

impl From<ManifestError> for ReloadError {
    fn from(error: ManifestError) -> Self {
        let key = match &error {
            ManifestError::Key { key, .. } => Some(key.clone()),
            ManifestError::Read { .. } | ManifestError::Syntax { .. } => None,
        };
        Self::new(key, error)
    }
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
        let mut loads = BTreeMap::new();
        for name in manifest.plugins.keys() {
            let spec = plugin_spec(&manifest, name).await?;
            let plugin = Plugin::load(&runtime, spec).await.map_err(|e| in_manifest(&manifest, e))?;
            loads.insert(name.clone(), PluginLoad::of(&plugin, 1));
            plugins.insert(name.clone(), plugin);
        }
        let origins = bind_domains(&manifest, &plugins)?;
        let layers = Layers::over(&manifest, &origins, None)?;
        let cluster = match &manifest.cluster {
            Some(config) => {
                let position = layers.caches.artifact.as_ref().and_then(|c| c.disk_dir()).map(|d| d.with_extension("position"));
                let node =
                    Node::start(config.clone(), layers.caches.clone(), position).await.with_context(|| format!("{}: cluster", manifest.origin))?;
                Some(Arc::new(node))
            }
            None => None,
        };
        Ok(App::assemble(manifest, runtime, plugins, loads, origins, layers, cluster))
    }

    fn assemble(
        manifest: Manifest,
        runtime: Runtime,
        plugins: BTreeMap<String, Plugin>,
        loads: BTreeMap<String, PluginLoad>,
        origins: Stores,
        layers: Layers,
        cluster: Option<Arc<Node>>,
    ) -> App {
        let stores = match &cluster {
            Some(node) => layers.replicated(node),
            None => layers.stores.clone(),
        };
        if let (Some(cache), Some(peers)) = (&layers.caches.artifact, cluster.as_ref().and_then(|node| node.peers())) {
            cache.set_peers(peers.clone() as Arc<dyn crate::cache::PeerSource>);
        }
        App { manifest, runtime, plugins, loads, stores, origins, caches: layers.caches.clone(), cluster, layers }
    }

    /// The configuration `manifest` describes, built beside this one: plugins whose component
    /// and settings are unchanged are shared (instances, connections), the others are loaded
    /// and initialised anew; domains whose origins and cache settings are unchanged keep their
    /// caches, the others start with empty ones. Sections that need a restart (`[server]`,
    /// `[runtime]`, `[cluster]`, `[cache.disk]`, a domain's `max_body`) keep their old values
    /// and are reported.
    ///
    /// Nothing of this configuration changes until the result is put in its place, except that
    /// a rebuilt artifact cache takes over the disk tier (emptied) from the old one. Calls in
    /// flight finish on the old plugins, which are dropped with their last user.
    ///
    /// # Errors
    /// The first problem (a plugin that does not load, a binding to a missing export), naming
    /// the manifest key; this configuration is left as it was.
    pub async fn reload(&self, mut manifest: Manifest, tags: Tags) -> Result<(App, ReloadReport), ReloadError> {
        let mut report = ReloadReport::default();
        let old = &self.manifest;
        if manifest.server != old.server {
            report.restart_required.push("server".into());
            manifest.server = old.server.clone();
        }
        if manifest.runtime != old.runtime {
            report.restart_required.push("runtime".into());
            manifest.runtime = old.runtime.clone();
        }
        if manifest.cluster != old.cluster {
            report.restart_required.push("cluster".into());
            manifest.cluster = old.cluster.clone();
        }
        if manifest.cache.disk != old.cache.disk {
            report.restart_required.push("cache.disk".into());
            manifest.cache.disk = old.cache.disk.clone();
        }
        for domain in Domain::ALL {
            let before = old.domains.get(domain).and_then(|d| d.max_body);
            if let Some(config) = manifest.domains.get_mut(domain)
                && config.max_body != before
            {
                report.restart_required.push(format!("domains.{domain}.max_body"));
                config.max_body = before;
            }
        }

        let mut plugins = BTreeMap::new();
        let mut loads = BTreeMap::new();
        for name in manifest.plugins.keys() {
            let key = Some(format!("plugins.{name}"));
            // A registry source unchanged in the manifest keeps the digest it was loaded from.
            let running =
                self.plugins.get(name).filter(|_| self.manifest.plugins.get(name).map(|p| &p.source) == Some(&manifest.plugins[name].source));
            let running = running.and_then(|p| p.source().rsplit_once('@').map(|(_, digest)| digest.to_string()));
            let spec =
                plugin_spec_with(&manifest, name, tags, running.as_deref()).await.map_err(|e| ReloadError::new(key.clone(), format!("{e:#}")))?;
            let plugin = match self.plugins.get(name) {
                Some(current) if *current.spec() == spec => {
                    report.kept.push(name.clone());
                    loads.insert(name.clone(), self.loads[name].clone());
                    current.clone()
                }
                current => {
                    let plugin = Plugin::load(&self.runtime, spec).await.map_err(|e| ReloadError::new(key.clone(), e))?;
                    let generation = current.map_or(0, |_| self.loads[name].generation) + 1;
                    loads.insert(name.clone(), PluginLoad::of(&plugin, generation));
                    report.loaded.push(name.clone());
                    plugin
                }
            };
            plugins.insert(name.clone(), plugin);
        }
        report.removed = self.plugins.keys().filter(|name| !plugins.contains_key(*name)).cloned().collect();

        let origins = bind_domains(&manifest, &plugins)?;
        // A domain keeps its layers when it is bound to the same plugins and cached the same way.
        let same_plugin = |name: &String| match (plugins.get(name), self.plugins.get(name)) {
            (Some(new), Some(current)) => new.is(current),
            _ => false,
        };
        let unchanged: BTreeSet<Domain> = Domain::ALL
            .into_iter()
            .filter(|&domain| match (manifest.domains.get(domain), old.domains.get(domain)) {
                (Some(new), Some(current)) => {
                    new == current && manifest.cache == old.cache && same_plugin(&new.origin) && new.artifacts.as_ref().is_none_or(same_plugin)
                }
                _ => false,
            })
            .collect();
        let previous = Previous { layers: &self.layers, unchanged: &unchanged };
        let layers = Layers::over(&manifest, &origins, Some(previous)).map_err(|e| ReloadError::new(Some("cache".into()), format!("{e:#}")))?;
        report.cleared = Domain::ALL.into_iter().filter(|&d| layers.caches.is_cached(d) && !unchanged.contains(&d)).collect();
        if let Some(node) = &self.cluster {
            node.set_caches(layers.caches.clone());
        }
        let app = App::assemble(manifest, self.runtime.clone(), plugins, loads, origins, layers, self.cluster.clone());
        Ok((app, report))
    }

    /// The metrics of every bound domain: its origin calls and, when it is cached, its caches.
    pub fn metrics(&self) -> Vec<DomainMetrics> {
        self.layers
            .meters
            .iter()
            .map(|(_, meter)| {
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

/// What a reload builds on: the layers of the configuration it replaces, and the domains whose
/// layers it keeps.
#[derive(Clone, Copy)]
struct Previous<'a> {
    layers: &'a Layers,
    unchanged: &'a BTreeSet<Domain>,
}

impl Previous<'_> {
    fn keeps(&self, domain: Domain) -> bool {
        self.unchanged.contains(&domain)
    }
}

/// The layers over the origins: what services use, the caches, the meters.
#[derive(Default)]
struct Layers {
    stores: Stores,
    /// The metered origins, under the caches.
    metered: Stores,
    caches: Caches,
    meters: Vec<(Domain, Arc<dyn Meter>)>,
}

impl Layers {
    /// Puts a meter over each origin and, where the domain is cached, a cache over the meter.
    /// With `previous`, the domains it keeps take its layers as they are, and the others keep
    /// their meters (the counts go on) over new origins and empty caches.
    fn over(manifest: &Manifest, origins: &Stores, previous: Option<Previous<'_>>) -> Result<Layers> {
        let mut layers = Layers::default();
        // The domains `previous` keeps take its layers as they are; the others are built here.
        if let Some(previous) = previous {
            for &domain in previous.unchanged {
                layers.keep(previous.layers, domain);
            }
        }
        let rebuilt = |domain: Domain| previous.is_none_or(|p| !p.keeps(domain));
        if let Some((origin, meta)) = origins.project.clone().zip(origins.project_artifacts.clone()).filter(|_| rebuilt(Domain::Project)) {
            let meter = layers.meter::<ProjectOperation>(Domain::Project, previous);
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
        if let Some(origin) = origins.ui.clone().filter(|_| rebuilt(Domain::Ui)) {
            let metered: Arc<dyn UiStore> = Arc::new(Metered::new(origin, layers.meter::<UiOperation>(Domain::Ui, previous)));
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
        if let Some(origin) = origins.workspace.clone().filter(|_| rebuilt(Domain::Workspace)) {
            let meter = layers.meter::<WorkspaceOperation>(Domain::Workspace, previous);
            let metered: Arc<dyn WorkspaceStore> = Arc::new(Metered::new(origin, meter));
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
        if let Some(origin) = origins.runner.clone().filter(|_| rebuilt(Domain::Runner)) {
            layers.stores.runner = Some(Arc::new(Metered::new(origin, layers.meter::<RunnerOperation>(Domain::Runner, previous))));
        }
        // Last, as only it may change the configuration being replaced: a rebuilt artifact
        // cache takes over the old one's disk tier.
        if let Some(origin) = origins.artifact.clone().filter(|_| rebuilt(Domain::Artifact)) {
            let meter = layers.meter::<ArtifactOperation>(Domain::Artifact, previous);
            let metered: Arc<dyn ArtifactStore> = Arc::new(Metered::new(origin, meter));
            layers.metered.artifact = Some(metered.clone());
            layers.stores.artifact = Some(match cache_config(manifest, Domain::Artifact) {
                Some(config) => {
                    let old = previous.and_then(|p| p.layers.caches.artifact.as_ref());
                    let disk = old.and_then(|old| old.hand_over_disk(config.disk.as_ref()));
                    let cached = Arc::new(
                        CachedArtifactStore::with_disk(metered, config, disk)
                            .with_context(|| format!("{}: cache.disk: opening the disk cache", manifest.origin))?,
                    );
                    layers.caches.artifact = Some(cached.clone());
                    cached
                }
                None => metered,
            });
        }
        layers.meters.sort_by_key(|(domain, _)| *domain as usize);
        Ok(layers)
    }

    /// Takes `domain`'s layers from `previous` as they are.
    fn keep(&mut self, previous: &Layers, domain: Domain) {
        let (to, from) = (self, previous);
        match domain {
            Domain::Artifact => {
                to.stores.artifact = from.stores.artifact.clone();
                to.metered.artifact = from.metered.artifact.clone();
                to.caches.artifact = from.caches.artifact.clone();
            }
            Domain::Project => {
                to.stores.project = from.stores.project.clone();
                to.stores.project_artifacts = from.stores.project_artifacts.clone();
                to.metered.project = from.metered.project.clone();
                to.metered.project_artifacts = from.metered.project_artifacts.clone();
                to.caches.project = from.caches.project.clone();
            }
            Domain::Ui => {
                to.stores.ui = from.stores.ui.clone();
                to.metered.ui = from.metered.ui.clone();
                to.caches.ui = from.caches.ui.clone();
            }
            Domain::Workspace => {
                to.stores.workspace = from.stores.workspace.clone();
                to.metered.workspace = from.metered.workspace.clone();
                to.caches.workspace = from.caches.workspace.clone();
            }
            Domain::Runner => to.stores.runner = from.stores.runner.clone(),
        }
        to.meters.extend(from.meters.iter().filter(|(d, _)| *d == domain).cloned());
    }

    /// The replication layer over every cacheable domain: its writes publish their
    /// invalidations, and its reads leave the cache while the host is not synced. Runner files
    /// are never cached, so they need none.
    fn replicated(&self, node: &Node) -> Stores {
        /// The origin under a domain's cache, or `None` where the front store is the origin.
        fn under<S: ?Sized>(front: &Arc<S>, metered: &Option<Arc<S>>) -> Option<Arc<S>> {
            metered.clone().filter(|m| !Arc::ptr_eq(m, front))
        }
        let (stores, metered) = (&self.stores, &self.metered);
        let mut out = stores.clone();
        if let Some(front) = &stores.artifact {
            out.artifact = Some(Arc::new(Replicated::new(front.clone(), under(front, &metered.artifact), node)));
        }
        if let Some(front) = &stores.project {
            out.project = Some(Arc::new(Replicated::new(front.clone(), under(front, &metered.project), node)));
        }
        if let Some(front) = &stores.project_artifacts {
            out.project_artifacts = Some(Arc::new(Replicated::new(front.clone(), under(front, &metered.project_artifacts), node)));
        }
        if let Some(front) = &stores.ui {
            out.ui = Some(Arc::new(Replicated::new(front.clone(), under(front, &metered.ui), node)));
        }
        if let Some(front) = &stores.workspace {
            out.workspace = Some(Arc::new(Replicated::new(front.clone(), under(front, &metered.workspace), node)));
        }
        out
    }

    /// The meter of a domain's operations, reported by [`App::metrics`]: `previous`'s, so its
    /// counts go on, or a new one.
    fn meter<O: Operation>(&mut self, domain: Domain, previous: Option<Previous<'_>>) -> Arc<OriginMeter<O>> {
        let carried = previous
            .and_then(|p| p.layers.meters.iter().find(|(d, _)| *d == domain).cloned())
            .and_then(|(_, meter)| meter.as_any().downcast::<OriginMeter<O>>().ok());
        let meter = carried.unwrap_or_else(|| Arc::new(OriginMeter::<O>::new()));
        self.meters.push((domain, meter.clone()));
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
        stale_if_error: config.stale_if_error.map(|d| d.0),
        peer_fill: config.peer_fill == Some(true),
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

/// Where components pulled from OCI registries are kept: beside the compiled-code cache
/// (`.storehost/components` by default).
pub fn components_cache(manifest: &Manifest) -> oci::Cache {
    let compiled = runtime_config(manifest).compiled_cache;
    oci::Cache::new(match compiled.as_deref().and_then(Path::parent) {
        Some(dir) => dir.join("components"),
        None => manifest.resolve(Path::new(".storehost/components")),
    })
}

/// Whether registry sources are pinned by the lock file, or resolved again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tags {
    /// A digest in the manifest, else the lock file's, else the one the running plugin was
    /// loaded from (a reload), else what the registry says the tag names (or, unreachable, what
    /// it last named).
    Locked,
    /// What the registry says the tag names now, unless the manifest pins a digest.
    Resolved,
}

/// The component of plugin `name`, and its source as messages name it. `running` is the
/// digest of the registry source the running plugin was loaded from, when a reload finds the
/// same source in the manifest.
async fn component(manifest: &Manifest, name: &str, tags: Tags, running: Option<&str>) -> Result<(Arc<[u8]>, String)> {
    let cfg = &manifest.plugins[name];
    let key = |field: &str| format!("{}: plugins.{name}.{field}", manifest.origin);
    let (reference, pinned) = match &cfg.source {
        Source::File(file) => {
            let wasm = match file.strip_prefix("builtin:") {
                Some(builtin) => match crate::builtin(builtin) {
                    Some(wasm) => wasm.into(),
                    None => bail!(
                        "{}: no built-in plugin {builtin:?} (built-ins: {})",
                        key("source"),
                        crate::BUILTINS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                    ),
                },
                None => {
                    let path = manifest.resolve(Path::new(file));
                    std::fs::read(&path).with_context(|| format!("{}: cannot read {}", key("source"), path.display()))?.into()
                }
            };
            return Ok((wasm, file.clone()));
        }
        Source::Oci { reference, digest } => (reference, digest.clone()),
    };
    let lock_path = manifest.path.as_deref().map(oci::Lock::path_of);
    let locked = match (&pinned, tags, &lock_path) {
        (None, Tags::Locked, Some(path)) => oci::Lock::load(path)?.and_then(|lock| lock.digest(name, reference).map(String::from)),
        _ => None,
    };
    let registries = oci::Registries::new(manifest.registries.clone());
    let running = running.filter(|_| tags == Tags::Locked);
    let digest = pinned.as_deref().or(locked.as_deref()).or(running);
    let pulled = oci::pull(reference, digest, &components_cache(manifest), &registries, &indicatif::ProgressBar::hidden())
        .await
        .map_err(|e| anyhow::anyhow!("{}: {reference}: {e:#}", key("source")))?;
    match (&locked, pulled.found) {
        (Some(digest), _) => {
            tracing::info!(plugin = name, reference, digest, lock = %lock_path.expect("locked").display(), "a registry source pinned by the lock file")
        }
        (None, oci::Found::CachedTag) => tracing::warn!(
            plugin = name,
            reference,
            digest = %pulled.digest,
            "the registry cannot be reached: loading what the tag named when it last could"
        ),
        _ => {}
    }
    Ok((pulled.wasm.into(), format!("oci://{reference}@{}", pulled.digest)))
}

/// Reads a plugin's component and turns its manifest table into a [`PluginSpec`]. Read-write
/// directories that do not exist yet are created. A component from a registry is pinned by
/// the manifest's digest, else the lock file's.
pub async fn plugin_spec(manifest: &Manifest, name: &str) -> Result<PluginSpec> {
    plugin_spec_with(manifest, name, Tags::Locked, None).await
}

/// [`plugin_spec`], registry tags resolved as `tags` says (see [`component`] for `running`).
async fn plugin_spec_with(manifest: &Manifest, name: &str, tags: Tags, running: Option<&str>) -> Result<PluginSpec> {
    let cfg = &manifest.plugins[name];
    let key = |field: &str| format!("{}: plugins.{name}.{field}", manifest.origin);
    let (wasm, source) = component(manifest, name, tags, running).await?;
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
    let mut spec = PluginSpec::new(name, source, wasm);
    spec.settings = settings;
    spec.config = cfg.config.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
    spec.dirs = dirs;
    spec.grants = grants;
    Ok(spec)
}

/// A plugin's load error as an error of the manifest: an instance that did not start (its
/// `init()` refused the plugin's configuration, say) is one of the plugin's table.
fn in_manifest(manifest: &Manifest, error: LoadError) -> anyhow::Error {
    match error {
        LoadError::Start { plugin, error } => {
            ManifestError::Key { file: manifest.origin.clone(), key: format!("plugins.{plugin}"), message: format!("starting an instance: {error}") }
                .into()
        }
        other => other.into(),
    }
}

/// The plugin-backed origin of every bound domain.
/// A domain bound to a plugin that is missing or does not export the domain is an error of its
/// manifest key.
fn bind_domains(manifest: &Manifest, plugins: &BTreeMap<String, Plugin>) -> Result<Stores, ManifestError> {
    let d = &manifest.domains;
    let fail = |domain: Domain, field: &str, error: anyhow::Error| ManifestError::Key {
        file: manifest.origin.clone(),
        key: format!("domains.{domain}.{field}"),
        message: format!("{error:#}"),
    };
    let bind = |domain: Domain, field: &str, name: &str| {
        plugins.get(name).cloned().ok_or_else(|| fail(domain, field, anyhow::anyhow!("no plugin {name:?}")))
    };
    let mut stores = Stores::default();
    if let Some(c) = &d.artifact {
        let store = PluginArtifactStore::new(bind(Domain::Artifact, "origin", &c.origin)?).map_err(|e| fail(Domain::Artifact, "origin", e))?;
        stores.artifact = Some(Arc::new(store));
    }
    if let Some(c) = &d.project {
        let state = PluginProjectStore::new(bind(Domain::Project, "origin", &c.origin)?).map_err(|e| fail(Domain::Project, "origin", e))?;
        let meta_name = c.artifacts.as_deref().unwrap_or(&c.origin);
        let meta =
            PluginProjectArtifactStore::new(bind(Domain::Project, "artifacts", meta_name)?).map_err(|e| fail(Domain::Project, "artifacts", e))?;
        stores.project = Some(Arc::new(state));
        stores.project_artifacts = Some(Arc::new(meta));
    }
    if let Some(c) = &d.ui {
        let store = PluginUiStore::new(bind(Domain::Ui, "origin", &c.origin)?).map_err(|e| fail(Domain::Ui, "origin", e))?;
        stores.ui = Some(Arc::new(store));
    }
    if let Some(c) = &d.workspace {
        let store = PluginWorkspaceStore::new(bind(Domain::Workspace, "origin", &c.origin)?).map_err(|e| fail(Domain::Workspace, "origin", e))?;
        stores.workspace = Some(Arc::new(store));
    }
    if let Some(c) = &d.runner {
        let store = PluginRunnerStore::new(bind(Domain::Runner, "origin", &c.origin)?).map_err(|e| fail(Domain::Runner, "origin", e))?;
        stores.runner = Some(Arc::new(store));
    }
    Ok(stores)
}

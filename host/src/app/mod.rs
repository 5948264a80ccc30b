//! Wiring: from a manifest to loaded plugins and one store per domain.

pub mod manifest;
pub mod units;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

pub use manifest::{Manifest, ManifestError};

use crate::cache::metrics::{DomainMetrics, MetricsSource};
use crate::cache::{
    CacheConfig, CachedArtifactStore, CachedProjectStore, CachedUiStore, CachedWorkspaceStore, DiskStoreConfig, MeteredRunnerStore,
};
use crate::capabilities::files::{DirGrant, DirMode};
use crate::capabilities::object_store::{ObjectStoreGrant, StaticCredentials};
use crate::domain::{
    ArtifactStore, PluginArtifactStore, PluginProjectArtifactStore, PluginProjectStore, PluginRunnerStore, PluginUiStore,
    PluginWorkspaceStore, ProjectArtifactStore, ProjectStore, RunnerStore, UiStore, WorkspaceStore,
};
use crate::runtime::{Plugin, PluginSettings, PluginSpec, Runtime, RuntimeConfig};

/// The store of each configured domain (`None` when the manifest does not bind it).
#[derive(Clone, Default)]
pub struct Stores {
    pub artifact: Option<Arc<dyn ArtifactStore>>,
    pub project: Option<Arc<dyn ProjectStore>>,
    pub project_artifacts: Option<Arc<dyn ProjectArtifactStore>>,
    pub ui: Option<Arc<dyn UiStore>>,
    pub workspace: Option<Arc<dyn WorkspaceStore>>,
    pub runner: Option<Arc<dyn RunnerStore>>,
}

/// The cached stores, by their concrete types: for metrics, invalidation and shutdown.
#[derive(Clone, Default)]
pub struct Caches {
    pub artifact: Option<Arc<CachedArtifactStore>>,
    pub project: Option<Arc<CachedProjectStore>>,
    pub ui: Option<Arc<CachedUiStore>>,
    pub workspace: Option<Arc<CachedWorkspaceStore>>,
    pub runner: Option<Arc<MeteredRunnerStore>>,
}

impl Caches {
    /// The metrics of every domain that has a store.
    pub fn metrics(&self) -> Vec<DomainMetrics> {
        let mut out = Vec::new();
        let sources: [Option<&dyn MetricsSource>; 5] = [
            self.artifact.as_deref().map(|s| s as _),
            self.project.as_deref().map(|s| s as _),
            self.ui.as_deref().map(|s| s as _),
            self.workspace.as_deref().map(|s| s as _),
            self.runner.as_deref().map(|s| s as _),
        ];
        for source in sources.into_iter().flatten() {
            out.push(source.metrics());
        }
        out
    }

    /// Persists what the caches keep on disk (at shutdown).
    pub fn flush(&self) -> Result<()> {
        if let Some(artifact) = &self.artifact {
            artifact.flush()?;
        }
        Ok(())
    }
}

/// A running configuration: the runtime, the loaded plugins, and the domain stores.
pub struct App {
    pub manifest: Manifest,
    pub runtime: Runtime,
    pub plugins: BTreeMap<String, Plugin>,
    /// What services use: each domain's cached store (the origin only where caching is off).
    pub stores: Stores,
    /// The plugin-backed origins under the caches.
    pub origins: Stores,
    pub caches: Caches,
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
        let (stores, caches) = wrap_in_caches(&manifest, &origins)?;
        Ok(App { manifest, runtime, plugins, stores, origins, caches })
    }
}

/// Shares of `[cache.memory] max_bytes` for domains that set no budget of their own.
const MEMORY_SHARES: [(&str, f64); 4] = [("artifact", 0.6), ("project", 0.1), ("ui", 0.15), ("workspace", 0.15)];

/// The cache settings of a domain from `[cache]` and `[domains.NAME]`; `None` when its caching
/// is off.
pub fn cache_config(manifest: &Manifest, domain: &str) -> Option<CacheConfig> {
    let d = &manifest.domains;
    let config = match domain {
        "artifact" => d.artifact.as_ref(),
        "project" => d.project.as_ref(),
        "ui" => d.ui.as_ref(),
        "workspace" => d.workspace.as_ref(),
        _ => None,
    }?;
    if config.cache == Some(false) {
        return None;
    }
    let memory = manifest.cache.memory.as_ref();
    let defaults = CacheConfig::default();
    let share = MEMORY_SHARES.iter().find(|(name, _)| *name == domain).map_or(0.1, |(_, s)| *s);
    let total = memory.and_then(|m| m.max_bytes).map(|s| s.0);
    let mut cache = CacheConfig {
        ttl: config.ttl.or(memory.and_then(|m| m.ttl)).map_or(defaults.ttl, |t| t.0),
        max_bytes: config.max_bytes.map(|s| s.0).or(total.map(|t| (t as f64 * share) as u64)).unwrap_or(defaults.max_bytes),
        max_entries: memory.and_then(|m| m.max_entries),
        ..defaults
    };
    // The disk tier holds artifact blobs, unless the domain turns it off.
    if let (Some(disk), "artifact", true) = (&manifest.cache.disk, domain, config.disk != Some(false)) {
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

fn wrap_in_caches(manifest: &Manifest, origins: &Stores) -> Result<(Stores, Caches)> {
    let mut stores = origins.clone();
    let mut caches = Caches::default();
    if let (Some(origin), Some(config)) = (&origins.artifact, cache_config(manifest, "artifact")) {
        let cached = Arc::new(
            CachedArtifactStore::new(origin.clone(), config).with_context(|| format!("{}: cache.disk: opening the disk cache", manifest.origin))?,
        );
        stores.artifact = Some(cached.clone());
        caches.artifact = Some(cached);
    }
    if let (Some(origin), Some(meta), Some(config)) = (&origins.project, &origins.project_artifacts, cache_config(manifest, "project")) {
        let cached = Arc::new(CachedProjectStore::new(origin.clone(), meta.clone(), config));
        stores.project = Some(cached.clone());
        stores.project_artifacts = Some(cached.clone());
        caches.project = Some(cached);
    }
    if let (Some(origin), Some(config)) = (&origins.ui, cache_config(manifest, "ui")) {
        let cached = Arc::new(CachedUiStore::new(origin.clone(), config));
        stores.ui = Some(cached.clone());
        caches.ui = Some(cached);
    }
    if let (Some(origin), Some(config)) = (&origins.workspace, cache_config(manifest, "workspace")) {
        let cached = Arc::new(CachedWorkspaceStore::new(origin.clone(), config));
        stores.workspace = Some(cached.clone());
        caches.workspace = Some(cached);
    }
    if let Some(origin) = &origins.runner {
        let metered = Arc::new(MeteredRunnerStore::new(origin.clone()));
        stores.runner = Some(metered.clone());
        caches.runner = Some(metered);
    }
    Ok((stores, caches))
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
    let mut spec = PluginSpec::new(name, cfg.source.clone(), wasm);
    spec.settings = settings;
    spec.config = cfg.config.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
    spec.dirs = dirs;
    spec.sql = cfg.sql.as_ref().map(|g| crate::capabilities::sql::SqlGrant {
        url: g.url.clone(),
        max_connections: g.max_connections.unwrap_or(8),
        connect_timeout: g.connect_timeout.map_or(std::time::Duration::from_secs(5), |d| d.0),
    });
    spec.object_store = cfg.object_store.as_ref().map(|g| object_store_grant(g, &key)).transpose()?;
    Ok(spec)
}

/// The manifest's `object_store` table as a grant; `key` names a field for messages.
fn object_store_grant(g: &manifest::ObjectStoreGrant, key: &dyn Fn(&str) -> String) -> Result<ObjectStoreGrant> {
    let credentials = match (&g.access_key_id, &g.secret_access_key) {
        (Some(id), Some(secret)) => Some(StaticCredentials { access_key_id: id.clone(), secret_access_key: secret.clone() }),
        (None, None) => None,
        _ => bail!("{}: access_key_id and secret_access_key go together (or leave both out for the AWS environment's credentials)", key("object_store")),
    };
    let grant = ObjectStoreGrant {
        bucket: g.bucket.clone(),
        endpoint: g.endpoint.clone(),
        region: g.region.clone(),
        path_style: g.path_style,
        credentials,
        timeout: g.timeout.map_or(ObjectStoreGrant::DEFAULT_TIMEOUT, |d| d.0),
        max_retries: g.max_retries.unwrap_or(ObjectStoreGrant::DEFAULT_MAX_RETRIES),
    };
    if let Some((field, problem)) = grant.problem() {
        bail!("{}: {problem}", key(&format!("object_store.{field}")));
    }
    Ok(grant)
}

fn bind_domains(manifest: &Manifest, plugins: &BTreeMap<String, Plugin>) -> Result<Stores> {
    let d = &manifest.domains;
    let bind = |domain: &str, field: &str, name: &str| -> Result<Plugin> {
        plugins.get(name).cloned().with_context(|| format!("{}: domains.{domain}.{field}: no plugin {name:?}", manifest.origin))
    };
    let context = |domain: &str, field: &str| format!("{}: domains.{domain}.{field}", manifest.origin);
    let mut stores = Stores::default();
    if let Some(c) = &d.artifact {
        let store = PluginArtifactStore::new(bind("artifact", "origin", &c.origin)?).with_context(|| context("artifact", "origin"))?;
        stores.artifact = Some(Arc::new(store));
    }
    if let Some(c) = &d.project {
        let state = PluginProjectStore::new(bind("project", "origin", &c.origin)?).with_context(|| context("project", "origin"))?;
        let meta_name = c.artifacts.as_deref().unwrap_or(&c.origin);
        let meta = PluginProjectArtifactStore::new(bind("project", "artifacts", meta_name)?).with_context(|| context("project", "artifacts"))?;
        stores.project = Some(Arc::new(state));
        stores.project_artifacts = Some(Arc::new(meta));
    }
    if let Some(c) = &d.ui {
        let store = PluginUiStore::new(bind("ui", "origin", &c.origin)?).with_context(|| context("ui", "origin"))?;
        stores.ui = Some(Arc::new(store));
    }
    if let Some(c) = &d.workspace {
        let store = PluginWorkspaceStore::new(bind("workspace", "origin", &c.origin)?).with_context(|| context("workspace", "origin"))?;
        stores.workspace = Some(Arc::new(store));
    }
    if let Some(c) = &d.runner {
        let store = PluginRunnerStore::new(bind("runner", "origin", &c.origin)?).with_context(|| context("runner", "origin"))?;
        stores.runner = Some(Arc::new(store));
    }
    Ok(stores)
}

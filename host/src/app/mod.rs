//! Wiring: from a manifest to loaded plugins and one store per domain.

pub mod manifest;
pub mod units;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

pub use manifest::{Manifest, ManifestError};

use crate::capabilities::files::{DirGrant, DirMode};
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

/// A running configuration: the runtime, the loaded plugins, and the domain stores.
pub struct App {
    pub manifest: Manifest,
    pub runtime: Runtime,
    pub plugins: BTreeMap<String, Plugin>,
    pub stores: Stores,
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
        let stores = bind_domains(&manifest, &plugins)?;
        Ok(App { manifest, runtime, plugins, stores })
    }
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
    spec.grants_sql = cfg.sql.is_some();
    spec.grants_object_store = cfg.object_store.is_some();
    Ok(spec)
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

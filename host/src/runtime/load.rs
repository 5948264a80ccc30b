//! Loading a plugin: compiling its component (or loading it from the compiled-code cache),
//! checking its type against the contracts and its imports against its grants, and starting
//! its instances.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};

use super::Runtime;
use super::compiled_cache::{self, CompileSource};
use super::instance::PluginState;
use super::interfaces::{Exports, Indices, Interface, OriginVersion};
use super::plugin::{Plugin, PluginInner};
use super::pool::Pool;
use super::spec::{LoadError, PluginInfo, PluginSpec};
use super::stats::Counters;
use crate::capabilities::object_store::ObjectStoreGrant;
use crate::capabilities::sql::SqlGrant;
use crate::capabilities::{PluginCapabilities, PluginIdentity, Provider};

impl Plugin {
    /// Compiles (or loads from the compiled-code cache), checks and starts a plugin.
    ///
    /// # Errors
    /// A [`LoadError`] naming the plugin and what is wrong: not a component, an ungranted or
    /// unknown import, no origin export, an export that does not match the contract, a grant
    /// that cannot be opened, or a failing `init`.
    pub async fn load(runtime: &Runtime, spec: PluginSpec) -> Result<Plugin, LoadError> {
        let plugin = spec.name.clone();
        let compiled = compile(runtime, &spec).await?;
        check_imports(&spec, &compiled.imports)?;
        let exports = Exports::read(&plugin, compiled.exports.iter().map(String::as_str))?;

        let identity = PluginIdentity { name: &spec.name, config: &spec.config, timeout: spec.settings.timeout, dirs: &spec.dirs };
        let capabilities = PluginCapabilities::open(&spec.grants, &identity).await.map_err(|e| LoadError::Grant {
            plugin: plugin.clone(),
            key: e.key,
            message: format!("{:#}", e.error),
        })?;
        let mut linker: Linker<PluginState> = Linker::new(runtime.engine());
        let link = |e: wasmtime::Error| LoadError::Link { plugin: plugin.clone(), message: format!("{e:#}") };
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
        capabilities.add_to_linker(&mut linker).map_err(link)?;
        linker.instance(&format!("storehost:origin/types@{}", exports.version())).map_err(link)?;
        let pre = linker.instantiate_pre(&compiled.component).map_err(link)?;
        let indices = Indices::new(&plugin, &pre, &exports)?;

        let mut settings = spec.settings.clone();
        let mut inner = PluginInner {
            runtime: runtime.clone(),
            pre,
            indices,
            exports,
            imports: compiled.imports,
            info: PluginInfo { name: String::new(), version: String::new(), stateful: false, max_key_bytes: PluginInfo::MAX_KEY_BYTES },
            settings: settings.clone(),
            config_list: spec.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            capabilities: Arc::new(capabilities),
            compile_source: compiled.source,
            compile_time: compiled.time,
            pool: Pool::new(settings.instances.max(1), settings.queue),
            counters: Counters::default(),
            spec,
        };
        let start = |error| LoadError::Start { plugin: plugin.clone(), error };
        let (first, info) = inner.instantiate().await.map_err(start)?;
        if info.stateful {
            settings.instances = 1;
        }
        inner.settings = settings.clone();
        inner.pool = Pool::new(settings.instances.max(1), settings.queue);
        inner.info = info;
        inner.pool.put_idle(first);
        for _ in 1..settings.instances {
            let (warm, _) = inner.instantiate().await.map_err(start)?;
            inner.pool.put_idle(warm);
        }
        tracing::debug!(
            plugin = %plugin,
            source = %inner.spec.source,
            compile_source = ?inner.compile_source,
            compile_time = ?inner.compile_time,
            instances = settings.instances,
            "plugin loaded"
        );
        Ok(Plugin::from_inner(inner))
    }
}

/// A compiled component and the names in its type.
struct Compiled {
    component: Component,
    source: CompileSource,
    time: Duration,
    imports: Vec<String>,
    exports: Vec<String>,
}

async fn compile(runtime: &Runtime, spec: &PluginSpec) -> Result<Compiled, LoadError> {
    let plugin = spec.name.clone();
    let source_name = spec.source.clone();
    if !wasmparser::Parser::is_component(&spec.wasm) {
        return Err(if wasmparser::Parser::is_core_wasm(&spec.wasm) {
            LoadError::CoreModule { plugin, source_name }
        } else {
            LoadError::NotWasm { plugin, source_name }
        });
    }
    let started = Instant::now();
    let (engine, wasm, cache_dir) = (runtime.engine().clone(), spec.wasm.clone(), runtime.config().compiled_cache.clone());
    let compiled =
        tokio::task::spawn_blocking(move || compiled_cache::load(&engine, &wasm, cache_dir.as_deref())).await.expect("compilation does not panic");
    let (component, source) = compiled.map_err(|e| LoadError::Compile { plugin, source_name, message: format!("{e:#}") })?;
    let time = started.elapsed();
    let ty = component.component_type();
    let imports = ty.imports(runtime.engine()).map(|(name, _)| name.to_string()).collect();
    let exports = ty.exports(runtime.engine()).map(|(name, _)| name.to_string()).collect();
    Ok(Compiled { component, source, time, imports, exports })
}

/// Every import must be something storehost provides, and granted if it needs a grant.
fn check_imports(spec: &PluginSpec, imports: &[String]) -> Result<(), LoadError> {
    for import in imports {
        let plugin = spec.name.clone();
        let Some(provider) = Provider::of_import(import) else {
            return Err(LoadError::UnknownImport { plugin, import: import.clone() });
        };
        if let Some(key) = spec.grants.missing_for(import) {
            return Err(LoadError::Ungranted { plugin, capability: provider.to_string(), key });
        }
    }
    Ok(())
}

/// What `storehost plugin inspect` shows of a component.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Inspection {
    pub source: String,
    pub size: usize,
    /// The exports the host uses: the component's `storehost:origin` interfaces, by name.
    pub exports: Vec<String>,
    /// The other exports, which the host never calls (a toolchain's own, such as
    /// componentize-py's `exports` instance).
    pub unused_exports: Vec<String>,
    /// The `storehost:origin` interfaces it exports.
    pub interfaces: Vec<Interface>,
    /// The version of `storehost:origin` they are of.
    pub origin_version: Option<OriginVersion>,
    /// Every import, with what provides it (`None`: not something storehost provides).
    pub imports: Vec<(String, Option<Provider>)>,
    /// `describe()`, when the component could be started with every capability granted.
    pub describe: Option<PluginInfo>,
    /// Why it could not be loaded as a plugin, if it could not.
    pub load_error: Option<String>,
    pub compile_source: CompileSource,
    pub compile_time: Duration,
}

/// Reads a component's type and, if it loads, its `describe()`.
///
/// # Errors
/// Only when the bytes are not a component that compiles.
pub async fn inspect(runtime: &Runtime, mut spec: PluginSpec) -> Result<Inspection, LoadError> {
    let compiled = compile(runtime, &spec).await?;
    let interfaces = Interface::ALL.iter().copied().filter(|i| compiled.exports.iter().any(|e| Interface::of_export(e) == Some(*i))).collect();
    // Grants that reach nothing: a pool that connects lazily to an address that does not
    // resolve, and a client with a loopback endpoint and explicit credentials and region.
    // Inspection makes no calls.
    spec.grants.sql =
        Some(SqlGrant { max_connections: 1, connect_timeout: Duration::from_secs(1), ..SqlGrant::new("postgres://inspection.invalid/none") });
    spec.grants.object_store = Some(ObjectStoreGrant {
        endpoint: Some("http://127.0.0.1:9".into()),
        region: Some("us-east-1".into()),
        path_style: true,
        access_key_id: Some("inspection".into()),
        secret_access_key: Some("inspection".into()),
        ..ObjectStoreGrant::new("inspection")
    });
    spec.settings.instances = 1;
    spec.skip_init = true;
    let (describe, load_error) = match Plugin::load(runtime, spec.clone()).await {
        Ok(plugin) => (Some(plugin.info().clone()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let origin_version = compiled.exports.iter().find_map(|e| OriginVersion::of_export(e));
    let (exports, unused_exports) = compiled.exports.into_iter().partition(|e| Interface::of_export(e).is_some());
    Ok(Inspection {
        source: spec.source,
        size: spec.wasm.len(),
        interfaces,
        origin_version,
        imports: compiled.imports.iter().map(|i| (i.clone(), Provider::of_import(i))).collect(),
        exports,
        unused_exports,
        describe,
        load_error,
        compile_source: compiled.source,
        compile_time: compiled.time,
    })
}

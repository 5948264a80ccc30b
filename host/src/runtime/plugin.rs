//! Loading a plugin (checks of its type against the contracts and the manifest's grants) and
//! calling it (deadline, cancellation, trap recovery).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, InstancePre, Linker};
use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};

use super::bindings::{self, WitStoreError, origin};
use super::compiled_cache::{self, CompileSource};
use super::pool::Pool;
use super::state::PluginState;
use super::Runtime;
use crate::capabilities::files::{self, DirGrant};
use crate::capabilities::Capability;
use crate::domain::{Ctx, StoreError};

/// The version of the `storehost:origin` and `storehost:host` packages this host speaks.
pub const WIT_VERSION: &str = "0.1.0";

/// An interface of `storehost:origin` a component may export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interface {
    Plugin,
    Artifacts,
    Projects,
    ProjectArtifacts,
    UiDocuments,
    Workspaces,
    RunnerArtifacts,
    MockControl,
}

impl Interface {
    pub const ALL: [Interface; 8] = [
        Interface::Plugin,
        Interface::Artifacts,
        Interface::Projects,
        Interface::ProjectArtifacts,
        Interface::UiDocuments,
        Interface::Workspaces,
        Interface::RunnerArtifacts,
        Interface::MockControl,
    ];

    pub fn wit_name(self) -> &'static str {
        match self {
            Interface::Plugin => "plugin",
            Interface::Artifacts => "artifacts",
            Interface::Projects => "projects",
            Interface::ProjectArtifacts => "project-artifacts",
            Interface::UiDocuments => "ui-documents",
            Interface::Workspaces => "workspaces",
            Interface::RunnerArtifacts => "runner-artifacts",
            Interface::MockControl => "mock-control",
        }
    }

    /// True for the interfaces that hold data (all but `plugin` and `mock-control`).
    pub fn is_domain(self) -> bool {
        !matches!(self, Interface::Plugin | Interface::MockControl)
    }

    fn qualified(self) -> String {
        format!("storehost:origin/{}@{WIT_VERSION}", self.wit_name())
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wit_name())
    }
}

/// The set of interfaces a component exports, read from its type.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Exports(BTreeSet<Interface>);

impl Exports {
    pub fn contains(&self, interface: Interface) -> bool {
        self.0.contains(&interface)
    }

    pub fn iter(&self) -> impl Iterator<Item = Interface> + '_ {
        self.0.iter().copied()
    }
}

/// What a plugin says of itself (`describe()`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub stateful: bool,
}

/// Limits of one plugin (the manifest's `instances`, `timeout`, `memory_limit`, `queue`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PluginSettings {
    /// Warm instances, i.e. calls that run at once. A stateful plugin gets exactly one.
    pub instances: u32,
    /// Deadline of one call (a shorter caller deadline wins).
    pub timeout: Duration,
    /// Cap on the plugin's linear memory, per instance.
    pub memory_limit: u64,
    /// Calls that may wait for a free instance; more fail at once with `unavailable`.
    pub queue: u32,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self { instances: 4, timeout: Duration::from_secs(5), memory_limit: 256 << 20, queue: 256 }
    }
}

/// Everything needed to load one plugin.
#[derive(Clone, Debug)]
pub struct PluginSpec {
    /// The plugin's name in the manifest (`[plugins.NAME]`).
    pub name: String,
    /// Where the component came from, for messages: `builtin:fs` or a path.
    pub source: String,
    pub wasm: Arc<[u8]>,
    pub settings: PluginSettings,
    /// The plugin's `config` table.
    pub config: BTreeMap<String, String>,
    /// Preopened directories.
    pub dirs: Vec<DirGrant>,
    /// The manifest's `sql` grant.
    pub sql: Option<crate::capabilities::sql::SqlGrant>,
    /// The manifest's `object_store` grant.
    pub object_store: Option<crate::capabilities::object_store::ObjectStoreGrant>,
    /// Start instances without calling `init()` (inspection only needs `describe()`).
    pub(crate) skip_init: bool,
}

impl PluginSpec {
    pub fn new(name: impl Into<String>, source: impl Into<String>, wasm: impl Into<Arc<[u8]>>) -> Self {
        Self {
            name: name.into(),
            source: source.into(),
            wasm: wasm.into(),
            settings: PluginSettings::default(),
            config: BTreeMap::new(),
            dirs: Vec::new(),
            sql: None,
            object_store: None,
            skip_init: false,
        }
    }
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin {plugin}: {source_name} is not a WebAssembly file")]
    NotWasm { plugin: String, source_name: String },
    #[error(
        "plugin {plugin}: {source_name} is a core WebAssembly module, not a component; build it for \
         wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule { plugin: String, source_name: String },
    #[error("plugin {plugin}: compiling {source_name}: {message}")]
    Compile { plugin: String, source_name: String, message: String },
    #[error(
        "plugin {plugin}: the component exports none of the storehost:origin interfaces (artifacts, \
         projects, project-artifacts, ui-documents, workspaces, runner-artifacts); it exports [{found}]"
    )]
    NoDomainExport { plugin: String, found: String },
    #[error("plugin {plugin}: the component does not export {missing}, which every plugin must")]
    MissingExport { plugin: String, missing: String },
    #[error("plugin {plugin}: export {export} does not match this host's contract: {message}")]
    ExportMismatch { plugin: String, export: String, message: String },
    #[error(
        "plugin {plugin} imports the {capability} capability, which its manifest does not grant; \
         add `{key}` to [plugins.{plugin}]"
    )]
    Ungranted { plugin: String, capability: Capability, key: &'static str },
    #[error("plugin {plugin} imports {import}, which storehost does not provide")]
    UnknownImport { plugin: String, import: String },
    #[error("plugin {plugin}: linking its imports: {message}")]
    Link { plugin: String, message: String },
    #[error("plugin {plugin}: starting an instance: {error}")]
    Start { plugin: String, error: StoreError },
}

/// Counters of one plugin, for `/metrics` and `/v1/admin/plugins`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PluginStats {
    pub calls: u64,
    pub errors: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub cancellations: u64,
    pub rejected: u64,
    pub instances_created: u64,
    pub instances_discarded: u64,
    pub pool_size: u32,
    pub pool_in_use: u32,
    pub pool_idle: u32,
    pub pool_waiting: u32,
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    errors: AtomicU64,
    traps: AtomicU64,
    timeouts: AtomicU64,
    cancellations: AtomicU64,
    rejected: AtomicU64,
    instances_created: AtomicU64,
    instances_discarded: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Indices of the exports a component has, resolved once at load.
struct Indices {
    plugin: origin::plugin::GuestIndices,
    artifacts: Option<origin::artifacts::GuestIndices>,
    projects: Option<origin::projects::GuestIndices>,
    project_artifacts: Option<origin::project_artifacts::GuestIndices>,
    ui_documents: Option<origin::ui_documents::GuestIndices>,
    workspaces: Option<origin::workspaces::GuestIndices>,
    runner_artifacts: Option<origin::runner_artifacts::GuestIndices>,
    mock_control: Option<origin::mock_control::GuestIndices>,
}

/// The typed exports of one instance.
pub(crate) struct Guests {
    pub(crate) plugin: origin::plugin::Guest,
    pub(crate) artifacts: Option<origin::artifacts::Guest>,
    pub(crate) projects: Option<origin::projects::Guest>,
    pub(crate) project_artifacts: Option<origin::project_artifacts::Guest>,
    pub(crate) ui_documents: Option<origin::ui_documents::Guest>,
    pub(crate) workspaces: Option<origin::workspaces::Guest>,
    pub(crate) runner_artifacts: Option<origin::runner_artifacts::Guest>,
    pub(crate) mock_control: Option<origin::mock_control::Guest>,
}

/// A ready instance: its store and its typed exports.
pub(crate) struct Warm {
    store: Store<PluginState>,
    guests: Guests,
}

/// A future borrowing an instance's store for the length of one call.
pub(crate) type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

/// Marks the trap raised when a call runs past its deadline.
#[derive(Debug)]
struct DeadlineReached;

impl fmt::Display for DeadlineReached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline reached")
    }
}

impl std::error::Error for DeadlineReached {}

/// A loaded plugin: its compiled component, checked against the contracts and its grants, and
/// its pool of warm instances. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    spec: PluginSpec,
    runtime: Runtime,
    pre: InstancePre<PluginState>,
    indices: Indices,
    exports: Exports,
    imports: Vec<String>,
    info: PluginInfo,
    settings: PluginSettings,
    config_list: Vec<(String, String)>,
    sql: Option<sqlx::PgPool>,
    object_store: Option<crate::capabilities::object_store::ObjectStore>,
    compile_source: CompileSource,
    compile_time: Duration,
    pool: Pool<Warm>,
    counters: Counters,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin").field("name", &self.inner.spec.name).field("source", &self.inner.spec.source).finish()
    }
}

impl Plugin {
    /// Compiles (or loads from the compiled-code cache), checks and starts a plugin.
    ///
    /// # Errors
    /// A [`LoadError`] naming the plugin and what is wrong: not a component, an ungranted or
    /// unknown import, no origin export, an export that does not match the contract, or a
    /// failing `init`.
    pub async fn load(runtime: &Runtime, spec: PluginSpec) -> Result<Plugin, LoadError> {
        let plugin = spec.name.clone();
        let compiled = compile(runtime, &spec).await?;
        let (component, compile_source, compile_time) = (compiled.component, compiled.source, compiled.time);
        let imports = compiled.imports;
        check_imports(&spec, &imports)?;
        let exports = read_exports(&plugin, compiled.exports.iter().map(String::as_str))?;
        let engine = runtime.engine();

        let mut linker: Linker<PluginState> = Linker::new(engine);
        let link = |e: wasmtime::Error| LoadError::Link { plugin: plugin.clone(), message: format!("{e:#}") };
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
        bindings::host::log::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |s| s).map_err(link)?;
        bindings::host::config::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |s| s).map_err(link)?;
        if spec.sql.is_some() {
            bindings::host::sql::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |s| s).map_err(link)?;
        }
        if spec.object_store.is_some() {
            bindings::host::object_store::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |s| s).map_err(link)?;
        }
        linker.instance(&format!("storehost:origin/types@{WIT_VERSION}")).map_err(link)?;
        let pre = linker.instantiate_pre(&component).map_err(link)?;
        let indices = resolve_indices(&plugin, &pre, &exports)?;

        let mut settings = spec.settings.clone();
        let config_list = spec.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let sql = match &spec.sql {
            Some(grant) => Some(grant.pool(settings.timeout).map_err(|e| LoadError::Link { plugin: plugin.clone(), message: format!("sql.url: {e:#}") })?),
            None => None,
        };
        let object_store = match &spec.object_store {
            Some(grant) => Some(
                grant.connect().await.map_err(|e| LoadError::Link { plugin: plugin.clone(), message: format!("object_store.{e:#}") })?,
            ),
            None => None,
        };
        let mut inner = PluginInner {
            runtime: runtime.clone(),
            pre,
            indices,
            exports,
            imports,
            info: PluginInfo { name: String::new(), version: String::new(), stateful: false },
            settings: settings.clone(),
            config_list,
            sql,
            object_store,
            compile_source,
            compile_time,
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
        tracing::debug!(plugin = %plugin, source = %inner.spec.source, ?compile_source, ?compile_time, instances = settings.instances, "plugin loaded");
        Ok(Plugin { inner: Arc::new(inner) })
    }

    pub fn name(&self) -> &str {
        &self.inner.spec.name
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
        let c = &self.inner.counters;
        let pool = &self.inner.pool;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PluginStats {
            calls: get(&c.calls),
            errors: get(&c.errors),
            traps: get(&c.traps),
            timeouts: get(&c.timeouts),
            cancellations: get(&c.cancellations),
            rejected: get(&c.rejected),
            instances_created: get(&c.instances_created),
            instances_discarded: get(&c.instances_discarded),
            pool_size: pool.size(),
            pool_in_use: pool.in_use(),
            pool_idle: pool.idle(),
            pool_waiting: pool.waiting(),
        }
    }

    /// Creates an instance outside the pool and drops it: what replacing a failed instance
    /// costs (used by the benchmarks).
    pub async fn instantiate_once(&self) -> Result<(), StoreError> {
        self.inner.instantiate().await.map(drop)
    }

    /// Calls an export on a pooled instance, under the call's deadline (the plugin's timeout
    /// or the caller's, whichever is first) and the caller's cancellation. A trap, a timeout or
    /// a cancellation throws the instance away; the next call gets a fresh one.
    pub(crate) async fn call<R, F>(&self, ctx: &Ctx, method: &'static str, f: F) -> Result<R, StoreError>
    where
        R: Send,
        F: for<'a> FnOnce(&'a Guests, &'a mut Store<PluginState>) -> Option<CallFuture<'a, Result<R, WitStoreError>>> + Send,
    {
        let inner = &*self.inner;
        bump(&inner.counters.calls);
        if ctx.is_cancelled() {
            bump(&inner.counters.cancellations);
            return Err(StoreError::Cancelled);
        }
        let started = Instant::now();
        let own_deadline = started + inner.settings.timeout;
        let deadline = ctx.get_deadline().map_or(own_deadline, |d| d.min(own_deadline));
        let mut lease = inner.pool.acquire(&inner.spec.name, ctx, deadline).await.inspect_err(|e| {
            if matches!(e, StoreError::Unavailable(_)) {
                bump(&inner.counters.rejected)
            }
        })?;
        let mut warm = match lease.warm.take() {
            Some(warm) => warm,
            None => inner.instantiate().await?.0,
        };
        warm.store.data_mut().call_deadline = Some(deadline);
        let Some(call) = f(&warm.guests, &mut warm.store) else {
            inner.pool.release(warm, lease);
            return Err(StoreError::Internal(format!("plugin {} does not export the interface of {method}", inner.spec.name)));
        };
        let outcome = tokio::select! {
            biased;
            result = tokio::time::timeout_at(deadline.into(), call) => match result {
                Ok(result) => Outcome::Done(result),
                Err(_) => Outcome::Timeout,
            },
            _ = ctx.cancellation().cancelled() => Outcome::Cancelled,
        };
        match outcome {
            Outcome::Done(Ok(result)) => {
                warm.store.data_mut().call_deadline = None;
                inner.pool.release(warm, lease);
                result.map_err(|e| {
                    bump(&inner.counters.errors);
                    e.into()
                })
            }
            failed => {
                bump(&inner.counters.errors);
                bump(&inner.counters.instances_discarded);
                drop(warm);
                drop(lease);
                Err(inner.classify(failed, method, started))
            }
        }
    }
}

enum Outcome<R> {
    Done(wasmtime::Result<R>),
    Timeout,
    Cancelled,
}

impl PluginInner {
    fn classify<R>(&self, outcome: Outcome<R>, method: &str, started: Instant) -> StoreError {
        let plugin = self.spec.name.clone();
        let method = method.to_string();
        let timeout = |c: &Counters| {
            bump(&c.timeouts);
            StoreError::PluginTimeout { plugin: plugin.clone(), method: method.clone(), elapsed: started.elapsed() }
        };
        match outcome {
            Outcome::Done(Ok(_)) => unreachable!("a successful call is not a failure"),
            Outcome::Timeout => timeout(&self.counters),
            Outcome::Cancelled => {
                bump(&self.counters.cancellations);
                StoreError::Cancelled
            }
            Outcome::Done(Err(trap)) if trap.downcast_ref::<DeadlineReached>().is_some() => timeout(&self.counters),
            Outcome::Done(Err(trap)) => {
                bump(&self.counters.traps);
                let text = format!("{trap:#}");
                let message = if text.contains("growing memory") {
                    format!("memory limit of {} bytes exceeded", self.settings.memory_limit)
                } else if let Some(code) = trap.downcast_ref::<wasmtime::Trap>() {
                    format!("wasm trap: {code}")
                } else {
                    text.clone()
                };
                tracing::debug!(plugin = %plugin, method = %method, trap = %text, "trap details");
                tracing::warn!(plugin = %plugin, method = %method, %message, "plugin trapped; instance replaced");
                StoreError::PluginTrapped { plugin, method, message }
            }
        }
    }

    /// A fresh instance: instantiated, described and initialised with the plugin's config.
    async fn instantiate(&self) -> Result<(Warm, PluginInfo), StoreError> {
        let name = &self.spec.name;
        let fail = |what: &str, e: &dyn fmt::Display| StoreError::Unavailable(format!("plugin {name}: {what}: {e:#}"));
        let wasi = files::wasi_ctx(&self.spec.dirs).map_err(|e| fail("preparing its sandbox", &e))?;
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.settings.memory_limit as usize)
            .trap_on_grow_failure(true)
            .build();
        let state = PluginState {
            plugin: name.as_str().into(),
            wasi,
            table: Default::default(),
            limits,
            config: Arc::new(self.spec.config.clone()),
            sql: self.sql.clone(),
            object_store: self.object_store.clone(),
            call_deadline: Some(Instant::now() + self.settings.timeout),
        };
        let mut store = Store::new(self.runtime.engine(), state);
        store.limiter(|s| &mut s.limits);
        // At every epoch tick the plugin yields to the executor (so it never holds a worker
        // thread for long) and is stopped once its call is past its deadline.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| match ctx.data().call_deadline {
            Some(deadline) if Instant::now() >= deadline => Err(wasmtime::Error::new(DeadlineReached)),
            _ => Ok(UpdateDeadline::Yield(1)),
        });
        let instance = self.pre.instantiate_async(&mut store).await.map_err(|e| fail("instantiating", &e))?;
        let guests = self.indices.load(&mut store, &instance).map_err(|e| fail("binding exports", &e))?;
        let info = guests.plugin.call_describe(&mut store).await.map_err(|e| fail("describe()", &e))?;
        if !self.spec.skip_init {
            self.init(&mut store, &guests).await?;
        }
        store.data_mut().call_deadline = None;
        bump(&self.counters.instances_created);
        let info = PluginInfo { name: info.name, version: info.version, stateful: info.stateful };
        Ok((Warm { store, guests }, info))
    }

    async fn init(&self, store: &mut Store<PluginState>, guests: &Guests) -> Result<(), StoreError> {
        let name = &self.spec.name;
        let timeout = self.settings.timeout;
        // Guest code is stopped by the epoch deadline; this bounds what init awaits in the host
        // (a statement, a request), which epochs cannot interrupt.
        tokio::time::timeout(timeout, guests.plugin.call_init(&mut *store, &self.config_list))
            .await
            .map_err(|_| StoreError::Unavailable(format!("plugin {name}: init() did not finish within {timeout:?}")))?
            .map_err(|e| StoreError::Unavailable(format!("plugin {name}: init(): {e:#}")))?
            .map_err(StoreError::from)
            .map_err(|e| match e {
                StoreError::Invalid(m) => StoreError::Invalid(format!("plugin {name}: init(): {m}")),
                other => StoreError::Unavailable(format!("plugin {name}: init(): {other}")),
            })
    }
}

/// A compiled component and the names in its type.
struct Compiled {
    component: wasmtime::component::Component,
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
    let compiled = tokio::task::spawn_blocking(move || compiled_cache::load(&engine, &wasm, cache_dir.as_deref()))
        .await
        .expect("compilation does not panic");
    let (component, source) = compiled.map_err(|e| LoadError::Compile { plugin, source_name, message: format!("{e:#}") })?;
    let time = started.elapsed();
    let ty = component.component_type();
    let imports = ty.imports(runtime.engine()).map(|(name, _)| name.to_string()).collect();
    let exports = ty.exports(runtime.engine()).map(|(name, _)| name.to_string()).collect();
    Ok(Compiled { component, source, time, imports, exports })
}

/// What `storehost plugin inspect` shows of a component.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Inspection {
    pub source: String,
    pub size: usize,
    /// Every export of the component, by name.
    pub exports: Vec<String>,
    /// The `storehost:origin` interfaces among them.
    pub interfaces: Vec<Interface>,
    /// Every import, with the capability it needs (`None`: not something storehost provides).
    pub imports: Vec<(String, Option<Capability>)>,
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
    let interfaces = Interface::ALL
        .into_iter()
        .filter(|i| compiled.exports.iter().any(|e| e.split('@').next() == Some(&format!("storehost:origin/{}", i.wit_name()))))
        .collect();
    spec.sql = Some(crate::capabilities::sql::SqlGrant {
        url: "postgres://inspection.invalid/none".into(),
        max_connections: 1,
        connect_timeout: Duration::from_secs(1),
    });
    // A loopback endpoint and explicit credentials and region: building the client contacts
    // nothing, and inspection makes no calls.
    spec.object_store = Some(crate::capabilities::object_store::ObjectStoreGrant {
        endpoint: Some("http://127.0.0.1:9".into()),
        region: Some("us-east-1".into()),
        path_style: true,
        credentials: Some(crate::capabilities::object_store::StaticCredentials {
            access_key_id: "inspection".into(),
            secret_access_key: "inspection".into(),
        }),
        ..crate::capabilities::object_store::ObjectStoreGrant::new("inspection")
    });
    spec.settings.instances = 1;
    spec.skip_init = true;
    let (describe, load_error) = match Plugin::load(runtime, spec.clone()).await {
        Ok(plugin) => (Some(plugin.info().clone()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Inspection {
        source: spec.source,
        size: spec.wasm.len(),
        interfaces,
        imports: compiled.imports.iter().map(|i| (i.clone(), Capability::of_import(i))).collect(),
        exports: compiled.exports,
        describe,
        load_error,
        compile_source: compiled.source,
        compile_time: compiled.time,
    })
}

fn check_imports(spec: &PluginSpec, imports: &[String]) -> Result<(), LoadError> {
    for import in imports {
        let plugin = spec.name.clone();
        let Some(capability) = Capability::of_import(import) else {
            return Err(LoadError::UnknownImport { plugin, import: import.clone() });
        };
        let granted = match capability {
            Capability::Sql => spec.sql.is_some(),
            Capability::ObjectStore => spec.object_store.is_some(),
            Capability::Log | Capability::Config | Capability::OriginTypes | Capability::Wasi => true,
        };
        if !granted {
            let key = capability.manifest_key().expect("capabilities that need a grant have a key");
            return Err(LoadError::Ungranted { plugin, capability, key });
        }
    }
    Ok(())
}

fn read_exports<'a>(plugin: &str, names: impl Iterator<Item = &'a str>) -> Result<Exports, LoadError> {
    let names: Vec<&str> = names.collect();
    let mut exports = BTreeSet::new();
    for interface in Interface::ALL {
        let unversioned = format!("storehost:origin/{}", interface.wit_name());
        for name in &names {
            let (base, version) = name.split_once('@').unwrap_or((name, ""));
            if base != unversioned {
                continue;
            }
            if version != WIT_VERSION {
                return Err(LoadError::ExportMismatch {
                    plugin: plugin.into(),
                    export: name.to_string(),
                    message: format!("this host speaks storehost:origin@{WIT_VERSION}"),
                });
            }
            exports.insert(interface);
        }
    }
    if !exports.iter().any(|i| i.is_domain()) {
        return Err(LoadError::NoDomainExport { plugin: plugin.into(), found: names.join(", ") });
    }
    if !exports.contains(&Interface::Plugin) {
        return Err(LoadError::MissingExport { plugin: plugin.into(), missing: Interface::Plugin.qualified() });
    }
    Ok(Exports(exports))
}

fn resolve_indices(plugin: &str, pre: &InstancePre<PluginState>, exports: &Exports) -> Result<Indices, LoadError> {
    let mismatch = |interface: Interface| {
        move |e: wasmtime::Error| LoadError::ExportMismatch { plugin: plugin.into(), export: interface.qualified(), message: format!("{e:#}") }
    };
    macro_rules! optional {
        ($module:ident, $interface:expr) => {
            if exports.contains($interface) {
                Some(origin::$module::GuestIndices::new(pre).map_err(mismatch($interface))?)
            } else {
                None
            }
        };
    }
    Ok(Indices {
        plugin: origin::plugin::GuestIndices::new(pre).map_err(mismatch(Interface::Plugin))?,
        artifacts: optional!(artifacts, Interface::Artifacts),
        projects: optional!(projects, Interface::Projects),
        project_artifacts: optional!(project_artifacts, Interface::ProjectArtifacts),
        ui_documents: optional!(ui_documents, Interface::UiDocuments),
        workspaces: optional!(workspaces, Interface::Workspaces),
        runner_artifacts: optional!(runner_artifacts, Interface::RunnerArtifacts),
        mock_control: optional!(mock_control, Interface::MockControl),
    })
}

impl Indices {
    fn load(&self, store: &mut Store<PluginState>, instance: &wasmtime::component::Instance) -> wasmtime::Result<Guests> {
        macro_rules! optional {
            ($field:ident) => {
                match &self.$field {
                    Some(indices) => Some(indices.load(&mut *store, instance)?),
                    None => None,
                }
            };
        }
        Ok(Guests {
            plugin: self.plugin.load(&mut *store, instance)?,
            artifacts: optional!(artifacts),
            projects: optional!(projects),
            project_artifacts: optional!(project_artifacts),
            ui_documents: optional!(ui_documents),
            workspaces: optional!(workspaces),
            runner_artifacts: optional!(runner_artifacts),
            mock_control: optional!(mock_control),
        })
    }
}

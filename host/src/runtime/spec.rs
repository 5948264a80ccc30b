//! What a plugin is loaded from (its spec and limits), what it says of itself, and why a load
//! fails.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::base::StoreError;
use crate::capabilities::Grants;
use crate::capabilities::files::DirGrant;

/// What a plugin says of itself (`describe()`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub stateful: bool,
    /// The longest key (artifact key, runner file name) the plugin can hold, in bytes; the
    /// host refuses longer ones before calling it. 1024 (the contract's) unless it says less.
    pub max_key_bytes: u32,
}

impl PluginInfo {
    /// The contract's longest key, which a plugin may lower.
    pub const MAX_KEY_BYTES: u32 = 1024;
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
    /// The capabilities its manifest table grants.
    pub grants: Grants,
    /// Start instances without calling `init()` (inspection only needs `describe()`).
    pub(crate) skip_init: bool,
}

/// Two specs are equal when they would load the same plugin: the same component bytes, limits,
/// config, directories and grants.
impl PartialEq for PluginSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.source == other.source
            && (Arc::ptr_eq(&self.wasm, &other.wasm) || self.wasm == other.wasm)
            && self.settings == other.settings
            && self.config == other.config
            && self.dirs == other.dirs
            && self.grants == other.grants
            && self.skip_init == other.skip_init
    }
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
            grants: Grants::default(),
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
    Ungranted { plugin: String, capability: String, key: &'static str },
    #[error("plugin {plugin} imports {import}, which storehost does not provide")]
    UnknownImport { plugin: String, import: String },
    #[error("plugin {plugin}: {key}.{message}")]
    Grant { plugin: String, key: &'static str, message: String },
    #[error("plugin {plugin}: linking its imports: {message}")]
    Link { plugin: String, message: String },
    #[error("plugin {plugin}: starting an instance: {error}")]
    Start { plugin: String, error: StoreError },
}

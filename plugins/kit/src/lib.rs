//! Domain rules shared by the built-in origin plugins.
//!
//! A plugin supplies a [`Backend`] — an ordered key-value store in a few tables — and gets every
//! origin interface of `storehost:origin` implemented over it: key validation, versions and
//! optimistic concurrency, atomic UI operations, workspace tabs, runner artifacts.
//!
//! ```ignore
//! struct MyBackend { /* ... */ }
//! impl storehost_plugin_kit::Backend for MyBackend { /* ... */ }
//! type MyOrigin = storehost_plugin_kit::Origin<MyBackend>;
//! storehost_plugin_kit::export!(MyOrigin);
//! ```
//!
//! Each exported call runs inside one [`Backend::with`] borrow, so a backend that is one value
//! per instance (memory) sees calls one at a time, and a backend shared between instances
//! (files) serialises read-modify-write calls with [`Backend::lock`].

pub mod bindings {
    wit_bindgen::generate!({
        // Every origin export, bodies (artifacts', runs' files) handed to the host where a
        // backend keeps them in files, and the sql import for the database plugin: a component imports only the
        // interfaces its code calls, so the other plugins do not import sql.
        inline: "
            package storehost:plugin-kit;
            world kit {
                include storehost:origin/sql-full-origin@0.2.1;
                export storehost:origin/artifact-bodies@0.2.1;
                export storehost:origin/runner-bodies@0.2.1;
            }
        ",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "storehost_plugin_kit::bindings",
        additional_derives: [serde::Serialize, serde::Deserialize],
        // They hold resources.
        additional_derives_ignore: ["body-file", "body"],
        generate_all,
    });
}

mod artifacts;
mod memory;
mod plugin;
mod projects;
mod runner;
mod stream;
mod ui;
pub use ui::apply as apply_ui_op;
mod validate;
mod workspaces;

use std::marker::PhantomData;

pub use bindings::export;
pub use bindings::storehost::origin::types::StoreError;
pub use memory::MemoryTables;
pub use stream::{ValueReader, ValueWriter};
pub use validate::{validate_artifact_key, validate_id, validate_json, validate_run};

/// The tables a backend stores. Keys within a table are strings, listed in byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Artifact key → [`artifacts`] record (metadata header + body).
    Artifacts,
    /// Project id → project record.
    Projects,
    /// Project id → every artifact record of the project.
    ProjectArtifacts,
    /// Document id → UI document.
    UiDocuments,
    /// Workspace id → workspace.
    Workspaces,
    /// `workspace-id/tab-id` → tab.
    Tabs,
    /// `run/name` → file contents.
    Runs,
}

impl Table {
    pub const ALL: [Table; 7] =
        [Table::Artifacts, Table::Projects, Table::ProjectArtifacts, Table::UiDocuments, Table::Workspaces, Table::Tabs, Table::Runs];

    /// A stable name, usable as a directory name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Artifacts => "artifacts",
            Table::Projects => "projects",
            Table::ProjectArtifacts => "project-artifacts",
            Table::UiDocuments => "ui-documents",
            Table::Workspaces => "workspaces",
            Table::Tabs => "tabs",
            Table::Runs => "runs",
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Storage under the domain rules: an ordered key-value store with a few tables.
pub trait Backend: Sized + 'static {
    /// Runs `f` with this instance's backend. Calls never nest.
    fn with<R>(f: impl FnOnce(&mut Self) -> R) -> R;

    /// Applies the plugin's manifest table; called once per instance before any other call.
    fn init(&mut self, config: &[(String, String)]) -> Result<()>;

    /// Name, version and statefulness for `describe()`.
    fn info() -> bindings::exports::storehost::origin::plugin::PluginInfo;

    /// Called at the start of every data call with `interface.function` and the call's first
    /// key or id; an error is returned to the caller instead of doing the call.
    fn before_call(&mut self, _method: &'static str, _key: &str) -> Result<()> {
        Ok(())
    }

    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>>;

    /// At least the first `len` bytes of the value (all of it if shorter); `None` when absent.
    fn get_prefix(&mut self, table: Table, key: &str, _len: usize) -> Result<Option<Vec<u8>>> {
        self.get(table, key)
    }

    /// Replaces the value atomically: a reader sees the old value or the new one, whole.
    fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<()>;

    /// Removes the value; removing a missing key succeeds.
    fn delete(&mut self, table: Table, key: &str) -> Result<()>;

    /// Keys starting with `prefix`, in byte order, strictly after `after`, at most `limit`.
    fn keys(&mut self, table: Table, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>>;

    /// Holds a lock on `key` until the returned guard is dropped, for read-modify-write calls
    /// that other instances sharing the storage could interleave with.
    fn lock(&mut self, _table: Table, _key: &str) -> Result<LockGuard> {
        Ok(LockGuard::none())
    }

    /// The value opened for reading at offsets, without loading it whole where the backend can
    /// (a file); `None` when absent. By default the whole value, read once.
    fn open_value(&mut self, table: Table, key: &str) -> Result<Option<Box<dyn ValueReader>>> {
        Ok(self.get(table, key)?.map(|value| Box::new(stream::InMemory(value)) as Box<dyn ValueReader>))
    }

    /// The value opened for reading a body (an artifact's, a run's file): a backend that keeps
    /// values as files in its preopened directories opens them with `storehost:host/files.file`,
    /// so that the host reads the body without the plugin; `None` when absent. By default
    /// [`open_value`](Self::open_value).
    fn open_body(&mut self, table: Table, key: &str) -> Result<Option<Opened>> {
        Ok(self.open_value(table, key)?.map(Opened::Value))
    }

    /// A new value for `key`, written in pieces and made visible at once by its `commit`; dropped
    /// before, it leaves nothing. By default the pieces are gathered in memory (up to
    /// `max_len` bytes) and `commit` is one [`put`](Self::put).
    fn create_value(&mut self, table: Table, key: &str, max_len: u64) -> Result<Box<dyn ValueWriter>> {
        Ok(Box::new(stream::Buffered::<Self>::new(table, key, max_len)))
    }
}

/// A value opened by [`Backend::open_body`].
pub enum Opened {
    /// A file the host opened: the host reads a body in it itself.
    File(bindings::storehost::host::files::File),
    /// Read through the plugin.
    Value(Box<dyn ValueReader>),
}

/// A held lock; released on drop.
pub struct LockGuard(Option<Box<dyn FnOnce()>>);

impl LockGuard {
    pub fn none() -> Self {
        LockGuard(None)
    }

    pub fn new(release: impl FnOnce() + 'static) -> Self {
        LockGuard(Some(Box::new(release)))
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            release()
        }
    }
}

/// The origin implementation over a backend; export it with [`export!`] through a type alias.
pub struct Origin<B>(PhantomData<B>);

/// Current time in unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn internal(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("{what}: {err}"))
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(table: Table, key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| internal(&format!("corrupt {} record {key:?}", table.name()), e))
}

pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records always serialise")
}

/// Reads and decodes a record.
pub(crate) fn load<B: Backend, T: serde::de::DeserializeOwned>(b: &mut B, table: Table, key: &str) -> Result<Option<T>> {
    match b.get(table, key)? {
        Some(bytes) => decode(table, key, &bytes).map(Some),
        None => Ok(None),
    }
}

/// Encodes and writes a record.
pub(crate) fn store<B: Backend, T: serde::Serialize>(b: &mut B, table: Table, key: &str, value: &T) -> Result<()> {
    b.put(table, key, &encode(value))
}

pub use storehost_plugin_rules::{page_limit, prefix_successor};

/// Checks an expected version against the stored one (0 when missing).
pub fn check_version(what: &str, stored: u64, expected: Option<u64>) -> Result<()> {
    match expected {
        Some(v) if v != stored => Err(version_conflict(what, v, stored)),
        _ => Ok(()),
    }
}

/// The `conflict` of a write that expected version `expected` and found `stored`.
pub fn version_conflict(what: &str, expected: u64, stored: u64) -> StoreError {
    StoreError::Conflict(format!("{what}: expected version {expected}, stored version is {stored}"))
}

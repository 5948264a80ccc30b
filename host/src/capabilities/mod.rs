//! Capabilities the host grants to plugins (`storehost:host`). A plugin can reach nothing but
//! what its manifest table grants: these, and the directories it preopens ([`files`]).
//!
//! Each capability is one module holding all of it: its grant (the manifest's table), its
//! state (made once per plugin from the grant: a pool, a client, the config table), its host
//! functions, and how they are linked ([`Capability`]). The table at the end of this file lists
//! them once; the manifest's grant keys, the load-time check that every import is granted, the
//! per-plugin and per-instance state and the linking are generated from it. A new capability
//! is a new module and a line in that table.

pub mod config;
pub mod files;
pub mod log;
pub mod object_store;
mod open_files;
pub mod sql;

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Linker, ResourceTable};

/// One capability: what it links into a plugin, and the state it needs.
pub trait Capability: Sized + 'static {
    /// The WIT interface it provides, without its version: `storehost:host/sql`.
    const INTERFACE: &'static str;
    /// What a plugin's manifest table grants (`()` for capabilities every plugin has).
    type Grant: Clone + fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static;
    /// What one plugin's instances share, made from the grant when the plugin loads.
    type State: Send + Sync + 'static;

    /// Makes a plugin's state from its grant. Connects to nothing yet where it can avoid it, so
    /// a plugin loads while its backend is down.
    fn open(grant: &Self::Grant, plugin: &PluginIdentity<'_>) -> impl Future<Output = anyhow::Result<Self::State>> + Send;

    /// Adds the capability's host functions to `linker`; `get` gives them their view of a store.
    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> Scoped<'_, Self>) -> wasmtime::Result<()>;
}

/// Who a capability's state is made for.
#[derive(Clone, Copy, Debug)]
pub struct PluginIdentity<'a> {
    /// The plugin's name in the manifest.
    pub name: &'a str,
    /// Its `config` table.
    pub config: &'a BTreeMap<String, String>,
    /// The longest a call may run (the plugin's `timeout`).
    pub timeout: Duration,
    /// The directories it preopens.
    pub dirs: &'a [files::DirGrant],
}

/// A capability's view of one plugin instance while its host functions run: the plugin's state
/// of the capability, the instance's resource table, and the running call's deadline.
pub struct Scoped<'a, C: Capability> {
    pub state: &'a C::State,
    pub table: &'a mut ResourceTable,
    /// When the running call must end; host work that may wait (a query, a request) stops there.
    pub deadline: Option<Instant>,
}

/// The [`HasData`] of a capability's host functions: a [`Scoped`] view.
pub struct ScopedData<C>(PhantomData<C>);

impl<C: Capability> HasData for ScopedData<C> {
    type Data<'a> = Scoped<'a, C>;
}

/// A host function's failure: an error the guest receives as its `result`'s error, or a trap
/// (the host itself failed, e.g. a stale resource handle). Used as bindgen's trappable error
/// type, so host functions return `Result<T, Failure<E>>` and use `?` on either.
#[derive(Debug)]
pub enum Failure<E> {
    Guest(E),
    Trap(wasmtime::Error),
}

impl<E> From<E> for Failure<E> {
    fn from(e: E) -> Self {
        Failure::Guest(e)
    }
}

impl<E> Failure<E> {
    /// A trap carrying `error`.
    pub fn trap(error: impl Into<wasmtime::Error>) -> Self {
        Failure::Trap(error.into())
    }

    /// The error to hand the guest, or the trap to raise.
    pub fn into_guest(self) -> wasmtime::Result<E> {
        match self {
            Failure::Guest(e) => Ok(e),
            Failure::Trap(trap) => Err(trap),
        }
    }
}

/// What the host that embeds the capabilities gives them: each instance's capability state.
pub trait CapabilityHost: Send + 'static {
    fn capabilities(&mut self) -> &mut InstanceCapabilities;
}

/// What provides an interface a component imports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// A capability of this module: its interface, and the manifest key that grants it (`None`:
    /// every plugin has it).
    Capability { interface: &'static str, grant_key: Option<&'static str> },
    /// `storehost:origin/types`: the contract's shared types (no functions).
    OriginTypes,
    /// `wasi:*`: filesystem access only to the granted `dirs`; clocks, random and stdio
    /// sandboxed; sockets denied.
    Wasi,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Capability { interface, .. } => interface,
            Provider::OriginTypes => "storehost:origin/types",
            Provider::Wasi => "wasi",
        })
    }
}

impl serde::Serialize for Provider {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Provider {
    /// What provides an imported interface (`storehost:host/sql@0.1.0`); `None`: nothing here.
    pub fn of_import(name: &str) -> Option<Provider> {
        let unversioned = name.split('@').next().unwrap_or(name);
        if unversioned == "storehost:origin/types" {
            return Some(Provider::OriginTypes);
        }
        if unversioned.starts_with("wasi:") {
            return Some(Provider::Wasi);
        }
        CAPABILITIES
            .iter()
            .find(|(interface, _)| *interface == unversioned)
            .map(|&(interface, grant_key)| Provider::Capability { interface, grant_key })
    }
}

/// Why a capability could not be opened for a plugin: the grant key at fault and the cause.
#[derive(Debug)]
pub struct OpenError {
    pub key: &'static str,
    pub error: anyhow::Error,
}

/// The capability table: every capability, once. Calls `$then!` with the table after `$pre`;
/// this module generates [`Grants`], the per-plugin state, the import check and the linking
/// from it (`capabilities!`), and the manifest its grant keys.
macro_rules! capability_table {
    ($then:ident! { $($pre:tt)* }) => {
        $then! {
            $($pre)*
            always {
                log: $crate::capabilities::log::Log,
                config: $crate::capabilities::config::Config,
                files: $crate::capabilities::files::Files,
            }
            granted {
                /// Grants `storehost:host/sql`: a database.
                sql: $crate::capabilities::sql::Sql,
                /// Grants `storehost:host/object-store`: one bucket.
                object_store: $crate::capabilities::object_store::ObjectStore,
            }
        }
    };
}
pub(crate) use capability_table;

/// Generates what the capabilities of the table need: [`Grants`], [`PluginCapabilities`], the
/// list of interfaces and grant keys, and the import check.
macro_rules! capabilities {
    (
        always { $($always:ident: $always_ty:ty),* $(,)? }
        granted { $($(#[$doc:meta])* $granted:ident: $granted_ty:ty),* $(,)? }
    ) => {
        /// Every capability: its interface and the manifest key that grants it (`None`: always).
        const CAPABILITIES: &[(&str, Option<&str>)] = &[
            $((<$always_ty as Capability>::INTERFACE, None),)*
            $((<$granted_ty as Capability>::INTERFACE, Some(stringify!($granted))),)*
        ];

        /// The capabilities a plugin's manifest table grants, one key each.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Grants {
            $($(#[$doc])* pub $granted: Option<<$granted_ty as Capability>::Grant>,)*
        }

        impl Grants {
            /// The manifest key that would grant `import` when these grants lack it; `None` when
            /// the import is granted or needs no grant.
            pub fn missing_for(&self, import: &str) -> Option<&'static str> {
                let Some(Provider::Capability { interface, .. }) = Provider::of_import(import) else { return None };
                $(if interface == <$granted_ty as Capability>::INTERFACE && self.$granted.is_none() {
                    return Some(stringify!($granted));
                })*
                None
            }
        }

        /// One plugin's state of every capability it has, shared by its instances.
        pub struct PluginCapabilities {
            $($always: <$always_ty as Capability>::State,)*
            $($granted: Option<<$granted_ty as Capability>::State>,)*
        }

        impl PluginCapabilities {
            /// Opens every capability the plugin has (those every plugin has, and its grants).
            ///
            /// # Errors
            /// The grant key whose capability could not be opened, and why.
            pub async fn open(grants: &Grants, plugin: &PluginIdentity<'_>) -> Result<Self, OpenError> {
                Ok(Self {
                    $($always: <$always_ty as Capability>::open(&(), plugin)
                        .await
                        .map_err(|error| OpenError { key: stringify!($always), error })?,)*
                    $($granted: match &grants.$granted {
                        Some(grant) => Some(
                            <$granted_ty as Capability>::open(grant, plugin)
                                .await
                                .map_err(|error| OpenError { key: stringify!($granted), error })?,
                        ),
                        None => None,
                    },)*
                })
            }

            /// Links the host functions of every capability the plugin has, and only those: a
            /// component importing anything else fails to instantiate.
            pub fn add_to_linker<T: CapabilityHost>(&self, linker: &mut Linker<T>) -> wasmtime::Result<()> {
                $(<$always_ty as Capability>::add_to_linker(linker, |t| {
                    let caps = t.capabilities();
                    Scoped { state: &caps.plugin.$always, table: &mut caps.table, deadline: caps.deadline }
                })?;)*
                $(if self.$granted.is_some() {
                    <$granted_ty as Capability>::add_to_linker(linker, |t| {
                        let caps = t.capabilities();
                        let state = caps.plugin.$granted.as_ref().expect("only a granted capability is linked");
                        Scoped { state, table: &mut caps.table, deadline: caps.deadline }
                    })?;
                })*
                Ok(())
            }
        }
    };
}

capability_table!(capabilities! {});

/// The capability state of one plugin instance: the plugin's shared state, the instance's
/// resources (open transactions, …), and the running call's deadline.
pub struct InstanceCapabilities {
    plugin: Arc<PluginCapabilities>,
    pub table: ResourceTable,
    /// When the running call must end; the runtime sets it for each call.
    pub deadline: Option<Instant>,
}

impl InstanceCapabilities {
    pub fn new(plugin: Arc<PluginCapabilities>) -> Self {
        Self { plugin, table: ResourceTable::new(), deadline: None }
    }
}

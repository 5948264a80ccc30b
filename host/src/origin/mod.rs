//! The plugin-backed origins: each domain's trait implemented by calling a plugin that exports
//! the domain's interface, converting between the generated WIT types and the domain's.
//!
//! ```
//! use storehost::domain::{ArtifactStore, Ctx};
//! use storehost::origin::PluginArtifactStore;
//! use storehost::runtime::{Plugin, PluginSpec, Runtime, RuntimeConfig};
//!
//! # #[tokio::main] async fn main() -> anyhow::Result<()> {
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let plugin = Plugin::load(&runtime, PluginSpec::new("memory", "builtin:memory", storehost::builtin("memory").unwrap())).await?;
//! let artifacts = PluginArtifactStore::new(plugin)?;
//! artifacts.put(&Ctx::background(), "a/b", "hi".into(), None).await?;
//! # Ok(()) }
//! ```

mod artifact;
pub mod mock;
mod project;
mod runner;
mod stream;
mod ui;
mod workspace;

use std::sync::Arc;

pub use artifact::PluginArtifactStore;
pub use project::{PluginProjectArtifactStore, PluginProjectStore};
pub use runner::PluginRunnerStore;
pub use ui::PluginUiStore;
pub use workspace::PluginWorkspaceStore;

use crate::domain::Stores;
use crate::runtime::{Interface, Plugin};

/// Conversions both ways between a generated record and ours, field by field.
macro_rules! mirror {
    ($wit:path => $ours:path { $($field:ident),* $(,)? }) => {
        impl From<$wit> for $ours {
            fn from(v: $wit) -> Self {
                Self { $($field: v.$field.into()),* }
            }
        }
        impl From<$ours> for $wit {
            fn from(v: $ours) -> Self {
                Self { $($field: v.$field.into()),* }
            }
        }
    };
}
use mirror;

/// The items given once for each version of the contract's bindings, with `wit` naming the
/// interface's module in that version (conversions between its types and ours).
macro_rules! for_each_version {
    ($interface:ident => $($item:item)*) => {
        const _: () = {
            use crate::runtime::bindings::v1::origin::$interface as wit;
            $($item)*
        };
        const _: () = {
            use crate::runtime::bindings::v2::origin::$interface as wit;
            $($item)*
        };
    };
}
use for_each_version;

/// Calls `$guest.$call(...)` on the plugin, in the bindings of the version it speaks, and
/// converts the result (and the error) into ours. `$body` is written once and compiled for each
/// version, so arguments convert with `.into()` inside it.
macro_rules! plugin_call {
    ($plugin:expr, $ctx:expr, $method:literal, $guest:ident, |$g:ident, $store:ident| $body:expr) => {
        $plugin.call($ctx, $method, move |guests, $store| match guests {
            crate::runtime::Guests::V1(guests) => {
                let $g = guests.$guest.as_ref()?;
                Some(Box::pin(async move { Ok($body.await?.map(Into::into).map_err(Into::into)) }) as crate::runtime::CallFuture<'_, _>)
            }
            crate::runtime::Guests::V2(guests) => {
                let $g = guests.$guest.as_ref()?;
                Some(Box::pin(async move { Ok($body.await?.map(Into::into).map_err(Into::into)) }) as crate::runtime::CallFuture<'_, _>)
            }
        })
    };
}
use plugin_call;

/// [`plugin_call!`] for a call only the 0.2.0 contract has; the store checks
/// [`require_listing`] first, so a 0.1.0 plugin is refused with a reason.
macro_rules! plugin_call_v2 {
    ($plugin:expr, $ctx:expr, $method:literal, $guest:ident, |$g:ident, $store:ident| $body:expr) => {
        $plugin.call($ctx, $method, move |guests, $store| match guests {
            crate::runtime::Guests::V1(_) => None,
            crate::runtime::Guests::V2(guests) => {
                let $g = guests.$guest.as_ref()?;
                Some(Box::pin(async move { Ok($body.await?.map(Into::into).map_err(Into::into)) }) as crate::runtime::CallFuture<'_, _>)
            }
        })
    };
}
use plugin_call_v2;

/// What the refusal of a listing a plugin's contract lacks says: see [`listing_refused`].
pub const LISTING_REFUSAL: &str = "speaks storehost:origin@0.1.0, which cannot list";

/// Refuses a listing the plugin's contract does not have (0.1.0 lists artifacts, projects,
/// project records and a run's files, but not documents, workspaces or runs).
fn require_listing(plugin: &Plugin, what: &str) -> crate::base::Result<()> {
    if plugin.exports().version().streams() {
        return Ok(());
    }
    Err(crate::base::StoreError::Invalid(format!("plugin {} {LISTING_REFUSAL} {what}; rebuild it against 0.2.0", plugin.name())))
}

/// Whether `error` is a plugin's refusal of a listing its contract lacks.
pub fn listing_refused(error: &crate::base::StoreError) -> bool {
    error.kind() == crate::base::ErrorKind::Invalid && error.message().contains(LISTING_REFUSAL)
}

/// Opens a stream with a 0.2.0 call that returns a guest resource (with `$body`'s other value
/// converted into ours); see [`Plugin::open_session`](crate::runtime::Plugin).
macro_rules! open_session {
    ($plugin:expr, $ctx:expr, $method:literal, $guest:ident, |$g:ident, $store:ident| $body:expr) => {
        $plugin.open_session($ctx, $method, move |guests, $store| match guests {
            crate::runtime::Guests::V1(_) => None,
            crate::runtime::Guests::V2(guests) => {
                let $g = guests.$guest.as_ref()?;
                Some(Box::pin(async move { Ok($body.await?.map_err(Into::into)) }) as crate::runtime::CallFuture<'_, _>)
            }
        })
    };
}
use open_session;

/// Opens a body with a 0.2.1 `open` (`$guest` is `artifact_bodies` or `runner_bodies`): `$body`
/// answers the value (converted with `.into()`) and where the body is. A file the plugin hands
/// over comes out of the instance's table, with where the body starts in it, for the host to
/// read ([`stream::opened`]); a reader is kept in a session.
macro_rules! open_body {
    ($plugin:expr, $ctx:expr, $method:literal, $guest:ident, |$g:ident, $store:ident| $body:expr) => {
        $plugin.open_body($ctx, $method, move |guests, $store| {
            use crate::runtime::Handed;
            use crate::runtime::bindings::v2::origin::$guest::{Body, BodyFile};
            let crate::runtime::Guests::V2(guests) = guests else { return None };
            let $g = guests.$guest.as_ref()?;
            Some(Box::pin(async move {
                Ok(match $body.await? {
                    Ok((value, Body::Reader(reader))) => Ok((value.into(), Handed::Guest(reader))),
                    Ok((value, Body::File(BodyFile { file, start }))) => Ok((value.into(), Handed::Host(($store.data_mut().take(file)?, start)))),
                    Err(e) => Err(e.into()),
                })
            }) as crate::runtime::CallFuture<'_, _>)
        })
    };
}
use open_body;

/// Calls a method of a session's resource (`$guest.$resource()`'s `call_…`).
macro_rules! session_call {
    ($session:expr, $ctx:expr, $method:literal, $guest:ident . $resource:ident, |$g:ident, $store:ident, $res:ident| $body:expr) => {
        Box::pin($session.call($ctx, $method, move |guests, $store, $res| match guests {
            crate::runtime::Guests::V1(_) => None,
            crate::runtime::Guests::V2(guests) => {
                let $g = guests.$guest.as_ref()?.$resource();
                Some(Box::pin(async move { Ok($body.await?.map(Into::into).map_err(Into::into)) }) as crate::runtime::CallFuture<'_, _>)
            }
        }))
    };
}
use session_call;

/// Refuses a key longer than the plugin can hold, before calling it.
fn check_key_len(plugin: &Plugin, what: &str, key: &str) -> crate::base::Result<()> {
    let max = plugin.info().max_key_bytes;
    if key.len() > max as usize {
        return Err(crate::base::StoreError::Invalid(format!("{what} is {} bytes; plugin {} holds at most {max}", key.len(), plugin.name())));
    }
    Ok(())
}

/// Whether the host streams bodies through `plugin`: it speaks 0.2.0 and is not stateful (a
/// stateful plugin has one instance, which a stream would hold from every other call; its
/// bodies are in its memory anyway).
fn streams_through(plugin: &Plugin) -> bool {
    plugin.exports().version().streams() && !plugin.info().stateful
}

/// Checks that a plugin exports `interface` before an origin is built on it.
fn require_export(plugin: &Plugin, interface: Interface) -> anyhow::Result<()> {
    anyhow::ensure!(
        plugin.exports().contains(interface),
        "plugin {} ({}) does not export storehost:origin/{interface}",
        plugin.name(),
        plugin.source()
    );
    Ok(())
}

/// A store for every interface `plugin` exports (for testing one plugin on every domain).
pub fn stores_of(plugin: &Plugin) -> Stores {
    let exports = plugin.exports();
    let p = || plugin.clone();
    Stores {
        artifact: exports.contains(Interface::Artifacts).then(|| Arc::new(PluginArtifactStore::new(p()).unwrap()) as _),
        project: exports.contains(Interface::Projects).then(|| Arc::new(PluginProjectStore::new(p()).unwrap()) as _),
        project_artifacts: exports.contains(Interface::ProjectArtifacts).then(|| Arc::new(PluginProjectArtifactStore::new(p()).unwrap()) as _),
        ui: exports.contains(Interface::UiDocuments).then(|| Arc::new(PluginUiStore::new(p()).unwrap()) as _),
        workspace: exports.contains(Interface::Workspaces).then(|| Arc::new(PluginWorkspaceStore::new(p()).unwrap()) as _),
        runner: exports.contains(Interface::RunnerArtifacts).then(|| Arc::new(PluginRunnerStore::new(p()).unwrap()) as _),
    }
}

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

/// Calls `$guest.$call(...)` on the plugin and converts the result.
macro_rules! plugin_call {
    ($plugin:expr, $ctx:expr, $method:literal, $guest:ident, |$g:ident, $store:ident| $body:expr) => {
        $plugin.call($ctx, $method, move |guests, $store| {
            let $g = guests.$guest.as_ref()?;
            Some(Box::pin(async move { $body.await }) as crate::runtime::CallFuture<'_, _>)
        })
    };
}
use plugin_call;

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

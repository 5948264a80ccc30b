//! The domains (the seed's repository contracts): one module each with its types, its async
//! trait, and the adapter that implements the trait by calling a plugin. Every method takes
//! the caller's [`Ctx`].

pub mod artifact;
mod context;
mod error;
pub mod project;
pub mod runner;
pub mod ui;
pub mod workspace;

pub use artifact::{Artifact, ArtifactMeta, ArtifactPage, ArtifactStore, PluginArtifactStore, validate_key};
pub use context::Ctx;
pub use error::{Result, StoreError};
pub use project::{
    PluginProjectArtifactStore, PluginProjectStore, Project, ProjectArtifact, ProjectArtifactStore, ProjectInput, ProjectPage,
    ProjectStore,
};
pub use runner::{PluginRunnerStore, RunnerStore};
pub use ui::{PluginUiStore, UiDocument, UiNode, UiOp, UiStore};
pub use workspace::{PluginWorkspaceStore, Tab, TabInput, Workspace, WorkspaceInput, WorkspaceStore};

use crate::runtime::{Interface, Plugin};

/// Conversions both ways between a generated record and ours, field by field.
macro_rules! mirror {
    ($wit:path => $ours:ident { $($field:ident),* $(,)? }) => {
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
pub(crate) use mirror;

/// Calls `$guest.$call(...)` on the plugin and converts the result.
macro_rules! plugin_call {
    ($plugin:expr, $ctx:expr, $method:literal, $guest:ident, |$g:ident, $store:ident| $body:expr) => {
        $plugin.call($ctx, $method, move |guests, $store| {
            let $g = guests.$guest.as_ref()?;
            Some(Box::pin(async move { $body.await }) as crate::runtime::CallFuture<'_, _>)
        })
    };
}
pub(crate) use plugin_call;

/// Checks that a plugin exports `interface` before an adapter is built on it.
pub(crate) fn require_export(plugin: &Plugin, interface: Interface) -> anyhow::Result<()> {
    anyhow::ensure!(
        plugin.exports().contains(interface),
        "plugin {} ({}) does not export storehost:origin/{interface}",
        plugin.name(),
        plugin.source()
    );
    Ok(())
}

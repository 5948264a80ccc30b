use async_trait::async_trait;

use super::{mirror, plugin_call, require_export};
use crate::base::{Ctx, Result};
use crate::domain::{Tab, TabInput, Workspace, WorkspaceInput, WorkspaceStore};
use crate::runtime::bindings::origin::workspaces as wit;
use crate::runtime::{Interface, Plugin};

mirror!(wit::Workspace => Workspace { id, project_id, name, selected_tab, version, updated_at });
mirror!(wit::WorkspaceInput => WorkspaceInput { id, project_id, name });
mirror!(wit::Tab => Tab { id, workspace_id, title, kind, run_id, position, updated_at });
mirror!(wit::TabInput => TabInput { id, title, kind });

/// [`WorkspaceStore`] over a plugin exporting `storehost:origin/workspaces`.
#[derive(Clone, Debug)]
pub struct PluginWorkspaceStore {
    plugin: Plugin,
}

impl PluginWorkspaceStore {
    pub fn new(plugin: Plugin) -> anyhow::Result<Self> {
        require_export(&plugin, Interface::Workspaces)?;
        Ok(Self { plugin })
    }
}

#[async_trait]
impl WorkspaceStore for PluginWorkspaceStore {
    async fn get(&self, ctx: &Ctx, workspace_id: &str) -> Result<Workspace> {
        let ws = workspace_id.to_string();
        plugin_call!(self.plugin, ctx, "workspaces.get", workspaces, |g, s| g.call_get(s, &ws)).await.map(Into::into)
    }

    async fn list_tabs(&self, ctx: &Ctx, workspace_id: &str) -> Result<Vec<Tab>> {
        let ws = workspace_id.to_string();
        let tabs: Vec<wit::Tab> = plugin_call!(self.plugin, ctx, "workspaces.list-tabs", workspaces, |g, s| g.call_list_tabs(s, &ws)).await?;
        Ok(tabs.into_iter().map(Into::into).collect())
    }

    async fn get_tab(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str) -> Result<Tab> {
        let (ws, tab) = (workspace_id.to_string(), tab_id.to_string());
        plugin_call!(self.plugin, ctx, "workspaces.get-tab", workspaces, |g, s| g.call_get_tab(s, &ws, &tab)).await.map(Into::into)
    }

    async fn create(&self, ctx: &Ctx, input: WorkspaceInput) -> Result<Workspace> {
        let input: wit::WorkspaceInput = input.into();
        plugin_call!(self.plugin, ctx, "workspaces.create", workspaces, |g, s| g.call_create(s, &input)).await.map(Into::into)
    }

    async fn create_tab(&self, ctx: &Ctx, workspace_id: &str, input: TabInput) -> Result<Tab> {
        let (ws, input): (String, wit::TabInput) = (workspace_id.to_string(), input.into());
        plugin_call!(self.plugin, ctx, "workspaces.create-tab", workspaces, |g, s| g.call_create_tab(s, &ws, &input)).await.map(Into::into)
    }

    async fn select_tab(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str) -> Result<Workspace> {
        let (ws, tab) = (workspace_id.to_string(), tab_id.to_string());
        plugin_call!(self.plugin, ctx, "workspaces.select-tab", workspaces, |g, s| g.call_select_tab(s, &ws, &tab)).await.map(Into::into)
    }

    async fn update_tab_run(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str, run_id: Option<String>) -> Result<Tab> {
        let (ws, tab) = (workspace_id.to_string(), tab_id.to_string());
        plugin_call!(self.plugin, ctx, "workspaces.update-tab-run", workspaces, |g, s| g.call_update_tab_run(s, &ws, &tab, run_id.as_deref()))
            .await
            .map(Into::into)
    }
}

use async_trait::async_trait;

use super::{for_each_version, mirror, plugin_call, plugin_call_v2, require_export, require_listing};
use crate::base::{Ctx, Result};
use crate::domain::{Tab, TabInput, Workspace, WorkspaceInput, WorkspacePage, WorkspaceStore};
use crate::runtime::{Interface, Plugin};

for_each_version!(workspaces =>
    mirror!(wit::Workspace => Workspace { id, project_id, name, selected_tab, version, updated_at });
    mirror!(wit::WorkspaceInput => WorkspaceInput { id, project_id, name });
    mirror!(wit::Tab => Tab { id, workspace_id, title, kind, run_id, position, updated_at });
    mirror!(wit::TabInput => TabInput { id, title, kind });
);

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
        plugin_call!(self.plugin, ctx, "workspaces.get", workspaces, |g, s| g.call_get(s, &ws)).await
    }

    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<WorkspacePage> {
        require_listing(&self.plugin, "workspaces")?;
        let cursor = cursor.map(String::from);
        plugin_call_v2!(self.plugin, ctx, "workspaces.list", workspaces, |g, s| async {
            let page = g.call_list(s, cursor.as_deref(), limit).await?;
            Ok::<_, wasmtime::Error>(page.map(|p| WorkspacePage { items: p.items.into_iter().map(Into::into).collect(), next_cursor: p.next_cursor }))
        })
        .await
    }

    async fn list_tabs(&self, ctx: &Ctx, workspace_id: &str) -> Result<Vec<Tab>> {
        let ws = workspace_id.to_string();
        plugin_call!(self.plugin, ctx, "workspaces.list-tabs", workspaces, |g, s| async {
            Ok::<_, wasmtime::Error>(g.call_list_tabs(s, &ws).await?.map(|tabs| tabs.into_iter().map(Into::into).collect::<Vec<Tab>>()))
        })
        .await
    }

    async fn get_tab(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str) -> Result<Tab> {
        let (ws, tab) = (workspace_id.to_string(), tab_id.to_string());
        plugin_call!(self.plugin, ctx, "workspaces.get-tab", workspaces, |g, s| g.call_get_tab(s, &ws, &tab)).await
    }

    async fn create(&self, ctx: &Ctx, input: WorkspaceInput) -> Result<Workspace> {
        plugin_call!(self.plugin, ctx, "workspaces.create", workspaces, |g, s| g.call_create(s, &input.into())).await
    }

    async fn create_tab(&self, ctx: &Ctx, workspace_id: &str, input: TabInput) -> Result<Tab> {
        let ws = workspace_id.to_string();
        plugin_call!(self.plugin, ctx, "workspaces.create-tab", workspaces, |g, s| g.call_create_tab(s, &ws, &input.into())).await
    }

    async fn select_tab(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str) -> Result<Workspace> {
        let (ws, tab) = (workspace_id.to_string(), tab_id.to_string());
        plugin_call!(self.plugin, ctx, "workspaces.select-tab", workspaces, |g, s| g.call_select_tab(s, &ws, &tab)).await
    }

    async fn update_tab_run(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str, run_id: Option<String>) -> Result<Tab> {
        let (ws, tab) = (workspace_id.to_string(), tab_id.to_string());
        plugin_call!(self.plugin, ctx, "workspaces.update-tab-run", workspaces, |g, s| g.call_update_tab_run(s, &ws, &tab, run_id.as_deref())).await
    }
}

//! UI workspaces and tabs (seed: UIWorkspace).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::operations;
use crate::base::{Ctx, Result};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Workspace {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub selected_tab: Option<String>,
    pub version: u64,
    pub updated_at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceInput {
    pub id: String,
    pub project_id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tab {
    pub id: String,
    pub workspace_id: String,
    pub title: String,
    pub kind: String,
    pub run_id: Option<String>,
    pub position: u32,
    pub updated_at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TabInput {
    #[schema(schema_with = super::id_schema)]
    pub id: String,
    pub title: String,
    pub kind: String,
}

/// A page of workspaces, in byte order of their ids.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspacePage {
    pub items: Vec<Workspace>,
    pub next_cursor: Option<String>,
}

operations!(
    /// The operations of [`WorkspaceStore`].
    WorkspaceOperation for Workspace {
        Get = "get",
        List = "list",
        ListTabs = "list-tabs",
        GetTab = "get-tab",
        Create = "create" [write],
        CreateTab = "create-tab" [write],
        SelectTab = "select-tab" [write],
        UpdateTabRun = "update-tab-run" [write],
    }
);

/// The workspace repository contract.
#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    async fn get(&self, ctx: &Ctx, workspace_id: &str) -> Result<Workspace>;
    /// Workspaces in byte order of their ids, after `cursor`, at most `limit` (0: the default).
    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<WorkspacePage>;
    async fn list_tabs(&self, ctx: &Ctx, workspace_id: &str) -> Result<Vec<Tab>>;
    async fn get_tab(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str) -> Result<Tab>;
    async fn create(&self, ctx: &Ctx, input: WorkspaceInput) -> Result<Workspace>;
    async fn create_tab(&self, ctx: &Ctx, workspace_id: &str, input: TabInput) -> Result<Tab>;
    async fn select_tab(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str) -> Result<Workspace>;
    async fn update_tab_run(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str, run_id: Option<String>) -> Result<Tab>;
}

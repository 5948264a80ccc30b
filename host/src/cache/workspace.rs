//! The workspace cache decorator (seed: `internal/cache/uiworkspace/cached_store.go`).
//!
//! Read-through `get`, `list_tabs`, `get_tab`. Each mutation writes through and touches
//! exactly the entries it changes: `create_tab` caches the tab and drops the workspace's tab
//! list; `select_tab` caches the returned workspace; `update_tab_run` caches the returned tab
//! and drops the tab list. Other workspaces and tabs stay cached.

use std::sync::Arc;

use async_trait::async_trait;

use super::{CacheConfig, CacheMetrics, Lookup, NamedCache, ReadThrough, Written, read_through, weight_str, written};
use crate::domain::{Ctx, Result, Tab, TabInput, Workspace, WorkspaceInput, WorkspacePage, WorkspaceStore};

pub struct CachedWorkspaceStore {
    origin: Arc<dyn WorkspaceStore>,
    workspaces: ReadThrough<String, Workspace>,
    tab_lists: ReadThrough<String, Arc<Vec<Tab>>>,
    tabs: ReadThrough<(String, String), Tab>,
}

fn tab_weight(t: &Tab) -> usize {
    weight_str(&t.id) + weight_str(&t.workspace_id) + weight_str(&t.title) + weight_str(&t.kind) + t.run_id.as_deref().map_or(0, weight_str) + 16
}

impl CachedWorkspaceStore {
    pub fn new(origin: Arc<dyn WorkspaceStore>, config: CacheConfig) -> Self {
        Self {
            origin,
            workspaces: ReadThrough::new(&config.tier(0.3), |k: &String, w: &Workspace| {
                weight_str(k) + weight_str(&w.id) + weight_str(&w.project_id) + weight_str(&w.name) + 40
            }),
            tab_lists: ReadThrough::new(&config.tier(0.4), |k: &String, tabs: &Arc<Vec<Tab>>| {
                weight_str(k) + tabs.iter().map(tab_weight).sum::<usize>()
            }),
            tabs: ReadThrough::new(&config.tier(0.3), |k: &(String, String), t: &Tab| weight_str(&k.0) + weight_str(&k.1) + tab_weight(t)),
        }
    }

    /// Drops a workspace, its tab list and its tabs.
    pub fn invalidate_workspace(&self, workspace_id: &str) {
        self.workspaces.invalidate(&workspace_id.to_string());
        self.tab_lists.invalidate(&workspace_id.to_string());
        self.tabs.invalidate_if(|(ws, _), _| ws == workspace_id);
    }

    /// Drops everything cached.
    pub fn clear(&self) {
        self.workspaces.invalidate_if(|_, _| true);
        self.tab_lists.invalidate_if(|_, _| true);
        self.tabs.invalidate_if(|_, _| true);
    }

    /// Drops one tab and the tab list it is in.
    pub fn invalidate_tab(&self, workspace_id: &str, tab_id: &str) {
        self.tabs.invalidate(&(workspace_id.to_string(), tab_id.to_string()));
        self.tab_lists.invalidate(&workspace_id.to_string());
    }
}

#[async_trait]
impl WorkspaceStore for CachedWorkspaceStore {
    async fn get(&self, ctx: &Ctx, workspace_id: &str) -> Result<Workspace> {
        let key = workspace_id.to_string();
        read_through(&self.workspaces, Lookup::new("workspace", "workspace"), ctx, &key, self.origin.get(ctx, workspace_id)).await
    }

    /// Not cached: a listing is for walking every workspace (a copy), not for serving.
    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<WorkspacePage> {
        self.origin.list(ctx, cursor, limit).await
    }

    async fn list_tabs(&self, ctx: &Ctx, workspace_id: &str) -> Result<Vec<Tab>> {
        let load = async { self.origin.list_tabs(ctx, workspace_id).await.map(Arc::new) };
        let key = workspace_id.to_string();
        read_through(&self.tab_lists, Lookup::new("workspace", "tabs"), ctx, &key, load).await.map(|tabs| (*tabs).clone())
    }

    async fn get_tab(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str) -> Result<Tab> {
        let key = (workspace_id.to_string(), tab_id.to_string());
        read_through(&self.tabs, Lookup::new("workspace", "tab"), ctx, &key, self.origin.get_tab(ctx, workspace_id, tab_id)).await
    }

    async fn create(&self, ctx: &Ctx, input: WorkspaceInput) -> Result<Workspace> {
        let id = input.id.clone();
        let result = self.origin.create(ctx, input).await;
        match written(&result) {
            Written::Done(ws) => {
                self.workspaces.store(id.clone(), ws.clone());
                self.tab_lists.invalidate(&id);
            }
            Written::Stale => self.invalidate_workspace(&id),
            Written::Refused => {}
        }
        result
    }

    async fn create_tab(&self, ctx: &Ctx, workspace_id: &str, input: TabInput) -> Result<Tab> {
        let tab_id = input.id.clone();
        let result = self.origin.create_tab(ctx, workspace_id, input).await;
        match written(&result) {
            Written::Done(tab) => {
                self.tabs.store((workspace_id.to_string(), tab_id), tab.clone());
                self.tab_lists.invalidate(&workspace_id.to_string());
            }
            Written::Stale => self.invalidate_tab(workspace_id, &tab_id),
            Written::Refused => {}
        }
        result
    }

    async fn select_tab(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str) -> Result<Workspace> {
        let result = self.origin.select_tab(ctx, workspace_id, tab_id).await;
        match written(&result) {
            Written::Done(ws) => self.workspaces.store_if_newer(workspace_id.to_string(), ws.clone(), |new, cached| new.version > cached.version),
            Written::Stale => self.workspaces.invalidate(&workspace_id.to_string()),
            Written::Refused => {}
        }
        result
    }

    async fn update_tab_run(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str, run_id: Option<String>) -> Result<Tab> {
        let result = self.origin.update_tab_run(ctx, workspace_id, tab_id, run_id).await;
        match written(&result) {
            Written::Done(tab) => {
                self.tabs.store((workspace_id.to_string(), tab_id.to_string()), tab.clone());
                self.tab_lists.invalidate(&workspace_id.to_string());
            }
            Written::Stale => self.invalidate_tab(workspace_id, tab_id),
            Written::Refused => {}
        }
        result
    }
}

impl CacheMetrics for CachedWorkspaceStore {
    fn caches(&self) -> Vec<NamedCache> {
        vec![NamedCache::of("workspace", &self.workspaces), NamedCache::of("tab-list", &self.tab_lists), NamedCache::of("tab", &self.tabs)]
    }
}

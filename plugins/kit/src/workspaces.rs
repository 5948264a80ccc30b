//! UI workspaces and tabs. A tab is stored under `workspace-id/tab-id`.

use crate::bindings::exports::storehost::origin::workspaces::{Guest, Tab, TabInput, Workspace, WorkspaceInput, WorkspacePage};
use crate::{Backend, Origin, Result, StoreError, Table, load, now_ms, page_limit, store, validate_id};

fn workspace<B: Backend>(b: &mut B, id: &str) -> Result<Workspace> {
    validate_id("workspace id", id)?;
    load(b, Table::Workspaces, id)?.ok_or_else(|| StoreError::NotFound(format!("workspace {id:?}")))
}

fn tab_key(workspace_id: &str, tab_id: &str) -> String {
    format!("{workspace_id}/{tab_id}")
}

fn tab<B: Backend>(b: &mut B, workspace_id: &str, tab_id: &str) -> Result<Tab> {
    validate_id("tab id", tab_id)?;
    load(b, Table::Tabs, &tab_key(workspace_id, tab_id))?.ok_or_else(|| StoreError::NotFound(format!("tab {tab_id:?} of workspace {workspace_id:?}")))
}

fn tabs<B: Backend>(b: &mut B, workspace_id: &str) -> Result<Vec<Tab>> {
    let keys = b.keys(Table::Tabs, &format!("{workspace_id}/"), None, usize::MAX)?;
    let mut tabs = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(tab) = load::<_, Tab>(b, Table::Tabs, &key)? {
            tabs.push(tab);
        }
    }
    tabs.sort_by_key(|t| t.position);
    Ok(tabs)
}

impl<B: Backend> Guest for Origin<B> {
    fn list(cursor: Option<String>, limit: u32) -> Result<WorkspacePage> {
        B::with(|b| {
            b.before_call("workspaces.list", "")?;
            let limit = page_limit(limit);
            let ids = b.keys(Table::Workspaces, "", cursor.as_deref(), limit + 1)?;
            let more = ids.len() > limit;
            // The page goes on after the last id listed, read or not.
            let next_cursor = if more { ids.get(limit - 1).cloned() } else { None };
            let mut items = Vec::with_capacity(ids.len().min(limit));
            for id in ids.into_iter().take(limit) {
                // A workspace removed between the listing and the read is skipped.
                if let Some(workspace) = load::<B, Workspace>(b, Table::Workspaces, &id)? {
                    items.push(workspace);
                }
            }
            Ok(WorkspacePage { items, next_cursor })
        })
    }

    fn get(workspace_id: String) -> Result<Workspace> {
        B::with(|b| {
            b.before_call("workspaces.get", &workspace_id)?;
            workspace(b, &workspace_id)
        })
    }

    fn list_tabs(workspace_id: String) -> Result<Vec<Tab>> {
        B::with(|b| {
            b.before_call("workspaces.list-tabs", &workspace_id)?;
            workspace(b, &workspace_id)?;
            tabs(b, &workspace_id)
        })
    }

    fn get_tab(workspace_id: String, tab_id: String) -> Result<Tab> {
        B::with(|b| {
            b.before_call("workspaces.get-tab", &workspace_id)?;
            workspace(b, &workspace_id)?;
            tab(b, &workspace_id, &tab_id)
        })
    }

    fn create(input: WorkspaceInput) -> Result<Workspace> {
        B::with(|b| {
            b.before_call("workspaces.create", &input.id)?;
            validate_id("workspace id", &input.id)?;
            let _lock = b.lock(Table::Workspaces, &input.id)?;
            if load::<_, Workspace>(b, Table::Workspaces, &input.id)?.is_some() {
                return Err(StoreError::Conflict(format!("workspace {:?} already exists", input.id)));
            }
            let ws = Workspace { id: input.id, project_id: input.project_id, name: input.name, selected_tab: None, version: 1, updated_at: now_ms() };
            store(b, Table::Workspaces, &ws.id, &ws)?;
            Ok(ws)
        })
    }

    fn create_tab(workspace_id: String, input: TabInput) -> Result<Tab> {
        B::with(|b| {
            b.before_call("workspaces.create-tab", &workspace_id)?;
            validate_id("tab id", &input.id)?;
            let _lock = b.lock(Table::Workspaces, &workspace_id)?;
            workspace(b, &workspace_id)?;
            let existing = tabs(b, &workspace_id)?;
            if existing.iter().any(|t| t.id == input.id) {
                return Err(StoreError::Conflict(format!("tab {:?} already exists in workspace {workspace_id:?}", input.id)));
            }
            let tab = Tab {
                position: existing.iter().map(|t| t.position + 1).max().unwrap_or(0),
                id: input.id,
                workspace_id: workspace_id.clone(),
                title: input.title,
                kind: input.kind,
                run_id: None,
                updated_at: now_ms(),
            };
            store(b, Table::Tabs, &tab_key(&workspace_id, &tab.id), &tab)?;
            Ok(tab)
        })
    }

    fn select_tab(workspace_id: String, tab_id: String) -> Result<Workspace> {
        B::with(|b| {
            b.before_call("workspaces.select-tab", &workspace_id)?;
            let _lock = b.lock(Table::Workspaces, &workspace_id)?;
            let mut ws = workspace(b, &workspace_id)?;
            tab(b, &workspace_id, &tab_id)?;
            ws.selected_tab = Some(tab_id);
            ws.version += 1;
            ws.updated_at = now_ms();
            store(b, Table::Workspaces, &workspace_id, &ws)?;
            Ok(ws)
        })
    }

    fn update_tab_run(workspace_id: String, tab_id: String, run_id: Option<String>) -> Result<Tab> {
        B::with(|b| {
            b.before_call("workspaces.update-tab-run", &workspace_id)?;
            let _lock = b.lock(Table::Workspaces, &workspace_id)?;
            workspace(b, &workspace_id)?;
            let mut tab = tab(b, &workspace_id, &tab_id)?;
            tab.run_id = run_id;
            tab.updated_at = now_ms();
            store(b, Table::Tabs, &tab_key(&workspace_id, &tab_id), &tab)?;
            Ok(tab)
        })
    }
}

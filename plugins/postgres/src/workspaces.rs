//! UI workspaces (versioned rows) and their tabs (rows keyed by workspace and tab id).

use storehost_plugin_kit::bindings::exports::storehost::origin::workspaces::{Guest, Tab, TabInput, Workspace, WorkspaceInput, WorkspacePage};
use storehost_plugin_kit::bindings::storehost::host::sql::SqlColumn;
use storehost_plugin_kit::{Result, StoreError, now_ms, page_limit, validate_id};

use crate::Postgres;
use crate::db::{self, Db, Row, opt_text, text, ts};

const WORKSPACE: &str = "id, project_id, name, selected_tab, version, updated_at";
const TAB: &str = "id, workspace_id, title, kind, run_id, position, updated_at";

fn workspace_row(row: Vec<SqlColumn>) -> Result<Workspace> {
    let r = Row(row);
    Ok(Workspace { id: r.text(0)?, project_id: r.text(1)?, name: r.text(2)?, selected_tab: r.opt_text(3)?, version: r.u64(4)?, updated_at: r.ts(5)? })
}

fn tab_row(row: Vec<SqlColumn>) -> Result<Tab> {
    let r = Row(row);
    Ok(Tab {
        id: r.text(0)?,
        workspace_id: r.text(1)?,
        title: r.text(2)?,
        kind: r.text(3)?,
        run_id: r.opt_text(4)?,
        position: u32::try_from(r.u64(5)?).map_err(|_| StoreError::Internal("tab position out of range".into()))?,
        updated_at: r.ts(6)?,
    })
}

fn workspace_missing(id: &str) -> StoreError {
    StoreError::NotFound(format!("workspace {id:?}"))
}

fn tab_missing(workspace_id: &str, tab_id: &str) -> StoreError {
    StoreError::NotFound(format!("tab {tab_id:?} of workspace {workspace_id:?}"))
}

fn workspace(id: &str) -> Result<Workspace> {
    validate_id("workspace id", id)?;
    let row = Db::Pool.query_opt(&format!("SELECT {WORKSPACE} FROM {{s}}.workspaces WHERE id = $1"), &[text(id)])?;
    workspace_row(row.ok_or_else(|| workspace_missing(id))?)
}

/// The not-found error of a tab call that matched no row: the workspace's, or the tab's.
fn missing(workspace_id: &str, tab_id: &str) -> StoreError {
    match workspace(workspace_id) {
        Ok(_) => tab_missing(workspace_id, tab_id),
        Err(e) => e,
    }
}

impl Guest for Postgres {
    fn get(workspace_id: String) -> Result<Workspace> {
        workspace(&workspace_id)
    }

    fn list(cursor: Option<String>, limit: u32) -> Result<WorkspacePage> {
        let limit = page_limit(limit);
        let rows = Db::Pool.query(
            &format!("SELECT {WORKSPACE} FROM {{s}}.workspaces WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2"),
            &[opt_text(cursor), db::int(limit as u64 + 1)],
        )?;
        let more = rows.len() > limit;
        let items = rows.into_iter().take(limit).map(workspace_row).collect::<Result<Vec<_>>>()?;
        let next_cursor = if more { items.last().map(|w| w.id.clone()) } else { None };
        Ok(WorkspacePage { items, next_cursor })
    }

    fn list_tabs(workspace_id: String) -> Result<Vec<Tab>> {
        workspace(&workspace_id)?;
        let rows = Db::Pool
            .query(&format!("SELECT {TAB} FROM {{s}}.workspace_tabs WHERE workspace_id = $1 ORDER BY position, id"), &[text(workspace_id)])?;
        rows.into_iter().map(tab_row).collect()
    }

    fn get_tab(workspace_id: String, tab_id: String) -> Result<Tab> {
        workspace(&workspace_id)?;
        validate_id("tab id", &tab_id)?;
        let row = Db::Pool.query_opt(
            &format!("SELECT {TAB} FROM {{s}}.workspace_tabs WHERE workspace_id = $1 AND id = $2"),
            &[text(workspace_id.as_str()), text(tab_id.as_str())],
        )?;
        tab_row(row.ok_or_else(|| tab_missing(&workspace_id, &tab_id))?)
    }

    fn create(input: WorkspaceInput) -> Result<Workspace> {
        validate_id("workspace id", &input.id)?;
        let row = Db::Pool.query_opt(
            &format!(
                "INSERT INTO {{s}}.workspaces (id, project_id, name, selected_tab, version, updated_at) VALUES ($1, $2, $3, NULL, 1, $4)
                 ON CONFLICT (id) DO NOTHING RETURNING {WORKSPACE}"
            ),
            &[text(input.id.as_str()), text(input.project_id), text(input.name), ts(now_ms())],
        )?;
        workspace_row(row.ok_or_else(|| StoreError::Conflict(format!("workspace {:?} already exists", input.id)))?)
    }

    /// In one transaction holding the workspace's row lock, so positions are assigned in turn.
    fn create_tab(workspace_id: String, input: TabInput) -> Result<Tab> {
        validate_id("tab id", &input.id)?;
        validate_id("workspace id", &workspace_id)?;
        let tx = db::begin()?;
        let db = Db::Tx(&tx);
        if db.query_opt("SELECT 1 FROM {s}.workspaces WHERE id = $1 FOR UPDATE", &[text(workspace_id.as_str())])?.is_none() {
            return Err(workspace_missing(&workspace_id));
        }
        let row = db.query_opt(
            &format!(
                "INSERT INTO {{s}}.workspace_tabs (workspace_id, id, title, kind, run_id, position, updated_at)
                 SELECT $1, $2, $3, $4, NULL, coalesce(max(position) + 1, 0), $5 FROM {{s}}.workspace_tabs WHERE workspace_id = $1
                 ON CONFLICT (workspace_id, id) DO NOTHING RETURNING {TAB}"
            ),
            &[text(workspace_id.as_str()), text(input.id.as_str()), text(input.title), text(input.kind), ts(now_ms())],
        )?;
        let tab = tab_row(row.ok_or_else(|| StoreError::Conflict(format!("tab {:?} already exists in workspace {workspace_id:?}", input.id)))?)?;
        db::commit(tx)?;
        Ok(tab)
    }

    fn select_tab(workspace_id: String, tab_id: String) -> Result<Workspace> {
        validate_id("workspace id", &workspace_id)?;
        validate_id("tab id", &tab_id)?;
        let row = Db::Pool.query_opt(
            &format!(
                "UPDATE {{s}}.workspaces SET selected_tab = $2, version = version + 1, updated_at = $3
                 WHERE id = $1 AND EXISTS (SELECT 1 FROM {{s}}.workspace_tabs WHERE workspace_id = $1 AND id = $2)
                 RETURNING {WORKSPACE}"
            ),
            &[text(workspace_id.as_str()), text(tab_id.as_str()), ts(now_ms())],
        )?;
        workspace_row(row.ok_or_else(|| missing(&workspace_id, &tab_id))?)
    }

    fn update_tab_run(workspace_id: String, tab_id: String, run_id: Option<String>) -> Result<Tab> {
        validate_id("workspace id", &workspace_id)?;
        validate_id("tab id", &tab_id)?;
        let row = Db::Pool.query_opt(
            &format!("UPDATE {{s}}.workspace_tabs SET run_id = $3, updated_at = $4 WHERE workspace_id = $1 AND id = $2 RETURNING {TAB}"),
            &[text(workspace_id.as_str()), text(tab_id.as_str()), opt_text(run_id), ts(now_ms())],
        )?;
        tab_row(row.ok_or_else(|| missing(&workspace_id, &tab_id))?)
    }
}

mod create;
mod create_tab;
mod get;
mod list;
mod select_tab;
mod tabs;
mod update_tab_run;

use std::sync::Arc;

use crate::domain::Stores;
use crate::domain::{TabInput, WorkspaceInput, WorkspaceStore};

pub(super) fn cases() -> Vec<super::Case> {
    [create::cases(), get::cases(), create_tab::cases(), tabs::cases(), select_tab::cases(), update_tab_run::cases(), list::cases()].concat()
}

fn store(s: &Stores) -> Arc<dyn WorkspaceStore> {
    s.workspace.clone().expect("the suite skips targets without workspaces")
}

fn ws_input(id: &str) -> WorkspaceInput {
    WorkspaceInput { id: id.into(), project_id: "p1".into(), name: format!("workspace {id}") }
}

fn tab_input(id: &str) -> TabInput {
    TabInput { id: id.into(), title: format!("tab {id}"), kind: "editor".into() }
}

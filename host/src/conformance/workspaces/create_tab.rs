use anyhow::{Result, ensure};

use super::{store, tab_input, ws_input};
use crate::conformance::{Step, conflict, ctx, not_found, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Workspaces, "create-tab"; create_tab_appends, create_tab_taken_id_conflicts, create_tab_in_missing_workspace);

async fn create_tab_appends(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("ws"));
    st.create(&ctx(), ws_input(&id)).await.step("create")?;
    for (i, tab) in ["t-b", "t-a", "t-c"].into_iter().enumerate() {
        let created = st.create_tab(&ctx(), &id, tab_input(tab)).await.step("create-tab")?;
        ensure!(created.position == i as u32 && created.workspace_id == id && created.run_id.is_none(), "created {created:?}");
    }
    Ok(())
}

async fn create_tab_taken_id_conflicts(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("ws"));
    st.create(&ctx(), ws_input(&id)).await.step("create")?;
    st.create_tab(&ctx(), &id, tab_input("t")).await.step("create-tab")?;
    conflict("a second tab with the same id", st.create_tab(&ctx(), &id, tab_input("t")).await)
}

async fn create_tab_in_missing_workspace(s: Stores) -> Result<()> {
    not_found("create-tab in a missing workspace", store(&s).create_tab(&ctx(), &unique("ws"), tab_input("t")).await)
}

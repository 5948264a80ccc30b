use anyhow::{Result, ensure};

use super::{store, ws_input};
use crate::conformance::{Step, conflict, ctx, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Workspaces, "create"; create_starts_at_version_1, create_taken_id_conflicts);

async fn create_starts_at_version_1(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("ws"));
    let ws = st.create(&ctx(), ws_input(&id)).await.step("create")?;
    ensure!(ws.version == 1 && ws.selected_tab.is_none() && ws.project_id == "p1", "created {ws:?}");
    ensure!(st.list_tabs(&ctx(), &id).await.step("list-tabs")?.is_empty(), "a new workspace has tabs");
    Ok(())
}

async fn create_taken_id_conflicts(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("ws"));
    st.create(&ctx(), ws_input(&id)).await.step("create")?;
    conflict("creating the same id again", st.create(&ctx(), ws_input(&id)).await)
}

use anyhow::{Result, ensure};

use super::{store, tab_input, ws_input};
use crate::conformance::{Step, ctx, not_found, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Workspaces, "update-tab-run"; update_tab_run_sets_and_clears, update_run_of_missing_tab);

async fn update_tab_run_sets_and_clears(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("ws"));
    st.create(&ctx(), ws_input(&id)).await.step("create")?;
    st.create_tab(&ctx(), &id, tab_input("t")).await.step("create-tab")?;
    let tab = st.update_tab_run(&ctx(), &id, "t", Some("run-42".into())).await.step("set run")?;
    ensure!(tab.run_id.as_deref() == Some("run-42"), "after set: {tab:?}");
    ensure!(st.get_tab(&ctx(), &id, "t").await.step("get-tab")? == tab, "get-tab differs from update-tab-run's result");
    let tab = st.update_tab_run(&ctx(), &id, "t", None).await.step("clear run")?;
    ensure!(tab.run_id.is_none(), "after clear: {tab:?}");
    Ok(())
}

async fn update_run_of_missing_tab(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("ws"));
    st.create(&ctx(), ws_input(&id)).await.step("create")?;
    not_found("update-tab-run of a missing tab", st.update_tab_run(&ctx(), &id, "ghost", None).await)
}

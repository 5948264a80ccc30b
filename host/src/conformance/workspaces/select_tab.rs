use anyhow::{Result, ensure};

use super::{store, tab_input, ws_input};
use crate::conformance::{Step, ctx, not_found, same, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Workspaces, "select-tab"; select_tab_sets_and_bumps, select_missing_tab_is_not_found);

async fn select_tab_sets_and_bumps(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("ws"));
    st.create(&ctx(), ws_input(&id)).await.step("create")?;
    st.create_tab(&ctx(), &id, tab_input("t1")).await.step("create-tab")?;
    st.create_tab(&ctx(), &id, tab_input("t2")).await.step("create-tab")?;
    let ws = st.select_tab(&ctx(), &id, "t2").await.step("select-tab")?;
    ensure!(ws.selected_tab.as_deref() == Some("t2") && ws.version == 2, "after select: {ws:?}");
    let got = st.get(&ctx(), &id).await.step("get")?;
    same("get", &got, "select-tab's answer", &ws)?;
    Ok(())
}

async fn select_missing_tab_is_not_found(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("ws"));
    st.create(&ctx(), ws_input(&id)).await.step("create")?;
    not_found("select of a missing tab", st.select_tab(&ctx(), &id, "ghost").await)?;
    let ws = st.get(&ctx(), &id).await.step("get")?;
    ensure!(ws.selected_tab.is_none() && ws.version == 1, "a refused select changed {ws:?}");
    Ok(())
}

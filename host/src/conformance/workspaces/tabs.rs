use anyhow::{Result, ensure};

use super::{store, tab_input, ws_input};
use crate::conformance::{Step, ctx, not_found, same, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Workspaces, "list-tabs/get-tab"; list_tabs_by_position, get_tab_returns_created, tabs_belong_to_their_workspace);

async fn list_tabs_by_position(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("ws"));
    st.create(&ctx(), ws_input(&id)).await.step("create")?;
    for tab in ["zz", "aa", "mm"] {
        st.create_tab(&ctx(), &id, tab_input(tab)).await.step("create-tab")?;
    }
    let ids: Vec<String> = st.list_tabs(&ctx(), &id).await.step("list-tabs")?.into_iter().map(|t| t.id).collect();
    ensure!(ids == ["zz", "aa", "mm"], "tabs listed as {ids:?}, expected creation order");
    Ok(())
}

async fn get_tab_returns_created(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("ws"));
    st.create(&ctx(), ws_input(&id)).await.step("create")?;
    let created = st.create_tab(&ctx(), &id, tab_input("t1")).await.step("create-tab")?;
    let got = st.get_tab(&ctx(), &id, "t1").await.step("get-tab")?;
    same("get-tab", &got, "create-tab's answer", &created)?;
    not_found("get-tab of a missing tab", st.get_tab(&ctx(), &id, "nope").await)
}

async fn tabs_belong_to_their_workspace(s: Stores) -> Result<()> {
    let (st, a, b) = (store(&s), unique("ws"), unique("ws"));
    st.create(&ctx(), ws_input(&a)).await.step("create a")?;
    st.create(&ctx(), ws_input(&b)).await.step("create b")?;
    st.create_tab(&ctx(), &a, tab_input("only-in-a")).await.step("create-tab")?;
    ensure!(st.list_tabs(&ctx(), &b).await.step("list-tabs b")?.is_empty(), "workspace b lists a's tab");
    not_found("get-tab of a's tab through b", st.get_tab(&ctx(), &b, "only-in-a").await)
}

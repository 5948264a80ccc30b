use anyhow::{Result, ensure};

use super::{store, ws_input};
use crate::conformance::{Step, all_pages, ctx, ordered_and_holding, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Workspaces, "list"; list_pages_every_workspace);

async fn list_pages_every_workspace(s: Stores) -> Result<()> {
    let st = store(&s);
    let base = unique("ws");
    let ours: Vec<String> = ["c", "a", "b"].iter().map(|x| format!("{base}-{x}")).collect();
    for id in &ours {
        st.create(&ctx(), ws_input(id)).await.step("create")?;
    }
    let page = |cursor: Option<String>| {
        let st = st.clone();
        async move { st.list(&ctx(), cursor.as_deref(), 2).await.map(|p| (p.items, p.next_cursor)) }
    };
    let listed = all_pages("list", page).await?;
    let ids: Vec<String> = listed.iter().map(|w| w.id.clone()).collect();
    ordered_and_holding("the workspaces' listing", &ids, &ours)?;
    for w in listed.iter().filter(|w| ours.contains(&w.id)) {
        let got = st.get(&ctx(), &w.id).await.step("get")?;
        ensure!(got == *w, "listed {w:?}, get returned {got:?}");
    }
    Ok(())
}

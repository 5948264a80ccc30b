use anyhow::Result;

use super::{store, ws_input};
use crate::conformance::{Step, ctx, not_found, same, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Workspaces, "get"; get_returns_created, get_missing_is_not_found);

async fn get_returns_created(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("ws"));
    let created = st.create(&ctx(), ws_input(&id)).await.step("create")?;
    let got = st.get(&ctx(), &id).await.step("get")?;
    same("get", &got, "create's answer", &created)?;
    Ok(())
}

async fn get_missing_is_not_found(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("ws"));
    not_found("get of a missing workspace", st.get(&ctx(), &id).await)?;
    not_found("list-tabs of a missing workspace", st.list_tabs(&ctx(), &id).await)?;
    not_found("get-tab of a missing workspace", st.get_tab(&ctx(), &id, "t").await)
}

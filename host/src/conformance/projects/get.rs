use anyhow::Result;

use super::{input, store};
use crate::conformance::{Step, ctx, not_found, same, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Projects, "get"; get_returns_saved, get_missing_is_not_found);

async fn get_returns_saved(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("project"));
    let saved = st.save(&ctx(), input(&id, "quote'\";--"), None).await.step("save")?;
    let got = st.get(&ctx(), &id).await.step("get")?;
    same("get", &got, "save's answer", &saved)?;
    Ok(())
}

async fn get_missing_is_not_found(s: Stores) -> Result<()> {
    not_found("get of a missing project", store(&s).get(&ctx(), &unique("project")).await)
}

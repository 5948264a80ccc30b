use anyhow::{Result, ensure};

use super::{record, store};
use crate::conformance::{Step, ctx, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(ProjectArtifacts, "add"; add_then_list, add_same_name_replaces);

async fn add_then_list(s: Stores) -> Result<()> {
    let (st, project) = (store(&s), unique("pa"));
    st.add(&ctx(), &project, record("report.pdf", "k/1", 10)).await.step("add")?;
    let list = st.list(&ctx(), &project).await.step("list")?;
    ensure!(list == [record("report.pdf", "k/1", 10)], "listed {list:?}");
    Ok(())
}

async fn add_same_name_replaces(s: Stores) -> Result<()> {
    let (st, project) = (store(&s), unique("pa"));
    st.add(&ctx(), &project, record("log", "k/1", 1)).await.step("add")?;
    st.add(&ctx(), &project, record("log", "k/2", 2)).await.step("add again")?;
    let list = st.list(&ctx(), &project).await.step("list")?;
    ensure!(list == [record("log", "k/2", 2)], "same name did not replace: {list:?}");
    Ok(())
}

use anyhow::{Result, ensure};

use super::{record, store};
use crate::conformance::{Step, ctx, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(ProjectArtifacts, "list"; list_in_name_order_per_project, list_of_unknown_project_is_empty);

async fn list_in_name_order_per_project(s: Stores) -> Result<()> {
    let (st, a, b) = (store(&s), unique("pa"), unique("pa"));
    for name in ["zeta", "alpha", "Mid"] {
        st.add(&ctx(), &a, record(name, &format!("k/{name}"), 1)).await.step("add")?;
    }
    st.add(&ctx(), &b, record("other", "k/o", 1)).await.step("add to another project")?;
    let names: Vec<String> = st.list(&ctx(), &a).await.step("list")?.into_iter().map(|r| r.name).collect();
    ensure!(names == ["Mid", "alpha", "zeta"], "listed {names:?}");
    Ok(())
}

async fn list_of_unknown_project_is_empty(s: Stores) -> Result<()> {
    let list = store(&s).list(&ctx(), &unique("pa")).await.step("list")?;
    ensure!(list.is_empty(), "an unknown project listed {list:?}");
    Ok(())
}

use anyhow::Result;

use super::{input, store};
use crate::conformance::{Step, conflict, ctx, not_found, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Projects, "delete"; delete_checks_version, delete_missing_succeeds, recreated_after_delete_starts_at_version_1);

async fn delete_checks_version(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("project"));
    st.save(&ctx(), input(&id, "x"), None).await.step("save")?;
    conflict("delete with a wrong version", st.delete(&ctx(), &id, Some(5)).await)?;
    st.get(&ctx(), &id).await.step("get after the refused delete")?;
    st.delete(&ctx(), &id, Some(1)).await.step("delete with the current version")?;
    not_found("get after delete", st.get(&ctx(), &id).await)
}

async fn delete_missing_succeeds(s: Stores) -> Result<()> {
    store(&s).delete(&ctx(), &unique("project"), None).await.step("delete of a missing project")
}

async fn recreated_after_delete_starts_at_version_1(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("project"));
    st.save(&ctx(), input(&id, "one"), None).await.step("create")?;
    st.save(&ctx(), input(&id, "two"), None).await.step("update")?;
    st.delete(&ctx(), &id, Some(2)).await.step("delete")?;
    let again = st.save(&ctx(), input(&id, "three"), Some(0)).await.step("re-create, expecting no project")?;
    anyhow::ensure!(again.version == 1 && again.name == "three", "re-created as {again:?}");
    Ok(())
}

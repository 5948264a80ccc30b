use anyhow::{Result, ensure};

use super::{input, store};
use crate::conformance::{Step, conflict, ctx, invalid, not_found, suite_cases, unique};
use crate::domain::{ProjectInput, Stores};

suite_cases!(Projects, "save"; save_creates_then_bumps_versions, save_checks_expected_version, save_create_only, state_must_be_json, update_keeps_created_at_and_moves_updated_at);

async fn save_creates_then_bumps_versions(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("project"));
    let v1 = st.save(&ctx(), input(&id, "one"), None).await.step("create")?;
    ensure!(v1.version == 1, "a new project has version {}, expected 1", v1.version);
    ensure!(v1.id == id && v1.name == "one" && v1.state == "{\"name\":\"one\"}", "saved {v1:?}");
    let v2 = st.save(&ctx(), input(&id, "two"), None).await.step("update")?;
    ensure!(v2.version == 2, "an update gave version {}, expected 2", v2.version);
    ensure!(v2.created_at == v1.created_at, "created_at changed on update");
    ensure!(v2.updated_at >= v1.updated_at, "updated_at went backwards");
    Ok(())
}

async fn save_checks_expected_version(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("project"));
    st.save(&ctx(), input(&id, "one"), Some(0)).await.step("create with expected version 0")?;
    conflict("save with a stale version", st.save(&ctx(), input(&id, "x"), Some(0)).await)?;
    conflict("save with a future version", st.save(&ctx(), input(&id, "x"), Some(7)).await)?;
    let v2 = st.save(&ctx(), input(&id, "two"), Some(1)).await.step("save with the current version")?;
    ensure!(v2.version == 2 && v2.name == "two", "saved {v2:?}");
    let got = st.get(&ctx(), &id).await.step("get")?;
    ensure!(got == v2, "a conflicting save changed the project: {got:?}");
    Ok(())
}

async fn save_create_only(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("project"));
    conflict("save of a missing project expecting version 3", st.save(&ctx(), input(&id, "x"), Some(3)).await)?;
    not_found("get after the refused save", st.get(&ctx(), &id).await)
}

async fn state_must_be_json(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("project"));
    let bad = ProjectInput { id: id.clone(), name: "x".into(), state: "{not json".into() };
    invalid("save with a state that is not JSON", st.save(&ctx(), bad, None).await)?;
    not_found("get after the refused save", st.get(&ctx(), &id).await)
}

async fn update_keeps_created_at_and_moves_updated_at(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("project"));
    let v1 = st.save(&ctx(), input(&id, "one"), None).await.step("create")?;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let v2 = st.save(&ctx(), input(&id, "two"), None).await.step("update")?;
    ensure!(v2.created_at == v1.created_at, "created_at moved from {} to {} on update", v1.created_at, v2.created_at);
    ensure!(v2.updated_at > v1.updated_at, "updated_at did not move on update ({} then {})", v1.updated_at, v2.updated_at);
    Ok(())
}

//! What deleting a project does to its artifact records: nothing. They stay, and a project
//! created again under the same id lists them (records describe artifacts, which outlive the
//! project, and they may live in another origin than the project's state).

use anyhow::{Result, ensure};

use super::{record, store};
use crate::conformance::{Step, ctx, suite_cases, unique};
use crate::domain::{ProjectInput, Stores};

suite_cases!(ProjectArtifacts + Projects, "delete"; deleting_a_project_keeps_its_records);

async fn deleting_a_project_keeps_its_records(s: Stores) -> Result<()> {
    let (records, projects, id) = (store(&s), s.project.clone().expect("the suite skips targets without projects"), unique("pa"));
    let input = ProjectInput { id: id.clone(), name: "p".into(), state: "{}".into() };
    projects.save(&ctx(), input.clone(), None).await.step("create the project")?;
    records.add(&ctx(), &id, record("log", "k/1", 1)).await.step("add a record")?;
    projects.delete(&ctx(), &id, None).await.step("delete the project")?;
    let kept = records.list(&ctx(), &id).await.step("list after the delete")?;
    ensure!(kept == [record("log", "k/1", 1)], "deleting the project changed its records: {kept:?}");
    projects.save(&ctx(), input, Some(0)).await.step("create the project again")?;
    let again = records.list(&ctx(), &id).await.step("list after re-creating")?;
    ensure!(again == kept, "the re-created project lists {again:?}");
    Ok(())
}

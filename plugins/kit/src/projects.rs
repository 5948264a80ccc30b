//! Project state and project artifact records.

use crate::bindings::exports::storehost::origin::project_artifacts::{self, ProjectArtifact};
use crate::bindings::exports::storehost::origin::projects::{self, Project, ProjectInput, ProjectPage};
use crate::{Backend, Origin, Result, StoreError, Table, check_version, load, now_ms, page_limit, store, validate_id, validate_json};

impl<B: Backend> projects::Guest for Origin<B> {
    fn get(id: String) -> Result<Project> {
        B::with(|b| {
            b.before_call("projects.get", &id)?;
            validate_id("project id", &id)?;
            load(b, Table::Projects, &id)?.ok_or_else(|| StoreError::NotFound(format!("project {id:?}")))
        })
    }

    fn list(cursor: Option<String>, limit: u32) -> Result<ProjectPage> {
        B::with(|b| {
            b.before_call("projects.list", "")?;
            let limit = page_limit(limit);
            let ids = b.keys(Table::Projects, "", cursor.as_deref(), limit + 1)?;
            let more = ids.len() > limit;
            // The page goes on after the last id listed, read or not.
            let next_cursor = if more { ids.get(limit - 1).cloned() } else { None };
            let mut items = Vec::new();
            for id in ids.into_iter().take(limit) {
                if let Some(project) = load::<_, Project>(b, Table::Projects, &id)? {
                    items.push(project);
                }
            }
            Ok(ProjectPage { items, next_cursor })
        })
    }

    fn save(input: ProjectInput, expected_version: Option<u64>) -> Result<Project> {
        B::with(|b| {
            b.before_call("projects.save", &input.id)?;
            validate_id("project id", &input.id)?;
            validate_json("project state", &input.state)?;
            let _lock = b.lock(Table::Projects, &input.id)?;
            let stored: Option<Project> = load(b, Table::Projects, &input.id)?;
            check_version(&format!("project {:?}", input.id), stored.as_ref().map_or(0, |p| p.version), expected_version)?;
            let now = now_ms();
            let project = Project {
                version: stored.as_ref().map_or(1, |p| p.version + 1),
                created_at: stored.as_ref().map_or(now, |p| p.created_at),
                updated_at: now,
                id: input.id,
                name: input.name,
                state: input.state,
            };
            store(b, Table::Projects, &project.id, &project)?;
            Ok(project)
        })
    }

    fn delete(id: String, expected_version: Option<u64>) -> Result<()> {
        B::with(|b| {
            b.before_call("projects.delete", &id)?;
            validate_id("project id", &id)?;
            let _lock = b.lock(Table::Projects, &id)?;
            let stored: Option<Project> = load(b, Table::Projects, &id)?;
            check_version(&format!("project {id:?}"), stored.as_ref().map_or(0, |p| p.version), expected_version)?;
            b.delete(Table::Projects, &id)
        })
    }
}

impl<B: Backend> project_artifacts::Guest for Origin<B> {
    fn add(project_id: String, artifact: ProjectArtifact) -> Result<()> {
        B::with(|b| {
            b.before_call("project-artifacts.add", &project_id)?;
            validate_id("project id", &project_id)?;
            if artifact.name.is_empty() {
                return Err(StoreError::Invalid("project artifact name is empty".into()));
            }
            let _lock = b.lock(Table::ProjectArtifacts, &project_id)?;
            let mut list: Vec<ProjectArtifact> = load(b, Table::ProjectArtifacts, &project_id)?.unwrap_or_default();
            match list.binary_search_by(|a| a.name.as_str().cmp(&artifact.name)) {
                Ok(i) => list[i] = artifact,
                Err(i) => list.insert(i, artifact),
            }
            store(b, Table::ProjectArtifacts, &project_id, &list)
        })
    }

    fn list(project_id: String) -> Result<Vec<ProjectArtifact>> {
        B::with(|b| {
            b.before_call("project-artifacts.list", &project_id)?;
            validate_id("project id", &project_id)?;
            Ok(load(b, Table::ProjectArtifacts, &project_id)?.unwrap_or_default())
        })
    }
}

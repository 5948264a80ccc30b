//! Projects (versioned rows) and their artifact records.

use storehost_plugin_kit::bindings::exports::storehost::origin::project_artifacts::{self, ProjectArtifact};
use storehost_plugin_kit::bindings::exports::storehost::origin::projects::{self, Project, ProjectInput, ProjectPage};
use storehost_plugin_kit::{Result, StoreError, now_ms, page_limit, validate_id, validate_json, version_conflict};

use crate::Postgres;
use crate::db::{Db, Row, int, opt_text, text, ts};

const COLUMNS: &str = "id, name, state, version, created_at, updated_at";

fn project(row: Vec<storehost_plugin_kit::bindings::storehost::host::sql::SqlColumn>) -> Result<Project> {
    let row = Row(row);
    Ok(Project { id: row.text(0)?, name: row.text(1)?, state: row.text(2)?, version: row.u64(3)?, created_at: row.ts(4)?, updated_at: row.ts(5)? })
}

fn stored_version(id: &str) -> Result<u64> {
    let row = Db::Pool.query_opt("SELECT version FROM {s}.projects WHERE id = $1", &[text(id)])?;
    row.map(|r| Row(r).u64(0)).transpose().map(|v| v.unwrap_or(0))
}

fn what(id: &str) -> String {
    format!("project {id:?}")
}

impl projects::Guest for Postgres {
    fn get(id: String) -> Result<Project> {
        validate_id("project id", &id)?;
        let row = Db::Pool.query_opt(&format!("SELECT {COLUMNS} FROM {{s}}.projects WHERE id = $1"), &[text(id.as_str())])?;
        project(row.ok_or_else(|| StoreError::NotFound(what(&id)))?)
    }

    fn list(cursor: Option<String>, limit: u32) -> Result<ProjectPage> {
        let limit = page_limit(limit);
        let rows = Db::Pool.query(
            &format!("SELECT {COLUMNS} FROM {{s}}.projects WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2"),
            &[opt_text(cursor), int(limit as u64 + 1)],
        )?;
        let more = rows.len() > limit;
        let items = rows.into_iter().take(limit).map(project).collect::<Result<Vec<_>>>()?;
        let next_cursor = if more { items.last().map(|p| p.id.clone()) } else { None };
        Ok(ProjectPage { items, next_cursor })
    }

    /// One conditional statement per case, so the database decides who wins a version:
    /// no expected version upserts; 0 inserts only if absent; `v` updates only at version `v`.
    fn save(input: ProjectInput, expected_version: Option<u64>) -> Result<Project> {
        validate_id("project id", &input.id)?;
        validate_json("project state", &input.state)?;
        let now = now_ms();
        let mut params = vec![text(input.id.as_str()), text(input.name), text(input.state), ts(now)];
        let statement = match expected_version {
            None => format!(
                "INSERT INTO {{s}}.projects AS p (id, name, state, version, created_at, updated_at) VALUES ($1, $2, $3, 1, $4, $4)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, state = excluded.state,
                     version = p.version + 1, updated_at = excluded.updated_at
                 RETURNING {COLUMNS}"
            ),
            Some(0) => format!(
                "INSERT INTO {{s}}.projects (id, name, state, version, created_at, updated_at) VALUES ($1, $2, $3, 1, $4, $4)
                 ON CONFLICT (id) DO NOTHING RETURNING {COLUMNS}"
            ),
            Some(v) => {
                params.push(int(v));
                format!(
                    "UPDATE {{s}}.projects SET name = $2, state = $3, version = version + 1, updated_at = $4
                     WHERE id = $1 AND version = $5 RETURNING {COLUMNS}"
                )
            }
        };
        match Db::Pool.query_opt(&statement, &params)? {
            Some(row) => project(row),
            None => {
                let expected = expected_version.unwrap_or(0);
                Err(version_conflict(&what(&input.id), expected, stored_version(&input.id)?))
            }
        }
    }

    fn delete(id: String, expected_version: Option<u64>) -> Result<()> {
        validate_id("project id", &id)?;
        match expected_version {
            None => {
                Db::Pool.execute("DELETE FROM {s}.projects WHERE id = $1", &[text(id)])?;
                Ok(())
            }
            // Expecting version 0 is expecting no project: nothing to delete, or a conflict.
            Some(0) => match stored_version(&id)? {
                0 => Ok(()),
                stored => Err(version_conflict(&what(&id), 0, stored)),
            },
            Some(v) => match Db::Pool.execute("DELETE FROM {s}.projects WHERE id = $1 AND version = $2", &[text(id.as_str()), int(v)])? {
                0 => Err(version_conflict(&what(&id), v, stored_version(&id)?)),
                _ => Ok(()),
            },
        }
    }
}

impl project_artifacts::Guest for Postgres {
    fn add(project_id: String, artifact: ProjectArtifact) -> Result<()> {
        validate_id("project id", &project_id)?;
        if artifact.name.is_empty() {
            return Err(StoreError::Invalid("project artifact name is empty".into()));
        }
        Db::Pool.execute(
            "INSERT INTO {s}.project_artifacts (project_id, name, artifact_key, size, kind, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (project_id, name) DO UPDATE SET artifact_key = excluded.artifact_key, size = excluded.size,
                 kind = excluded.kind, created_at = excluded.created_at",
            &[text(project_id), text(artifact.name), text(artifact.artifact_key), int(artifact.size), text(artifact.kind), ts(artifact.created_at)],
        )?;
        Ok(())
    }

    fn list(project_id: String) -> Result<Vec<ProjectArtifact>> {
        validate_id("project id", &project_id)?;
        let rows = Db::Pool.query(
            "SELECT name, artifact_key, size, kind, created_at FROM {s}.project_artifacts WHERE project_id = $1 ORDER BY name",
            &[text(project_id)],
        )?;
        rows.into_iter()
            .map(|r| {
                let r = Row(r);
                Ok(ProjectArtifact { name: r.text(0)?, artifact_key: r.text(1)?, size: r.u64(2)?, kind: r.text(3)?, created_at: r.ts(4)? })
            })
            .collect()
    }
}

//! `/v1/projects`: project state (optimistic concurrency by version) and artifact records.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, Shared, expected_version, now_ms, store};
use crate::domain::{Project, ProjectArtifact, ProjectInput};

pub fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route("/v1/projects", get(list))
        .route("/v1/projects/{id}", get(get_project).put(save).delete(delete))
        .route("/v1/projects/{id}/artifacts", get(list_artifacts).post(add_artifact))
}

/// A project as JSON: `state` is the stored JSON itself, not a string holding it.
#[derive(Serialize)]
struct ProjectView {
    id: String,
    name: String,
    state: serde_json::Value,
    version: u64,
    created_at: u64,
    updated_at: u64,
}

impl From<Project> for ProjectView {
    fn from(p: Project) -> Self {
        let state = serde_json::from_str(&p.state).unwrap_or(serde_json::Value::String(p.state));
        Self { id: p.id, name: p.name, state, version: p.version, created_at: p.created_at, updated_at: p.updated_at }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    cursor: Option<String>,
    #[serde(default)]
    limit: u32,
}

async fn list(State(state): State<Shared>, query: Result<Query<Page>, QueryRejection>) -> ApiResult<Json<serde_json::Value>> {
    let Query(q) = query?;
    let page = store!(state, project, "project").list(&state.ctx(), q.cursor.as_deref(), q.limit).await?;
    let items: Vec<ProjectView> = page.items.into_iter().map(Into::into).collect();
    Ok(Json(serde_json::json!({ "items": items, "next_cursor": page.next_cursor })))
}

async fn get_project(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<ProjectView>> {
    Ok(Json(store!(state, project, "project").get(&state.ctx(), &id).await?.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    name: String,
    #[serde(default)]
    state: serde_json::Value,
    expected_version: Option<u64>,
}

async fn save(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<SaveBody>, JsonRejection>,
) -> ApiResult<Json<ProjectView>> {
    let Json(body) = body?;
    let expected = expected_version(&headers, body.expected_version)?;
    let input = ProjectInput { id, name: body.name, state: body.state.to_string() };
    Ok(Json(store!(state, project, "project").save(&state.ctx(), input, expected).await?.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    expected_version: Option<u64>,
}

async fn delete(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> ApiResult<StatusCode> {
    let Query(q) = query?;
    let expected = expected_version(&headers, q.expected_version)?;
    store!(state, project, "project").delete(&state.ctx(), &id, expected).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArtifactBody {
    name: String,
    artifact_key: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    kind: String,
    created_at: Option<u64>,
}

async fn add_artifact(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Json<ArtifactBody>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let Json(b) = body?;
    if b.name.is_empty() {
        return Err(ApiError::invalid("name must not be empty"));
    }
    let record = ProjectArtifact { name: b.name, artifact_key: b.artifact_key, size: b.size, kind: b.kind, created_at: b.created_at.unwrap_or_else(now_ms) };
    store!(state, project_artifacts, "project").add(&state.ctx(), &id, record).await?;
    Ok(StatusCode::CREATED)
}

async fn list_artifacts(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Vec<ProjectArtifact>>> {
    Ok(Json(store!(state, project_artifacts, "project").list(&state.ctx(), &id).await?))
}

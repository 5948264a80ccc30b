//! `/v1/projects`: project state (optimistic concurrency by version) and artifact records.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::extract::{ApiJson, ApiPath, ApiQuery, NoQuery, Store, VersionQuery};
use super::{ApiError, ApiResult, Shared, expected_version, now_ms, version_etag};
use crate::base::Ctx;
use crate::domain::{Project, ProjectArtifact, ProjectArtifactStore, ProjectInput, ProjectStore, validate_id};

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

async fn list(Store(projects): Store<dyn ProjectStore>, ctx: Ctx, ApiQuery(q): ApiQuery<Page>) -> ApiResult<Json<serde_json::Value>> {
    let page = projects.list(&ctx, q.cursor.as_deref(), q.limit).await?;
    let items: Vec<ProjectView> = page.items.into_iter().map(Into::into).collect();
    Ok(Json(serde_json::json!({ "items": items, "next_cursor": page.next_cursor })))
}

/// The project id of a path, checked by the contract's rules.
fn project_id(id: String) -> ApiResult<String> {
    validate_id("project id", &id)?;
    Ok(id)
}

/// A project with its version as the `ETag`.
fn project_response(project: Project) -> Response {
    (version_etag(project.version), Json(ProjectView::from(project))).into_response()
}

async fn get_project(Store(projects): Store<dyn ProjectStore>, ctx: Ctx, ApiPath(id): ApiPath<String>, _: NoQuery) -> ApiResult<Response> {
    Ok(project_response(projects.get(&ctx, &project_id(id)?).await?))
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
    Store(projects): Store<dyn ProjectStore>,
    ctx: Ctx,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<VersionQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SaveBody>,
) -> ApiResult<Response> {
    let expected = expected_version(&headers, q.expected_version, body.expected_version)?;
    let input = ProjectInput { id: project_id(id)?, name: body.name, state: body.state.to_string() };
    Ok(project_response(projects.save(&ctx, input, expected).await?))
}

async fn delete(
    Store(projects): Store<dyn ProjectStore>,
    ctx: Ctx,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> ApiResult<StatusCode> {
    let expected = expected_version(&headers, q.expected_version, None)?;
    projects.delete(&ctx, &project_id(id)?, expected).await?;
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
    Store(records): Store<dyn ProjectArtifactStore>,
    ctx: Ctx,
    ApiPath(id): ApiPath<String>,
    _: NoQuery,
    ApiJson(b): ApiJson<ArtifactBody>,
) -> ApiResult<StatusCode> {
    let id = project_id(id)?;
    if b.name.is_empty() {
        return Err(ApiError::invalid("name must not be empty"));
    }
    let record =
        ProjectArtifact { name: b.name, artifact_key: b.artifact_key, size: b.size, kind: b.kind, created_at: b.created_at.unwrap_or_else(now_ms) };
    records.add(&ctx, &id, record).await?;
    Ok(StatusCode::CREATED)
}

async fn list_artifacts(
    Store(records): Store<dyn ProjectArtifactStore>,
    ctx: Ctx,
    ApiPath(id): ApiPath<String>,
    _: NoQuery,
) -> ApiResult<Json<Vec<ProjectArtifact>>> {
    Ok(Json(records.list(&ctx, &project_id(id)?).await?))
}

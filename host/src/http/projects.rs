//! `/v1/projects`: project state (optimistic concurrency by version) and artifact records.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::{ApiJson, ApiPath, ApiQuery, NoQuery, Store, VersionHeaders, VersionQuery};
use super::{ApiError, ApiResult, Shared, expected_version, now_ms, page_limit, version_etag};
use crate::base::Ctx;
use crate::domain::{Project, ProjectArtifact, ProjectArtifactStore, ProjectInput, ProjectStore, validate_id};

pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(get_project, save, delete)).routes(routes!(list_artifacts, add_artifact))
}

/// A project as JSON: `state` is the stored JSON itself, not a string holding it.
#[derive(Serialize, ToSchema)]
#[schema(as = Project)]
struct ProjectView {
    id: String,
    name: String,
    /// Any JSON value.
    state: serde_json::Value,
    /// Counts the saves; a conditional write sends the one it read.
    version: u64,
    /// Unix milliseconds.
    created_at: u64,
    /// Unix milliseconds.
    updated_at: u64,
}

/// A page of projects, in byte order of their ids.
#[derive(Serialize, ToSchema)]
struct ProjectList {
    items: Vec<ProjectView>,
    /// Where the next page starts; `null` on the last page.
    next_cursor: Option<String>,
}

impl From<Project> for ProjectView {
    fn from(p: Project) -> Self {
        let state = serde_json::from_str(&p.state).unwrap_or(serde_json::Value::String(p.state));
        Self { id: p.id, name: p.name, state, version: p.version, created_at: p.created_at, updated_at: p.updated_at }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct Page {
    /// Where the previous page ended (its `next_cursor`).
    cursor: Option<String>,
    /// The most items in the page: 1 to 1000, or 0 for the default (100).
    #[serde(default)]
    #[param(maximum = 1000)]
    limit: u32,
}

#[utoipa::path(
    get,
    path = "/v1/projects",
    tag = "projects",
    operation_id = "list_projects",
    summary = "List projects, in byte order of their ids",
    params(Page),
    responses((status = 200, description = "A page of projects", body = ProjectList))
)]
async fn list(Store(projects): Store<dyn ProjectStore>, ctx: Ctx, ApiQuery(q): ApiQuery<Page>) -> ApiResult<Json<ProjectList>> {
    let page = projects.list(&ctx, q.cursor.as_deref(), page_limit(q.limit)?).await?;
    Ok(Json(ProjectList { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor }))
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

#[utoipa::path(
    get,
    path = "/v1/projects/{id}",
    tag = "projects",
    operation_id = "get_project",
    summary = "Read a project",
    params(("id" = String, Path, description = "The project's id")),
    responses((status = 200, description = "The project", body = ProjectView, headers(("ETag" = String, description = "`\"<version>\"`, for `If-Match`"))))
)]
async fn get_project(Store(projects): Store<dyn ProjectStore>, ctx: Ctx, ApiPath(id): ApiPath<String>, _: NoQuery) -> ApiResult<Response> {
    Ok(project_response(projects.get(&ctx, &project_id(id)?).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    name: String,
    /// Any JSON value (`null` if not given).
    #[serde(default)]
    state: serde_json::Value,
    /// Write only if the stored version is this one (0: only if the project does not exist).
    expected_version: Option<u64>,
}

#[utoipa::path(
    put,
    path = "/v1/projects/{id}",
    tag = "projects",
    operation_id = "save_project",
    summary = "Create or replace a project; with an expected version (query, body or `If-Match`), only if it is still that one",
    params(("id" = String, Path, description = "The project's id"), VersionQuery, VersionHeaders),
    request_body = SaveBody,
    responses(
        (status = 200, description = "The project as saved", body = ProjectView, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 409, description = "The stored version is not the expected one", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    delete,
    path = "/v1/projects/{id}",
    tag = "projects",
    operation_id = "delete_project",
    summary = "Delete a project; with an expected version, only if it is still that one",
    params(("id" = String, Path, description = "The project's id"), VersionQuery, VersionHeaders),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "The stored version is not the expected one", body = ErrorBody),
    )
)]
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

/// An artifact record of a project.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ArtifactBody {
    /// Not empty; unique within the project.
    #[schema(min_length = 1)]
    name: String,
    artifact_key: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    kind: String,
    /// Unix milliseconds; now if not given.
    created_at: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/v1/projects/{id}/artifacts",
    tag = "projects",
    operation_id = "add_project_artifact",
    summary = "Record an artifact in a project (404 if the project does not exist)",
    params(("id" = String, Path, description = "The project's id")),
    request_body = ArtifactBody,
    responses(
        (status = 201, description = "Recorded"),
        (status = 409, description = "The project has a record of that name", body = ErrorBody),
    )
)]
async fn add_artifact(
    Store(projects): Store<dyn ProjectStore>,
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
    projects.get(&ctx, &id).await?;
    let record =
        ProjectArtifact { name: b.name, artifact_key: b.artifact_key, size: b.size, kind: b.kind, created_at: b.created_at.unwrap_or_else(now_ms) };
    records.add(&ctx, &id, record).await?;
    Ok(StatusCode::CREATED)
}

#[utoipa::path(
    get,
    path = "/v1/projects/{id}/artifacts",
    tag = "projects",
    operation_id = "list_project_artifacts",
    summary = "A project's artifact records (404 if the project does not exist)",
    params(("id" = String, Path, description = "The project's id")),
    responses((status = 200, description = "The records", body = Vec<ProjectArtifact>))
)]
async fn list_artifacts(
    Store(projects): Store<dyn ProjectStore>,
    Store(records): Store<dyn ProjectArtifactStore>,
    ctx: Ctx,
    ApiPath(id): ApiPath<String>,
    _: NoQuery,
) -> ApiResult<Json<Vec<ProjectArtifact>>> {
    let id = project_id(id)?;
    let (project, listed) = tokio::join!(projects.get(&ctx, &id), records.list(&ctx, &id));
    project?;
    Ok(Json(listed?))
}

//! `/v1/workspaces`: workspaces and their tabs.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::{ApiJson, ApiPath, NoQuery, Store};
use super::{ApiResult, Shared, version_etag};
use crate::base::Ctx;
use crate::domain::{Tab, TabInput, Workspace, WorkspaceInput, WorkspaceStore, validate_id};

pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(get_workspace, create))
        .routes(routes!(list_tabs, create_tab))
        .routes(routes!(get_tab))
        .routes(routes!(select_tab))
        .routes(routes!(update_tab_run))
}

type Workspaces = Store<dyn WorkspaceStore>;

/// A workspace id of a path, checked by the contract's rules.
fn workspace_id(id: String) -> ApiResult<String> {
    validate_id("workspace id", &id)?;
    Ok(id)
}

/// A workspace id and a tab id of a path, checked by the contract's rules.
fn tab_ids((id, tab): (String, String)) -> ApiResult<(String, String)> {
    validate_id("tab id", &tab)?;
    Ok((workspace_id(id)?, tab))
}

/// A workspace with its version as the `ETag`.
fn workspace_response(status: StatusCode, workspace: Workspace) -> Response {
    (status, version_etag(workspace.version), Json(workspace)).into_response()
}

#[utoipa::path(
    get,
    path = "/v1/workspaces/{id}",
    tag = "workspaces",
    operation_id = "get_workspace",
    summary = "Read a workspace",
    params(("id" = String, Path, description = "The workspace's id")),
    responses((status = 200, description = "The workspace", body = Workspace, headers(("ETag" = String, description = "`\"<version>\"`"))))
)]
async fn get_workspace(Store(workspaces): Workspaces, ctx: Ctx, ApiPath(id): ApiPath<String>, _: NoQuery) -> ApiResult<Response> {
    Ok(workspace_response(StatusCode::OK, workspaces.get(&ctx, &workspace_id(id)?).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    project_id: String,
    name: String,
}

#[utoipa::path(
    put,
    path = "/v1/workspaces/{id}",
    tag = "workspaces",
    operation_id = "create_workspace",
    summary = "Create a workspace",
    params(("id" = String, Path, description = "The workspace's id")),
    request_body = CreateBody,
    responses(
        (status = 201, description = "The workspace", body = Workspace, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 409, description = "A workspace of that id exists", body = ErrorBody),
    )
)]
async fn create(
    Store(workspaces): Workspaces,
    ctx: Ctx,
    ApiPath(id): ApiPath<String>,
    _: NoQuery,
    ApiJson(b): ApiJson<CreateBody>,
) -> ApiResult<Response> {
    let ws = workspaces.create(&ctx, WorkspaceInput { id: workspace_id(id)?, project_id: b.project_id, name: b.name }).await?;
    Ok(workspace_response(StatusCode::CREATED, ws))
}

#[utoipa::path(
    get,
    path = "/v1/workspaces/{id}/tabs",
    tag = "workspaces",
    operation_id = "list_tabs",
    summary = "A workspace's tabs, in their order",
    params(("id" = String, Path, description = "The workspace's id")),
    responses((status = 200, description = "The tabs", body = Vec<Tab>))
)]
async fn list_tabs(Store(workspaces): Workspaces, ctx: Ctx, ApiPath(id): ApiPath<String>, _: NoQuery) -> ApiResult<Json<Vec<Tab>>> {
    Ok(Json(workspaces.list_tabs(&ctx, &workspace_id(id)?).await?))
}

#[utoipa::path(
    post,
    path = "/v1/workspaces/{id}/tabs",
    tag = "workspaces",
    operation_id = "create_tab",
    summary = "Add a tab to a workspace, at its end",
    params(("id" = String, Path, description = "The workspace's id")),
    request_body = TabInput,
    responses(
        (status = 201, description = "The tab", body = Tab),
        (status = 409, description = "The workspace has a tab of that id", body = ErrorBody),
    )
)]
async fn create_tab(
    Store(workspaces): Workspaces,
    ctx: Ctx,
    ApiPath(id): ApiPath<String>,
    _: NoQuery,
    ApiJson(input): ApiJson<TabInput>,
) -> ApiResult<(StatusCode, Json<Tab>)> {
    Ok((StatusCode::CREATED, Json(workspaces.create_tab(&ctx, &workspace_id(id)?, input).await?)))
}

#[utoipa::path(
    get,
    path = "/v1/workspaces/{id}/tabs/{tab}",
    tag = "workspaces",
    operation_id = "get_tab",
    summary = "Read a tab",
    params(("id" = String, Path, description = "The workspace's id"), ("tab" = String, Path, description = "The tab's id")),
    responses((status = 200, description = "The tab", body = Tab))
)]
async fn get_tab(Store(workspaces): Workspaces, ctx: Ctx, ApiPath(ids): ApiPath<(String, String)>, _: NoQuery) -> ApiResult<Json<Tab>> {
    let (id, tab) = tab_ids(ids)?;
    Ok(Json(workspaces.get_tab(&ctx, &id, &tab).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SelectBody {
    #[schema(schema_with = crate::domain::id_schema)]
    tab_id: String,
}

#[utoipa::path(
    put,
    path = "/v1/workspaces/{id}/selected-tab",
    tag = "workspaces",
    operation_id = "select_tab",
    summary = "Select one of a workspace's tabs",
    params(("id" = String, Path, description = "The workspace's id")),
    request_body = SelectBody,
    responses((status = 200, description = "The workspace", body = Workspace, headers(("ETag" = String, description = "`\"<version>\"`"))))
)]
async fn select_tab(
    Store(workspaces): Workspaces,
    ctx: Ctx,
    ApiPath(id): ApiPath<String>,
    _: NoQuery,
    ApiJson(b): ApiJson<SelectBody>,
) -> ApiResult<Response> {
    Ok(workspace_response(StatusCode::OK, workspaces.select_tab(&ctx, &workspace_id(id)?, &b.tab_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RunBody {
    /// The run the tab shows; `null` for none.
    run_id: Option<String>,
}

#[utoipa::path(
    put,
    path = "/v1/workspaces/{id}/tabs/{tab}/run",
    tag = "workspaces",
    operation_id = "update_tab_run",
    summary = "Set the run a tab shows",
    params(("id" = String, Path, description = "The workspace's id"), ("tab" = String, Path, description = "The tab's id")),
    request_body = RunBody,
    responses((status = 200, description = "The tab", body = Tab))
)]
async fn update_tab_run(
    Store(workspaces): Workspaces,
    ctx: Ctx,
    ApiPath(ids): ApiPath<(String, String)>,
    _: NoQuery,
    ApiJson(b): ApiJson<RunBody>,
) -> ApiResult<Json<Tab>> {
    let (id, tab) = tab_ids(ids)?;
    Ok(Json(workspaces.update_tab_run(&ctx, &id, &tab, b.run_id).await?))
}

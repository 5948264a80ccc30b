//! `/v1/workspaces`: workspaces and their tabs.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;

use super::extract::{ApiJson, ApiPath, NoQuery, Store};
use super::{ApiResult, Shared, version_etag};
use crate::base::Ctx;
use crate::domain::{Tab, TabInput, Workspace, WorkspaceInput, WorkspaceStore, validate_id};

pub fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route("/v1/workspaces/{id}", get(get_workspace).put(create))
        .route("/v1/workspaces/{id}/tabs", get(list_tabs).post(create_tab))
        .route("/v1/workspaces/{id}/tabs/{tab}", get(get_tab))
        .route("/v1/workspaces/{id}/selected-tab", put(select_tab))
        .route("/v1/workspaces/{id}/tabs/{tab}/run", put(update_tab_run))
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

async fn get_workspace(Store(workspaces): Workspaces, ctx: Ctx, ApiPath(id): ApiPath<String>, _: NoQuery) -> ApiResult<Response> {
    Ok(workspace_response(StatusCode::OK, workspaces.get(&ctx, &workspace_id(id)?).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    project_id: String,
    name: String,
}

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

async fn list_tabs(Store(workspaces): Workspaces, ctx: Ctx, ApiPath(id): ApiPath<String>, _: NoQuery) -> ApiResult<Json<Vec<Tab>>> {
    Ok(Json(workspaces.list_tabs(&ctx, &workspace_id(id)?).await?))
}

async fn create_tab(
    Store(workspaces): Workspaces,
    ctx: Ctx,
    ApiPath(id): ApiPath<String>,
    _: NoQuery,
    ApiJson(input): ApiJson<TabInput>,
) -> ApiResult<(StatusCode, Json<Tab>)> {
    Ok((StatusCode::CREATED, Json(workspaces.create_tab(&ctx, &workspace_id(id)?, input).await?)))
}

async fn get_tab(Store(workspaces): Workspaces, ctx: Ctx, ApiPath(ids): ApiPath<(String, String)>, _: NoQuery) -> ApiResult<Json<Tab>> {
    let (id, tab) = tab_ids(ids)?;
    Ok(Json(workspaces.get_tab(&ctx, &id, &tab).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectBody {
    tab_id: String,
}

async fn select_tab(
    Store(workspaces): Workspaces,
    ctx: Ctx,
    ApiPath(id): ApiPath<String>,
    _: NoQuery,
    ApiJson(b): ApiJson<SelectBody>,
) -> ApiResult<Response> {
    Ok(workspace_response(StatusCode::OK, workspaces.select_tab(&ctx, &workspace_id(id)?, &b.tab_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    run_id: Option<String>,
}

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

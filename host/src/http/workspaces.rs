//! `/v1/workspaces`: workspaces and their tabs.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use serde::Deserialize;

use super::{ApiResult, Shared, store};
use crate::domain::{Tab, TabInput, Workspace, WorkspaceInput};

pub fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route("/v1/workspaces/{id}", get(get_workspace).put(create))
        .route("/v1/workspaces/{id}/tabs", get(list_tabs).post(create_tab))
        .route("/v1/workspaces/{id}/tabs/{tab}", get(get_tab))
        .route("/v1/workspaces/{id}/selected-tab", put(select_tab))
        .route("/v1/workspaces/{id}/tabs/{tab}/run", put(update_tab_run))
}

async fn get_workspace(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Workspace>> {
    Ok(Json(store!(state, workspace, "workspace").get(&state.ctx(), &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    project_id: String,
    name: String,
}

async fn create(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    let Json(b) = body?;
    let ws = store!(state, workspace, "workspace").create(&state.ctx(), WorkspaceInput { id, project_id: b.project_id, name: b.name }).await?;
    Ok((StatusCode::CREATED, Json(ws)))
}

async fn list_tabs(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Vec<Tab>>> {
    Ok(Json(store!(state, workspace, "workspace").list_tabs(&state.ctx(), &id).await?))
}

async fn create_tab(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Json<TabInput>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Tab>)> {
    let Json(input) = body?;
    Ok((StatusCode::CREATED, Json(store!(state, workspace, "workspace").create_tab(&state.ctx(), &id, input).await?)))
}

async fn get_tab(State(state): State<Shared>, Path((id, tab)): Path<(String, String)>) -> ApiResult<Json<Tab>> {
    Ok(Json(store!(state, workspace, "workspace").get_tab(&state.ctx(), &id, &tab).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectBody {
    tab_id: String,
}

async fn select_tab(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Result<Json<SelectBody>, JsonRejection>,
) -> ApiResult<Json<Workspace>> {
    let Json(b) = body?;
    Ok(Json(store!(state, workspace, "workspace").select_tab(&state.ctx(), &id, &b.tab_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    run_id: Option<String>,
}

async fn update_tab_run(
    State(state): State<Shared>,
    Path((id, tab)): Path<(String, String)>,
    body: Result<Json<RunBody>, JsonRejection>,
) -> ApiResult<Json<Tab>> {
    let Json(b) = body?;
    Ok(Json(store!(state, workspace, "workspace").update_tab_run(&state.ctx(), &id, &tab, b.run_id).await?))
}

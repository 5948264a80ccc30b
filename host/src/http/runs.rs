//! `/v1/runs/{run}/artifacts`: the runner's files, raw bytes.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{ApiResult, Shared, store};
use crate::domain::validate_key;

pub fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route("/v1/runs/{run}/artifacts", get(list))
        .route("/v1/runs/{run}/artifacts/{*name}", get(read).put(write).delete(remove))
}

async fn read(State(state): State<Shared>, Path((run, name)): Path<(String, String)>) -> ApiResult<Response> {
    validate_key(&name)?;
    let data = store!(state, runner, "runner").read(&state.ctx(), &run, &name).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], Body::from(data)).into_response())
}

async fn write(
    State(state): State<Shared>,
    Path((run, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<StatusCode> {
    validate_key(&name)?;
    let body = body?;
    store!(state, runner, "runner").write(&state.ctx(), &run, &name, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(State(state): State<Shared>, Path((run, name)): Path<(String, String)>) -> ApiResult<StatusCode> {
    validate_key(&name)?;
    store!(state, runner, "runner").remove(&state.ctx(), &run, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
}

async fn list(
    State(state): State<Shared>,
    Path(run): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<String>>> {
    let Query(q) = query?;
    Ok(Json(store!(state, runner, "runner").list(&state.ctx(), &run, &q.prefix).await?))
}

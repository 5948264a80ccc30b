//! `/v1/runs/{run}/artifacts`: the runner's files, raw bytes.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::extract::{ApiPath, ApiQuery, NoQuery, Store};
use super::{ApiResult, Shared};
use crate::base::Ctx;
use crate::domain::{RunnerStore, validate_key, validate_run};

type Runs = Store<dyn RunnerStore>;

/// A run and a file name of a path, checked by the contract's rules.
fn run_file((run, name): (String, String)) -> ApiResult<(String, String)> {
    validate_run(&run)?;
    validate_key(&name)?;
    Ok((run, name))
}

pub fn routes() -> axum::Router<Shared> {
    axum::Router::new().route("/v1/runs/{run}/artifacts", get(list)).route("/v1/runs/{run}/artifacts/{*name}", get(read).put(write).delete(remove))
}

async fn read(Store(runs): Runs, ctx: Ctx, ApiPath(path): ApiPath<(String, String)>, _: NoQuery) -> ApiResult<Response> {
    let (run, name) = run_file(path)?;
    let data = runs.read(&ctx, &run, &name).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], Body::from(data)).into_response())
}

async fn write(
    Store(runs): Runs,
    ctx: Ctx,
    ApiPath(path): ApiPath<(String, String)>,
    _: NoQuery,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<StatusCode> {
    let (run, name) = run_file(path)?;
    let body = body?;
    runs.write(&ctx, &run, &name, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(Store(runs): Runs, ctx: Ctx, ApiPath(path): ApiPath<(String, String)>, _: NoQuery) -> ApiResult<StatusCode> {
    let (run, name) = run_file(path)?;
    runs.remove(&ctx, &run, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
}

async fn list(Store(runs): Runs, ctx: Ctx, ApiPath(run): ApiPath<String>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Vec<String>>> {
    validate_run(&run)?;
    Ok(Json(runs.list(&ctx, &run, &q.prefix).await?))
}

//! `/v1/runs/{run}/artifacts`: the runner's files, raw bytes.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::artifacts::ReadHeaders;
use super::body;
use super::error::ErrorBody;
use super::extract::{ApiPath, ApiQuery, NoQuery, Store};
use super::{ApiResult, Shared};
use crate::base::{Ctx, Domain};
use crate::domain::{ByteRange, RunnerStore, validate_key, validate_run};

type Runs = Store<dyn RunnerStore>;

/// A run and a file name of a path, checked by the contract's rules.
fn run_file((run, name): (String, String)) -> ApiResult<(String, String)> {
    validate_run(&run)?;
    validate_key(&name)?;
    Ok((run, name))
}

pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(read, write, remove))
}

/// A run's file: 200 whole, 206 for a `Range`, 416 outside it; streamed to the client.
#[utoipa::path(
    get,
    path = "/v1/runs/{run}/artifacts/{*name}",
    tag = "runs",
    operation_id = "read_run_file",
    summary = "Read a run's file, whole or one range of it",
    params(("run" = String, Path, description = "The run"), ("name" = String, Path, description = "The file's name"), ReadHeaders),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = [u8], headers(("Accept-Ranges" = String, description = "`bytes`"))),
        (status = 206, description = "The range asked for", content_type = "application/octet-stream", body = [u8], headers(("Content-Range" = String, description = "`bytes first-last/size`"))),
        (status = 416, description = "The range is outside the file", body = ErrorBody),
    )
)]
async fn read(
    State(state): State<Shared>,
    Store(runs): Runs,
    ctx: Ctx,
    ApiPath(path): ApiPath<(String, String)>,
    _: NoQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (run, name) = run_file(path)?;
    let spec = body::requested(&headers);
    let range = match spec {
        None => ByteRange::ALL,
        Some(spec) => match spec.byte_range() {
            Some(range) => range,
            // A suffix: the size first (what a stream's opening reports).
            None => {
                let size = runs.open_read(&ctx, &run, &name, ByteRange::new(0, Some(0))).await?.size;
                spec.resolve(size).map_or(ByteRange::new(size, Some(0)), |r| ByteRange::new(r.start, Some(r.end - r.start)))
            }
        },
    };
    let reader = runs.open_read(&ctx, &run, &name, range).await?;
    let mut out = HeaderMap::new();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(reader.size));
    body::accept_ranges(&mut out);
    let len = reader.range.end - reader.range.start;
    let file = || format!("{run}/{name}");
    let Some(spec) = spec else {
        let body = body::primed(&state, Domain::Runner, file, len, reader.body).await?;
        return Ok((out, body).into_response());
    };
    let Some(range) = spec.resolve(reader.size) else { return Err(body::unsatisfiable(reader.size)) };
    let status = body::partial(&mut out, &range, reader.size);
    let body = body::primed(&state, Domain::Runner, file, len, reader.body).await?;
    Ok((status, out, body).into_response())
}

/// Streams the file into the store; a cut upload leaves nothing.
#[utoipa::path(
    put,
    path = "/v1/runs/{run}/artifacts/{*name}",
    tag = "runs",
    operation_id = "write_run_file",
    summary = "Write a run's file (replacing it)",
    params(("run" = String, Path, description = "The run"), ("name" = String, Path, description = "The file's name")),
    request_body(content = [u8], content_type = "application/octet-stream", description = "The file, streamed"),
    responses((status = 204, description = "Written"))
)]
async fn write(
    State(state): State<Shared>,
    Store(runs): Runs,
    ctx: Ctx,
    ApiPath(path): ApiPath<(String, String)>,
    _: NoQuery,
    headers: HeaderMap,
    request: Body,
) -> ApiResult<StatusCode> {
    let (run, name) = run_file(path)?;
    let sink = runs.open_write(&ctx, &run, &name, body::declared_length(&headers)).await?;
    let limit = state.limits.max_body(Some(Domain::Runner));
    body::upload(&ctx, request, sink, limit, state.limits.request_timeout).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/v1/runs/{run}/artifacts/{*name}",
    tag = "runs",
    operation_id = "remove_run_file",
    summary = "Remove a run's file",
    params(("run" = String, Path, description = "The run"), ("name" = String, Path, description = "The file's name")),
    responses((status = 204, description = "Removed"))
)]
async fn remove(Store(runs): Runs, ctx: Ctx, ApiPath(path): ApiPath<(String, String)>, _: NoQuery) -> ApiResult<StatusCode> {
    let (run, name) = run_file(path)?;
    runs.remove(&ctx, &run, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only names that start with this.
    #[serde(default)]
    prefix: String,
}

#[utoipa::path(
    get,
    path = "/v1/runs/{run}/artifacts",
    tag = "runs",
    operation_id = "list_run_files",
    summary = "The names of a run's files, in byte order",
    params(("run" = String, Path, description = "The run"), ListQuery),
    responses((status = 200, description = "The names", body = Vec<String>))
)]

async fn list(Store(runs): Runs, ctx: Ctx, ApiPath(run): ApiPath<String>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Vec<String>>> {
    validate_run(&run)?;
    Ok(Json(runs.list(&ctx, &run, &q.prefix).await?))
}

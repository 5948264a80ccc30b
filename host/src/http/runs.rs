//! `/v1/runs/{run}/artifacts`: the runner's files, raw bytes.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::body;
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

pub fn routes() -> axum::Router<Shared> {
    axum::Router::new().route("/v1/runs/{run}/artifacts", get(list)).route("/v1/runs/{run}/artifacts/{*name}", get(read).put(write).delete(remove))
}

/// A run's file: 200 whole, 206 for a `Range`, 416 outside it; streamed to the client.
async fn read(Store(runs): Runs, ctx: Ctx, ApiPath(path): ApiPath<(String, String)>, _: NoQuery, headers: HeaderMap) -> ApiResult<Response> {
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
    let Some(spec) = spec else { return Ok((out, Body::from_stream(reader.body)).into_response()) };
    let Some(range) = spec.resolve(reader.size) else { return Err(body::unsatisfiable(reader.size)) };
    let status = body::partial(&mut out, &range, reader.size);
    Ok((status, out, Body::from_stream(reader.body)).into_response())
}

/// Streams the file into the store; a cut upload leaves nothing.
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

//! `/v1/artifacts`, `/v1/artifact-urls` and the host-signed `/v1/signed` URLs.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::body::{self, RangeSpec};
use super::extract::{ApiPath, ApiQuery, NoQuery, Store};
use super::{ApiError, ApiResult, Shared, encode_path};
use crate::base::{Ctx, Domain, StoreError};
use crate::domain::{ArtifactMeta, ArtifactReader, ArtifactStore, ByteRange, Served, validate_key};

pub fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route("/v1/artifacts", get(list))
        .route("/v1/artifacts/{*key}", get(get_artifact).head(head_artifact).put(put_artifact).delete(delete_artifact))
        .route("/v1/artifact-urls/{*key}", get(artifact_url))
}

/// Routes that carry their own authorization (a signature).
pub fn public_routes() -> axum::Router<Shared> {
    axum::Router::new().route("/v1/signed/{*key}", get(signed))
}

fn key_of(key: &str) -> ApiResult<&str> {
    validate_key(key)?;
    Ok(key)
}

fn etag(meta: &ArtifactMeta) -> String {
    format!("\"{}\"", meta.sha256)
}

fn meta_headers(meta: &ArtifactMeta, cache: Option<&'static str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let content_type = meta.content_type.as_deref().unwrap_or("application/octet-stream");
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")));
    headers.insert(header::ETAG, HeaderValue::from_str(&etag(meta)).expect("hex is a valid header"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    if let Some(cache) = cache {
        headers.insert("x-cache", HeaderValue::from_static(cache));
    }
    headers
}

fn not_modified(request: &HeaderMap, meta: &ArtifactMeta) -> bool {
    let Some(value) = request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else { return false };
    let tag = etag(meta);
    value.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == tag)
}

/// Whether a request's `If-Range` (if any) names this body's ETag. A date there never holds:
/// artifacts are compared by content.
fn if_range_holds(request: &HeaderMap, meta: &ArtifactMeta) -> bool {
    request.get(header::IF_RANGE).and_then(|v| v.to_str().ok()).is_none_or(|value| value.trim() == etag(meta))
}

/// `X-Cache`, with a cache in front of the origin: whether memory answered.
fn cache_header(state: &Shared, served: Served) -> Option<&'static str> {
    state.app().caches.is_cached(Domain::Artifact).then_some(if served == Served::Memory { "hit" } else { "miss" })
}

/// Reads what a `GET` asks for: the whole artifact, or the range of its `Range` header. A
/// suffix range needs the size first; if the artifact changed between that `head` and the
/// read, the range is worked out again on the new size.
async fn read_requested(artifacts: &dyn ArtifactStore, ctx: &Ctx, key: &str, spec: Option<RangeSpec>) -> ApiResult<ArtifactReader> {
    let Some(spec) = spec else { return Ok(artifacts.open_read(ctx, key, ByteRange::ALL).await?) };
    if let Some(range) = spec.byte_range() {
        return Ok(artifacts.open_read(ctx, key, range).await?);
    }
    let mut size = artifacts.head(ctx, key).await?.size;
    for _ in 0..2 {
        let range = spec.resolve(size).map_or(ByteRange::new(size, Some(0)), |r| ByteRange::new(r.start, Some(r.end - r.start)));
        let reader = artifacts.open_read(ctx, key, range).await?;
        if reader.meta.size == size {
            return Ok(reader);
        }
        size = reader.meta.size;
    }
    Err(ApiError::from(StoreError::Unavailable(format!("{key:?} kept changing while it was read"))))
}

async fn get_artifact(
    State(state): State<Shared>,
    Store(artifacts): Store<dyn ArtifactStore>,
    ctx: Ctx,
    ApiPath(key): ApiPath<String>,
    _: NoQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve(&state, artifacts.as_ref(), &ctx, key_of(&key)?, &headers).await
}

/// The answer to a `GET` of an artifact: 200 with the body, 206 with the range asked for, 304
/// when the client has it, 416 for a range outside it. The body streams to the client.
async fn serve(state: &Shared, artifacts: &dyn ArtifactStore, ctx: &Ctx, key: &str, headers: &HeaderMap) -> ApiResult<Response> {
    let mut spec = body::requested(headers);
    let mut reader = read_requested(artifacts, ctx, key, spec).await?;
    // `If-Range`: the range only if the body is still the one the client has part of.
    if spec.is_some() && !if_range_holds(headers, &reader.meta) {
        spec = None;
        reader = artifacts.open_read(ctx, key, ByteRange::ALL).await?;
    }
    let mut out = meta_headers(&reader.meta, cache_header(state, reader.served));
    body::accept_ranges(&mut out);
    if not_modified(headers, &reader.meta) {
        out.remove(header::CONTENT_LENGTH);
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let Some(spec) = spec else { return Ok((out, Body::from_stream(reader.body)).into_response()) };
    let size = reader.meta.size;
    let Some(range) = spec.resolve(size) else { return Err(body::unsatisfiable(size)) };
    debug_assert_eq!(range, reader.range);
    let status = body::partial(&mut out, &range, size);
    Ok((status, out, Body::from_stream(reader.body)).into_response())
}

async fn head_artifact(
    Store(artifacts): Store<dyn ArtifactStore>,
    ctx: Ctx,
    ApiPath(key): ApiPath<String>,
    _: NoQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let meta = artifacts.head(&ctx, key_of(&key)?).await?;
    let mut out = meta_headers(&meta, None);
    body::accept_ranges(&mut out);
    if let Some(spec) = body::requested(&headers) {
        let Some(range) = spec.resolve(meta.size) else { return Err(body::unsatisfiable(meta.size)) };
        let status = body::partial(&mut out, &range, meta.size);
        return Ok((status, out, Body::empty()).into_response());
    }
    Ok((out, Body::empty()).into_response())
}

/// Streams the body into the store: nothing is written until the whole body has arrived, and
/// an upload cut short (a disconnect, a limit, a shutdown) leaves nothing.
async fn put_artifact(
    State(state): State<Shared>,
    Store(artifacts): Store<dyn ArtifactStore>,
    ctx: Ctx,
    ApiPath(key): ApiPath<String>,
    _: NoQuery,
    headers: HeaderMap,
    request: Body,
) -> ApiResult<Json<ArtifactMeta>> {
    let key = key_of(&key)?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(String::from);
    let sink = artifacts.open_write(&ctx, key, content_type, body::declared_length(&headers)).await?;
    let limit = state.limits.max_body(Some(Domain::Artifact));
    Ok(Json(body::upload(&ctx, request, sink, limit, state.limits.request_timeout).await?))
}

async fn delete_artifact(Store(artifacts): Store<dyn ArtifactStore>, ctx: Ctx, ApiPath(key): ApiPath<String>, _: NoQuery) -> ApiResult<StatusCode> {
    artifacts.delete(&ctx, key_of(&key)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
    cursor: Option<String>,
    #[serde(default)]
    limit: u32,
}

async fn list(Store(artifacts): Store<dyn ArtifactStore>, ctx: Ctx, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Response> {
    let page = artifacts.list(&ctx, &q.prefix, q.cursor.as_deref(), q.limit).await?;
    Ok(Json(page).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlQuery {
    expires_in: Option<u32>,
}

const MAX_URL_LIFETIME: u32 = 7 * 24 * 3600;

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

async fn artifact_url(
    State(state): State<Shared>,
    Store(artifacts): Store<dyn ArtifactStore>,
    ctx: Ctx,
    ApiPath(key): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<UrlQuery>,
) -> ApiResult<Response> {
    let key = key_of(&key)?;
    let expires_in = q.expires_in.unwrap_or(3600);
    if expires_in == 0 || expires_in > MAX_URL_LIFETIME {
        return Err(ApiError::invalid(format!("expires_in must be 1 to {MAX_URL_LIFETIME} seconds")));
    }
    let expires_at = now_secs() + u64::from(expires_in);
    let origin_url = artifacts.get_url(&ctx, key, expires_in).await?;
    let (url, signed_by) = match origin_url {
        Some(url) => (url, "origin"),
        None => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
            let sig = state.signer.sign(key, expires_at);
            (format!("http://{host}/v1/signed/{}?expires={expires_at}&sig={sig}", encode_path(key)), "host")
        }
    };
    Ok(Json(json!({ "url": url, "expires_at": expires_at, "signed_by": signed_by })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedQuery {
    expires: u64,
    sig: String,
}

async fn signed(
    State(state): State<Shared>,
    Store(artifacts): Store<dyn ArtifactStore>,
    ctx: Ctx,
    ApiPath(key): ApiPath<String>,
    headers: HeaderMap,
    query: Result<ApiQuery<SignedQuery>, ApiError>,
) -> ApiResult<Response> {
    let ApiQuery(q) = query.map_err(|_| ApiError::new(StatusCode::FORBIDDEN, "forbidden", "a signed URL needs expires and sig"))?;
    let key = key_of(&key)?;
    state
        .signer
        .verify(key, q.expires, &q.sig, now_secs())
        .map_err(|why| ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("signed URL refused: {why}")))?;
    serve(&state, artifacts.as_ref(), &ctx, key, &headers).await
}

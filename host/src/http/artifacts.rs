//! `/v1/artifacts`, `/v1/artifact-urls` and the host-signed `/v1/signed` URLs.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::extract::{ApiPath, ApiQuery, NoQuery, Store};
use super::{ApiError, ApiResult, Shared, encode_path};
use crate::base::{Ctx, Domain};
use crate::domain::{Artifact, ArtifactMeta, ArtifactStore, Served, validate_key};

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

/// The artifact's bytes as the response body: the cached `Bytes`, shared, not copied. With a
/// cache in front of the origin, `X-Cache` says whether memory answered.
fn body_response(state: &Shared, artifact: Artifact, request: &HeaderMap) -> Response {
    let cache = state.app.caches.is_cached(Domain::Artifact).then_some(if artifact.served == Served::Memory { "hit" } else { "miss" });
    let mut headers = meta_headers(&artifact.meta, cache);
    if not_modified(request, &artifact.meta) {
        headers.remove(header::CONTENT_LENGTH);
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, Body::from(artifact.body)).into_response()
}

async fn get_artifact(
    State(state): State<Shared>,
    Store(artifacts): Store<dyn ArtifactStore>,
    ctx: Ctx,
    ApiPath(key): ApiPath<String>,
    _: NoQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let artifact = artifacts.get(&ctx, key_of(&key)?).await?;
    Ok(body_response(&state, artifact, &headers))
}

async fn head_artifact(Store(artifacts): Store<dyn ArtifactStore>, ctx: Ctx, ApiPath(key): ApiPath<String>, _: NoQuery) -> ApiResult<Response> {
    let meta = artifacts.head(&ctx, key_of(&key)?).await?;
    Ok((meta_headers(&meta, None), Body::empty()).into_response())
}

async fn put_artifact(
    Store(artifacts): Store<dyn ArtifactStore>,
    ctx: Ctx,
    ApiPath(key): ApiPath<String>,
    _: NoQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ArtifactMeta>> {
    let key = key_of(&key)?;
    // The whole body is in hand before the origin sees anything: an upload cut short (a
    // disconnect, a shutdown) writes nothing.
    let body = body?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(String::from);
    Ok(Json(artifacts.put(&ctx, key, body, content_type).await?))
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
    let artifact = artifacts.get(&ctx, key).await?;
    Ok(body_response(&state, artifact, &headers))
}

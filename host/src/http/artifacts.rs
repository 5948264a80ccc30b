//! `/v1/artifacts`, `/v1/artifact-urls` and the host-signed `/v1/signed` URLs.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::{self, RangeSpec};
use super::error::ErrorBody;
use super::extract::{ApiPath, ApiQuery, NoQuery, Store};
use super::signing::{MAX_URL_LIFETIME, now_secs};
use super::{ApiError, ApiResult, Shared, encode_path, page_limit};
use crate::base::{Ctx, Domain, StoreError};
use crate::domain::{ArtifactMeta, ArtifactPage, ArtifactReader, ArtifactStore, ByteRange, Served, validate_key};

pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_artifact, head_artifact, put_artifact, delete_artifact))
        .routes(routes!(artifact_url))
}

/// Routes that carry their own authorization (a signature).
pub fn public_routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(signed))
}

fn key_of(key: &str) -> ApiResult<&str> {
    validate_key(key)?;
    Ok(key)
}

fn etag(meta: &ArtifactMeta) -> String {
    format!("\"{}\"", meta.sha256)
}

fn meta_headers(meta: &ArtifactMeta, cache: Option<&'static str>) -> HeaderMap {
    let octets = || HeaderValue::from_static("application/octet-stream");
    // Room for these, `Accept-Ranges` and a range's two, so the map is allocated once.
    let mut headers = HeaderMap::with_capacity(8);
    let content_type = meta.content_type.as_deref().map_or_else(octets, |t| HeaderValue::from_str(t).unwrap_or_else(|_| octets()));
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::ETAG, HeaderValue::from_maybe_shared(bytes::Bytes::from(etag(meta))).expect("hex is a valid header"));
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

/// `X-Cache`, with a cache in front of the origin: whether memory answered (or, with peer
/// fill, the key's owner).
fn cache_header(state: &Shared, served: Served) -> Option<&'static str> {
    state.app().caches.is_cached(Domain::Artifact).then_some(match served {
        Served::Memory => "hit",
        Served::Peer => "peer",
        Served::Origin | Served::Disk => "miss",
    })
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

/// The request headers of a read of a body.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub(super) struct ReadHeaders {
    /// One range, `bytes=first-last`, `bytes=first-` or `bytes=-suffix`; anything else asks for
    /// the whole body.
    #[param(rename = "Range", value_type = String, required = false)]
    range: Option<String>,
    /// The range only if the body's `ETag` is still this one; the whole body otherwise.
    #[param(rename = "If-Range", value_type = String, required = false)]
    if_range: Option<String>,
    /// `304 Not Modified` if the body's `ETag` is one of these (or `*`).
    #[param(rename = "If-None-Match", value_type = String, required = false)]
    if_none_match: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/artifacts/{*key}",
    tag = "artifacts",
    operation_id = "get_artifact",
    summary = "Read an artifact, whole or one range of it",
    params(("key" = String, Path, description = "The artifact's key"), ReadHeaders),
    responses(
        (status = 200, description = "The body, with the content type it was written with", content_type = "*/*", body = [u8], headers(
            ("ETag" = String, description = "`\"<sha256>\"` of the body"),
            ("Accept-Ranges" = String, description = "`bytes`"),
        )),
        (status = 206, description = "The range asked for", content_type = "*/*", body = [u8], headers(
            ("ETag" = String, description = "`\"<sha256>\"` of the whole body"),
            ("Content-Range" = String, description = "`bytes first-last/size`"),
        )),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 416, description = "The range is outside the body; `Content-Range: bytes */size`", body = ErrorBody),
    )
)]
async fn get_artifact(
    State(state): State<Shared>,
    Store(artifacts): Store<dyn ArtifactStore>,
    ctx: Ctx,
    ApiPath(key): ApiPath<String>,
    _: NoQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve(&state, artifacts.as_ref(), &ctx, &key, &headers).await
}

/// What [`hot_read`] found.
pub(super) enum Hot<'r> {
    /// The token check's answer.
    Refused(Response),
    /// The artifact store, and the key to read.
    Read(Arc<dyn ArtifactStore>, &'r str),
}

/// The hot read, `GET /v1/artifacts/{key}`, as the router would take it to [`get_artifact`]
/// (its token check, the domain's store, no query), but without the router: `None` for any
/// other request, or one the router should answer itself (a query to refuse, a key with
/// percent-escapes to decode, no artifact store to say so of).
pub(super) fn hot_read<'r>(state: &Shared, request: &'r axum::extract::Request) -> Option<Hot<'r>> {
    let uri = request.uri();
    if request.method() != axum::http::Method::GET || uri.query().is_some() {
        return None;
    }
    let key = uri.path().strip_prefix(ARTIFACTS).filter(|key| !key.is_empty() && !key.contains('%'))?;
    if let Some(refused) = super::auth::refusal(state, request.method(), uri.path(), request.headers()) {
        return Some(Hot::Refused(refused));
    }
    let store = state.app().stores.artifact.clone()?;
    Some(Hot::Read(store, key))
}

/// The path under which artifacts are named.
const ARTIFACTS: &str = "/v1/artifacts/";

/// The answer to a `GET` of an artifact: 200 with the body, 206 with the range asked for, 304
/// when the client has it, 416 for a range outside it. The body streams to the client.
pub(super) async fn serve(state: &Shared, artifacts: &dyn ArtifactStore, ctx: &Ctx, key: &str, headers: &HeaderMap) -> ApiResult<Response> {
    let key = key_of(key)?;
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
    let len = reader.range.end - reader.range.start;
    let Some(spec) = spec else {
        let body = body::primed(state, Domain::Artifact, || key.to_string(), len, reader.body).await?;
        return Ok((out, body).into_response());
    };
    let size = reader.meta.size;
    let Some(range) = spec.resolve(size) else { return Err(body::unsatisfiable(size)) };
    debug_assert_eq!(range, reader.range);
    let status = body::partial(&mut out, &range, size);
    let body = body::primed(state, Domain::Artifact, || key.to_string(), len, reader.body).await?;
    Ok((status, out, body).into_response())
}

#[utoipa::path(
    head,
    path = "/v1/artifacts/{*key}",
    tag = "artifacts",
    operation_id = "head_artifact",
    summary = "An artifact's metadata as headers: size, content type, ETag",
    params(("key" = String, Path, description = "The artifact's key"), ReadHeaders),
    responses(
        (status = 200, description = "The headers a GET would answer with, and no body", headers(
            ("ETag" = String, description = "`\"<sha256>\"` of the body"),
            ("Content-Length" = u64, description = "The body's size"),
        )),
        (status = 206, description = "The headers of the range asked for", headers(("Content-Range" = String, description = "`bytes first-last/size`"))),
        (status = 416, description = "The range is outside the body"),
    )
)]
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

/// The header that names an upload's content type in place of its `Content-Type`.
pub const CONTENT_TYPE_HEADER: &str = "storehost-content-type";

/// What [`CONTENT_TYPE_HEADER`] must be: a media type (`type/subtype`, then any parameters).
pub const MEDIA_TYPE_PATTERN: &str = "^[-!#$%&'*+.^_`|~0-9A-Za-z]+/[-!#$%&'*+.^_`|~0-9A-Za-z]+(;[ -~]*)?$";

/// Whether `text` matches [`MEDIA_TYPE_PATTERN`].
fn is_media_type(text: &str) -> bool {
    let (essence, parameters) = text.split_once(';').unwrap_or((text, ""));
    let token = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-!#$%&'*+.^_`|~".contains(&b));
    essence.split_once('/').is_some_and(|(kind, sub)| token(kind) && token(sub)) && parameters.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// The content type an upload keeps: its [`CONTENT_TYPE_HEADER`] (a media type) if it has one
/// (an empty one names none), else its `Content-Type`.
fn upload_content_type(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(named) = headers.get(CONTENT_TYPE_HEADER).filter(|named| !named.is_empty()) else {
        return Ok(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(String::from));
    };
    match named.to_str() {
        Ok(text) if is_media_type(text) => Ok(Some(text.to_string())),
        _ => Err(ApiError::invalid(format!("{CONTENT_TYPE_HEADER} must be a media type such as text/plain, got {named:?}"))),
    }
}

/// Streams the body into the store: nothing is written until the whole body has arrived, and
/// an upload cut short (a disconnect, a limit, a shutdown) leaves nothing.
#[utoipa::path(
    put,
    path = "/v1/artifacts/{*key}",
    tag = "artifacts",
    operation_id = "put_artifact",
    summary = "Write an artifact (replacing any body under the key); its content type is kept",
    params(
        ("key" = String, Path, description = "The artifact's key"),
        ("Storehost-Content-Type" = Option<String>, Header, description = "The content type to keep in place of the request's `Content-Type` (for a client that sends every body as `application/octet-stream`)"),
    ),
    request_body(content = [u8], content_type = "application/octet-stream", description = "The body, streamed; any size up to the domain's max_body. Its content type may be any: the request's `Content-Type` (or `Storehost-Content-Type`) is kept and answered by a GET."),
    responses((status = 200, description = "The artifact as written", body = ArtifactMeta))
)]
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
    let content_type = upload_content_type(&headers)?;
    let sink = artifacts.open_write(&ctx, key, content_type, body::declared_length(&headers)).await?;
    let limit = state.limits.max_body(Some(Domain::Artifact));
    Ok(Json(body::upload(&ctx, request, sink, limit, state.limits.request_timeout).await?))
}

#[utoipa::path(
    delete,
    path = "/v1/artifacts/{*key}",
    tag = "artifacts",
    operation_id = "delete_artifact",
    summary = "Delete an artifact (deleting one that is not there succeeds)",
    params(("key" = String, Path, description = "The artifact's key")),
    responses((status = 204, description = "Deleted"))
)]
async fn delete_artifact(Store(artifacts): Store<dyn ArtifactStore>, ctx: Ctx, ApiPath(key): ApiPath<String>, _: NoQuery) -> ApiResult<StatusCode> {
    artifacts.delete(&ctx, key_of(&key)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only keys that start with this.
    #[serde(default)]
    prefix: String,
    /// Where the previous page ended (its `next_cursor`).
    cursor: Option<String>,
    /// The most items in the page: 1 to 1000, or 0 for the default (100).
    #[serde(default)]
    #[param(maximum = 1000)]
    limit: u32,
}

#[utoipa::path(
    get,
    path = "/v1/artifacts",
    tag = "artifacts",
    operation_id = "list_artifacts",
    summary = "List artifacts by key prefix, in byte order of their keys",
    params(ListQuery),
    responses((status = 200, description = "A page of the artifacts' metadata", body = ArtifactPage))
)]
async fn list(Store(artifacts): Store<dyn ArtifactStore>, ctx: Ctx, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Response> {
    let page = artifacts.list(&ctx, &q.prefix, q.cursor.as_deref(), page_limit(q.limit)?).await?;
    Ok(Json(page).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UrlQuery {
    /// Seconds the URL stays valid: 1 to 604800 (a week); 3600 if not given.
    #[param(minimum = 1, maximum = 604800)]
    expires_in: Option<u32>,
}

/// A URL that reads an artifact without a token, until it expires.
#[derive(Serialize, ToSchema)]
struct ArtifactUrl {
    url: String,
    /// Unix seconds.
    expires_at: u64,
    /// `origin` (the origin's own presigned URL) or `host` (a `/v1/signed` URL of this host).
    signed_by: &'static str,
}

#[utoipa::path(
    get,
    path = "/v1/artifact-urls/{*key}",
    tag = "artifacts",
    operation_id = "artifact_url",
    summary = "A URL that reads the artifact without a token: the origin's presigned URL, or one this host signs",
    params(("key" = String, Path, description = "The artifact's key"), UrlQuery),
    responses((status = 200, description = "The URL", body = ArtifactUrl))
)]
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
    Ok(Json(ArtifactUrl { url, expires_at, signed_by }).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SignedQuery {
    /// Unix seconds after which the URL is refused.
    expires: u64,
    /// The host's signature of the key and `expires`.
    sig: String,
}

#[utoipa::path(
    get,
    path = "/v1/signed/{*key}",
    tag = "artifacts",
    operation_id = "signed_artifact",
    summary = "Read an artifact through a URL this host signed (no token: the signature is the authorization)",
    params(("key" = String, Path, description = "The artifact's key"), SignedQuery, ReadHeaders),
    security(()),
    responses(
        (status = 200, description = "The body", content_type = "*/*", body = [u8], headers(("ETag" = String, description = "`\"<sha256>\"` of the body"))),
        (status = 206, description = "The range asked for", content_type = "*/*", body = [u8], headers(("Content-Range" = String, description = "`bytes first-last/size`"))),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 416, description = "The range is outside the body", body = ErrorBody),
    )
)]
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
        .verify_fresh(key, q.expires, &q.sig, now_secs())
        .await
        .map_err(|why| ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("signed URL refused: {why}")))?;
    serve(&state, artifacts.as_ref(), &ctx, key, &headers).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_content_type_must_be_a_media_type() {
        for good in ["text/plain", "application/x-storehost-test", "text/plain; charset=utf-8", "a/b;x", "vnd.a+json/x-y.z"] {
            assert!(is_media_type(good), "{good}");
        }
        for bad in ["", "text", "text/", "/plain", "text/plain/x", "text /plain", "text/plain\t;x", "tëxt/plain", "a/b;é"] {
            assert!(!is_media_type(bad), "{bad}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        assert_eq!(upload_content_type(&headers).unwrap().as_deref(), Some("application/octet-stream"));
        headers.insert(CONTENT_TYPE_HEADER, HeaderValue::from_static("text/plain"));
        assert_eq!(upload_content_type(&headers).unwrap().as_deref(), Some("text/plain"), "the named type wins");
        headers.insert(CONTENT_TYPE_HEADER, HeaderValue::from_static("plain"));
        assert!(upload_content_type(&headers).is_err());
        headers.insert(CONTENT_TYPE_HEADER, HeaderValue::from_static(""));
        assert_eq!(upload_content_type(&headers).unwrap().as_deref(), Some("application/octet-stream"), "an empty one names none");
    }
}

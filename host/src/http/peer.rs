//! The internal route of peer fill (see `crate::cluster::peers`): another member asks this one,
//! the owner of a key, for it. Outside the API and its document; each request is signed with
//! the members' shared secret, and a host without peer fill has no such route.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::extract::ApiPath;
use super::{ApiError, ApiResult, Shared, body};
use crate::base::{Ctx, Domain, StoreError};
use crate::cluster::peers::{self, AUTH_HEADER, NOT_FOUND_HEADER, RANGE_HEADER};
use crate::domain::validate_key;

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route(&format!("{}{{*key}}", peers::ROUTE), get(read))
}

/// A member's read of a key this host owns: the range asked for, through this host's own
/// layers (its caches, filled once from the origin), never passed on to another member.
async fn read(State(state): State<Shared>, ctx: Ctx, ApiPath(key): ApiPath<String>, headers: HeaderMap) -> ApiResult<Response> {
    let app = state.app();
    let (Some(peers), Some(artifacts)) = (app.cluster.as_ref().and_then(|node| node.peers()), app.stores.artifact.as_ref()) else {
        return Err(ApiError::not_found("no such route"));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if !peers.verify(&key, header(AUTH_HEADER)) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "not signed with the cluster's peer secret"));
    }
    validate_key(&key)?;
    let range = peers::asked_range(header(RANGE_HEADER)).ok_or_else(|| ApiError::invalid(format!("{RANGE_HEADER} must be START-END or START-")))?;
    peers.metrics.served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let reader = match artifacts.open_read(&ctx.from_peer(), &key, range).await {
        Err(StoreError::NotFound(why)) => {
            let found = ApiError::not_found(why).with_header(HeaderName::from_static(NOT_FOUND_HEADER), HeaderValue::from_static("1"));
            return Err(found);
        }
        read => read?,
    };
    let mut out = HeaderMap::with_capacity(3);
    for (name, value) in peers::answer_headers(&reader.meta, &reader.range) {
        out.insert(name, HeaderValue::try_from(value).expect("base64 and digits are valid in a header"));
    }
    let len = reader.range.end - reader.range.start;
    out.insert(axum::http::header::CONTENT_LENGTH, HeaderValue::from(len));
    let body = body::primed(&state, Domain::Artifact, || key.clone(), len, reader.body).await?;
    Ok((out, body).into_response())
}

//! `/v1/ui/documents`: read a document, apply a batch of operations atomically.

use std::sync::Arc;

use axum::Json;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde::Deserialize;

use axum::response::{IntoResponse, Response};

use super::extract::{ApiJson, ApiPath, ApiQuery, NoQuery, Store, VersionQuery};
use super::{ApiError, ApiResult, Shared, expected_version, version_etag};
use crate::base::Ctx;
use crate::domain::{UiDocument, UiOp, UiStore, validate_id};

pub fn routes() -> axum::Router<Shared> {
    axum::Router::new().route("/v1/ui/documents/{id}", get(get_document)).route("/v1/ui/documents/{id}/ops", post(apply_ops))
}

/// A document id of a path, checked by the contract's rules.
fn document_id(id: String) -> ApiResult<String> {
    validate_id("document id", &id)?;
    Ok(id)
}

async fn get_document(Store(documents): Store<dyn UiStore>, ctx: Ctx, ApiPath(id): ApiPath<String>, _: NoQuery) -> ApiResult<Response> {
    let document = documents.get(&ctx, &document_id(id)?).await?;
    Ok((version_etag(document.version), Json(document)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpsBody {
    expected_version: Option<u64>,
    ops: Vec<UiOp>,
}

fn check_json(what: &str, text: &str) -> Result<(), ApiError> {
    serde_json::from_str::<serde_json::Value>(text).map(drop).map_err(|e| ApiError::invalid(format!("{what} is not JSON text: {e}")))
}

async fn apply_ops(
    Store(documents): Store<dyn UiStore>,
    ctx: Ctx,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<VersionQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<OpsBody>,
) -> ApiResult<Response> {
    let id = document_id(id)?;
    for (i, op) in body.ops.iter().enumerate() {
        match op {
            UiOp::SetProp { value, .. } => check_json(&format!("ops[{i}].value"), value)?,
            UiOp::InsertNode { node, .. } => {
                for (key, value) in &node.props {
                    check_json(&format!("ops[{i}].node.props.{key}"), value)?;
                }
            }
            _ => {}
        }
    }
    let expected = expected_version(&headers, q.expected_version, body.expected_version)?;
    let document: Option<Arc<UiDocument>> = documents.apply_ops(&ctx, &id, expected, body.ops).await?;
    Ok(match &document {
        Some(d) => (version_etag(d.version), Json(document.clone())).into_response(),
        None => Json(document).into_response(),
    })
}

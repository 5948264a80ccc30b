//! `/v1/ui/documents`: read a document, apply a batch of operations atomically.

use std::sync::Arc;

use axum::Json;
use axum::http::HeaderMap;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::response::{IntoResponse, Response};

use super::error::ErrorBody;
use super::extract::{ApiJson, ApiPath, ApiQuery, NoQuery, Store, VersionHeaders, VersionQuery};
use super::{ApiError, ApiResult, Shared, expected_version, version_etag};
use crate::base::Ctx;
use crate::domain::{UiDocument, UiOp, UiStore, validate_id};

pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(get_document)).routes(routes!(apply_ops))
}

/// A document id of a path, checked by the contract's rules.
fn document_id(id: String) -> ApiResult<String> {
    validate_id("document id", &id)?;
    Ok(id)
}

#[utoipa::path(
    get,
    path = "/v1/ui/documents/{id}",
    tag = "ui",
    operation_id = "get_ui_document",
    summary = "Read a UI document",
    params(("id" = String, Path, description = "The document's id")),
    responses((status = 200, description = "The document", body = UiDocument, headers(("ETag" = String, description = "`\"<version>\"`, for `If-Match`"))))
)]
async fn get_document(Store(documents): Store<dyn UiStore>, ctx: Ctx, ApiPath(id): ApiPath<String>, _: NoQuery) -> ApiResult<Response> {
    let document = documents.get(&ctx, &document_id(id)?).await?;
    Ok((version_etag(document.version), Json(document)).into_response())
}

/// A batch of edits, applied all or none.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OpsBody {
    /// Apply only if the stored version is this one (0: a document never written).
    expected_version: Option<u64>,
    ops: Vec<UiOp>,
}

fn check_json(what: &str, text: &str) -> Result<(), ApiError> {
    serde_json::from_str::<serde_json::Value>(text).map(drop).map_err(|e| ApiError::invalid(format!("{what} is not JSON text: {e}")))
}

#[utoipa::path(
    post,
    path = "/v1/ui/documents/{id}/ops",
    tag = "ui",
    operation_id = "apply_ui_ops",
    summary = "Apply a batch of operations to a document atomically (creating it)",
    params(("id" = String, Path, description = "The document's id"), VersionQuery, VersionHeaders),
    request_body = OpsBody,
    responses(
        (status = 200, description = "The document after the batch; `null` when the origin does not return it", body = Option<UiDocument>, headers(("ETag" = String, description = "`\"<version>\"` (when there is a document)"))),
        (status = 409, description = "The stored version is not the expected one", body = ErrorBody),
    )
)]
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

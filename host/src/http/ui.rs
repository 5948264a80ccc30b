//! `/v1/ui/documents`: read a document, apply a batch of operations atomically.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde::Deserialize;

use super::{ApiError, ApiResult, Shared, expected_version, store};
use crate::domain::{UiDocument, UiOp};

pub fn routes() -> axum::Router<Shared> {
    axum::Router::new().route("/v1/ui/documents/{id}", get(get_document)).route("/v1/ui/documents/{id}/ops", post(apply_ops))
}

async fn get_document(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Arc<UiDocument>>> {
    Ok(Json(store!(state, ui, "ui").get(&state.ctx(), &id).await?))
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
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<OpsBody>, JsonRejection>,
) -> ApiResult<Json<Option<Arc<UiDocument>>>> {
    let Json(body) = body?;
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
    let expected = expected_version(&headers, body.expected_version)?;
    Ok(Json(store!(state, ui, "ui").apply_ops(&state.ctx(), &id, expected, body.ops).await?))
}

//! UI documents (seed: UI). Documents are immutable values shared through `Arc`: a caller can
//! never change what another caller (or the cache) reads.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::operations;
use crate::base::{Ctx, Result};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UiNode {
    pub id: String,
    pub parent: Option<String>,
    pub kind: String,
    /// `[key, value]` pairs; each value is JSON text.
    pub props: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UiDocument {
    pub id: String,
    pub version: u64,
    /// Siblings appear in display order.
    pub nodes: Vec<UiNode>,
    pub updated_at: u64,
}

/// One edit of a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum UiOp {
    #[schema(title = "InsertNode")]
    InsertNode { node: UiNode, index: u32 },
    /// Removes the node and its subtree.
    #[schema(title = "RemoveNode")]
    RemoveNode { id: String },
    #[schema(title = "MoveNode")]
    MoveNode { id: String, new_parent: Option<String>, index: u32 },
    #[schema(title = "SetProp")]
    SetProp { node_id: String, key: String, value: String },
    #[schema(title = "RemoveProp")]
    RemoveProp { node_id: String, key: String },
}

/// A page of the ids of documents that were written, in byte order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentPage {
    pub ids: Vec<String>,
    pub next_cursor: Option<String>,
}

operations!(
    /// The operations of [`UiStore`].
    UiOperation for Ui {
        Get = "get",
        List = "list",
        ApplyOps = "apply-ops" [write],
    }
);

/// The UI document repository contract.
#[async_trait]
pub trait UiStore: Send + Sync {
    async fn get(&self, ctx: &Ctx, id: &str) -> Result<Arc<UiDocument>>;
    /// Ids of the documents that were written, in byte order, after `cursor`, at most `limit`
    /// (0: the default).
    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<DocumentPage>;
    /// Applies `ops` atomically; returns the new document, or `None` when the origin does not
    /// return it.
    async fn apply_ops(&self, ctx: &Ctx, id: &str, expected_version: Option<u64>, ops: Vec<UiOp>) -> Result<Option<Arc<UiDocument>>>;
}

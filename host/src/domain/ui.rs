//! UI documents (seed: UI). Documents are immutable values shared through `Arc`: a caller can
//! never change what another caller (or the cache) reads.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Ctx, Result, mirror, plugin_call, require_export};
use crate::runtime::bindings::origin::ui_documents as wit;
use crate::runtime::{Interface, Plugin};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiNode {
    pub id: String,
    pub parent: Option<String>,
    pub kind: String,
    /// Values are JSON text.
    pub props: Vec<(String, String)>,
}

mirror!(wit::UiNode => UiNode { id, parent, kind, props });

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiDocument {
    pub id: String,
    pub version: u64,
    /// Siblings appear in display order.
    pub nodes: Vec<UiNode>,
    pub updated_at: u64,
}

impl From<wit::UiDocument> for UiDocument {
    fn from(d: wit::UiDocument) -> Self {
        Self { id: d.id, version: d.version, nodes: d.nodes.into_iter().map(Into::into).collect(), updated_at: d.updated_at }
    }
}

/// One edit of a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum UiOp {
    InsertNode { node: UiNode, index: u32 },
    /// Removes the node and its subtree.
    RemoveNode { id: String },
    MoveNode { id: String, new_parent: Option<String>, index: u32 },
    SetProp { node_id: String, key: String, value: String },
    RemoveProp { node_id: String, key: String },
}

impl From<UiOp> for wit::UiOp {
    fn from(op: UiOp) -> Self {
        match op {
            UiOp::InsertNode { node, index } => wit::UiOp::InsertNode(wit::InsertNode { node: node.into(), index }),
            UiOp::RemoveNode { id } => wit::UiOp::RemoveNode(id),
            UiOp::MoveNode { id, new_parent, index } => wit::UiOp::MoveNode(wit::MoveNode { id, new_parent, index }),
            UiOp::SetProp { node_id, key, value } => wit::UiOp::SetProp(wit::SetProp { node_id, key, value }),
            UiOp::RemoveProp { node_id, key } => wit::UiOp::RemoveProp(wit::RemoveProp { node_id, key }),
        }
    }
}

/// The UI document repository contract.
#[async_trait]
pub trait UiStore: Send + Sync {
    async fn get(&self, ctx: &Ctx, id: &str) -> Result<Arc<UiDocument>>;
    /// Applies `ops` atomically; returns the new document, or `None` when the origin does not
    /// return it.
    async fn apply_ops(&self, ctx: &Ctx, id: &str, expected_version: Option<u64>, ops: Vec<UiOp>) -> Result<Option<Arc<UiDocument>>>;
}

/// [`UiStore`] over a plugin exporting `storehost:origin/ui-documents`.
#[derive(Clone, Debug)]
pub struct PluginUiStore {
    plugin: Plugin,
}

impl PluginUiStore {
    pub fn new(plugin: Plugin) -> anyhow::Result<Self> {
        require_export(&plugin, Interface::UiDocuments)?;
        Ok(Self { plugin })
    }
}

#[async_trait]
impl UiStore for PluginUiStore {
    async fn get(&self, ctx: &Ctx, id: &str) -> Result<Arc<UiDocument>> {
        let id = id.to_string();
        let doc: wit::UiDocument = plugin_call!(self.plugin, ctx, "ui-documents.get", ui_documents, |g, s| g.call_get(s, &id)).await?;
        Ok(Arc::new(doc.into()))
    }

    async fn apply_ops(&self, ctx: &Ctx, id: &str, expected_version: Option<u64>, ops: Vec<UiOp>) -> Result<Option<Arc<UiDocument>>> {
        let id = id.to_string();
        let ops: Vec<wit::UiOp> = ops.into_iter().map(Into::into).collect();
        let doc: Option<wit::UiDocument> = plugin_call!(self.plugin, ctx, "ui-documents.apply-ops", ui_documents, |g, s| g.call_apply_ops(s, &id, expected_version, &ops))
            .await?;
        Ok(doc.map(|d| Arc::new(d.into())))
    }
}

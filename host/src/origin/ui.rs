use std::sync::Arc;

use async_trait::async_trait;

use super::{for_each_version, mirror, plugin_call, plugin_call_v2, require_export, require_listing};
use crate::base::{Ctx, Result};
use crate::domain::{DocumentPage, UiDocument, UiNode, UiOp, UiStore};
use crate::runtime::{Interface, Plugin};

for_each_version!(ui_documents =>
    mirror!(wit::UiNode => UiNode { id, parent, kind, props });

    impl From<wit::UiDocument> for UiDocument {
        fn from(d: wit::UiDocument) -> Self {
            Self { id: d.id, version: d.version, nodes: d.nodes.into_iter().map(Into::into).collect(), updated_at: d.updated_at }
        }
    }

    impl From<wit::UiDocument> for Arc<UiDocument> {
        fn from(d: wit::UiDocument) -> Self {
            Arc::new(d.into())
        }
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
);

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
        plugin_call!(self.plugin, ctx, "ui-documents.get", ui_documents, |g, s| g.call_get(s, &id)).await
    }

    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<DocumentPage> {
        require_listing(&self.plugin, "documents")?;
        let cursor = cursor.map(String::from);
        plugin_call_v2!(self.plugin, ctx, "ui-documents.list", ui_documents, |g, s| async {
            let page = g.call_list(s, cursor.as_deref(), limit).await?;
            Ok::<_, wasmtime::Error>(page.map(|p| DocumentPage { ids: p.ids, next_cursor: p.next_cursor }))
        })
        .await
    }

    async fn apply_ops(&self, ctx: &Ctx, id: &str, expected_version: Option<u64>, ops: Vec<UiOp>) -> Result<Option<Arc<UiDocument>>> {
        let id = id.to_string();
        plugin_call!(self.plugin, ctx, "ui-documents.apply-ops", ui_documents, |g, s| async {
            let ops: Vec<_> = ops.into_iter().map(Into::into).collect();
            Ok::<_, wasmtime::Error>(g.call_apply_ops(s, &id, expected_version, &ops).await?.map(|doc| doc.map(Into::into)))
        })
        .await
    }
}

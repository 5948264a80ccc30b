//! UI documents: a flat node list where siblings appear in display order.

use crate::bindings::exports::storehost::origin::ui_documents::{DocumentPage, Guest, UiDocument, UiNode, UiOp};
use crate::{Backend, Origin, Result, StoreError, Table, check_version, load, now_ms, page_limit, store, validate_id};

fn invalid(msg: String) -> StoreError {
    StoreError::Invalid(msg)
}

fn position(nodes: &[UiNode], id: &str) -> Option<usize> {
    nodes.iter().position(|n| n.id == id)
}

fn require(nodes: &[UiNode], id: &str) -> Result<usize> {
    position(nodes, id).ok_or_else(|| invalid(format!("no node {id:?}")))
}

/// Where in the list a node becomes the `index`-th child of `parent`.
fn insertion_point(nodes: &[UiNode], parent: Option<&str>, index: u32) -> Result<usize> {
    let siblings: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].parent.as_deref() == parent).collect();
    let index = index as usize;
    if index > siblings.len() {
        return Err(invalid(format!("index {index} is past the {} children of {parent:?}", siblings.len())));
    }
    Ok(match siblings.get(index) {
        Some(&i) => i,
        None => nodes.len(),
    })
}

/// True when `id` is `ancestor` or lies in its subtree.
fn within<'a>(nodes: &'a [UiNode], mut id: Option<&'a str>, ancestor: &str) -> bool {
    // Bounded walk: a corrupt cycle cannot hang the call.
    for _ in 0..=nodes.len() {
        match id {
            None => return false,
            Some(current) if current == ancestor => return true,
            Some(current) => id = nodes.iter().find(|n| n.id == current).and_then(|n| n.parent.as_deref()),
        }
    }
    false
}

fn check_parent(nodes: &[UiNode], parent: Option<&str>) -> Result<()> {
    if let Some(p) = parent {
        require(nodes, p)?;
    }
    Ok(())
}

/// Applies one operation to `nodes`; on an error `nodes` may be part-changed, so apply to a copy.
pub fn apply(nodes: &mut Vec<UiNode>, op: UiOp) -> Result<()> {
    match op {
        UiOp::InsertNode(ins) => {
            if ins.node.id.is_empty() {
                return Err(invalid("node id is empty".into()));
            }
            if position(nodes, &ins.node.id).is_some() {
                return Err(invalid(format!("node {:?} already exists", ins.node.id)));
            }
            check_parent(nodes, ins.node.parent.as_deref())?;
            let at = insertion_point(nodes, ins.node.parent.as_deref(), ins.index)?;
            nodes.insert(at, ins.node);
        }
        UiOp::RemoveNode(id) => {
            require(nodes, &id)?;
            let doomed: Vec<bool> = nodes.iter().map(|n| within(nodes, Some(&n.id), &id)).collect();
            let mut i = 0;
            nodes.retain(|_| {
                i += 1;
                !doomed[i - 1]
            });
        }
        UiOp::MoveNode(mv) => {
            let from = require(nodes, &mv.id)?;
            check_parent(nodes, mv.new_parent.as_deref())?;
            if within(nodes, mv.new_parent.as_deref(), &mv.id) {
                return Err(invalid(format!("cannot move node {:?} into its own subtree", mv.id)));
            }
            let mut node = nodes.remove(from);
            node.parent = mv.new_parent;
            match insertion_point(nodes, node.parent.as_deref(), mv.index) {
                Ok(at) => nodes.insert(at, node),
                Err(e) => return Err(e),
            }
        }
        UiOp::SetProp(set) => {
            let i = require(nodes, &set.node_id)?;
            let props = &mut nodes[i].props;
            match props.iter_mut().find(|(k, _)| *k == set.key) {
                Some((_, v)) => *v = set.value,
                None => props.push((set.key, set.value)),
            }
        }
        UiOp::RemoveProp(rm) => {
            let i = require(nodes, &rm.node_id)?;
            let props = &mut nodes[i].props;
            let before = props.len();
            props.retain(|(k, _)| *k != rm.key);
            if props.len() == before {
                return Err(invalid(format!("node {:?} has no prop {:?}", rm.node_id, rm.key)));
            }
        }
    }
    Ok(())
}

impl<B: Backend> Guest for Origin<B> {
    fn list(cursor: Option<String>, limit: u32) -> Result<DocumentPage> {
        B::with(|b| {
            b.before_call("ui-documents.list", "")?;
            let limit = page_limit(limit);
            let mut ids = b.keys(Table::UiDocuments, "", cursor.as_deref(), limit + 1)?;
            let more = ids.len() > limit;
            ids.truncate(limit);
            let next_cursor = if more { ids.last().cloned() } else { None };
            Ok(DocumentPage { ids, next_cursor })
        })
    }

    fn get(id: String) -> Result<UiDocument> {
        B::with(|b| {
            b.before_call("ui-documents.get", &id)?;
            validate_id("document id", &id)?;
            load(b, Table::UiDocuments, &id)?.ok_or_else(|| StoreError::NotFound(format!("ui document {id:?}")))
        })
    }

    fn apply_ops(id: String, expected_version: Option<u64>, ops: Vec<UiOp>) -> Result<Option<UiDocument>> {
        B::with(|b| {
            b.before_call("ui-documents.apply-ops", &id)?;
            validate_id("document id", &id)?;
            let _lock = b.lock(Table::UiDocuments, &id)?;
            let mut doc: UiDocument =
                load(b, Table::UiDocuments, &id)?.unwrap_or(UiDocument { id: id.clone(), version: 0, nodes: Vec::new(), updated_at: 0 });
            check_version(&format!("ui document {id:?}"), doc.version, expected_version)?;
            // Ops apply to a copy; the stored document changes only if all of them succeed.
            for (i, op) in ops.into_iter().enumerate() {
                apply(&mut doc.nodes, op).map_err(|e| match e {
                    StoreError::Invalid(msg) => StoreError::Invalid(format!("op {i}: {msg}")),
                    other => other,
                })?;
            }
            doc.version += 1;
            doc.updated_at = now_ms();
            store(b, Table::UiDocuments, &id, &doc)?;
            Ok(Some(doc))
        })
    }
}

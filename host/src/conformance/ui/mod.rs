mod apply_ops;
mod get;
mod list;

use std::sync::Arc;

use crate::domain::Stores;
use crate::domain::{UiDocument, UiNode, UiOp, UiStore};

pub(super) fn cases() -> Vec<super::Case> {
    [get::cases(), apply_ops::cases(), list::cases()].concat()
}

fn store(s: &Stores) -> Arc<dyn UiStore> {
    s.ui.clone().expect("the suite skips targets without ui-documents")
}

fn insert(id: &str, parent: Option<&str>, index: u32) -> UiOp {
    UiOp::InsertNode { node: UiNode { id: id.into(), parent: parent.map(String::from), kind: "box".into(), props: vec![] }, index }
}

/// `(id, parent)` of every node, in order.
fn shape(doc: &UiDocument) -> Vec<(String, Option<String>)> {
    doc.nodes.iter().map(|n| (n.id.clone(), n.parent.clone())).collect()
}

/// Children of `parent`, in sibling order.
fn children(doc: &UiDocument, parent: Option<&str>) -> Vec<String> {
    doc.nodes.iter().filter(|n| n.parent.as_deref() == parent).map(|n| n.id.clone()).collect()
}

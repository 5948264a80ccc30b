use anyhow::{Result, ensure};

use super::{children, insert, shape, store};
use crate::conformance::{Step, conflict, ctx, invalid, suite_cases, unique};
use crate::domain::Stores;
use crate::domain::UiOp;

suite_cases!(UiDocuments, "apply-ops";
    builds_a_tree_in_sibling_order, props_set_and_remove, move_and_remove_subtree,
    batch_is_atomic, expected_version_is_checked, invalid_ops_are_refused);

async fn builds_a_tree_in_sibling_order(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("doc"));
    let ops = vec![insert("root", None, 0), insert("b", Some("root"), 0), insert("a", Some("root"), 0), insert("c", Some("root"), 2)];
    st.apply_ops(&ctx(), &id, Some(0), ops).await.step("apply-ops")?;
    let doc = st.get(&ctx(), &id).await.step("get")?;
    ensure!(children(&doc, Some("root")) == ["a", "b", "c"], "children are {:?}", children(&doc, Some("root")));
    ensure!(doc.version == 1, "one batch gave version {}", doc.version);
    st.apply_ops(&ctx(), &id, Some(1), vec![insert("x", Some("b"), 0)]).await.step("second batch")?;
    let doc = st.get(&ctx(), &id).await.step("get")?;
    ensure!(doc.version == 2, "two batches gave version {}", doc.version);
    Ok(())
}

async fn props_set_and_remove(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("doc"));
    let set = |k: &str, v: &str| UiOp::SetProp { node_id: "n".into(), key: k.into(), value: v.into() };
    st.apply_ops(&ctx(), &id, None, vec![insert("n", None, 0), set("color", "\"red\""), set("size", "3"), set("color", "\"blue\"")])
        .await
        .step("apply-ops")?;
    let doc = st.get(&ctx(), &id).await.step("get")?;
    let props = &doc.nodes[0].props;
    ensure!(props.iter().any(|(k, v)| k == "color" && v == "\"blue\""), "color not replaced: {props:?}");
    ensure!(props.len() == 2, "props {props:?}");
    st.apply_ops(&ctx(), &id, None, vec![UiOp::RemoveProp { node_id: "n".into(), key: "size".into() }]).await.step("remove-prop")?;
    let doc = st.get(&ctx(), &id).await.step("get")?;
    ensure!(doc.nodes[0].props == [("color".to_string(), "\"blue\"".to_string())], "props {:?}", doc.nodes[0].props);
    Ok(())
}

async fn move_and_remove_subtree(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("doc"));
    let ops = vec![
        insert("root", None, 0),
        insert("a", Some("root"), 0),
        insert("b", Some("root"), 1),
        insert("a1", Some("a"), 0),
        insert("a2", Some("a1"), 0),
    ];
    st.apply_ops(&ctx(), &id, None, ops).await.step("build")?;
    st.apply_ops(&ctx(), &id, None, vec![UiOp::MoveNode { id: "b".into(), new_parent: Some("root".into()), index: 0 }]).await.step("move b first")?;
    let doc = st.get(&ctx(), &id).await.step("get")?;
    ensure!(children(&doc, Some("root")) == ["b", "a"], "after the move: {:?}", children(&doc, Some("root")));
    st.apply_ops(&ctx(), &id, None, vec![UiOp::MoveNode { id: "a1".into(), new_parent: Some("b".into()), index: 0 }])
        .await
        .step("move a1 under b")?;
    st.apply_ops(&ctx(), &id, None, vec![UiOp::RemoveNode { id: "b".into() }]).await.step("remove b")?;
    let doc = st.get(&ctx(), &id).await.step("get")?;
    let ids: Vec<String> = shape(&doc).into_iter().map(|(id, _)| id).collect();
    ensure!(ids == ["root", "a"], "removing b should take a1 and a2 with it; left {ids:?}");
    Ok(())
}

async fn batch_is_atomic(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("doc"));
    st.apply_ops(&ctx(), &id, None, vec![insert("root", None, 0)]).await.step("build")?;
    let before = st.get(&ctx(), &id).await.step("get")?;
    let batch = vec![insert("ok", Some("root"), 0), UiOp::RemoveNode { id: "ghost".into() }];
    invalid("a batch with an op on a missing node", st.apply_ops(&ctx(), &id, None, batch).await)?;
    let after = st.get(&ctx(), &id).await.step("get")?;
    ensure!(*after == *before, "a failed batch changed the document: {after:?}");
    Ok(())
}

async fn expected_version_is_checked(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("doc"));
    conflict("expected version 4 of a new document", st.apply_ops(&ctx(), &id, Some(4), vec![insert("r", None, 0)]).await)?;
    st.apply_ops(&ctx(), &id, Some(0), vec![insert("r", None, 0)]).await.step("version 0")?;
    conflict("a stale version", st.apply_ops(&ctx(), &id, Some(0), vec![insert("s", None, 0)]).await)?;
    let doc = st.get(&ctx(), &id).await.step("get")?;
    ensure!(doc.version == 1 && doc.nodes.len() == 1, "a refused batch applied: {doc:?}");
    Ok(())
}

async fn invalid_ops_are_refused(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("doc"));
    st.apply_ops(&ctx(), &id, None, vec![insert("root", None, 0), insert("kid", Some("root"), 0)]).await.step("build")?;
    let cases: Vec<(&str, UiOp)> = vec![
        ("a duplicate id", insert("kid", None, 0)),
        ("a missing parent", insert("new", Some("ghost"), 0)),
        ("an index past the end", insert("new", Some("root"), 5)),
        ("a move into its own subtree", UiOp::MoveNode { id: "root".into(), new_parent: Some("kid".into()), index: 0 }),
        ("a move of a missing node", UiOp::MoveNode { id: "ghost".into(), new_parent: None, index: 0 }),
        ("a prop on a missing node", UiOp::SetProp { node_id: "ghost".into(), key: "k".into(), value: "1".into() }),
        ("removing a missing prop", UiOp::RemoveProp { node_id: "kid".into(), key: "nope".into() }),
    ];
    for (what, op) in cases {
        invalid(what, st.apply_ops(&ctx(), &id, None, vec![op]).await)?;
    }
    Ok(())
}

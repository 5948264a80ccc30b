//! UI documents: one row per document, its nodes as `jsonb`, changed by `apply-ops` in one
//! transaction that holds the row's lock.

use storehost_plugin_kit::bindings::exports::storehost::origin::ui_documents::{DocumentPage, Guest, UiDocument, UiNode, UiOp};
use storehost_plugin_kit::bindings::storehost::host::sql::SqlValue;
use storehost_plugin_kit::{Result, StoreError, apply_ui_op, check_version, internal, now_ms, page_limit, validate_id};

use crate::Postgres;
use crate::db::{self, Db, Row, int, opt_text, text, ts};

fn nodes(id: &str, json: &str) -> Result<Vec<UiNode>> {
    serde_json::from_str(json).map_err(|e| internal(&format!("corrupt nodes of ui document {id:?}"), e))
}

/// Locks the document's row (`SELECT … FOR UPDATE`) and returns its version and nodes; a
/// missing document is inserted at version 0 first, so concurrent first writes queue on it too.
/// The inserted row is only ever committed at version 1 or more.
fn lock(db: &Db, id: &str) -> Result<(u64, Vec<UiNode>)> {
    const SELECT: &str = "SELECT version, nodes FROM {s}.ui_documents WHERE id = $1 FOR UPDATE";
    let row = match db.query_opt(SELECT, &[text(id)])? {
        Some(row) => row,
        None => {
            db.execute(
                "INSERT INTO {s}.ui_documents (id, version, nodes, updated_at) VALUES ($1, 0, '[]', now()) ON CONFLICT (id) DO NOTHING",
                &[text(id)],
            )?;
            db.query_opt(SELECT, &[text(id)])?.ok_or_else(|| StoreError::Unavailable(format!("ui document {id:?} vanished while locking it")))?
        }
    };
    let row = Row(row);
    Ok((row.u64(0)?, nodes(id, &row.json(1)?)?))
}

impl Guest for Postgres {
    fn list(cursor: Option<String>, limit: u32) -> Result<DocumentPage> {
        let limit = page_limit(limit);
        let rows = Db::Pool.query(
            "SELECT id FROM {s}.ui_documents WHERE version > 0 AND ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2",
            &[opt_text(cursor), int(limit as u64 + 1)],
        )?;
        let more = rows.len() > limit;
        let ids = rows.into_iter().take(limit).map(|r| Row(r).text(0)).collect::<Result<Vec<_>>>()?;
        let next_cursor = if more { ids.last().cloned() } else { None };
        Ok(DocumentPage { ids, next_cursor })
    }

    fn get(id: String) -> Result<UiDocument> {
        validate_id("document id", &id)?;
        let row =
            Db::Pool.query_opt("SELECT version, nodes, updated_at FROM {s}.ui_documents WHERE id = $1 AND version > 0", &[text(id.as_str())])?;
        let row = Row(row.ok_or_else(|| StoreError::NotFound(format!("ui document {id:?}")))?);
        Ok(UiDocument { version: row.u64(0)?, nodes: nodes(&id, &row.json(1)?)?, updated_at: row.ts(2)?, id })
    }

    fn apply_ops(id: String, expected_version: Option<u64>, ops: Vec<UiOp>) -> Result<Option<UiDocument>> {
        validate_id("document id", &id)?;
        let tx = db::begin()?;
        let db = Db::Tx(&tx);
        let (version, mut nodes) = lock(&db, &id)?;
        check_version(&format!("ui document {id:?}"), version, expected_version)?;
        for (i, op) in ops.into_iter().enumerate() {
            apply_ui_op(&mut nodes, op).map_err(|e| match e {
                StoreError::Invalid(msg) => StoreError::Invalid(format!("op {i}: {msg}")),
                other => other,
            })?;
        }
        let doc = UiDocument { id, version: version + 1, nodes, updated_at: now_ms() };
        let json = serde_json::to_string(&doc.nodes).map_err(|e| internal("encoding ui nodes", e))?;
        db.execute(
            "UPDATE {s}.ui_documents SET version = $2, nodes = $3, updated_at = $4 WHERE id = $1",
            &[text(doc.id.as_str()), int(doc.version), SqlValue::Json(json), ts(doc.updated_at)],
        )?;
        db::commit(tx)?;
        Ok(Some(doc))
    }
}

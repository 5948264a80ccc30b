//! The UI document cache decorator (seed: `internal/cache/ui/cached_store.go`).
//!
//! Read-through `get`. `apply_ops` goes to the origin first, then caches the returned document
//! — only if it is newer than the cached one — or invalidates when the origin returns none.
//! Documents are shared as `Arc<UiDocument>`: immutable, so no caller can change what another
//! reads (the seed cloned at every boundary for the same guarantee).

use std::sync::Arc;

use async_trait::async_trait;

use super::{CacheConfig, CacheMetrics, Lookup, NamedCache, ReadThrough, Written, read_through, weight_str, written};
use crate::domain::{Ctx, DocumentPage, Result, UiDocument, UiOp, UiStore};

pub struct CachedUiStore {
    origin: Arc<dyn UiStore>,
    documents: ReadThrough<String, Arc<UiDocument>>,
}

#[allow(clippy::ptr_arg)] // a weigher is fn(&K, &V), and K is String
fn document_weight(id: &String, d: &Arc<UiDocument>) -> usize {
    weight_str(id)
        + d.nodes
            .iter()
            .map(|n| weight_str(&n.id) + weight_str(&n.kind) + 32 + n.props.iter().map(|(k, v)| weight_str(k) + weight_str(v)).sum::<usize>())
            .sum::<usize>()
        + 48
}

impl CachedUiStore {
    pub fn new(origin: Arc<dyn UiStore>, config: CacheConfig) -> Self {
        Self { origin, documents: ReadThrough::new(&config.tier(1.0), document_weight) }
    }

    /// Drops everything cached.
    pub fn clear(&self) {
        self.documents.invalidate_if(|_, _| true);
    }

    /// Drops the cached copy of a document.
    pub fn invalidate_document(&self, id: &str) {
        self.documents.invalidate(&id.to_string());
    }
}

#[async_trait]
impl UiStore for CachedUiStore {
    async fn get(&self, ctx: &Ctx, id: &str) -> Result<Arc<UiDocument>> {
        let key = id.to_string();
        read_through(&self.documents, Lookup::new("ui", "document"), ctx, &key, self.origin.get(ctx, id)).await
    }

    /// Not cached: a listing is for walking every document (a copy), not for serving.
    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<DocumentPage> {
        self.origin.list(ctx, cursor, limit).await
    }

    async fn apply_ops(&self, ctx: &Ctx, id: &str, expected_version: Option<u64>, ops: Vec<UiOp>) -> Result<Option<Arc<UiDocument>>> {
        let result = self.origin.apply_ops(ctx, id, expected_version, ops).await;
        match written(&result) {
            Written::Done(Some(doc)) => self.documents.store_if_newer(id.to_string(), doc.clone(), |new, cached| new.version > cached.version),
            Written::Done(None) | Written::Stale => self.invalidate_document(id),
            Written::Refused => {}
        }
        result
    }
}

impl CacheMetrics for CachedUiStore {
    fn caches(&self) -> Vec<NamedCache> {
        vec![NamedCache::of("document", &self.documents)]
    }
}

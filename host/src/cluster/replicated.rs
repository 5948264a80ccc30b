//! The replication layer: the outermost layer of a domain's store on a host in a cluster. Writes
//! go through the layers below it (the cache updates itself, the origin acknowledges), then
//! their invalidations are published before the caller gets its answer. Reads are answered by
//! the layers below only while the host's caches can be trusted; otherwise straight from the
//! origin, and not cached.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::node::{Node, NodeInner};
use crate::base::{Ctx, Result, StoreError};
use crate::cache::{Invalidation, Written, written};
use crate::domain::{
    Artifact, ArtifactMeta, ArtifactPage, ArtifactReader, ArtifactSink, ArtifactStore, BodySink, ByteRange, DocumentPage, Project, ProjectArtifact,
    ProjectArtifactStore, ProjectInput, ProjectPage, ProjectStore, Tab, TabInput, UiDocument, UiOp, UiStore, Workspace, WorkspaceInput,
    WorkspacePage, WorkspaceStore,
};

/// A domain store in a cluster: `front` is the cache (or the origin, where the domain is not
/// cached here), `origin` the store under the cache.
pub struct Replicated<S: ?Sized> {
    front: Arc<S>,
    /// `None`: `front` is the origin itself.
    origin: Option<Arc<S>>,
    node: Arc<NodeInner>,
}

impl<S: ?Sized> Replicated<S> {
    /// Replicates the writes of `front`; reads go to `origin` (the store under the cache) while
    /// the host's caches cannot be trusted. Without an `origin`, `front` is not cached.
    pub fn new(front: Arc<S>, origin: Option<Arc<S>>, node: &Node) -> Self {
        Self { front, origin, node: node.inner().clone() }
    }

    /// The store a read with `ctx` goes to.
    async fn reader(&self, ctx: &Ctx) -> &S {
        match &self.origin {
            Some(origin) if !self.node.caches_usable(ctx).await => origin,
            _ => &self.front,
        }
    }

    /// Publishes a finished write's invalidations unless the origin refused the write. A write
    /// that succeeded but could not be published is answered `unavailable` (it happened, but
    /// other hosts may serve the older value until the retried append lands).
    async fn publish<T>(&self, ctx: &Ctx, result: Result<T>, invalidations: impl FnOnce() -> Vec<Invalidation>) -> Result<T> {
        if matches!(written(&result), Written::Refused) {
            return result;
        }
        match self.node.publish(ctx, invalidations()).await {
            Ok(_) => result,
            Err(unpublished) if result.is_ok() => Err(unpublished),
            Err(StoreError::Unavailable(why)) => {
                tracing::warn!(%why, "a write of unknown outcome could not be published yet");
                result
            }
            Err(_) => result,
        }
    }
}

fn artifact(key: &str) -> Vec<Invalidation> {
    vec![Invalidation::Artifact { key: key.to_string() }]
}

#[async_trait]
impl ArtifactStore for Replicated<dyn ArtifactStore> {
    async fn put(&self, ctx: &Ctx, key: &str, body: Bytes, content_type: Option<String>) -> Result<ArtifactMeta> {
        let result = self.front.put(ctx, key, body, content_type).await;
        self.publish(ctx, result, || artifact(key)).await
    }

    async fn get(&self, ctx: &Ctx, key: &str) -> Result<Artifact> {
        self.reader(ctx).await.get(ctx, key).await
    }

    async fn head(&self, ctx: &Ctx, key: &str) -> Result<ArtifactMeta> {
        self.reader(ctx).await.head(ctx, key).await
    }

    async fn list(&self, ctx: &Ctx, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ArtifactPage> {
        self.reader(ctx).await.list(ctx, prefix, cursor, limit).await
    }

    async fn get_url(&self, ctx: &Ctx, key: &str, expires_in_secs: u32) -> Result<Option<String>> {
        self.reader(ctx).await.get_url(ctx, key, expires_in_secs).await
    }

    async fn delete(&self, ctx: &Ctx, key: &str) -> Result<()> {
        let result = self.front.delete(ctx, key).await;
        self.publish(ctx, result, || artifact(key)).await
    }

    async fn open_read(&self, ctx: &Ctx, key: &str, range: ByteRange) -> Result<ArtifactReader> {
        self.reader(ctx).await.open_read(ctx, key, range).await
    }

    /// The write publishes its invalidation when the sink finishes.
    async fn open_write(self: Arc<Self>, ctx: &Ctx, key: &str, content_type: Option<String>, size_hint: Option<u64>) -> Result<ArtifactSink> {
        let inner = self.front.clone().open_write(ctx, key, content_type, size_hint).await?;
        Ok(Box::new(PublishingSink { inner, store: self, key: key.to_string() }))
    }

    fn streams(&self) -> bool {
        self.front.streams()
    }

    fn read_call(&self) -> &'static str {
        self.front.read_call()
    }

    fn max_key_bytes(&self) -> usize {
        self.front.max_key_bytes()
    }
}

/// A streamed write that publishes its invalidation once it finishes.
struct PublishingSink {
    inner: ArtifactSink,
    store: Arc<Replicated<dyn ArtifactStore>>,
    key: String,
}

#[async_trait]
impl BodySink<ArtifactMeta> for PublishingSink {
    async fn write(&mut self, ctx: &Ctx, chunk: Bytes) -> Result<()> {
        self.inner.write(ctx, chunk).await
    }

    async fn finish(self: Box<Self>, ctx: &Ctx) -> Result<ArtifactMeta> {
        let PublishingSink { inner, store, key } = *self;
        let result = inner.finish(ctx).await;
        store.publish(ctx, result, || artifact(&key)).await
    }
}

#[async_trait]
impl ProjectStore for Replicated<dyn ProjectStore> {
    async fn get(&self, ctx: &Ctx, id: &str) -> Result<Project> {
        self.reader(ctx).await.get(ctx, id).await
    }

    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<ProjectPage> {
        self.reader(ctx).await.list(ctx, cursor, limit).await
    }

    async fn save(&self, ctx: &Ctx, input: ProjectInput, expected_version: Option<u64>) -> Result<Project> {
        let id = input.id.clone();
        let result = self.front.save(ctx, input, expected_version).await;
        self.publish(ctx, result, || vec![Invalidation::Project { id }]).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, expected_version: Option<u64>) -> Result<()> {
        let result = self.front.delete(ctx, id, expected_version).await;
        self.publish(ctx, result, || vec![Invalidation::Project { id: id.to_string() }]).await
    }
}

#[async_trait]
impl ProjectArtifactStore for Replicated<dyn ProjectArtifactStore> {
    async fn add(&self, ctx: &Ctx, project_id: &str, artifact: ProjectArtifact) -> Result<()> {
        let result = self.front.add(ctx, project_id, artifact).await;
        self.publish(ctx, result, || vec![Invalidation::ProjectArtifacts { id: project_id.to_string() }]).await
    }

    async fn list(&self, ctx: &Ctx, project_id: &str) -> Result<Vec<ProjectArtifact>> {
        self.reader(ctx).await.list(ctx, project_id).await
    }
}

#[async_trait]
impl UiStore for Replicated<dyn UiStore> {
    async fn get(&self, ctx: &Ctx, id: &str) -> Result<Arc<UiDocument>> {
        self.reader(ctx).await.get(ctx, id).await
    }

    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<DocumentPage> {
        self.front.list(ctx, cursor, limit).await
    }

    async fn apply_ops(&self, ctx: &Ctx, id: &str, expected_version: Option<u64>, ops: Vec<UiOp>) -> Result<Option<Arc<UiDocument>>> {
        let result = self.front.apply_ops(ctx, id, expected_version, ops).await;
        self.publish(ctx, result, || vec![Invalidation::Document { id: id.to_string() }]).await
    }
}

#[async_trait]
impl WorkspaceStore for Replicated<dyn WorkspaceStore> {
    async fn get(&self, ctx: &Ctx, workspace_id: &str) -> Result<Workspace> {
        self.reader(ctx).await.get(ctx, workspace_id).await
    }

    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<WorkspacePage> {
        self.front.list(ctx, cursor, limit).await
    }

    async fn list_tabs(&self, ctx: &Ctx, workspace_id: &str) -> Result<Vec<Tab>> {
        self.reader(ctx).await.list_tabs(ctx, workspace_id).await
    }

    async fn get_tab(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str) -> Result<Tab> {
        self.reader(ctx).await.get_tab(ctx, workspace_id, tab_id).await
    }

    async fn create(&self, ctx: &Ctx, input: WorkspaceInput) -> Result<Workspace> {
        let id = input.id.clone();
        let result = self.front.create(ctx, input).await;
        self.publish(ctx, result, || vec![Invalidation::Workspace { id }]).await
    }

    async fn create_tab(&self, ctx: &Ctx, workspace_id: &str, input: TabInput) -> Result<Tab> {
        let tab = input.id.clone();
        let result = self.front.create_tab(ctx, workspace_id, input).await;
        self.publish(ctx, result, || vec![Invalidation::Tab { workspace: workspace_id.to_string(), tab }]).await
    }

    async fn select_tab(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str) -> Result<Workspace> {
        let result = self.front.select_tab(ctx, workspace_id, tab_id).await;
        self.publish(ctx, result, || vec![Invalidation::Workspace { id: workspace_id.to_string() }]).await
    }

    async fn update_tab_run(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str, run_id: Option<String>) -> Result<Tab> {
        let result = self.front.update_tab_run(ctx, workspace_id, tab_id, run_id).await;
        self.publish(ctx, result, || vec![Invalidation::Tab { workspace: workspace_id.to_string(), tab: tab_id.to_string() }]).await
    }
}

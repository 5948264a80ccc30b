use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::OriginMeter;
use crate::base::{Ctx, Result};
use crate::domain::{
    Artifact, ArtifactMeta, ArtifactOperation as A, ArtifactPage, ArtifactReader, ArtifactSink, ArtifactStore, BodySink, ByteRange, DocumentPage,
    Operation, Project, ProjectArtifact, ProjectArtifactStore, ProjectInput, ProjectOperation as P, ProjectPage, ProjectStore, RunPage,
    RunnerOperation as R, RunnerReader, RunnerSink, RunnerStore, Tab, TabInput, UiDocument, UiOp, UiOperation as U, UiStore, Workspace,
    WorkspaceInput, WorkspaceOperation as W, WorkspacePage, WorkspaceStore,
};

/// A domain store whose every call is counted by a meter of the domain's operations. It
/// implements the trait of the store it wraps; a domain with two stores (projects) shares one
/// meter between them.
pub struct Metered<S: ?Sized, O: Operation> {
    inner: Arc<S>,
    meter: Arc<OriginMeter<O>>,
}

impl<S: ?Sized, O: Operation> Metered<S, O> {
    pub fn new(inner: Arc<S>, meter: Arc<OriginMeter<O>>) -> Self {
        Self { inner, meter }
    }

    pub fn meter(&self) -> &Arc<OriginMeter<O>> {
        &self.meter
    }
}

#[async_trait]
impl<S: ArtifactStore + ?Sized> ArtifactStore for Metered<S, A> {
    async fn put(&self, ctx: &Ctx, key: &str, body: Bytes, content_type: Option<String>) -> Result<ArtifactMeta> {
        self.meter.call(A::Put, self.inner.put(ctx, key, body, content_type)).await
    }

    async fn get(&self, ctx: &Ctx, key: &str) -> Result<Artifact> {
        self.meter.call(A::Get, self.inner.get(ctx, key)).await
    }

    async fn head(&self, ctx: &Ctx, key: &str) -> Result<ArtifactMeta> {
        self.meter.call(A::Head, self.inner.head(ctx, key)).await
    }

    async fn list(&self, ctx: &Ctx, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ArtifactPage> {
        self.meter.call(A::List, self.inner.list(ctx, prefix, cursor, limit)).await
    }

    async fn get_url(&self, ctx: &Ctx, key: &str, expires_in_secs: u32) -> Result<Option<String>> {
        self.meter.call(A::GetUrl, self.inner.get_url(ctx, key, expires_in_secs)).await
    }

    async fn delete(&self, ctx: &Ctx, key: &str) -> Result<()> {
        self.meter.call(A::Delete, self.inner.delete(ctx, key)).await
    }

    async fn open_read(&self, ctx: &Ctx, key: &str, range: ByteRange) -> Result<ArtifactReader> {
        self.meter.call(A::OpenRead, self.inner.open_read(ctx, key, range)).await
    }

    async fn open_write(self: Arc<Self>, ctx: &Ctx, key: &str, content_type: Option<String>, size_hint: Option<u64>) -> Result<ArtifactSink> {
        let inner = self.meter.call(A::OpenWrite, self.inner.clone().open_write(ctx, key, content_type, size_hint)).await?;
        Ok(Box::new(MeteredSink { inner, meter: self.meter.clone(), operation: A::FinishWrite }))
    }

    fn streams(&self) -> bool {
        self.inner.streams()
    }

    fn read_call(&self) -> &'static str {
        self.inner.read_call()
    }

    fn max_key_bytes(&self) -> usize {
        self.inner.max_key_bytes()
    }
}

/// A streamed write whose `finish` is metered (its opening is metered by the store).
struct MeteredSink<Done, O: Operation> {
    inner: Box<dyn BodySink<Done>>,
    meter: Arc<OriginMeter<O>>,
    operation: O,
}

#[async_trait]
impl<Done: Send + 'static, O: Operation> BodySink<Done> for MeteredSink<Done, O> {
    async fn write(&mut self, ctx: &Ctx, chunk: Bytes) -> Result<()> {
        self.inner.write(ctx, chunk).await
    }

    async fn finish(self: Box<Self>, ctx: &Ctx) -> Result<Done> {
        let MeteredSink { inner, meter, operation } = *self;
        meter.call(operation, inner.finish(ctx)).await
    }
}

#[async_trait]
impl<S: ProjectStore + ?Sized> ProjectStore for Metered<S, P> {
    async fn get(&self, ctx: &Ctx, id: &str) -> Result<Project> {
        self.meter.call(P::Get, self.inner.get(ctx, id)).await
    }

    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<ProjectPage> {
        self.meter.call(P::List, self.inner.list(ctx, cursor, limit)).await
    }

    async fn save(&self, ctx: &Ctx, input: ProjectInput, expected_version: Option<u64>) -> Result<Project> {
        self.meter.call(P::Save, self.inner.save(ctx, input, expected_version)).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, expected_version: Option<u64>) -> Result<()> {
        self.meter.call(P::Delete, self.inner.delete(ctx, id, expected_version)).await
    }
}

#[async_trait]
impl<S: ProjectArtifactStore + ?Sized> ProjectArtifactStore for Metered<S, P> {
    async fn add(&self, ctx: &Ctx, project_id: &str, artifact: ProjectArtifact) -> Result<()> {
        self.meter.call(P::AddArtifact, self.inner.add(ctx, project_id, artifact)).await
    }

    async fn list(&self, ctx: &Ctx, project_id: &str) -> Result<Vec<ProjectArtifact>> {
        self.meter.call(P::ListArtifacts, self.inner.list(ctx, project_id)).await
    }
}

#[async_trait]
impl<S: UiStore + ?Sized> UiStore for Metered<S, U> {
    async fn get(&self, ctx: &Ctx, id: &str) -> Result<Arc<UiDocument>> {
        self.meter.call(U::Get, self.inner.get(ctx, id)).await
    }

    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<DocumentPage> {
        self.meter.call(U::List, self.inner.list(ctx, cursor, limit)).await
    }

    async fn apply_ops(&self, ctx: &Ctx, id: &str, expected_version: Option<u64>, ops: Vec<UiOp>) -> Result<Option<Arc<UiDocument>>> {
        self.meter.call(U::ApplyOps, self.inner.apply_ops(ctx, id, expected_version, ops)).await
    }
}

#[async_trait]
impl<S: WorkspaceStore + ?Sized> WorkspaceStore for Metered<S, W> {
    async fn get(&self, ctx: &Ctx, workspace_id: &str) -> Result<Workspace> {
        self.meter.call(W::Get, self.inner.get(ctx, workspace_id)).await
    }

    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<WorkspacePage> {
        self.meter.call(W::List, self.inner.list(ctx, cursor, limit)).await
    }

    async fn list_tabs(&self, ctx: &Ctx, workspace_id: &str) -> Result<Vec<Tab>> {
        self.meter.call(W::ListTabs, self.inner.list_tabs(ctx, workspace_id)).await
    }

    async fn get_tab(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str) -> Result<Tab> {
        self.meter.call(W::GetTab, self.inner.get_tab(ctx, workspace_id, tab_id)).await
    }

    async fn create(&self, ctx: &Ctx, input: WorkspaceInput) -> Result<Workspace> {
        self.meter.call(W::Create, self.inner.create(ctx, input)).await
    }

    async fn create_tab(&self, ctx: &Ctx, workspace_id: &str, input: TabInput) -> Result<Tab> {
        self.meter.call(W::CreateTab, self.inner.create_tab(ctx, workspace_id, input)).await
    }

    async fn select_tab(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str) -> Result<Workspace> {
        self.meter.call(W::SelectTab, self.inner.select_tab(ctx, workspace_id, tab_id)).await
    }

    async fn update_tab_run(&self, ctx: &Ctx, workspace_id: &str, tab_id: &str, run_id: Option<String>) -> Result<Tab> {
        self.meter.call(W::UpdateTabRun, self.inner.update_tab_run(ctx, workspace_id, tab_id, run_id)).await
    }
}

#[async_trait]
impl<S: RunnerStore + ?Sized> RunnerStore for Metered<S, R> {
    async fn read(&self, ctx: &Ctx, run: &str, name: &str) -> Result<Bytes> {
        self.meter.call(R::Read, self.inner.read(ctx, run, name)).await
    }

    async fn write(&self, ctx: &Ctx, run: &str, name: &str, data: Bytes) -> Result<()> {
        self.meter.call(R::Write, self.inner.write(ctx, run, name, data)).await
    }

    async fn remove(&self, ctx: &Ctx, run: &str, name: &str) -> Result<()> {
        self.meter.call(R::Remove, self.inner.remove(ctx, run, name)).await
    }

    async fn list(&self, ctx: &Ctx, run: &str, prefix: &str) -> Result<Vec<String>> {
        self.meter.call(R::List, self.inner.list(ctx, run, prefix)).await
    }

    async fn list_runs(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<RunPage> {
        self.meter.call(R::ListRuns, self.inner.list_runs(ctx, cursor, limit)).await
    }

    async fn open_read(&self, ctx: &Ctx, run: &str, name: &str, range: ByteRange) -> Result<RunnerReader> {
        self.meter.call(R::OpenRead, self.inner.open_read(ctx, run, name, range)).await
    }

    async fn open_write(self: Arc<Self>, ctx: &Ctx, run: &str, name: &str, size_hint: Option<u64>) -> Result<RunnerSink> {
        let inner = self.meter.call(R::OpenWrite, self.inner.clone().open_write(ctx, run, name, size_hint)).await?;
        Ok(Box::new(MeteredSink { inner, meter: self.meter.clone(), operation: R::FinishWrite }))
    }

    fn streams(&self) -> bool {
        self.inner.streams()
    }

    fn read_call(&self) -> &'static str {
        self.inner.read_call()
    }
}

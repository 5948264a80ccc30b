//! The project cache decorator (seed: `internal/cache/project/cached_store.go`): two
//! dependencies, the project state origin and the project-artifact metadata origin, as the
//! seed's `NewCachedStore(origin, meta, cfg)`.
//!
//! Read-through `get` and artifact `list`; write-through `save` (the returned project is
//! cached); `delete` and `add` invalidate exactly what they change. Project listing passes
//! through (its pages change with every save of any project).

use std::sync::Arc;

use async_trait::async_trait;

use super::{CacheConfig, CacheMetrics, Lookup, NamedCache, ReadThrough, Written, read_through, weight_str, written};
use crate::domain::{Ctx, Project, ProjectArtifact, ProjectArtifactStore, ProjectInput, ProjectPage, ProjectStore, Result};

pub struct CachedProjectStore {
    origin: Arc<dyn ProjectStore>,
    meta: Arc<dyn ProjectArtifactStore>,
    projects: ReadThrough<String, Project>,
    artifacts: ReadThrough<String, Arc<Vec<ProjectArtifact>>>,
}

#[allow(clippy::ptr_arg)] // a weigher is fn(&K, &V), and K is String
fn project_weight(id: &String, p: &Project) -> usize {
    weight_str(id) + weight_str(&p.id) + weight_str(&p.name) + weight_str(&p.state) + 24
}

#[allow(clippy::ptr_arg)] // a weigher is fn(&K, &V), and K is String
fn artifacts_weight(id: &String, list: &Arc<Vec<ProjectArtifact>>) -> usize {
    weight_str(id) + list.iter().map(|a| weight_str(&a.name) + weight_str(&a.artifact_key) + weight_str(&a.kind) + 16).sum::<usize>()
}

impl CachedProjectStore {
    pub fn new(origin: Arc<dyn ProjectStore>, meta: Arc<dyn ProjectArtifactStore>, config: CacheConfig) -> Self {
        Self {
            origin,
            meta,
            projects: ReadThrough::new(&config.tier(0.6), project_weight),
            artifacts: ReadThrough::new(&config.tier(0.4), artifacts_weight),
        }
    }

    /// Drops the cached state of a project.
    pub fn invalidate_project(&self, id: &str) {
        self.projects.invalidate(&id.to_string());
    }

    /// Drops everything cached.
    pub fn clear(&self) {
        self.projects.invalidate_if(|_, _| true);
        self.artifacts.invalidate_if(|_, _| true);
    }

    /// Drops the cached artifact records of a project.
    pub fn invalidate_artifacts(&self, project_id: &str) {
        self.artifacts.invalidate(&project_id.to_string());
    }
}

#[async_trait]
impl ProjectStore for CachedProjectStore {
    async fn get(&self, ctx: &Ctx, id: &str) -> Result<Project> {
        let key = id.to_string();
        read_through(&self.projects, Lookup::new("project", "project"), ctx, &key, self.origin.get(ctx, id)).await
    }

    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<ProjectPage> {
        self.origin.list(ctx, cursor, limit).await
    }

    async fn save(&self, ctx: &Ctx, input: ProjectInput, expected_version: Option<u64>) -> Result<Project> {
        let id = input.id.clone();
        let result = self.origin.save(ctx, input, expected_version).await;
        match written(&result) {
            Written::Done(project) => self.projects.store_if_newer(id, project.clone(), |new, cached| new.version > cached.version),
            Written::Stale => self.invalidate_project(&id),
            Written::Refused => {}
        }
        result
    }

    async fn delete(&self, ctx: &Ctx, id: &str, expected_version: Option<u64>) -> Result<()> {
        let result = self.origin.delete(ctx, id, expected_version).await;
        if !matches!(written(&result), Written::Refused) {
            self.invalidate_project(id);
        }
        result
    }
}

#[async_trait]
impl ProjectArtifactStore for CachedProjectStore {
    async fn add(&self, ctx: &Ctx, project_id: &str, artifact: ProjectArtifact) -> Result<()> {
        let result = self.meta.add(ctx, project_id, artifact).await;
        if !matches!(written(&result), Written::Refused) {
            self.invalidate_artifacts(project_id);
        }
        result
    }

    async fn list(&self, ctx: &Ctx, project_id: &str) -> Result<Vec<ProjectArtifact>> {
        let load = async { self.meta.list(ctx, project_id).await.map(Arc::new) };
        let key = project_id.to_string();
        read_through(&self.artifacts, Lookup::new("project", "artifacts"), ctx, &key, load).await.map(|list| (*list).clone())
    }
}

impl CacheMetrics for CachedProjectStore {
    fn caches(&self) -> Vec<NamedCache> {
        vec![NamedCache::of("project", &self.projects), NamedCache::of("artifacts", &self.artifacts)]
    }
}

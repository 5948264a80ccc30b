//! What a write drops from the caches, as data: the same invalidations whether the write was
//! made here (the cached stores apply them as they write) or on another host sharing the origins
//! (they arrive through the replication log and are applied with [`Caches::apply`]).

use std::sync::Arc;

use super::{CacheMetrics, CachedArtifactStore, CachedProjectStore, CachedUiStore, CachedWorkspaceStore};
use crate::base::Domain;

/// One thing a write makes stale.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Invalidation {
    /// An artifact: its blob, its URLs and every list page that could hold it.
    Artifact { key: String },
    /// A project's state.
    Project { id: String },
    /// A project's artifact records.
    ProjectArtifacts { id: String },
    /// A UI document.
    Document { id: String },
    /// A workspace, its tab list and its tabs.
    Workspace { id: String },
    /// One tab and its workspace's tab list.
    Tab { workspace: String, tab: String },
}

impl Invalidation {
    pub fn domain(&self) -> Domain {
        match self {
            Invalidation::Artifact { .. } => Domain::Artifact,
            Invalidation::Project { .. } | Invalidation::ProjectArtifacts { .. } => Domain::Project,
            Invalidation::Document { .. } => Domain::Ui,
            Invalidation::Workspace { .. } | Invalidation::Tab { .. } => Domain::Workspace,
        }
    }
}

/// The cached stores, by their concrete types: what invalidations reach.
#[derive(Clone, Default)]
pub struct Caches {
    pub artifact: Option<Arc<CachedArtifactStore>>,
    pub project: Option<Arc<CachedProjectStore>>,
    pub ui: Option<Arc<CachedUiStore>>,
    pub workspace: Option<Arc<CachedWorkspaceStore>>,
}

impl Caches {
    /// Whether `domain` has a cache in front of its origin.
    pub fn is_cached(&self, domain: Domain) -> bool {
        self.metrics_of(domain).is_some()
    }

    /// The cache of `domain`, as its metrics.
    pub fn metrics_of(&self, domain: Domain) -> Option<&dyn CacheMetrics> {
        match domain {
            Domain::Artifact => self.artifact.as_deref().map(|c| c as _),
            Domain::Project => self.project.as_deref().map(|c| c as _),
            Domain::Ui => self.ui.as_deref().map(|c| c as _),
            Domain::Workspace => self.workspace.as_deref().map(|c| c as _),
            Domain::Runner => None,
        }
    }

    /// Drops what `invalidation` names from the cache it concerns (nothing if that domain is not
    /// cached here). A load that began before is kept from caching its older value.
    pub fn apply(&self, invalidation: &Invalidation) {
        match invalidation {
            Invalidation::Artifact { key } => self.artifact.iter().for_each(|c| c.forget(key)),
            Invalidation::Project { id } => self.project.iter().for_each(|c| c.invalidate_project(id)),
            Invalidation::ProjectArtifacts { id } => self.project.iter().for_each(|c| c.invalidate_artifacts(id)),
            Invalidation::Document { id } => self.ui.iter().for_each(|c| c.invalidate_document(id)),
            Invalidation::Workspace { id } => self.workspace.iter().for_each(|c| c.invalidate_workspace(id)),
            Invalidation::Tab { workspace, tab } => self.workspace.iter().for_each(|c| c.invalidate_tab(workspace, tab)),
        }
    }

    /// Whether a disk tier holds entries (they outlive the process).
    pub fn holds_disk_entries(&self) -> bool {
        self.artifact.as_ref().and_then(|c| c.disk()).is_some_and(|d| d.entries > 0)
    }

    /// Drops everything every cache holds, in memory and on disk.
    pub fn clear(&self) {
        self.artifact.iter().for_each(|c| c.clear());
        self.project.iter().for_each(|c| c.clear());
        self.ui.iter().for_each(|c| c.clear());
        self.workspace.iter().for_each(|c| c.clear());
    }
}

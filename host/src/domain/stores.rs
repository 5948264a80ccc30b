use std::sync::Arc;

use super::{ArtifactStore, ProjectArtifactStore, ProjectStore, RunnerStore, UiStore, WorkspaceStore};

/// A store for each domain that has one (`None`: not configured, or not exported).
#[derive(Clone, Default)]
pub struct Stores {
    pub artifact: Option<Arc<dyn ArtifactStore>>,
    pub project: Option<Arc<dyn ProjectStore>>,
    pub project_artifacts: Option<Arc<dyn ProjectArtifactStore>>,
    pub ui: Option<Arc<dyn UiStore>>,
    pub workspace: Option<Arc<dyn WorkspaceStore>>,
    pub runner: Option<Arc<dyn RunnerStore>>,
}

mod add;
mod delete;
mod list;

use std::sync::Arc;

use crate::domain::Stores;
use crate::domain::{ProjectArtifact, ProjectArtifactStore};

pub(super) fn cases() -> Vec<super::Case> {
    [add::cases(), list::cases(), delete::cases()].concat()
}

fn store(s: &Stores) -> Arc<dyn ProjectArtifactStore> {
    s.project_artifacts.clone().expect("the suite skips targets without project-artifacts")
}

fn record(name: &str, key: &str, size: u64) -> ProjectArtifact {
    ProjectArtifact { name: name.into(), artifact_key: key.into(), size, kind: "build".into(), created_at: 1_700_000_000_000 }
}

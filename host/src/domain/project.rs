//! Projects (seed: Project): state in one origin, artifact records in another (the seed's
//! `origin` and `meta` dependencies).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::operations;
use crate::base::{Ctx, Result};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    /// JSON text.
    pub state: String,
    pub version: u64,
    pub created_at: u64,
    pub updated_at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectInput {
    pub id: String,
    pub name: String,
    /// JSON text.
    pub state: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectPage {
    pub items: Vec<Project>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectArtifact {
    pub name: String,
    pub artifact_key: String,
    pub size: u64,
    pub kind: String,
    pub created_at: u64,
}

operations!(
    /// The operations of [`ProjectStore`] and [`ProjectArtifactStore`] (one domain, two origins).
    ProjectOperation for Project {
        Get = "get",
        List = "list",
        Save = "save" [write],
        Delete = "delete" [write],
        AddArtifact = "add-artifact" [write],
        ListArtifacts = "list-artifacts",
    }
);

/// The project state repository contract.
#[async_trait]
pub trait ProjectStore: Send + Sync {
    async fn get(&self, ctx: &Ctx, id: &str) -> Result<Project>;
    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<ProjectPage>;
    /// Creates or updates; with `expected_version`, only if the stored version equals it
    /// (0: only if missing).
    async fn save(&self, ctx: &Ctx, input: ProjectInput, expected_version: Option<u64>) -> Result<Project>;
    async fn delete(&self, ctx: &Ctx, id: &str, expected_version: Option<u64>) -> Result<()>;
}

/// The project artifact metadata contract (`AddArtifact`, `ListArtifacts`).
#[async_trait]
pub trait ProjectArtifactStore: Send + Sync {
    /// Adds or replaces (by name) an artifact record of a project.
    async fn add(&self, ctx: &Ctx, project_id: &str, artifact: ProjectArtifact) -> Result<()>;
    /// Records in name order.
    async fn list(&self, ctx: &Ctx, project_id: &str) -> Result<Vec<ProjectArtifact>>;
}

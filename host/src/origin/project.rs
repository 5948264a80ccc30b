use async_trait::async_trait;

use super::{for_each_version, mirror, plugin_call, require_export};
use crate::base::{Ctx, Result};
use crate::domain::{Project, ProjectArtifact, ProjectArtifactStore, ProjectInput, ProjectPage, ProjectStore};
use crate::runtime::{Interface, Plugin};

for_each_version!(projects =>
    mirror!(wit::Project => Project { id, name, state, version, created_at, updated_at });
    mirror!(wit::ProjectInput => ProjectInput { id, name, state });

    impl From<wit::ProjectPage> for ProjectPage {
        fn from(page: wit::ProjectPage) -> Self {
            ProjectPage { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor }
        }
    }
);
for_each_version!(project_artifacts =>
    mirror!(wit::ProjectArtifact => ProjectArtifact { name, artifact_key, size, kind, created_at });
);

/// [`ProjectStore`] over a plugin exporting `storehost:origin/projects`.
#[derive(Clone, Debug)]
pub struct PluginProjectStore {
    plugin: Plugin,
}

impl PluginProjectStore {
    pub fn new(plugin: Plugin) -> anyhow::Result<Self> {
        require_export(&plugin, Interface::Projects)?;
        Ok(Self { plugin })
    }
}

#[async_trait]
impl ProjectStore for PluginProjectStore {
    async fn get(&self, ctx: &Ctx, id: &str) -> Result<Project> {
        let id = id.to_string();
        plugin_call!(self.plugin, ctx, "projects.get", projects, |g, s| g.call_get(s, &id)).await
    }

    async fn list(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<ProjectPage> {
        let cursor = cursor.map(String::from);
        plugin_call!(self.plugin, ctx, "projects.list", projects, |g, s| g.call_list(s, cursor.as_deref(), limit)).await
    }

    async fn save(&self, ctx: &Ctx, input: ProjectInput, expected_version: Option<u64>) -> Result<Project> {
        plugin_call!(self.plugin, ctx, "projects.save", projects, |g, s| g.call_save(s, &input.into(), expected_version)).await
    }

    async fn delete(&self, ctx: &Ctx, id: &str, expected_version: Option<u64>) -> Result<()> {
        let id = id.to_string();
        plugin_call!(self.plugin, ctx, "projects.delete", projects, |g, s| g.call_delete(s, &id, expected_version)).await
    }
}

/// [`ProjectArtifactStore`] over a plugin exporting `storehost:origin/project-artifacts`.
#[derive(Clone, Debug)]
pub struct PluginProjectArtifactStore {
    plugin: Plugin,
}

impl PluginProjectArtifactStore {
    pub fn new(plugin: Plugin) -> anyhow::Result<Self> {
        require_export(&plugin, Interface::ProjectArtifacts)?;
        Ok(Self { plugin })
    }
}

#[async_trait]
impl ProjectArtifactStore for PluginProjectArtifactStore {
    async fn add(&self, ctx: &Ctx, project_id: &str, artifact: ProjectArtifact) -> Result<()> {
        let project_id = project_id.to_string();
        plugin_call!(self.plugin, ctx, "project-artifacts.add", project_artifacts, |g, s| g.call_add(s, &project_id, &artifact.into())).await
    }

    async fn list(&self, ctx: &Ctx, project_id: &str) -> Result<Vec<ProjectArtifact>> {
        let project_id = project_id.to_string();
        plugin_call!(self.plugin, ctx, "project-artifacts.list", project_artifacts, |g, s| async {
            Ok::<_, wasmtime::Error>(
                g.call_list(s, &project_id).await?.map(|list| list.into_iter().map(Into::into).collect::<Vec<ProjectArtifact>>()),
            )
        })
        .await
    }
}

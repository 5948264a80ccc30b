use async_trait::async_trait;
use bytes::Bytes;

use super::{plugin_call, require_export};
use crate::base::{Ctx, Result};
use crate::domain::RunnerStore;
use crate::runtime::{Interface, Plugin};

/// [`RunnerStore`] over a plugin exporting `storehost:origin/runner-artifacts`.
#[derive(Clone, Debug)]
pub struct PluginRunnerStore {
    plugin: Plugin,
}

impl PluginRunnerStore {
    pub fn new(plugin: Plugin) -> anyhow::Result<Self> {
        require_export(&plugin, Interface::RunnerArtifacts)?;
        Ok(Self { plugin })
    }
}

#[async_trait]
impl RunnerStore for PluginRunnerStore {
    async fn read(&self, ctx: &Ctx, run: &str, name: &str) -> Result<Bytes> {
        let (run, name) = (run.to_string(), name.to_string());
        plugin_call!(self.plugin, ctx, "runner-artifacts.read", runner_artifacts, |g, s| g.call_read(s, &run, &name)).await.map(Bytes::from)
    }

    async fn write(&self, ctx: &Ctx, run: &str, name: &str, data: Bytes) -> Result<()> {
        let (run, name) = (run.to_string(), name.to_string());
        plugin_call!(self.plugin, ctx, "runner-artifacts.write", runner_artifacts, |g, s| g.call_write(s, &run, &name, &data)).await
    }

    async fn remove(&self, ctx: &Ctx, run: &str, name: &str) -> Result<()> {
        let (run, name) = (run.to_string(), name.to_string());
        plugin_call!(self.plugin, ctx, "runner-artifacts.remove", runner_artifacts, |g, s| g.call_remove(s, &run, &name)).await
    }

    async fn list(&self, ctx: &Ctx, run: &str, prefix: &str) -> Result<Vec<String>> {
        let (run, prefix) = (run.to_string(), prefix.to_string());
        plugin_call!(self.plugin, ctx, "runner-artifacts.list", runner_artifacts, |g, s| g.call_list(s, &run, &prefix)).await
    }
}

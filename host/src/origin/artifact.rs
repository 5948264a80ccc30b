use async_trait::async_trait;
use bytes::Bytes;

use super::{mirror, plugin_call, require_export};
use crate::base::{Ctx, Result};
use crate::domain::{Artifact, ArtifactMeta, ArtifactPage, ArtifactStore};
use crate::runtime::bindings::origin::artifacts as wit;
use crate::runtime::{Interface, Plugin};

mirror!(wit::ArtifactMeta => ArtifactMeta { key, size, content_type, sha256, created_at });

/// [`ArtifactStore`] over a plugin exporting `storehost:origin/artifacts`.
#[derive(Clone, Debug)]
pub struct PluginArtifactStore {
    plugin: Plugin,
}

impl PluginArtifactStore {
    pub fn new(plugin: Plugin) -> anyhow::Result<Self> {
        require_export(&plugin, Interface::Artifacts)?;
        Ok(Self { plugin })
    }
}

#[async_trait]
impl ArtifactStore for PluginArtifactStore {
    async fn put(&self, ctx: &Ctx, key: &str, body: Bytes, content_type: Option<String>) -> Result<ArtifactMeta> {
        let key = key.to_string();
        plugin_call!(self.plugin, ctx, "artifacts.put", artifacts, |g, s| g.call_put(s, &key, &body, content_type.as_deref())).await.map(Into::into)
    }

    async fn get(&self, ctx: &Ctx, key: &str) -> Result<Artifact> {
        let key = key.to_string();
        let a: wit::Artifact = plugin_call!(self.plugin, ctx, "artifacts.get", artifacts, |g, s| g.call_get(s, &key)).await?;
        Ok(Artifact::new(a.meta.into(), Bytes::from(a.body)))
    }

    async fn head(&self, ctx: &Ctx, key: &str) -> Result<ArtifactMeta> {
        let key = key.to_string();
        plugin_call!(self.plugin, ctx, "artifacts.head", artifacts, |g, s| g.call_head(s, &key)).await.map(Into::into)
    }

    async fn list(&self, ctx: &Ctx, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ArtifactPage> {
        let (prefix, cursor) = (prefix.to_string(), cursor.map(String::from));
        let page: wit::ArtifactPage =
            plugin_call!(self.plugin, ctx, "artifacts.list", artifacts, |g, s| g.call_list(s, &prefix, cursor.as_deref(), limit)).await?;
        Ok(ArtifactPage { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor })
    }

    async fn get_url(&self, ctx: &Ctx, key: &str, expires_in_secs: u32) -> Result<Option<String>> {
        let key = key.to_string();
        plugin_call!(self.plugin, ctx, "artifacts.get-url", artifacts, |g, s| g.call_get_url(s, &key, expires_in_secs)).await
    }

    async fn delete(&self, ctx: &Ctx, key: &str) -> Result<()> {
        let key = key.to_string();
        plugin_call!(self.plugin, ctx, "artifacts.delete", artifacts, |g, s| g.call_delete(s, &key)).await
    }
}

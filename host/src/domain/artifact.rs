//! Gateway artifacts (seed: Artifact).

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Ctx, Result, mirror, plugin_call, require_export};
use crate::runtime::bindings::origin::artifacts as wit;
use crate::runtime::{Interface, Plugin};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    pub key: String,
    pub size: u64,
    pub content_type: Option<String>,
    /// Lower-case hex SHA-256 of the body.
    pub sha256: String,
    /// Unix milliseconds.
    pub created_at: u64,
}

mirror!(wit::ArtifactMeta => ArtifactMeta { key, size, content_type, sha256, created_at });

/// An artifact with its body. Cloning shares the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub meta: ArtifactMeta,
    pub body: Bytes,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactPage {
    pub items: Vec<ArtifactMeta>,
    pub next_cursor: Option<String>,
}

/// Checks a key against the contract's rules: 1–1024 bytes, `/`-separated, no empty, `.` or
/// `..` segment, no NUL, no leading `/`. The host checks keys itself before any origin call,
/// since a plugin written in any language may not.
///
/// # Errors
/// `invalid`, saying which rule the key breaks.
pub fn validate_key(key: &str) -> Result<()> {
    use super::StoreError::Invalid;
    if key.is_empty() || key.len() > 1024 {
        return Err(Invalid(format!("a key must be 1 to 1024 bytes, this one is {}", key.len())));
    }
    if key.contains('\0') {
        return Err(Invalid("a key must not contain NUL".into()));
    }
    if key.starts_with('/') || key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(Invalid(format!("key {key:?} has a leading '/' or an empty, '.' or '..' segment")));
    }
    Ok(())
}

/// The artifact repository contract.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Creates or replaces an artifact.
    async fn put(&self, ctx: &Ctx, key: &str, body: Bytes, content_type: Option<String>) -> Result<ArtifactMeta>;
    async fn get(&self, ctx: &Ctx, key: &str) -> Result<Artifact>;
    async fn head(&self, ctx: &Ctx, key: &str) -> Result<ArtifactMeta>;
    /// Keys starting with `prefix` in byte order, after `cursor`, at most `limit` (0: default).
    async fn list(&self, ctx: &Ctx, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ArtifactPage>;
    /// The origin's own URL for the artifact, or `None` when it cannot issue one.
    async fn get_url(&self, ctx: &Ctx, key: &str, expires_in_secs: u32) -> Result<Option<String>>;
    /// Deletes; deleting a missing artifact succeeds.
    async fn delete(&self, ctx: &Ctx, key: &str) -> Result<()>;
}

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
        plugin_call!(self.plugin, ctx, "artifacts.put", artifacts, |g, s| g.call_put(s, &key, &body, content_type.as_deref()))
            .await
            .map(Into::into)
    }

    async fn get(&self, ctx: &Ctx, key: &str) -> Result<Artifact> {
        let key = key.to_string();
        let a: wit::Artifact = plugin_call!(self.plugin, ctx, "artifacts.get", artifacts, |g, s| g.call_get(s, &key)).await?;
        Ok(Artifact { meta: a.meta.into(), body: Bytes::from(a.body) })
    }

    async fn head(&self, ctx: &Ctx, key: &str) -> Result<ArtifactMeta> {
        let key = key.to_string();
        plugin_call!(self.plugin, ctx, "artifacts.head", artifacts, |g, s| g.call_head(s, &key)).await.map(Into::into)
    }

    async fn list(&self, ctx: &Ctx, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ArtifactPage> {
        let (prefix, cursor) = (prefix.to_string(), cursor.map(String::from));
        let page: wit::ArtifactPage = plugin_call!(self.plugin, ctx, "artifacts.list", artifacts, |g, s| g.call_list(s, &prefix, cursor.as_deref(), limit)).await?;
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

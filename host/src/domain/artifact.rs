//! Gateway artifacts (seed: Artifact).

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::operations;
use crate::base::{Ctx, Result};

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

/// Where a read was answered: the origin, or a cache tier in front of it. Reported by the
/// layer that answered, so the HTTP layer can say so (`X-Cache`) knowing only the trait.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Served {
    #[default]
    Origin,
    /// The memory tier: no disk or origin read.
    Memory,
    /// The disk tier.
    Disk,
}

/// An artifact with its body. Cloning shares the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub meta: ArtifactMeta,
    pub body: Bytes,
    /// Which layer answered the read that returned it.
    pub served: Served,
}

impl Artifact {
    /// An artifact as an origin returns it.
    pub fn new(meta: ArtifactMeta, body: Bytes) -> Self {
        Self { meta, body, served: Served::Origin }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactPage {
    pub items: Vec<ArtifactMeta>,
    pub next_cursor: Option<String>,
}

operations!(
    /// The operations of [`ArtifactStore`].
    ArtifactOperation for Artifact {
        Put = "put" [write],
        Get = "get",
        Head = "head",
        List = "list",
        GetUrl = "get-url",
        Delete = "delete" [write],
    }
);

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

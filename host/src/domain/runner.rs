//! The runner's artifact store (seed: `runner.ArtifactStore`), kept apart from the gateway
//! caches: no cache decorator, only metrics.

use async_trait::async_trait;
use bytes::Bytes;

use super::operations;
use crate::base::{Ctx, Result};

operations!(
    /// The operations of [`RunnerStore`].
    RunnerOperation for Runner {
        Read = "read",
        Write = "write" [write],
        Remove = "remove" [write],
        List = "list",
    }
);

/// The runner artifact contract: files of a run, by name.
#[async_trait]
pub trait RunnerStore: Send + Sync {
    async fn read(&self, ctx: &Ctx, run: &str, name: &str) -> Result<Bytes>;
    async fn write(&self, ctx: &Ctx, run: &str, name: &str, data: Bytes) -> Result<()>;
    /// Removing a missing file succeeds.
    async fn remove(&self, ctx: &Ctx, run: &str, name: &str) -> Result<()>;
    /// Names starting with `prefix`, in byte order.
    async fn list(&self, ctx: &Ctx, run: &str, prefix: &str) -> Result<Vec<String>>;
}

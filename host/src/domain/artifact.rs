//! Gateway artifacts (seed: Artifact).

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::body::{self, BodySink, BodyStream, ByteRange, Gathered, WHOLE_BODY_LIMIT};
use super::operations;
use crate::base::{Ctx, Result, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// The replica that owns the key (peer fill).
    Peer,
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

/// A streamed read: the artifact's metadata (the whole body's), the bytes of it the read
/// covers, and those bytes.
pub struct ArtifactReader {
    pub meta: ArtifactMeta,
    pub range: Range<u64>,
    pub body: BodyStream,
    /// Which layer answered.
    pub served: Served,
}

impl ArtifactReader {
    /// `range` of an artifact read whole.
    pub fn sliced(artifact: Artifact, range: ByteRange) -> Self {
        let range = range.within(artifact.meta.size);
        let bytes = artifact.body.slice(range.start as usize..range.end as usize);
        Self { meta: artifact.meta, range, body: body::once(bytes), served: artifact.served }
    }
}

/// Where a streamed write of an artifact goes; [`finish`](BodySink::finish) gives the new
/// metadata.
pub type ArtifactSink = Box<dyn BodySink<ArtifactMeta>>;

/// Refuses a body declared larger than a store that takes bodies whole can hold.
pub(crate) fn check_whole(size_hint: Option<u64>) -> Result<()> {
    match size_hint {
        Some(size) if size > WHOLE_BODY_LIMIT => {
            Err(StoreError::Invalid(format!("a body of {size} bytes is over the {WHOLE_BODY_LIMIT} bytes this store takes whole")))
        }
        _ => Ok(()),
    }
}

/// A sink that gathers the body (up to [`WHOLE_BODY_LIMIT`]) and puts it whole into `store`:
/// the default [`ArtifactStore::open_write`].
pub fn gathered<S: ArtifactStore + ?Sized>(store: Arc<S>, key: &str, content_type: Option<String>, size_hint: Option<u64>) -> Result<ArtifactSink> {
    check_whole(size_hint)?;
    let key = key.to_string();
    Ok(Box::new(Gathered::new(WHOLE_BODY_LIMIT, Box::new(move |ctx, body| Box::pin(async move { store.put(&ctx, &key, body, content_type).await })))))
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
        OpenRead = "open-read",
        OpenWrite = "open-write" [write],
        FinishWrite = "finish-write" [write],
    }
);

/// The artifact repository contract.
#[async_trait]
pub trait ArtifactStore: Send + Sync + 'static {
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

    /// Reads `range` of an artifact as a stream. By default, the whole body is read and sliced.
    async fn open_read(&self, ctx: &Ctx, key: &str, range: ByteRange) -> Result<ArtifactReader> {
        Ok(ArtifactReader::sliced(self.get(ctx, key).await?, range))
    }

    /// Opens a streamed write of the artifact at `key` (`size_hint`: the body's length, when
    /// known); it changes when the sink finishes. By default the body is gathered in memory (up
    /// to [`WHOLE_BODY_LIMIT`]) and put whole.
    async fn open_write(self: Arc<Self>, ctx: &Ctx, key: &str, content_type: Option<String>, size_hint: Option<u64>) -> Result<ArtifactSink> {
        let _ = ctx;
        gathered(self, key, content_type, size_hint)
    }

    /// Whether [`open_read`](Self::open_read) and [`open_write`](Self::open_write) stream
    /// (`false`: the defaults, which hold a body whole).
    fn streams(&self) -> bool {
        false
    }

    /// The origin call [`open_read`](Self::open_read) makes, as messages about it name it.
    fn read_call(&self) -> &'static str {
        "open-read"
    }

    /// The longest key, in bytes, the store holds (at most the contract's 1024).
    fn max_key_bytes(&self) -> usize {
        crate::domain::validate::MAX_KEY_BYTES
    }
}

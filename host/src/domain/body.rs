//! Bodies in pieces: the byte range a read asks for, the stream a read returns, and the sink a
//! streamed write goes into. A store that cannot stream gets both from its whole-body calls
//! (the traits' default methods); one that can (a 0.2.0 plugin, the disk tier) never holds a
//! body whole.

use std::ops::Range;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream};

use crate::base::{Ctx, Result, StoreError};

/// A body read in chunks. The chunks of a stream that ends without an error are the whole
/// range asked for.
pub type BodyStream = BoxStream<'static, Result<Bytes>>;

/// The chunk size streams aim at: what one plugin call carries.
pub const CHUNK: usize = 1 << 20;

/// The bytes of a body a read asks for: `len` bytes from `offset` (`None`: to the end).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ByteRange {
    pub offset: u64,
    pub len: Option<u64>,
}

impl ByteRange {
    /// The whole body.
    pub const ALL: ByteRange = ByteRange { offset: 0, len: None };

    pub fn new(offset: u64, len: Option<u64>) -> Self {
        Self { offset, len }
    }

    pub fn is_all(self) -> bool {
        self == Self::ALL
    }

    /// The bytes it covers of a body of `size` bytes (empty at or past the end).
    pub fn within(self, size: u64) -> Range<u64> {
        let start = self.offset.min(size);
        let end = self.len.map_or(size, |len| start.saturating_add(len).min(size));
        start..end
    }
}

/// A stream of one chunk (or none, for an empty body).
pub fn once(body: Bytes) -> BodyStream {
    if body.is_empty() { Box::pin(stream::empty()) } else { Box::pin(stream::once(async move { Ok(body) })) }
}

/// Collects a stream whole (for a caller that needs the body in one piece). A body of one
/// chunk is that chunk, not a copy of it.
pub async fn collect(mut body: BodyStream) -> Result<Bytes> {
    let Some(first) = body.next().await.transpose()? else { return Ok(Bytes::new()) };
    let Some(second) = body.next().await.transpose()? else { return Ok(first) };
    let mut all = BytesMut::with_capacity(first.len() + second.len());
    all.extend_from_slice(&first);
    all.extend_from_slice(&second);
    while let Some(chunk) = body.next().await {
        all.extend_from_slice(&chunk?);
    }
    Ok(all.freeze())
}

/// Where a streamed write goes. Nothing is visible until [`finish`](Self::finish) returns;
/// a sink dropped before that is aborted and leaves nothing.
#[async_trait]
pub trait BodySink<Done>: Send {
    /// Appends `chunk`.
    async fn write(&mut self, ctx: &Ctx, chunk: Bytes) -> Result<()>;
    /// Makes what was written the stored body, at once.
    async fn finish(self: Box<Self>, ctx: &Ctx) -> Result<Done>;
}

/// Writes every chunk of `body` into `sink` and finishes it; a failure drops the sink unfinished
/// (which aborts it).
pub async fn pump<Done>(ctx: &Ctx, mut sink: Box<dyn BodySink<Done>>, mut body: BodyStream) -> Result<Done> {
    while let Some(chunk) = body.next().await {
        sink.write(ctx, chunk?).await?;
    }
    sink.finish(ctx).await
}

/// The most a store without streaming takes as one body (it holds it whole, twice: in the
/// host and in the plugin).
pub const WHOLE_BODY_LIMIT: u64 = 64 << 20;

/// What a [`Gathered`] sink does with the whole body.
pub type StoreWhole<Done> = Box<dyn FnOnce(Ctx, Bytes) -> BoxFuture<'static, Result<Done>> + Send>;

/// A sink that gathers the body in memory (up to `limit` bytes) and hands it whole to `store`
/// at the end: how a store without streaming takes a streamed body.
pub struct Gathered<Done> {
    body: BytesMut,
    limit: u64,
    store: StoreWhole<Done>,
}

impl<Done> Gathered<Done> {
    pub fn new(limit: u64, store: StoreWhole<Done>) -> Self {
        Self { body: BytesMut::new(), limit, store }
    }
}

#[async_trait]
impl<Done: Send + 'static> BodySink<Done> for Gathered<Done> {
    async fn write(&mut self, _ctx: &Ctx, chunk: Bytes) -> Result<()> {
        if self.body.len() as u64 + chunk.len() as u64 > self.limit {
            return Err(StoreError::Invalid(format!("the body is over the {} bytes this store takes whole", self.limit)));
        }
        self.body.extend_from_slice(&chunk);
        Ok(())
    }

    async fn finish(self: Box<Self>, ctx: &Ctx) -> Result<Done> {
        (self.store)(ctx.clone(), self.body.freeze()).await
    }
}

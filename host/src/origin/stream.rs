//! Streams over plugin sessions: a body read chunk by chunk from a guest's reader resource, or
//! by the host from a file the plugin handed over, and a sink writing chunks to a guest's
//! writer resource.

use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::stream;
use sha2::{Digest, Sha256};

use crate::base::{Ctx, Result, StoreError};
use crate::domain::body::{BodySink, BodyStream, CHUNK};
use crate::runtime::{HostFile, Opened, Plugin, Session};

/// Reads the next chunk (at most [`CHUNK`] bytes; `None` at the end) from a session's reader.
pub(super) type ReadChunk = for<'a> fn(&'a mut Session, &'a Ctx) -> BoxFuture<'a, Result<Option<Vec<u8>>>>;
/// Writes a chunk to a session's writer.
pub(super) type WriteChunk = for<'a> fn(&'a mut Session, &'a Ctx, Bytes) -> BoxFuture<'a, Result<()>>;
/// Finishes a session's writer, given the sha256 (lowercase hex) of everything written when the
/// writer was made with [`Writer::hashed`].
pub(super) type Finish<Done> = for<'a> fn(&'a mut Session, &'a Ctx, Option<String>) -> BoxFuture<'a, Result<Done>>;

/// The `len` bytes a session's reader yields, as a stream. A reader that yields more or fewer
/// bytes than that, or an empty chunk, ends the stream with an error. Each chunk is its own
/// call, with the plugin's timeout and `ctx`'s cancellation (not its deadline).
pub(super) fn reader(session: Session, ctx: &Ctx, len: u64, read: ReadChunk) -> BodyStream {
    struct State {
        session: Option<Session>,
        ctx: Ctx,
        left: u64,
        read: ReadChunk,
    }
    let state = State { session: Some(session), ctx: ctx.without_deadline(), left: len, read };
    Box::pin(stream::unfold(state, |mut state| async move {
        let mut session = state.session.take()?;
        let outcome = match (state.read)(&mut session, &state.ctx).await {
            Ok(Some(chunk)) if chunk.is_empty() => Err(StoreError::Internal("the plugin's reader returned an empty chunk".into())),
            Ok(Some(chunk)) if chunk.len() as u64 > state.left => {
                Err(StoreError::Internal(format!("the plugin's reader returned {} bytes more than the range", chunk.len() as u64 - state.left)))
            }
            Ok(Some(chunk)) => {
                state.left -= chunk.len() as u64;
                state.session = Some(session);
                return Some((Ok(Bytes::from(chunk)), state));
            }
            Ok(None) if state.left > 0 => Err(StoreError::Internal(format!("the plugin's reader ended {} bytes early", state.left))),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        session.close().await;
        match outcome {
            Ok(()) => None,
            Err(e) => Some((Err(e), state)),
        }
    }))
}

/// The `range` of a body of `size` bytes that a plugin opened: from the file it handed over
/// (the body's bytes from byte `start` of it), or else through its reader's session.
///
/// # Errors
/// The file is shorter than the plugin says the body is.
pub(super) fn opened(
    plugin: &Plugin,
    size: u64,
    range: Range<u64>,
    opened: Opened<(HostFile, u64)>,
    ctx: &Ctx,
    read: ReadChunk,
) -> Result<BodyStream> {
    match opened {
        Opened::Host((file, start)) => {
            if start.checked_add(size).is_none_or(|end| end > file.size()) {
                return Err(StoreError::Internal(format!(
                    "plugin {}: a body of {size} bytes from byte {start} is past the end of {} ({} bytes)",
                    plugin.name(),
                    file.path(),
                    file.size()
                )));
            }
            Ok(self::file(file, start + range.start, range.end - range.start))
        }
        Opened::Session(session) => Ok(reader(session, ctx, range.end - range.start, read)),
    }
}

/// `len` bytes of `file` from `offset`, read by the host in chunks of [`CHUNK`] bytes. A chunk
/// of at most [`HostFile::SHORT_READ`] bytes is read in place: one positioned read from the page
/// cache costs less than handing it to another thread and back (and a small file the plugin
/// already read is not read again: see [`HostFile`]). A longer one is read on the blocking pool
/// (a chunk from the page cache still takes a good part of a millisecond). A file that ends
/// early ends the stream with an error.
pub(super) fn file(file: HostFile, offset: u64, len: u64) -> BodyStream {
    let failed = |file: &HostFile, e: &dyn std::fmt::Display| StoreError::Internal(format!("reading {}: {e}", file.path()));
    Box::pin(stream::try_unfold((Arc::new(file), offset, offset + len), move |(file, at, end)| async move {
        if at >= end {
            return Ok(None);
        }
        let want = CHUNK.min((end - at) as usize);
        let read = if want <= HostFile::SHORT_READ {
            file.read_at(at, want)
        } else {
            let reading = file.clone();
            tokio::task::spawn_blocking(move || reading.read_at(at, want)).await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
        };
        let chunk = read.map_err(|e| failed(&file, &e))?;
        if chunk.is_empty() {
            return Err(failed(&file, &format_args!("the file ended {} bytes early", end - at)));
        }
        let next = at + chunk.len() as u64;
        Ok(Some((chunk, (file, next, end))))
    }))
}

/// A sink over a session's writer: chunks are gathered up to [`CHUNK`] bytes, so that one call
/// carries one chunk whatever sizes the caller writes in.
pub(super) struct Writer<Done> {
    session: Session,
    buffer: BytesMut,
    hasher: Option<Sha256>,
    write: WriteChunk,
    finish: Finish<Done>,
}

impl<Done> Writer<Done> {
    pub(super) fn new(session: Session, write: WriteChunk, finish: Finish<Done>) -> Self {
        Self { session, buffer: BytesMut::new(), hasher: None, write, finish }
    }

    /// A writer that also hashes what goes through it, natively, and hands the digest to
    /// `finish`: the guest need not hash the body in its own (slower) code.
    pub(super) fn hashed(session: Session, write: WriteChunk, finish: Finish<Done>) -> Self {
        Self { hasher: Some(Sha256::new()), ..Self::new(session, write, finish) }
    }
}

#[async_trait::async_trait]
impl<Done: Send + 'static> BodySink<Done> for Writer<Done> {
    async fn write(&mut self, ctx: &Ctx, chunk: Bytes) -> Result<()> {
        let ctx = ctx.without_deadline();
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&chunk);
        }
        self.buffer.extend_from_slice(&chunk);
        while self.buffer.len() >= CHUNK {
            let full = self.buffer.split_to(CHUNK).freeze();
            (self.write)(&mut self.session, &ctx, full).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>, ctx: &Ctx) -> Result<Done> {
        let ctx = ctx.without_deadline();
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer).freeze();
            (self.write)(&mut self.session, &ctx, rest).await?;
        }
        let sha256 = self.hasher.take().map(|hasher| hex::encode(hasher.finalize()));
        let done = (self.finish)(&mut self.session, &ctx, sha256).await?;
        let this = *self;
        this.session.close().await;
        Ok(done)
    }
}

//! Large artifact bodies in the artifact cache: read from the disk tier's files by range, teed
//! into the disk tier while they stream from the origin, and written through without entering
//! the memory tier.
//!
//! A disk entry is the record `[u32 LE metadata length][metadata JSON][body]`, small or large;
//! a large one is written and read in pieces. A body streamed from the origin is kept on disk
//! only if it arrived whole, with the size and SHA-256 its metadata gives, and no write of the
//! key happened meanwhile.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use storehost_primitives::{DiskStore, DiskValue, DiskWriter, Ticket};

use super::ReadThrough;
use crate::base::{Ctx, Result, StoreError};
use crate::domain::body::{BodySink, BodyStream, ByteRange, CHUNK};
use crate::domain::{Artifact, ArtifactMeta, ArtifactReader, ArtifactSink, Served};

/// The header of a disk record: the metadata, length-prefixed.
pub(super) fn header(meta: &ArtifactMeta) -> Vec<u8> {
    let json = serde_json::to_vec(meta).expect("metadata serialises");
    let mut out = Vec::with_capacity(4 + json.len());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out
}

/// Reads a disk value's header: its metadata and where the body starts. `None`: not a record
/// of a body of the size the metadata says.
fn read_header(value: &DiskValue) -> Option<(ArtifactMeta, u64)> {
    let mut len = [0u8; 4];
    value.file().read_exact_at(&mut len, 0).ok()?;
    let len = u32::from_le_bytes(len) as u64;
    let mut json = vec![0u8; usize::try_from(len).ok()?];
    value.file().read_exact_at(&mut json, 4).ok()?;
    let meta: ArtifactMeta = serde_json::from_slice(&json).ok()?;
    let start = 4 + len;
    (value.size().checked_sub(start) == Some(meta.size)).then_some((meta, start))
}

/// A disk entry's metadata, opened for a ranged read.
pub(super) struct DiskEntry {
    value: DiskValue,
    pub(super) meta: ArtifactMeta,
    body_start: u64,
}

/// Opens the disk entry of `key`, if there is a sound one.
pub(super) fn open_entry(disk: &DiskStore, key: &str) -> Option<DiskEntry> {
    let value = match disk.open_value(key) {
        Ok(Some(value)) => value,
        Ok(None) => return None,
        Err(err) => {
            tracing::warn!(%err, key, "disk cache open failed");
            return None;
        }
    };
    match read_header(&value) {
        Some((meta, body_start)) if meta.key == key => Some(DiskEntry { value, meta, body_start }),
        _ => {
            disk.discard(&value);
            None
        }
    }
}

/// `range` of a disk entry's body, read in chunks off the runtime's threads. A read of the
/// whole body checks the record's checksum at its end; a value that fails is removed from the
/// disk tier and the stream ends with an error.
pub(super) fn read_entry(disk: Arc<DiskStore>, entry: DiskEntry, range: ByteRange) -> ArtifactReader {
    let span = range.within(entry.meta.size);
    let verify = span.start == 0 && span.end == entry.meta.size;
    let meta = entry.meta.clone();
    let body_start = entry.body_start;
    struct State {
        disk: Arc<DiskStore>,
        value: Arc<DiskValue>,
        digest: Option<storehost_primitives::ValueDigest>,
        next: u64,
        end: u64,
        body_start: u64,
        done: bool,
    }
    let value = Arc::new(entry.value);
    let digest = verify.then(|| {
        let mut digest = value.digest();
        let mut head = vec![0u8; body_start as usize];
        if value.file().read_exact_at(&mut head, 0).is_ok() {
            digest.update(&head);
        }
        digest
    });
    let state = State { disk, value, digest, next: span.start, end: span.end, body_start, done: false };
    let body: BodyStream = Box::pin(futures_util::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        if state.next >= state.end {
            state.done = true;
            let digest = state.digest.take()?;
            if state.value.verify(&digest) {
                return None;
            }
            state.disk.discard(&state.value);
            return Some((Err(StoreError::Internal("the disk cache's copy failed its checksum; it was removed".into())), state));
        }
        let len = (state.end - state.next).min(CHUNK as u64) as usize;
        let (value, at) = (state.value.clone(), state.body_start + state.next);
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            value.file().read_exact_at(&mut buf, at).map(|()| buf)
        })
        .await;
        match read {
            Ok(Ok(buf)) => {
                if let Some(digest) = &mut state.digest {
                    digest.update(&buf);
                }
                state.next += len as u64;
                Some((Ok(Bytes::from(buf)), state))
            }
            Ok(Err(e)) => {
                state.done = true;
                Some((Err(StoreError::Internal(format!("reading the disk cache: {e}"))), state))
            }
            Err(e) => {
                state.done = true;
                Some((Err(StoreError::Internal(format!("reading the disk cache: {e}"))), state))
            }
        }
    }));
    ArtifactReader { meta, range: span, body, served: Served::Disk }
}

/// Tees a whole body streaming from the origin into the disk tier: the entry is committed when
/// the stream ends whole and sound (size and SHA-256 as in the metadata) and `ticket` is still
/// current; dropped early or failing, nothing is kept.
pub(super) fn tee_to_disk(
    disk: &Arc<DiskStore>,
    blobs: Arc<ReadThrough<String, Artifact>>,
    ticket: Ticket,
    reader: ArtifactReader,
) -> ArtifactReader {
    let ArtifactReader { meta, range, body, served } = reader;
    let mut writer = match disk.writer(&meta.key) {
        Ok(writer) => writer,
        Err(err) => {
            tracing::warn!(%err, key = %meta.key, "disk cache write failed");
            return ArtifactReader { meta, range, body, served };
        }
    };
    if let Err(err) = writer.write(&header(&meta)) {
        tracing::warn!(%err, key = %meta.key, "disk cache write failed");
        return ArtifactReader { meta, range, body, served };
    }
    struct Tee {
        writer: Option<DiskWriter>,
        hasher: Sha256,
        size: u64,
    }
    let expected = meta.clone();
    let mut tee = Tee { writer: Some(writer), hasher: Sha256::new(), size: 0 };
    let body = body
        .map(move |chunk| {
            match &chunk {
                Ok(bytes) => {
                    if let Some(writer) = &mut tee.writer {
                        tee.hasher.update(bytes);
                        tee.size += bytes.len() as u64;
                        if let Err(err) = writer.write(bytes) {
                            tracing::warn!(%err, key = %expected.key, "disk cache write failed");
                            tee.writer = None;
                        }
                        if tee.size == expected.size {
                            let sound = hex::encode(std::mem::take(&mut tee.hasher).finalize()) == expected.sha256;
                            if let Some(writer) = tee.writer.take().filter(|_| sound) {
                                commit(&blobs, ticket, &expected.key, writer);
                            }
                        }
                    }
                }
                Err(_) => tee.writer = None,
            }
            chunk
        })
        .boxed();
    ArtifactReader { meta, range, body, served }
}

fn commit(blobs: &ReadThrough<String, Artifact>, ticket: Ticket, key: &str, writer: DiskWriter) {
    blobs.complete(ticket, key.to_string(), None, || {
        if let Err(err) = writer.commit() {
            tracing::warn!(%err, key, "disk cache write failed");
        }
    });
}

/// What a streamed write does to the cache when it finishes.
pub(super) trait OnWritten: Send + Sync + 'static {
    /// The write finished: `body` is the whole body when it was small enough to keep.
    fn written(&self, key: &str, result: &Result<ArtifactMeta>, body: Option<Bytes>);
}

/// A write-through sink: the origin's sink, plus the body while it is small enough for the
/// memory tier.
pub(super) struct CachingSink<C: OnWritten> {
    pub(super) inner: ArtifactSink,
    pub(super) cache: Arc<C>,
    pub(super) key: String,
    pub(super) small: Option<BytesMut>,
    pub(super) max: u64,
}

#[async_trait::async_trait]
impl<C: OnWritten> BodySink<ArtifactMeta> for CachingSink<C> {
    async fn write(&mut self, ctx: &Ctx, chunk: Bytes) -> Result<()> {
        if let Some(small) = &mut self.small {
            if (small.len() + chunk.len()) as u64 > self.max {
                self.small = None;
            } else {
                small.extend_from_slice(&chunk);
            }
        }
        self.inner.write(ctx, chunk).await
    }

    async fn finish(self: Box<Self>, ctx: &Ctx) -> Result<ArtifactMeta> {
        let CachingSink { inner, cache, key, small, .. } = *self;
        let result = inner.finish(ctx).await;
        cache.written(&key, &result, small.map(BytesMut::freeze));
        result
    }
}

/// Gathers a small whole body streaming from the origin into an artifact.
pub(super) async fn gather(reader: ArtifactReader) -> Result<Artifact> {
    let body = crate::domain::body::collect(reader.body).await?;
    if body.len() as u64 != reader.meta.size {
        return Err(StoreError::Internal(format!("the origin sent {} of {} bytes", body.len(), reader.meta.size)));
    }
    Ok(Artifact::new(reader.meta, body))
}

//! Gateway artifacts. A stored record is one value, so replacing an artifact is one atomic
//! write, in one of two layouts:
//!
//! - written whole (`put`): `[u32 LE header length][ArtifactMeta JSON][body]`;
//! - written in chunks (`open-write`): `[u32 LE 0xFFFF_FFFF][u64 LE body length][body][ArtifactMeta
//!   JSON][u32 LE header length]`, the metadata last since the size and the SHA-256 are known only
//!   at the end.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

use sha2::{Digest, Sha256};

use crate::bindings::exports::storehost::origin::artifact_bodies::{self, Body, BodyFile};
use crate::bindings::exports::storehost::origin::artifacts::{
    Artifact, ArtifactMeta, ArtifactPage, BodyReader, BodyWriter, Guest, GuestBodyReader, GuestBodyWriter,
};
use crate::bindings::storehost::host::files::File as HostFile;
use crate::stream::RangeReader;
use crate::{
    Backend, Opened, Origin, Result, StoreError, Table, ValueReader, ValueWriter, decode, internal, now_ms, page_limit, validate_artifact_key,
};

/// Largest body the whole-body calls accept, and the memory backends keep.
pub const MAX_BODY: usize = 256 << 20;

/// Marks a record written in chunks (a header length no record has).
const STREAMED: u32 = u32::MAX;
/// Bytes before the body of a record written in chunks.
const STREAMED_BODY_START: u64 = 12;

fn encode_record(meta: &ArtifactMeta, body: &[u8]) -> Vec<u8> {
    let header = serde_json::to_vec(meta).expect("metadata serialises");
    let mut out = Vec::with_capacity(4 + header.len() + body.len());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    out
}

/// Where a record's body is, and its metadata.
struct Layout {
    meta: ArtifactMeta,
    body_start: u64,
}

/// How much of a record is read first: its layout, and the metadata of one written whole.
const HEAD: usize = 1024;
/// The most metadata a record written in chunks is read with in one read from where its body
/// ends; beyond it (a record that says so is likely damaged), its length is read first.
const MAX_TAIL: u64 = 64 << 10;

/// Reads a record's layout from an opened value: two reads for either layout (one for a record
/// written whole whose metadata fits in [`HEAD`]), the second of a record written in chunks
/// being exactly its metadata and the length after it.
fn layout(key: &str, value: &mut dyn ValueReader) -> Result<Layout> {
    let truncated = || internal("truncated artifact record", key);
    let head = value.read_at(0, HEAD)?;
    let Some(first) = head.get(..4) else { return Err(truncated()) };
    let first = u32::from_le_bytes(first.try_into().unwrap());
    if first != STREAMED {
        let len = first as usize;
        let header = if head.len() >= 4 + len { head[4..4 + len].to_vec() } else { value.read_at(4, len)? };
        if header.len() != len {
            return Err(truncated());
        }
        return Ok(Layout { meta: decode(Table::Artifacts, key, &header)?, body_start: 4 + len as u64 });
    }
    let body_len = u64::from_le_bytes(head.get(4..12).ok_or_else(truncated)?.try_into().unwrap());
    let disagree = || internal("artifact record lengths disagree", key);
    let meta_start = STREAMED_BODY_START.checked_add(body_len).ok_or_else(disagree)?;
    let tail_len = value.size().checked_sub(meta_start).filter(|len| *len >= 4).ok_or_else(disagree)?;
    // Usually one read of the metadata and its length; past MAX_TAIL, the length alone first.
    let (at, want) = if tail_len <= MAX_TAIL { (meta_start, tail_len) } else { (meta_start + tail_len - 4, 4) };
    let mut tail = value.read_at(at, want as usize)?;
    if tail.len() as u64 != want {
        return Err(truncated());
    }
    let meta_len = u32::from_le_bytes(tail.split_off(tail.len() - 4).try_into().unwrap()) as u64;
    if meta_len + 4 != tail_len {
        return Err(disagree());
    }
    let header = if tail.len() as u64 == meta_len { tail } else { value.read_at(meta_start, meta_len as usize)? };
    Ok(Layout { meta: decode(Table::Artifacts, key, &header)?, body_start: STREAMED_BODY_START })
}

fn read_meta<B: Backend>(b: &mut B, key: &str) -> Result<Option<ArtifactMeta>> {
    // Metadata is small and usually first: read a prefix, and open the value only otherwise.
    let Some(prefix) = b.get_prefix(Table::Artifacts, key, 4096)? else { return Ok(None) };
    if let Some(len) = prefix.get(..4).map(|l| u32::from_le_bytes(l.try_into().unwrap()))
        && len != STREAMED
        && let Some(header) = prefix.get(4..4 + len as usize)
    {
        return decode(Table::Artifacts, key, header).map(Some);
    }
    let Some(mut value) = b.open_value(Table::Artifacts, key)? else { return Ok(None) };
    Ok(Some(layout(key, value.as_mut())?.meta))
}

fn not_found(key: &str) -> StoreError {
    StoreError::NotFound(format!("artifact {key:?}"))
}

/// A range of an artifact's body being read.
pub struct KitBodyReader<B> {
    key: String,
    range: RangeReader,
    backend: PhantomData<B>,
}

impl<B: Backend> GuestBodyReader for KitBodyReader<B> {
    fn read(&self, max_len: u32) -> Result<Option<Vec<u8>>> {
        B::with(|b| b.before_call("artifacts.body-reader.read", &self.key))?;
        self.range.next_chunk(max_len, || internal("artifact record ended early", &self.key))
    }
}

/// A reader of `len` bytes (`None`: to the end) from `offset` of the body in `value`.
fn body_reader<B: Backend>(key: String, mut value: Box<dyn ValueReader>, offset: u64, len: Option<u64>) -> Result<(ArtifactMeta, BodyReader)> {
    let Layout { meta, body_start } = layout(&key, value.as_mut())?;
    let start = offset.min(meta.size);
    let end = len.map_or(meta.size, |len| start.saturating_add(len).min(meta.size));
    let reader = KitBodyReader::<B> { key, range: RangeReader::new(value, body_start + start, body_start + end), backend: PhantomData };
    Ok((meta, BodyReader::new(reader)))
}

/// A file the host opened, read at offsets for a record's layout.
struct HostFileValue(HostFile);

impl ValueReader for HostFileValue {
    fn size(&self) -> u64 {
        self.0.size()
    }

    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.0.read_at(offset, len as u64).map_err(StoreError::Internal)
    }
}

impl<B: Backend> artifact_bodies::Guest for Origin<B> {
    /// The same call as `open-read` to the backend, answered with the file where the backend
    /// has one. `before_call` sees it by its own name.
    fn open(key: String, offset: u64, len: Option<u64>) -> Result<(ArtifactMeta, Body)> {
        B::with(|b| {
            b.before_call("artifact-bodies.open", &key)?;
            validate_artifact_key(&key)?;
            match b.open_body(Table::Artifacts, &key)?.ok_or_else(|| not_found(&key))? {
                Opened::File(file) => {
                    let mut value = HostFileValue(file);
                    let Layout { meta, body_start } = layout(&key, &mut value)?;
                    Ok((meta, Body::File(BodyFile { file: value.0, start: body_start })))
                }
                Opened::Value(value) => body_reader::<B>(key, value, offset, len).map(|(meta, reader)| (meta, Body::Reader(reader))),
            }
        })
    }
}

/// A new body being written; nothing is visible until `finish`.
pub struct KitBodyWriter<B> {
    key: String,
    content_type: Option<String>,
    value: RefCell<Option<Box<dyn ValueWriter>>>,
    size: Cell<u64>,
    backend: PhantomData<B>,
}

impl<B: Backend> KitBodyWriter<B> {
    fn value<R>(&self, f: impl FnOnce(&mut dyn ValueWriter) -> Result<R>) -> Result<R> {
        let mut value = self.value.borrow_mut();
        let value = value.as_mut().ok_or_else(|| StoreError::Invalid("the writer was already finished".into()))?;
        f(value.as_mut())
    }
}

impl<B: Backend> GuestBodyWriter for KitBodyWriter<B> {
    fn write(&self, chunk: Vec<u8>) -> Result<()> {
        B::with(|b| b.before_call("artifacts.body-writer.write", &self.key))?;
        self.value(|v| v.append(&chunk))?;
        self.size.set(self.size.get() + chunk.len() as u64);
        Ok(())
    }

    fn finish(&self, sha256: String) -> Result<ArtifactMeta> {
        B::with(|b| b.before_call("artifacts.body-writer.finish", &self.key))?;
        let size = self.size.get();
        let meta = ArtifactMeta { key: self.key.clone(), size, content_type: self.content_type.clone(), sha256, created_at: now_ms() };
        let header = serde_json::to_vec(&meta).expect("metadata serialises");
        self.value(|v| {
            v.write_at(4, &size.to_le_bytes())?;
            v.append(&header)?;
            v.append(&(header.len() as u32).to_le_bytes())
        })?;
        let value = self.value.borrow_mut().take().expect("checked above");
        value.commit()?;
        Ok(meta)
    }
}

impl<B: Backend> Guest for Origin<B> {
    type BodyReader = KitBodyReader<B>;
    type BodyWriter = KitBodyWriter<B>;

    fn put(key: String, body: Vec<u8>, content_type: Option<String>) -> Result<ArtifactMeta> {
        B::with(|b| {
            b.before_call("artifacts.put", &key)?;
            validate_artifact_key(&key)?;
            if body.len() > MAX_BODY {
                return Err(StoreError::Invalid(format!("body of {} bytes is over the {MAX_BODY}-byte limit", body.len())));
            }
            let meta = ArtifactMeta {
                key: key.clone(),
                size: body.len() as u64,
                content_type,
                sha256: hex::encode(Sha256::digest(&body)),
                created_at: now_ms(),
            };
            b.put(Table::Artifacts, &key, &encode_record(&meta, &body))?;
            Ok(meta)
        })
    }

    fn get(key: String) -> Result<Artifact> {
        B::with(|b| {
            b.before_call("artifacts.get", &key)?;
            validate_artifact_key(&key)?;
            let mut value = b.open_value(Table::Artifacts, &key)?.ok_or_else(|| not_found(&key))?;
            let Layout { meta, body_start } = layout(&key, value.as_mut())?;
            if meta.size > MAX_BODY as u64 {
                return Err(StoreError::Invalid(format!("artifact {key:?} is {} bytes: read it with open-read", meta.size)));
            }
            let body = value.read_at(body_start, meta.size as usize)?;
            if body.len() as u64 != meta.size {
                return Err(internal("artifact body length differs from its metadata", &key));
            }
            Ok(Artifact { meta, body })
        })
    }

    fn head(key: String) -> Result<ArtifactMeta> {
        B::with(|b| {
            b.before_call("artifacts.head", &key)?;
            validate_artifact_key(&key)?;
            read_meta(b, &key)?.ok_or_else(|| not_found(&key))
        })
    }

    fn list(prefix: String, cursor: Option<String>, limit: u32) -> Result<ArtifactPage> {
        B::with(|b| {
            b.before_call("artifacts.list", &prefix)?;
            let limit = page_limit(limit);
            // One more than asked tells whether another page follows.
            let keys = b.keys(Table::Artifacts, &prefix, cursor.as_deref(), limit + 1)?;
            let more = keys.len() > limit;
            // The page goes on after the last key listed, read or not.
            let next_cursor = if more { keys.get(limit - 1).cloned() } else { None };
            let mut items = Vec::with_capacity(keys.len().min(limit));
            for key in keys.into_iter().take(limit) {
                // A key deleted between the listing and the read is skipped.
                if let Some(meta) = read_meta(b, &key)? {
                    items.push(meta);
                }
            }
            Ok(ArtifactPage { items, next_cursor })
        })
    }

    fn get_url(key: String, _expires_in_secs: u32) -> Result<Option<String>> {
        B::with(|b| {
            b.before_call("artifacts.get-url", &key)?;
            validate_artifact_key(&key)?;
            // Local storage has no URL of its own: the host signs one.
            read_meta(b, &key)?.ok_or_else(|| not_found(&key))?;
            Ok(None)
        })
    }

    fn delete(key: String) -> Result<()> {
        B::with(|b| {
            b.before_call("artifacts.delete", &key)?;
            validate_artifact_key(&key)?;
            b.delete(Table::Artifacts, &key)
        })
    }

    fn open_read(key: String, offset: u64, len: Option<u64>) -> Result<(ArtifactMeta, BodyReader)> {
        B::with(|b| {
            b.before_call("artifacts.open-read", &key)?;
            validate_artifact_key(&key)?;
            let value = b.open_value(Table::Artifacts, &key)?.ok_or_else(|| not_found(&key))?;
            body_reader::<B>(key, value, offset, len)
        })
    }

    fn open_write(key: String, content_type: Option<String>, _size_hint: Option<u64>) -> Result<BodyWriter> {
        B::with(|b| {
            b.before_call("artifacts.open-write", &key)?;
            validate_artifact_key(&key)?;
            let mut value = b.create_value(Table::Artifacts, &key, MAX_BODY as u64 + (8 << 10))?;
            value.append(&STREAMED.to_le_bytes())?;
            value.append(&0u64.to_le_bytes())?;
            let writer =
                KitBodyWriter::<B> { key: key.clone(), content_type, value: RefCell::new(Some(value)), size: Cell::new(0), backend: PhantomData };
            Ok(BodyWriter::new(writer))
        })
    }
}

//! Objects in pieces: a ranged read served by GETs of at most [`READ_WINDOW`] bytes each, and an
//! upload sent as one PUT when it is small and as a multipart upload otherwise.
//!
//! A read pins the object it started on (every window asks for the first GET's ETag), so an
//! object replaced mid-read fails the read instead of mixing two bodies. An upload keeps at
//! most [`PARTS_IN_FLIGHT`] parts on the wire while the plugin writes the next one; one that is
//! dropped before it finishes is aborted (the parts in flight are cancelled and the multipart
//! upload is aborted), so no parts stay in the bucket.

use std::collections::{HashMap, VecDeque};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::bindings::storehost::host::object_store::{ObjectError, ObjectMeta, Uploaded};
use super::{Bucket, chain, check_key};

/// The most one GET of a ranged read asks for.
pub const READ_WINDOW: u64 = 8 << 20;
/// S3's smallest part (but the last).
pub const MIN_PART: usize = 5 << 20;
/// The size of the first 1000 parts; later parts grow by this every 1000, so that S3's 10 000
/// parts hold any object (up to S3's 5 TiB).
pub const PART: usize = 8 << 20;
/// Parts uploading at once while the plugin writes on.
const PARTS_IN_FLIGHT: usize = 4;

const _: () = assert!(PART >= MIN_PART);

/// An open ranged read (`object-reader`).
pub struct ObjectReader {
    bucket: Bucket,
    key: String,
    etag: Option<String>,
    /// The next byte to ask the store for.
    next: u64,
    /// One past the last byte of the range.
    end: u64,
    /// Bytes of the range not yet handed out.
    left: u64,
    body: Option<ByteStream>,
    pending: Bytes,
}

impl Bucket {
    /// Opens `len` bytes (`None`: to the end) of `key` from `offset`; `None` when it does not
    /// exist.
    pub(crate) async fn get_range(&self, key: &str, offset: u64, len: Option<u64>) -> Result<Option<(ObjectMeta, ObjectReader)>, ObjectError> {
        check_key(key)?;
        let Some((meta, etag)) = self.head_with_etag(key).await? else { return Ok(None) };
        let start = offset.min(meta.size);
        let end = len.map_or(meta.size, |len| start.saturating_add(len).min(meta.size));
        let reader =
            ObjectReader { bucket: self.clone(), key: key.to_string(), etag, next: start, end, left: end - start, body: None, pending: Bytes::new() };
        Ok(Some((meta, reader)))
    }
}

impl ObjectReader {
    /// The next `max_len` bytes (fewer only at the end of the range); `None` past it.
    pub(crate) async fn read(&mut self, max_len: u32) -> Result<Option<Vec<u8>>, ObjectError> {
        let max = (max_len.max(1) as usize).min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if max == 0 {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(max);
        while out.len() < max {
            if !self.pending.is_empty() {
                let n = (max - out.len()).min(self.pending.len());
                out.extend_from_slice(&self.pending.split_to(n));
                continue;
            }
            match &mut self.body {
                Some(body) => match body.next().await {
                    Some(Ok(chunk)) => self.pending = chunk,
                    Some(Err(e)) => return Err(ObjectError::Unavailable(format!("reading {:?}: {}", self.key, chain(&e)))),
                    None => self.body = None,
                },
                None if self.next < self.end => self.open_window().await?,
                None => {
                    return Err(ObjectError::Other(format!("{:?} ended {} bytes early", self.key, max - out.len())));
                }
            }
        }
        self.left -= out.len() as u64;
        Ok(Some(out))
    }

    async fn open_window(&mut self) -> Result<(), ObjectError> {
        let last = (self.next + READ_WINDOW).min(self.end) - 1;
        let bucket = &self.bucket;
        let sent = bucket
            .client
            .get_object()
            .bucket(&bucket.bucket)
            .key(&self.key)
            .range(format!("bytes={}-{last}", self.next))
            .set_if_match(self.etag.clone())
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                return Err(ObjectError::Other(format!("{:?} was replaced while it was read", self.key)));
            }
            Err(e) => return Err(bucket.failed("get", &self.key, e)),
        };
        self.next = last + 1;
        self.body = Some(out.body);
        Ok(())
    }
}

/// An open upload (`object-upload`).
pub struct ObjectUpload {
    bucket: Bucket,
    key: String,
    content_type: Option<String>,
    metadata: HashMap<String, String>,
    buffer: Vec<u8>,
    hasher: Sha256,
    size: u64,
    multipart: Option<Multipart>,
}

struct Multipart {
    upload_id: String,
    done: Vec<CompletedPart>,
    in_flight: VecDeque<JoinHandle<Result<CompletedPart, ObjectError>>>,
    next_number: i32,
}

impl ObjectUpload {
    pub(crate) fn begin(bucket: &Bucket, key: &str, content_type: Option<String>, metadata: Vec<(String, String)>) -> Result<Self, ObjectError> {
        check_key(key)?;
        Ok(Self {
            bucket: bucket.clone(),
            key: key.to_string(),
            content_type,
            metadata: metadata.into_iter().collect(),
            buffer: Vec::new(),
            hasher: Sha256::new(),
            size: 0,
            multipart: None,
        })
    }

    /// The size the part being filled is sent at.
    fn part_size(&self) -> usize {
        let number = self.multipart.as_ref().map_or(1, |m| m.next_number) as usize;
        PART * (1 + (number - 1) / 1000)
    }

    pub(crate) async fn write(&mut self, mut chunk: &[u8]) -> Result<(), ObjectError> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        while !chunk.is_empty() {
            let part_size = self.part_size();
            if self.buffer.capacity() < part_size {
                self.buffer.reserve_exact(part_size - self.buffer.len());
            }
            let n = (part_size - self.buffer.len()).min(chunk.len());
            self.buffer.extend_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
            if self.buffer.len() == part_size {
                self.send_part().await?;
            }
        }
        Ok(())
    }

    /// Sends the buffer as the next part, once fewer than [`PARTS_IN_FLIGHT`] are on the wire.
    async fn send_part(&mut self) -> Result<(), ObjectError> {
        if self.multipart.is_none() {
            let out = self
                .bucket
                .client
                .create_multipart_upload()
                .bucket(&self.bucket.bucket)
                .key(&self.key)
                .set_content_type(self.content_type.clone())
                .set_metadata((!self.metadata.is_empty()).then(|| self.metadata.clone()))
                .send()
                .await
                .map_err(|e| self.bucket.failed("create-multipart-upload", &self.key, e))?;
            let upload_id = out.upload_id.ok_or_else(|| ObjectError::Other("the store gave no upload id".into()))?;
            self.multipart = Some(Multipart { upload_id, done: Vec::new(), in_flight: VecDeque::new(), next_number: 1 });
        }
        let body = std::mem::take(&mut self.buffer);
        let multipart = self.multipart.as_mut().expect("started above");
        if multipart.in_flight.len() >= PARTS_IN_FLIGHT {
            let oldest = multipart.in_flight.pop_front().expect("not empty");
            multipart.done.push(joined(oldest).await?);
        }
        let number = multipart.next_number;
        multipart.next_number += 1;
        let (bucket, key, upload_id) = (self.bucket.clone(), self.key.clone(), multipart.upload_id.clone());
        multipart.in_flight.push_back(tokio::spawn(async move {
            let out = bucket
                .client
                .upload_part()
                .bucket(&bucket.bucket)
                .key(&key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| bucket.failed("upload-part", &key, e))?;
            Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag).build())
        }));
        Ok(())
    }

    /// Makes the object whole: one PUT (with its checksum) when nothing was sent yet, otherwise
    /// the last part and the multipart upload's completion.
    pub(crate) async fn finish(&mut self) -> Result<Uploaded, ObjectError> {
        let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        if self.multipart.is_none() {
            let body = std::mem::take(&mut self.buffer);
            self.bucket.put(&self.key, body, self.content_type.clone(), self.metadata.drain().collect()).await?;
            return Ok(Uploaded { size: self.size, sha256, checksum_stored: true });
        }
        match self.complete().await {
            Ok(()) => Ok(Uploaded { size: self.size, sha256, checksum_stored: false }),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    /// Sends the last part, waits for every part and completes the multipart upload.
    async fn complete(&mut self) -> Result<(), ObjectError> {
        if !self.buffer.is_empty() {
            self.send_part().await?;
        }
        let multipart = self.multipart.as_mut().expect("a multipart upload");
        while let Some(part) = multipart.in_flight.pop_front() {
            multipart.done.push(joined(part).await?);
        }
        multipart.done.sort_by_key(|p| p.part_number);
        let parts = CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut multipart.done))).build();
        self.bucket
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket.bucket)
            .key(&self.key)
            .upload_id(&multipart.upload_id)
            .multipart_upload(parts)
            .send()
            .await
            .map_err(|e| self.bucket.failed("complete-multipart-upload", &self.key, e))?;
        self.multipart = None;
        Ok(())
    }

    /// Cancels the parts in flight and aborts the multipart upload; nothing stays in the bucket.
    pub(crate) async fn abort(&mut self) {
        if let Some(multipart) = self.multipart.take() {
            abort(self.bucket.clone(), self.key.clone(), multipart).await;
        }
    }
}

impl Drop for ObjectUpload {
    /// An upload dropped with its instance (a trap, a timeout) is aborted in the background.
    fn drop(&mut self) {
        if let Some(multipart) = self.multipart.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(abort(self.bucket.clone(), self.key.clone(), multipart));
        }
    }
}

async fn abort(bucket: Bucket, key: String, multipart: Multipart) {
    for part in &multipart.in_flight {
        part.abort();
    }
    for part in multipart.in_flight {
        let _ = part.await;
    }
    let aborted = bucket.client.abort_multipart_upload().bucket(&bucket.bucket).key(&key).upload_id(&multipart.upload_id).send().await;
    if let Err(e) = aborted {
        tracing::warn!(key = %key, bucket = %bucket.bucket, error = %chain(&e), "aborting an unfinished multipart upload failed; its parts stay until the bucket's lifecycle rule removes them");
    }
}

async fn joined(part: JoinHandle<Result<CompletedPart, ObjectError>>) -> Result<CompletedPart, ObjectError> {
    part.await.map_err(|e| ObjectError::Other(format!("a part upload failed: {e}")))?
}

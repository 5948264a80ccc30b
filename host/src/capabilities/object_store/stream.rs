//! Objects in pieces: a ranged read served by one streamed GET, and an upload sent as one PUT
//! when it is small and as a multipart upload otherwise.
//!
//! A read is of the version that existed when it was opened, whole, whatever is written or
//! deleted afterwards: its metadata and its body come from one GET, and S3 goes on serving the
//! version a GET started on when the object is replaced or deleted meanwhile. Two HEADs leave
//! that intact: one for a range with nothing in it, where no body follows; and one pinned to the
//! GET's ETag, for the checksum a ranged GET does not give (when that version is gone by then,
//! the read is opened anew, before any of it was handed out). A connection that breaks
//! mid-body is resumed by a GET pinned to the same ETag, which fails the read (instead of
//! mixing two bodies) when that version is gone. An upload keeps at most [`PARTS_IN_FLIGHT`]
//! parts on the wire while the plugin writes the next one; one that is dropped before it
//! finishes is aborted (the parts in flight are cancelled and the multipart upload is aborted),
//! so no parts stay in the bucket.

use std::collections::{HashMap, VecDeque};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::bindings::storehost::host::object_store::{ObjectError, ObjectMeta, Uploaded};
use super::{Bucket, chain, check_key, millis, sha256_hex, sorted};

/// S3's smallest part (but the last).
pub const MIN_PART: usize = 5 << 20;
/// The size of the first 1000 parts; later parts grow by this every 1000, so that S3's 10 000
/// parts hold any object (up to S3's 5 TiB).
pub const PART: usize = 8 << 20;
/// Parts uploading at once while the plugin writes on.
const PARTS_IN_FLIGHT: usize = 4;
/// Opens of a read tried while the object keeps being replaced under them.
const OPENS: u32 = 3;
/// GETs a read resumes with, in a row without a byte between them, before it gives up.
const RESUMES: u32 = 3;

const _: () = assert!(PART >= MIN_PART);

/// An open ranged read (`object-reader`).
pub struct ObjectReader {
    bucket: Bucket,
    key: String,
    /// The version read: a resumed GET asks for it.
    etag: Option<String>,
    /// The next byte the body in hand yields.
    next: u64,
    /// One past the last byte of the range.
    end: u64,
    /// Bytes of the range not yet handed out.
    left: u64,
    body: Option<ByteStream>,
    pending: Bytes,
    /// Why the last body ended short, for the error when resuming gives up.
    broken: Option<String>,
    /// Resumes since the last bytes arrived.
    resumes: u32,
}

/// What one attempt at opening a read found.
#[expect(clippy::large_enum_variant, reason = "made once per open and taken apart at once")]
enum Opened {
    Object(ObjectMeta, ObjectReader),
    Missing,
    /// The version the GET answered with was gone before the open could finish.
    Replaced,
}

fn status<E>(e: &SdkError<E, HttpResponse>, code: u16) -> bool {
    e.raw_response().is_some_and(|r| r.status().as_u16() == code)
}

/// `(first, last, total)` of a `Content-Range: bytes first-last/total`.
fn content_range(value: &str) -> Option<(u64, u64, u64)> {
    let (span, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?, total.trim().parse().ok()?))
}

impl Bucket {
    /// Opens `len` bytes (`None`: to the end) of `key` from `offset`; `None` when it does not
    /// exist.
    pub(crate) async fn get_range(&self, key: &str, offset: u64, len: Option<u64>) -> Result<Option<(ObjectMeta, ObjectReader)>, ObjectError> {
        check_key(key)?;
        for _ in 0..OPENS {
            match self.open_range(key, offset, len).await? {
                Opened::Object(meta, reader) => return Ok(Some((meta, reader))),
                Opened::Missing => return Ok(None),
                Opened::Replaced => {}
            }
        }
        Err(ObjectError::Other(format!("{key:?} was replaced {OPENS} times while it was opened")))
    }

    async fn open_range(&self, key: &str, offset: u64, len: Option<u64>) -> Result<Opened, ObjectError> {
        let range = match len {
            Some(0) => return self.open_nothing(key, offset, len).await,
            None if offset == 0 => None,
            None => Some(format!("bytes={offset}-")),
            Some(len) => Some(format!("bytes={offset}-{}", offset.saturating_add(len - 1))),
        };
        let sent = self.client.get_object().bucket(&self.bucket).key(key).set_range(range.clone()).checksum_mode(ChecksumMode::Enabled).send().await;
        let out = match sent {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => return Ok(Opened::Missing),
            // The range starts at or past the end (of an empty object, too).
            Err(e) if status(&e, 416) => return self.open_nothing(key, offset, len).await,
            Err(e) => return Err(self.failed("get", key, e)),
        };
        let (start, length, size) = self.answered(key, range.as_deref(), &out)?;
        if start != offset {
            return Err(ObjectError::Other(format!("get {key:?} in bucket {}: asked from byte {offset}, answered from {start}", self.bucket)));
        }
        let mut sha256 = sha256_hex(out.checksum_sha256.as_deref());
        // A ranged answer lacks the whole object's checksum (the plugin needs it): that version's
        // is asked for; a whole-object answer that has none has none to give.
        if range.is_some() && out.checksum_sha256.is_none() {
            let sent = self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .set_if_match(out.e_tag.clone())
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await;
            match sent {
                Ok(head) => sha256 = sha256_hex(head.checksum_sha256.as_deref()),
                Err(e) if status(&e, 412) => return Ok(Opened::Replaced),
                Err(SdkError::ServiceError(e)) if e.err().is_not_found() => return Ok(Opened::Replaced),
                Err(e) => return Err(self.failed("head", key, e)),
            }
        }
        let meta = ObjectMeta {
            key: key.to_string(),
            size,
            sha256,
            last_modified: millis(out.last_modified.as_ref()),
            metadata: sorted(out.metadata.as_ref()),
            content_type: out.content_type,
        };
        let reader = ObjectReader {
            bucket: self.clone(),
            key: key.to_string(),
            etag: out.e_tag,
            next: start,
            end: start + length,
            left: length,
            body: Some(out.body),
            pending: Bytes::new(),
            broken: None,
            resumes: 0,
        };
        Ok(Opened::Object(meta, reader))
    }

    /// `(first byte, length, the whole object's size)` of a GET's answer.
    fn answered(&self, key: &str, range: Option<&str>, out: &GetObjectOutput) -> Result<(u64, u64, u64), ObjectError> {
        let what = || format!("get {key:?} in bucket {}", self.bucket);
        let length = out.content_length.and_then(|l| u64::try_from(l).ok());
        let length = length.ok_or_else(|| ObjectError::Other(format!("{}: the store gave no content length", what())))?;
        let Some(asked) = range else { return Ok((0, length, length)) };
        let answered = out.content_range.as_deref().and_then(content_range);
        match answered {
            Some((first, last, size)) if last >= first && last - first + 1 == length && last < size => Ok((first, length, size)),
            _ => Err(ObjectError::Other(format!("{}: {asked} was answered with content range {:?}", what(), out.content_range))),
        }
    }

    /// A read of nothing (an empty range, or one at or past the end): only the metadata is
    /// needed, and no body follows that a change could cut.
    async fn open_nothing(&self, key: &str, offset: u64, len: Option<u64>) -> Result<Opened, ObjectError> {
        let Some(meta) = self.head(key).await? else { return Ok(Opened::Missing) };
        let start = offset.min(meta.size);
        let end = len.map_or(meta.size, |len| start.saturating_add(len).min(meta.size));
        if end > start {
            // It grew since the GET found nothing in the range.
            return Ok(Opened::Replaced);
        }
        let reader = ObjectReader {
            bucket: self.clone(),
            key: key.to_string(),
            etag: None,
            next: start,
            end: start,
            left: 0,
            body: None,
            pending: Bytes::new(),
            broken: None,
            resumes: 0,
        };
        Ok(Opened::Object(meta, reader))
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
                    Some(Ok(chunk)) => {
                        if !chunk.is_empty() {
                            self.resumes = 0;
                        }
                        self.next += chunk.len() as u64;
                        self.pending = chunk;
                    }
                    Some(Err(e)) => {
                        self.body = None;
                        self.broken = Some(chain(&e));
                    }
                    None => self.body = None,
                },
                None if self.next < self.end => self.resume().await?,
                None => {
                    return Err(ObjectError::Other(format!("{:?} ended {} bytes early", self.key, max - out.len())));
                }
            }
        }
        self.left -= out.len() as u64;
        Ok(Some(out))
    }

    /// Goes on from the next byte with a GET of the same version, after the body broke off.
    async fn resume(&mut self) -> Result<(), ObjectError> {
        let cause = self.broken.take().unwrap_or_else(|| "the body ended early".into());
        // Without the version's ETag, a new GET could answer with another version's bytes.
        if self.resumes == RESUMES || self.etag.is_none() {
            return Err(ObjectError::Unavailable(format!("reading {:?} in bucket {}: {cause}", self.key, self.bucket.bucket)));
        }
        self.resumes += 1;
        let asked = format!("bytes={}-{}", self.next, self.end - 1);
        tracing::debug!(key = %self.key, bucket = %self.bucket.bucket, range = %asked, cause = %cause, "resuming a read");
        let bucket = &self.bucket;
        let sent = bucket.client.get_object().bucket(&bucket.bucket).key(&self.key).range(&asked).set_if_match(self.etag.clone()).send().await;
        let out = match sent {
            Ok(out) => out,
            Err(e) if status(&e, 412) => return Err(self.gone(&cause)),
            Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => return Err(self.gone(&cause)),
            Err(e) => return Err(bucket.failed("get", &self.key, e)),
        };
        let (first, length, _) = bucket.answered(&self.key, Some(&asked), &out)?;
        if first != self.next || first + length != self.end {
            return Err(ObjectError::Other(format!(
                "get {:?} in bucket {}: {asked} was answered with {:?}",
                self.key, bucket.bucket, out.content_range
            )));
        }
        self.body = Some(out.body);
        Ok(())
    }

    fn gone(&self, cause: &str) -> ObjectError {
        ObjectError::Other(format!("{:?} was replaced or deleted while it was read, and the store broke off the read ({cause})", self.key))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_give_the_span_and_the_whole_size() {
        assert_eq!(content_range("bytes 0-99/1234"), Some((0, 99, 1234)));
        assert_eq!(content_range("bytes 1048577-3145727/3145728"), Some((1_048_577, 3_145_727, 3_145_728)));
        for unusable in ["bytes */1234", "bytes 0-99/*", "0-99/1234", "bytes 0-99", ""] {
            assert_eq!(content_range(unusable), None, "{unusable:?}");
        }
    }
}

//! Values written and read in pieces, for values too large to hold in memory: a
//! [`DiskWriter`] appends to a temporary file and indexes it at [`commit`](DiskWriter::commit);
//! a [`DiskValue`] is an open value file, read from any offset, whose checksum the reader
//! verifies with a [`ValueDigest`] when it reads the value whole.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{DiskError, DiskStore, FsyncPolicy, MAX_KEY_LEN, Removal};
use crate::memory_cache::InsertOutcome;

/// A value being written in pieces. Nothing is visible until [`commit`](Self::commit); dropped
/// before, its temporary file is removed. A value that grows past the store's `max_bytes` is
/// refused at commit (its pieces are not kept meanwhile).
pub struct DiskWriter {
    store: Arc<DiskStore>,
    key: String,
    id: u64,
    /// `None` once the value grew past the budget (or was committed).
    file: Option<File>,
    digest: crc_fast::Digest,
    size: u64,
    ttl: Option<Duration>,
}

impl DiskStore {
    /// Starts a value for `key`, with the default TTL.
    ///
    /// # Errors
    /// [`DiskError::KeyTooLong`], or [`DiskError::Io`] if the temporary file cannot be created.
    pub fn writer(self: &Arc<Self>, key: &str) -> Result<DiskWriter, DiskError> {
        if key.len() > MAX_KEY_LEN {
            return Err(DiskError::KeyTooLong { len: key.len(), max: MAX_KEY_LEN });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tmp = self.tmp_path(id);
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(DiskError::io("create value", &tmp))?;
        Ok(DiskWriter {
            store: self.clone(),
            key: key.to_string(),
            id,
            file: Some(file),
            digest: crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme),
            size: 0,
            ttl: self.default_ttl,
        })
    }

    /// Opens the value under `key` to read it in pieces, if it is present and unexpired and its
    /// file has its length (a short or missing file is removed and reported as a miss).
    ///
    /// # Errors
    /// [`DiskError::Io`] if the value file exists but cannot be opened.
    pub fn open_value(&self, key: &str) -> Result<Option<DiskValue>, DiskError> {
        for _ in 0..8 {
            let Some(meta) = self.lookup(key) else {
                self.misses.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            };
            let opened = self.data_dir.open_value(meta.id).and_then(|file| Ok((file.metadata()?.len(), file)));
            match opened {
                Ok((len, file)) if len == meta.size => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(DiskValue { file, size: meta.size, checksum: meta.checksum, key: key.to_string(), id: meta.id }));
                }
                Ok(_) => {
                    self.remove_if_current(key, meta.id, Removal::Corrupt);
                    self.misses.fetch_add(1, Ordering::Relaxed);
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if self.remove_if_current(key, meta.id, Removal::Corrupt) {
                        self.misses.fetch_add(1, Ordering::Relaxed);
                        return Ok(None);
                    }
                }
                Err(e) => return Err(DiskError::io("open value", self.data_dir.path(meta.id))(e)),
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        Ok(None)
    }

    /// Removes a value a reader found corrupt (its checksum did not match), if the key still
    /// holds it.
    pub fn discard(&self, value: &DiskValue) {
        self.remove_if_current(&value.key, value.id, Removal::Corrupt);
    }
}

impl DiskWriter {
    /// Appends `bytes`.
    ///
    /// # Errors
    /// [`DiskError::Io`] if the file cannot be written (the writer is then useless; drop it).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), DiskError> {
        self.size += bytes.len() as u64;
        if self.size > self.store.max_bytes {
            self.abandon();
            return Ok(());
        }
        let Some(file) = &mut self.file else { return Ok(()) };
        self.digest.update(bytes);
        file.write_all(bytes).map_err(DiskError::io("write value", self.store.tmp_path(self.id)))
    }

    /// The bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Makes the value the key's, at once.
    ///
    /// # Errors
    /// [`DiskError::Io`] if the file cannot be synced, renamed or indexed (nothing changes).
    pub fn commit(mut self) -> Result<InsertOutcome, DiskError> {
        let store = self.store.clone();
        let Some(file) = self.file.take() else {
            store.refuse_oversized(&self.key, self.size);
            return Ok(InsertOutcome::Refused);
        };
        if store.refuse_oversized(&self.key, self.size) {
            drop(file);
            let _ = fs::remove_file(store.tmp_path(self.id));
            return Ok(InsertOutcome::Refused);
        }
        if store.fsync == FsyncPolicy::Always {
            file.sync_all().map_err(DiskError::io("sync value", store.tmp_path(self.id)))?;
        }
        drop(file);
        store.install(self.id)?;
        store.index_written(&self.key, self.id, self.size, self.digest.finalize(), self.ttl)
    }

    fn abandon(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(self.store.tmp_path(self.id));
        }
    }
}

impl Drop for DiskWriter {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// An open value file. Its checksum is of the whole value: a reader that reads it whole checks
/// it with [`digest`](Self::digest) and [`verify`](Self::verify) (and [`DiskStore::discard`]s a
/// value that fails); a ranged read cannot.
pub struct DiskValue {
    file: File,
    size: u64,
    checksum: u64,
    key: String,
    id: u64,
}

impl DiskValue {
    /// The value's length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The open file (reads from any offset keep reading this value even if the key is written
    /// again meanwhile).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// A digest to feed the whole value through.
    pub fn digest(&self) -> ValueDigest {
        ValueDigest(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme))
    }

    /// Whether `digest`, fed the whole value, matches the checksum it was written with.
    pub fn verify(&self, digest: &ValueDigest) -> bool {
        digest.0.finalize() == self.checksum
    }
}

/// The running checksum of a value read in pieces.
pub struct ValueDigest(crc_fast::Digest);

impl ValueDigest {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

//! The disk store's persistent index: an append-only log of checksummed records.
//!
//! ```text
//! file    := MAGIC record*
//! record  := len:u32 checksum:u64 payload        (little endian; CRC-64/NVME of payload)
//! payload := PUT    id size value_checksum expires_at recency:u64 key_len:u32 key
//!          | DELETE key_len:u32 key
//!          | TOUCH  count:u32 (id:u64 recency:u64)*
//! ```
//!
//! Replay stops at the first record that is cut short or fails its checksum: that record and
//! everything after it are a torn tail (a write interrupted by a crash, or damage) and are dropped.
//! A PUT is written only after its value file is complete, so dropping records can lose recent
//! writes but never make a key point at a value that was not written for it. The store rewrites
//! the log as a snapshot (one PUT per live entry) when garbage accumulates, through a temporary
//! file and a rename, so the index on disk is always either the old log or the new snapshot.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::clock::Timestamp;

const MAGIC: &[u8; 8] = b"SHDIDX01";
const FRAME: usize = 4 + 8;
/// Larger than any record the store writes (keys are limited, touches are batched).
const MAX_PAYLOAD: usize = 64 << 20;

const PUT: u8 = 1;
const DELETE: u8 = 2;
const TOUCH: u8 = 3;

/// What the index knows about one stored value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Names the value file; never reused.
    pub(crate) id: u64,
    pub(crate) size: u64,
    /// CRC-64/NVME of the value.
    pub(crate) checksum: u64,
    pub(crate) expires_at: Timestamp,
    /// A logical clock: larger is more recently used.
    pub(crate) recency: u64,
}

/// The encoded size of a PUT record for a key of `key_len` bytes.
pub(crate) fn put_record_len(key_len: usize) -> u64 {
    (FRAME + 1 + 5 * 8 + 4 + key_len) as u64
}

pub(crate) fn encode_put(buf: &mut Vec<u8>, key: &str, meta: &Meta) {
    frame(buf, |p| {
        p.push(PUT);
        for x in [meta.id, meta.size, meta.checksum, meta.expires_at.as_unix_nanos(), meta.recency] {
            p.extend_from_slice(&x.to_le_bytes());
        }
        p.extend_from_slice(&(key.len() as u32).to_le_bytes());
        p.extend_from_slice(key.as_bytes());
    });
}

pub(crate) fn encode_delete(buf: &mut Vec<u8>, key: &str) {
    frame(buf, |p| {
        p.push(DELETE);
        p.extend_from_slice(&(key.len() as u32).to_le_bytes());
        p.extend_from_slice(key.as_bytes());
    });
}

pub(crate) fn encode_touches(buf: &mut Vec<u8>, touches: &[(u64, u64)]) {
    if touches.is_empty() {
        return;
    }
    frame(buf, |p| {
        p.push(TOUCH);
        p.extend_from_slice(&(touches.len() as u32).to_le_bytes());
        for &(id, recency) in touches {
            p.extend_from_slice(&id.to_le_bytes());
            p.extend_from_slice(&recency.to_le_bytes());
        }
    });
}

fn frame(buf: &mut Vec<u8>, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME]);
    payload(buf);
    let len = (buf.len() - start - FRAME) as u32;
    let checksum = crate::disk_store::checksum(&buf[start + FRAME..]);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + FRAME].copy_from_slice(&checksum.to_le_bytes());
}

/// The state an index log describes.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub(crate) entries: HashMap<String, Meta>,
    /// Bytes from the first damaged record to the end of the file.
    pub(crate) torn_bytes: u64,
    /// Every value id mentioned, live or not (new ids must be larger).
    pub(crate) max_id: u64,
    pub(crate) max_recency: u64,
}

/// Reads a log. A missing file is an empty index; a damaged header loses the whole file.
pub(crate) fn replay(bytes: &[u8]) -> Replay {
    let mut replay = Replay::default();
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        replay.torn_bytes = bytes.len() as u64;
        return replay;
    }
    let mut touches: HashMap<u64, u64> = HashMap::new();
    let mut pos = MAGIC.len();
    while pos < bytes.len() {
        let Some(payload) = next_payload(&bytes[pos..]) else { break };
        if apply(payload, &mut replay, &mut touches).is_none() {
            break;
        }
        pos += FRAME + payload.len();
    }
    replay.torn_bytes = (bytes.len() - pos) as u64;
    for meta in replay.entries.values_mut() {
        if let Some(&recency) = touches.get(&meta.id) {
            meta.recency = meta.recency.max(recency);
        }
    }
    replay
}

fn next_payload(rest: &[u8]) -> Option<&[u8]> {
    let header = rest.get(..FRAME)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let checksum = u64::from_le_bytes(header[4..].try_into().ok()?);
    if len > MAX_PAYLOAD {
        return None;
    }
    let payload = rest.get(FRAME..FRAME + len)?;
    (crate::disk_store::checksum(payload) == checksum).then_some(payload)
}

/// Applies one record; `None` if it does not parse (treated like a checksum failure).
fn apply(payload: &[u8], replay: &mut Replay, touches: &mut HashMap<u64, u64>) -> Option<()> {
    let mut r = Reader(payload);
    match r.u8()? {
        PUT => {
            let [id, size, checksum, expires_at, recency] = [r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?];
            let key = r.key()?;
            r.end()?;
            replay.max_id = replay.max_id.max(id);
            replay.max_recency = replay.max_recency.max(recency);
            let expires_at = Timestamp::from_unix_nanos(expires_at);
            replay.entries.insert(key.to_string(), Meta { id, size, checksum, expires_at, recency });
        }
        DELETE => {
            let key = r.key()?;
            r.end()?;
            replay.entries.remove(key);
        }
        TOUCH => {
            let count = r.u32()?;
            for _ in 0..count {
                let (id, recency) = (r.u64()?, r.u64()?);
                replay.max_recency = replay.max_recency.max(recency);
                let slot = touches.entry(id).or_default();
                *slot = (*slot).max(recency);
            }
            r.end()?;
        }
        _ => return None,
    }
    Some(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn key(&mut self) -> Option<&'a str> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }
    fn end(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

/// The open log, appended to under the store's lock.
pub(crate) struct IndexLog {
    path: PathBuf,
    file: File,
    len: u64,
    sync: bool,
}

impl IndexLog {
    /// Opens an existing log for appending, cutting off a torn tail of `torn_bytes`.
    pub(crate) fn open(path: &Path, torn_bytes: u64, sync: bool) -> io::Result<IndexLog> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len() - torn_bytes;
        if torn_bytes > 0 {
            file.set_len(len)?;
        }
        Ok(IndexLog { path: path.to_path_buf(), file, len, sync })
    }

    /// Writes a log holding `puts` and nothing else and puts it in place of the current one
    /// (temporary file, then rename).
    pub(crate) fn write_snapshot<'a>(path: &Path, puts: impl Iterator<Item = (&'a str, &'a Meta)>, sync: bool) -> io::Result<IndexLog> {
        let tmp = path.with_extension("tmp");
        let mut buf = Vec::with_capacity(1 << 16);
        buf.extend_from_slice(MAGIC);
        let mut file = File::create(&tmp)?;
        for (key, meta) in puts {
            encode_put(&mut buf, key, meta);
            if buf.len() >= 1 << 16 {
                file.write_all(&buf)?;
                buf.clear();
            }
        }
        file.write_all(&buf)?;
        if sync {
            file.sync_all()?;
        }
        let len = file.metadata()?.len();
        drop(file);
        fs::rename(&tmp, path)?;
        if sync {
            sync_dir(path.parent().unwrap_or(Path::new(".")))?;
        }
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(IndexLog { path: path.to_path_buf(), file, len, sync })
    }

    /// Appends encoded records in one write. On failure the log is cut back to its previous
    /// length, so that a half-written record cannot hide the records appended after it.
    pub(crate) fn append(&mut self, records: &[u8]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let result = write_all_at(&self.file, records, self.len).and_then(|()| if self.sync { self.file.sync_data() } else { Ok(()) });
        match result {
            Ok(()) => {
                self.len += records.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The length of a snapshot with no records.
    pub(crate) fn empty_len() -> u64 {
        MAGIC.len() as u64
    }
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(not(unix))]
fn write_all_at(mut file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(buf)
}

/// Makes a directory's entries (renames, creations) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: u64, recency: u64) -> Meta {
        Meta { id, size: id * 10, checksum: id ^ 0xabc, expires_at: Timestamp::from_unix_nanos(id), recency }
    }

    fn log(records: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut buf = MAGIC.to_vec();
        records(&mut buf);
        buf
    }

    #[test]
    fn replays_puts_deletes_and_touches() {
        let bytes = log(|b| {
            encode_put(b, "a", &meta(1, 1));
            encode_put(b, "b", &meta(2, 2));
            encode_put(b, "a", &meta(3, 3));
            encode_delete(b, "b");
            encode_touches(b, &[(3, 9), (2, 10), (1, 11)]);
        });
        let r = replay(&bytes);
        assert_eq!(r.torn_bytes, 0);
        assert_eq!(r.entries.len(), 1);
        assert_eq!(r.entries["a"], meta(3, 9), "only the touch of the live id applies");
        assert_eq!((r.max_id, r.max_recency), (3, 11));
        assert_eq!(put_record_len(1), {
            let mut b = Vec::new();
            encode_put(&mut b, "a", &meta(1, 1));
            b.len() as u64
        });
    }

    #[test]
    fn a_torn_tail_is_dropped_at_every_cut() {
        let mut full = Vec::new();
        let bytes = log(|b| {
            encode_put(b, "a", &meta(1, 1));
            full = b.clone();
            encode_put(b, "b", &meta(2, 2));
        });
        for cut in full.len()..bytes.len() {
            let r = replay(&bytes[..cut]);
            assert_eq!(r.entries.len(), 1, "cut at {cut}");
            assert_eq!(r.torn_bytes, (cut - full.len()) as u64);
        }
        assert_eq!(replay(&bytes).entries.len(), 2);
    }

    #[test]
    fn a_flipped_bit_stops_replay_at_that_record() {
        let first = log(|b| encode_put(b, "a", &meta(1, 1))).len();
        let bytes = log(|b| {
            encode_put(b, "a", &meta(1, 1));
            encode_put(b, "b", &meta(2, 2));
            encode_put(b, "c", &meta(3, 3));
        });
        for byte in first..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[byte] ^= 1 << bit;
                let r = replay(&damaged);
                assert!(r.entries.len() <= 2, "byte {byte} bit {bit}");
                assert_eq!(r.entries["a"], meta(1, 1));
                for (k, m) in &r.entries {
                    assert_eq!(replay(&bytes).entries[k], *m, "a damaged record was applied");
                }
            }
        }
    }

    #[test]
    fn a_damaged_header_loses_the_file() {
        let mut bytes = log(|b| encode_put(b, "a", &meta(1, 1)));
        bytes[0] ^= 1;
        let r = replay(&bytes);
        assert!(r.entries.is_empty());
        assert_eq!(r.torn_bytes, bytes.len() as u64);
        assert_eq!(replay(&[]).entries.len(), 0);
    }

    #[test]
    fn snapshot_append_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let metas = [("x".to_string(), meta(5, 1)), ("y".to_string(), meta(6, 2))];
        let mut log = IndexLog::write_snapshot(&path, metas.iter().map(|(k, m)| (k.as_str(), m)), true).unwrap();
        let mut buf = Vec::new();
        encode_delete(&mut buf, "x");
        log.append(&buf).unwrap();
        assert_eq!(log.len(), fs::metadata(&path).unwrap().len());
        // A torn tail is cut off on open.
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&[1, 2, 3]);
        fs::write(&path, &bytes).unwrap();
        let r = replay(&bytes);
        assert_eq!(r.torn_bytes, 3);
        let log = IndexLog::open(&path, r.torn_bytes, false).unwrap();
        assert_eq!(log.len(), bytes.len() as u64 - 3);
        assert_eq!(fs::metadata(&path).unwrap().len(), log.len());
        let r = replay(&fs::read(&path).unwrap());
        assert_eq!(r.entries.keys().collect::<Vec<_>>(), ["y"]);
    }
}

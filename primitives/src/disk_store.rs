//! The disk LRU+TTL store: values in files, a persistent index, crash-safe updates.

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::clock::{Clock, ClockSource, Timestamp};
use crate::index_log::{self, IndexLog, Meta};
use crate::lru_table::LruTable;
use crate::memory_cache::InsertOutcome;

mod stream;
pub use stream::{DiskValue, DiskWriter, ValueDigest};

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 32 * 1024;

/// When the disk store calls fsync; see [`DiskStore`] for what each policy guarantees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Never: survives the process being killed, not a power loss.
    #[default]
    Never,
    /// Before every write returns: survives a power loss.
    Always,
}

/// Where and how a [`DiskStore`] keeps its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskStoreConfig {
    /// The directory the store owns; created if missing.
    pub dir: PathBuf,
    /// The most entries held at once.
    pub max_entries: Option<u64>,
    /// The most value bytes held at once.
    pub max_bytes: Option<u64>,
    /// The TTL of entries written with [`DiskStore::put`].
    pub default_ttl: Option<Duration>,
    /// When to fsync.
    pub fsync: FsyncPolicy,
    /// Reads between two appends of queued recency to the index.
    pub recency_batch: usize,
}

impl DiskStoreConfig {
    /// An unbounded store in `dir`, without TTL, without fsync.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DiskStoreConfig { dir: dir.into(), max_entries: None, max_bytes: None, default_ttl: None, fsync: FsyncPolicy::Never, recency_batch: 512 }
    }

    /// Sets [`DiskStoreConfig::max_entries`].
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = Some(max_entries);
        self
    }

    /// Sets [`DiskStoreConfig::max_bytes`].
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// Sets [`DiskStoreConfig::default_ttl`].
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Sets [`DiskStoreConfig::fsync`].
    pub fn fsync(mut self, fsync: FsyncPolicy) -> Self {
        self.fsync = fsync;
        self
    }

    /// Sets [`DiskStoreConfig::recency_batch`] (at least 1).
    pub fn recency_batch(mut self, reads: usize) -> Self {
        self.recency_batch = reads.max(1);
        self
    }
}

/// Errors of the disk store.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// Another store (in this process or another) has the directory open.
    #[error("disk store {dir} is already open in another store or process")]
    Locked {
        /// The store's directory.
        dir: PathBuf,
    },
    /// The key is longer than [`MAX_KEY_LEN`].
    #[error("key of {len} bytes is longer than the {max}-byte limit")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// [`MAX_KEY_LEN`].
        max: usize,
    },
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What the store was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl DiskError {
    fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> DiskError {
        let path = path.into();
        move |source| DiskError::Io { op, path, source }
    }
}

/// Counters of a disk store, as a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Reads that returned a value.
    pub hits: u64,
    /// Reads that returned nothing (absent, expired, damaged or missing file).
    pub misses: u64,
    /// Puts of a new key.
    pub inserts: u64,
    /// Puts that replaced a present key.
    pub updates: u64,
    /// Entries removed to make room.
    pub evictions: u64,
    /// Entries removed because their TTL had passed.
    pub expirations: u64,
    /// Puts refused because the value is larger than `max_bytes`.
    pub refusals: u64,
    /// Entries removed by `delete` or `clear`.
    pub invalidations: u64,
    /// Entries removed because their file was missing, short or failed its checksum.
    pub corruptions: u64,
    /// Entries held now.
    pub entries: u64,
    /// Value bytes held now.
    pub bytes: u64,
    /// The size of the index file now.
    pub index_bytes: u64,
}

/// What [`DiskStore::open`] found and cleaned up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Entries held after opening.
    pub entries: u64,
    /// Bytes of index cut off as a torn or damaged tail.
    pub torn_index_bytes: u64,
    /// Entries dropped because their TTL had passed.
    pub expired: u64,
    /// Entries dropped because their value file was missing.
    pub missing_files: u64,
    /// Entries dropped because their value file had the wrong size.
    pub torn_files: u64,
    /// Value files removed because no entry pointed at them.
    pub orphan_files: u64,
    /// Unfinished writes removed from `tmp/`.
    pub temp_files: u64,
    /// Entries evicted to fit the budgets.
    pub evicted: u64,
    /// Whether the index was rewritten as a snapshot.
    pub compacted: bool,
}

/// A persistent LRU+TTL store of byte values under string keys.
///
/// Safe to share between threads (`&self` everywhere); file reads and writes happen outside the
/// store's lock, so concurrent reads and writes of different keys proceed in parallel.
///
/// # Examples
///
/// ```
/// use storehost_primitives::{DiskStore, DiskStoreConfig};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = DiskStore::open(DiskStoreConfig::new(dir.path()).max_bytes(1 << 30)).unwrap();
/// store.put("artifacts/a.bin", b"bytes").unwrap();
/// assert_eq!(store.get("artifacts/a.bin").unwrap().as_deref(), Some(&b"bytes"[..]));
/// drop(store);
///
/// let reopened = DiskStore::open(DiskStoreConfig::new(dir.path())).unwrap();
/// assert_eq!(reopened.get("artifacts/a.bin").unwrap().as_deref(), Some(&b"bytes"[..]));
/// ```
///
/// # Layout
/// ```text
/// <dir>/LOCK              held (flock) by the open store; a second opener gets DiskError::Locked
/// <dir>/index             the index log (see below)
/// <dir>/tmp/<id>          values being written
/// <dir>/data/<xx>/<id>    values, one file each, named by a never-reused 64-bit id
/// ```
///
/// # Updates and crashes
/// A put writes the value to `tmp/`, renames it into `data/`, and only then appends a PUT record
/// (key, id, size, expiry, recency, CRC-64 of the value) to the index; the value file it replaces is
/// removed after that. Deletes and evictions append a DELETE record, then remove the file. Every
/// index record carries its own checksum. A crash at any point therefore leaves, at worst, a
/// torn index tail (dropped on open), a file no record points at (an orphan, removed on open), or
/// a record whose file is gone (removed on open). A value is returned only if its size and
/// checksum match the index, so a truncated or damaged file is a miss (and is removed), never a
/// wrong value.
///
/// # Durability: [`FsyncPolicy`]
/// - [`FsyncPolicy::Never`] (default): no fsync. Everything a call has completed survives the
///   process being killed (the data is in the kernel's page cache). After a power loss or kernel
///   crash, recently completed writes and deletes may be lost (a deleted value may come back); a
///   value that was half written reads as a miss because of its checksum.
/// - [`FsyncPolicy::Always`]: the value file is fsynced before its rename, its directory after
///   it, and the index after each append; a put or delete that returned survives a power loss.
///   This costs a few fsyncs per write.
///
/// # Recency
/// Reads update the LRU order in memory and queue a (id, recency) pair; the queue is appended to
/// the index as one TOUCH record every [`DiskStoreConfig::recency_batch`] reads, with the next
/// write, on [`DiskStore::flush`], and on drop. A crash loses at most the queued recency, which
/// only affects which entries are evicted first.
///
/// # Budgets
/// `max_bytes` counts value bytes (not keys or the index). A value larger than `max_bytes` is
/// refused. Room is made (LRU entries evicted) before the PUT record is appended, so the index
/// never describes more than the budgets allow; on open, the budgets are enforced again in case
/// they were lowered.
pub struct DiskStore {
    data_dir: DataDir,
    tmp_dir: PathBuf,
    max_entries: u64,
    max_bytes: u64,
    default_ttl: Option<Duration>,
    fsync: FsyncPolicy,
    recency_batch: usize,
    clock: ClockSource,
    state: Mutex<State>,
    next_id: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    recovery: RecoveryReport,
    dir: PathBuf,
    _lock: File,
}

struct State {
    table: LruTable<Box<str>, Meta>,
    hasher: foldhash::fast::RandomState,
    bytes: u64,
    log: IndexLog,
    /// Bytes of the log that describe live entries; the rest is garbage.
    live_log_bytes: u64,
    tick: u64,
    pending_touches: Vec<(u64, u64)>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    inserts: u64,
    updates: u64,
    evictions: u64,
    expirations: u64,
    refusals: u64,
    invalidations: u64,
    corruptions: u64,
}

/// Why an entry leaves the store, for the counters.
#[derive(Clone, Copy)]
enum Removal {
    Evicted,
    Expired,
    Invalidated,
    Corrupt,
}

impl DiskStore {
    /// Opens (or creates) the store in `config.dir` with the system clock, cleaning up after any
    /// crash; see [`RecoveryReport`].
    ///
    /// # Errors
    /// [`DiskError::Locked`] if the directory is open elsewhere; [`DiskError::Io`] if it cannot
    /// be created or read.
    pub fn open(config: DiskStoreConfig) -> Result<DiskStore, DiskError> {
        Self::open_inner(config, ClockSource::System)
    }

    /// [`open`](Self::open) with another clock (for tests).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with_clock(config: DiskStoreConfig, clock: impl Clock + 'static) -> Result<DiskStore, DiskError> {
        Self::open_inner(config, ClockSource::custom(clock))
    }

    fn open_inner(config: DiskStoreConfig, clock: ClockSource) -> Result<DiskStore, DiskError> {
        let dir = config.dir.clone();
        let data_dir = dir.join("data");
        let tmp_dir = dir.join("tmp");
        for d in [&dir, &data_dir, &tmp_dir] {
            fs::create_dir_all(d).map_err(DiskError::io("create directory", d))?;
        }
        let lock = lock_dir(&dir)?;
        let mut recovery = RecoveryReport { temp_files: remove_all_files(&tmp_dir)?, ..RecoveryReport::default() };

        let index_path = dir.join("index");
        // A snapshot that was being written when the last process died; the index it was to
        // replace is still in place.
        let _ = fs::remove_file(index_path.with_extension("tmp"));
        let bytes = match fs::read(&index_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(DiskError::io("read index", &index_path)(e)),
        };
        let replay = index_log::replay(&bytes);
        recovery.torn_index_bytes = replay.torn_bytes;
        let log_len = bytes.len() as u64 - replay.torn_bytes;
        drop(bytes);

        let files = scan_values(&data_dir)?;
        let max_file_id = files.ids.iter().map(|(id, _)| *id).max().unwrap_or(0);
        let mut on_disk: std::collections::HashMap<u64, u64> = files.ids.into_iter().collect();
        recovery.orphan_files += files.unrecognised;

        let now = clock.now();
        let mut kept: Vec<(String, Meta)> = Vec::with_capacity(replay.entries.len());
        let mut doomed: Vec<u64> = Vec::new();
        for (key, meta) in replay.entries {
            let size = on_disk.remove(&meta.id);
            if now >= meta.expires_at {
                recovery.expired += 1;
                if size.is_some() {
                    doomed.push(meta.id);
                }
            } else {
                match size {
                    None => recovery.missing_files += 1,
                    Some(size) if size != meta.size => {
                        recovery.torn_files += 1;
                        doomed.push(meta.id);
                    }
                    Some(_) => kept.push((key, meta)),
                }
            }
        }
        recovery.orphan_files += on_disk.len() as u64;
        doomed.extend(on_disk.keys());
        kept.sort_unstable_by_key(|(_, meta)| meta.recency);

        let sync = config.fsync == FsyncPolicy::Always;
        let hasher = foldhash::fast::RandomState::default();
        let mut table = LruTable::new();
        let mut bytes = 0;
        let mut live_log_bytes = 0;
        for (key, meta) in kept {
            bytes += meta.size;
            live_log_bytes += index_log::put_record_len(key.len());
            table.insert_new(hasher.hash_one(key.as_str()), key.into_boxed_str(), meta, &hasher);
        }
        let max_entries = config.max_entries.unwrap_or(u64::MAX);
        let max_bytes = config.max_bytes.unwrap_or(u64::MAX);
        while table.len() as u64 > max_entries || bytes > max_bytes {
            let Some(idx) = table.lru() else { break };
            let (key, meta) = table.remove(idx, &hasher);
            bytes -= meta.size;
            live_log_bytes -= index_log::put_record_len(key.len());
            doomed.push(meta.id);
            recovery.evicted += 1;
        }

        let garbage = log_len.saturating_sub(IndexLog::empty_len() + live_log_bytes);
        let dropped = recovery.expired + recovery.missing_files + recovery.torn_files + recovery.evicted;
        let log = if dropped > 0 || replay.torn_bytes > 0 || !index_path.exists() || garbage > live_log_bytes / 2 {
            recovery.compacted = true;
            let puts = table.iter_lru_first().map(|s| (&*s.key, &s.item));
            IndexLog::write_snapshot(&index_path, puts, sync).map_err(DiskError::io("write index", &index_path))?
        } else {
            IndexLog::open(&index_path, 0, sync).map_err(DiskError::io("open index", &index_path))?
        };
        // The index no longer points at these files; remove them only now, so that a crash
        // before the new index is in place cannot leave an entry without its file.
        let data_dir = DataDir::open(data_dir)?;
        for id in doomed {
            data_dir.remove(id);
        }
        recovery.entries = table.len() as u64;

        Ok(DiskStore {
            max_entries,
            max_bytes,
            default_ttl: config.default_ttl,
            fsync: config.fsync,
            recency_batch: config.recency_batch.max(1),
            clock,
            state: Mutex::new(State {
                table,
                hasher,
                bytes,
                log,
                live_log_bytes,
                tick: replay.max_recency,
                pending_touches: Vec::new(),
                counters: Counters::default(),
            }),
            next_id: AtomicU64::new(replay.max_id.max(max_file_id) + 1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            recovery,
            data_dir,
            tmp_dir,
            dir,
            _lock: lock,
        })
    }

    /// The value under `key`, if present, unexpired and intact. A value whose file is missing,
    /// short or fails its checksum is removed and reported as a miss.
    ///
    /// # Errors
    /// [`DiskError::Io`] if the value file exists but cannot be read.
    pub fn get(&self, key: &str) -> Result<Option<Bytes>, DiskError> {
        // A concurrent put or delete may remove the file between the lookup and the read; then
        // look again (bounded, as each retry means another thread made progress).
        for _ in 0..8 {
            let Some(meta) = self.lookup(key) else {
                self.misses.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            };
            match self.data_dir.read(meta.id, meta.size) {
                Ok(Some(value)) if checksum(&value) == meta.checksum => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(Bytes::from(value)));
                }
                // Too short, or wrong checksum.
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
                Err(e) => return Err(DiskError::io("read value", self.data_dir.path(meta.id))(e)),
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        Ok(None)
    }

    /// Finds a live entry and marks it used; drops it if it has expired.
    fn lookup(&self, key: &str) -> Option<Meta> {
        let mut state = self.state.lock();
        let hash = state.hasher.hash_one(key);
        let idx = state.table.find(hash, key)?;
        let meta = state.table.slot(idx).item;
        if self.clock.now() >= meta.expires_at {
            let removed = self.remove_entries(&mut state, &[idx], Removal::Expired);
            drop(state);
            self.remove_files(&removed);
            return None;
        }
        state.table.touch(idx);
        state.tick += 1;
        let tick = state.tick;
        state.table.slot_mut(idx).item.recency = tick;
        state.pending_touches.push((meta.id, tick));
        if state.pending_touches.len() >= self.recency_batch {
            let mut buf = Vec::new();
            index_log::encode_touches(&mut buf, &state.pending_touches);
            // Recency is best effort: if the append fails, the order is merely older on reopen.
            if state.log.append(&buf).is_ok() {
                state.pending_touches.clear();
            }
            self.maybe_compact(&mut state);
        }
        Some(meta)
    }

    /// Removes `key` if it still points at value `id`; returns whether it did.
    fn remove_if_current(&self, key: &str, id: u64, why: Removal) -> bool {
        let mut state = self.state.lock();
        let hash = state.hasher.hash_one(key);
        let Some(idx) = state.table.find(hash, key) else { return false };
        if state.table.slot(idx).item.id != id {
            return false;
        }
        let removed = self.remove_entries(&mut state, &[idx], why);
        drop(state);
        self.remove_files(&removed);
        true
    }

    /// Stores `value` under `key` with the default TTL.
    ///
    /// # Errors
    /// [`DiskError::KeyTooLong`], or [`DiskError::Io`] if the value or the index cannot be
    /// written (the store is then unchanged).
    pub fn put(&self, key: &str, value: &[u8]) -> Result<InsertOutcome, DiskError> {
        self.put_expiring(key, value, self.default_ttl)
    }

    /// Stores `value` under `key` with its own TTL.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub fn put_with_ttl(&self, key: &str, value: &[u8], ttl: Duration) -> Result<InsertOutcome, DiskError> {
        self.put_expiring(key, value, Some(ttl))
    }

    fn put_expiring(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<InsertOutcome, DiskError> {
        if key.len() > MAX_KEY_LEN {
            return Err(DiskError::KeyTooLong { len: key.len(), max: MAX_KEY_LEN });
        }
        let size = value.len() as u64;
        if self.refuse_oversized(key, size) {
            return Ok(InsertOutcome::Refused);
        }
        let checksum = checksum(value);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.write_value_file(id, value)?;
        self.index_written(key, id, size, checksum, ttl)
    }

    /// Refuses a value of `size` bytes the budgets cannot hold, dropping the key's older value;
    /// `true` when refused.
    fn refuse_oversized(&self, key: &str, size: u64) -> bool {
        if size <= self.max_bytes && self.max_entries > 0 {
            return false;
        }
        let mut state = self.state.lock();
        state.counters.refusals += 1;
        let hash = state.hasher.hash_one(key);
        if let Some(idx) = state.table.find(hash, key) {
            let removed = self.remove_entries(&mut state, &[idx], Removal::Invalidated);
            drop(state);
            self.remove_files(&removed);
        }
        true
    }

    /// Indexes value `id`, written and in place, under `key` (removing its file on failure).
    fn index_written(&self, key: &str, id: u64, size: u64, checksum: u64, ttl: Option<Duration>) -> Result<InsertOutcome, DiskError> {
        let expires_at = ttl.map_or(Timestamp::NEVER, |ttl| self.clock.now() + ttl);
        let mut state = self.state.lock();
        match self.index_put(&mut state, key, Meta { id, size, checksum, expires_at, recency: 0 }) {
            Ok((outcome, removed)) => {
                drop(state);
                self.remove_files(&removed);
                Ok(outcome)
            }
            Err(e) => {
                drop(state);
                self.data_dir.remove(id);
                Err(e)
            }
        }
    }

    /// Records a written value in the index, evicting to make room first. Returns the files that
    /// no entry points at any more.
    fn index_put(&self, state: &mut State, key: &str, mut meta: Meta) -> Result<(InsertOutcome, Vec<u64>), DiskError> {
        let hash = state.hasher.hash_one(key);
        let existing = state.table.find(hash, key);
        let old_size = existing.map_or(0, |idx| state.table.slot(idx).item.size);
        let mut entries = state.table.len() as u64 + u64::from(existing.is_none());
        let mut bytes = state.bytes - old_size + meta.size;
        let mut victims = Vec::new();
        let mut cursor = state.table.lru();
        while entries > self.max_entries || bytes > self.max_bytes {
            let Some(idx) = cursor else { break };
            cursor = state.table.newer(idx);
            if Some(idx) == existing {
                continue;
            }
            victims.push(idx);
            entries -= 1;
            bytes -= state.table.slot(idx).item.size;
        }

        state.tick += 1;
        meta.recency = state.tick;
        let mut buf = Vec::with_capacity(256);
        index_log::encode_touches(&mut buf, &state.pending_touches);
        for &idx in &victims {
            index_log::encode_delete(&mut buf, &state.table.slot(idx).key);
        }
        index_log::encode_put(&mut buf, key, &meta);
        state.log.append(&buf).map_err(DiskError::io("append to index", state.log.path()))?;
        state.pending_touches.clear();

        let now = self.clock.now();
        let mut removed = Vec::with_capacity(victims.len() + 1);
        // Remove victims by key: each removal moves another slot, so indices go stale.
        let victim_keys: Vec<Box<str>> = victims.iter().map(|&idx| state.table.slot(idx).key.clone()).collect();
        for victim in &victim_keys {
            let idx = state.table.find(state.hasher.hash_one(&**victim), &**victim).expect("victim is present");
            let why = if now >= state.table.slot(idx).item.expires_at { Removal::Expired } else { Removal::Evicted };
            removed.push(Self::drop_entry(state, idx, why));
        }
        let outcome = match state.table.find(hash, key) {
            Some(idx) => {
                let slot = state.table.slot_mut(idx);
                let old = std::mem::replace(&mut slot.item, meta);
                state.table.touch(idx);
                // The new PUT record has the same length as the one it supersedes, so the live
                // part of the log is unchanged.
                state.bytes = state.bytes - old.size + meta.size;
                removed.push(old.id);
                state.counters.updates += 1;
                InsertOutcome::Updated
            }
            None => {
                state.table.insert_new(hash, key.into(), meta, &state.hasher);
                state.bytes += meta.size;
                state.live_log_bytes += index_log::put_record_len(key.len());
                state.counters.inserts += 1;
                InsertOutcome::Inserted
            }
        };
        self.maybe_compact(state);
        Ok((outcome, removed))
    }

    /// Removes `key`; returns whether it was present.
    ///
    /// # Errors
    /// [`DiskError::Io`] if the index cannot be appended to (the entry is kept).
    pub fn delete(&self, key: &str) -> Result<bool, DiskError> {
        let mut state = self.state.lock();
        let hash = state.hasher.hash_one(key);
        let Some(idx) = state.table.find(hash, key) else { return Ok(false) };
        let mut buf = Vec::new();
        index_log::encode_touches(&mut buf, &state.pending_touches);
        index_log::encode_delete(&mut buf, key);
        state.log.append(&buf).map_err(DiskError::io("append to index", state.log.path()))?;
        state.pending_touches.clear();
        let id = Self::drop_entry(&mut state, idx, Removal::Invalidated);
        self.maybe_compact(&mut state);
        drop(state);
        self.remove_files(&[id]);
        Ok(true)
    }

    /// Removes every entry.
    ///
    /// # Errors
    /// [`DiskError::Io`] if the empty index cannot be written (the entries are kept).
    pub fn clear(&self) -> Result<(), DiskError> {
        let mut state = self.state.lock();
        let path = state.log.path().to_path_buf();
        state.log =
            IndexLog::write_snapshot(&path, std::iter::empty(), self.fsync == FsyncPolicy::Always).map_err(DiskError::io("write index", &path))?;
        let slots = state.table.clear();
        state.counters.invalidations += slots.len() as u64;
        state.bytes = 0;
        state.live_log_bytes = 0;
        state.pending_touches.clear();
        drop(state);
        let ids: Vec<u64> = slots.iter().map(|s| s.item.id).collect();
        self.remove_files(&ids);
        Ok(())
    }

    /// Appends queued recency to the index (and fsyncs it under [`FsyncPolicy::Always`]).
    ///
    /// # Errors
    /// [`DiskError::Io`] if the index cannot be appended to.
    pub fn flush(&self) -> Result<(), DiskError> {
        let mut state = self.state.lock();
        let mut buf = Vec::new();
        index_log::encode_touches(&mut buf, &state.pending_touches);
        state.log.append(&buf).map_err(DiskError::io("append to index", state.log.path()))?;
        state.pending_touches.clear();
        Ok(())
    }

    /// Every live key, least recently used first.
    pub fn keys(&self) -> Vec<String> {
        let now = self.clock.now();
        let state = self.state.lock();
        state.table.iter_lru_first().filter(|s| now < s.item.expires_at).map(|s| s.key.to_string()).collect()
    }

    /// The counters and current size.
    pub fn stats(&self) -> DiskStats {
        let state = self.state.lock();
        let c = &state.counters;
        DiskStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            inserts: c.inserts,
            updates: c.updates,
            evictions: c.evictions,
            expirations: c.expirations,
            refusals: c.refusals,
            invalidations: c.invalidations,
            corruptions: c.corruptions,
            entries: state.table.len() as u64,
            bytes: state.bytes,
            index_bytes: state.log.len(),
        }
    }

    /// What opening the store cleaned up.
    pub fn recovery(&self) -> RecoveryReport {
        self.recovery
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding the value of `key`, if the key is present; for callers that want to
    /// stream or memory-map a value instead of reading it whole. The file may be removed by a
    /// concurrent write; an open handle keeps reading the old value.
    pub fn value_path(&self, key: &str) -> Option<PathBuf> {
        let state = self.state.lock();
        let idx = state.table.find(state.hasher.hash_one(key), key)?;
        Some(self.data_dir.path(state.table.slot(idx).item.id))
    }

    fn write_value_file(&self, id: u64, value: &[u8]) -> Result<(), DiskError> {
        let tmp = self.tmp_path(id);
        let sync = self.fsync == FsyncPolicy::Always;
        let written = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            file.write_all(value)?;
            if sync {
                file.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(DiskError::io("write value", &tmp)(e));
        }
        self.install(id)
    }

    /// Where value `id` is written before it is renamed into place.
    fn tmp_path(&self, id: u64) -> PathBuf {
        self.tmp_dir.join(format!("{id:016x}"))
    }

    /// Renames the written temporary file of value `id` into place (removing it on failure).
    fn install(&self, id: u64) -> Result<(), DiskError> {
        let tmp = self.tmp_path(id);
        let dest = self.data_dir.path(id);
        let sync = self.fsync == FsyncPolicy::Always;
        let parent = dest.parent().expect("value files live in a subdirectory");
        let renamed = fs::rename(&tmp, &dest).or_else(|e| {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(e);
            }
            fs::create_dir_all(parent)?;
            if sync {
                index_log::sync_dir(&self.data_dir.root)?;
            }
            fs::rename(&tmp, &dest)
        });
        let synced = renamed.and_then(|()| if sync { index_log::sync_dir(parent) } else { Ok(()) });
        synced.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            DiskError::io("rename value", &dest)(e)
        })
    }

    /// Takes entries out of the table and logs their removal; returns their value ids. If the
    /// index cannot be appended to, they are dropped from memory anyway: a stale record can only
    /// point at a file that is about to be removed, which the next open cleans up.
    fn remove_entries(&self, state: &mut State, indices: &[u32], why: Removal) -> Vec<u64> {
        let mut buf = Vec::new();
        index_log::encode_touches(&mut buf, &state.pending_touches);
        for &idx in indices {
            index_log::encode_delete(&mut buf, &state.table.slot(idx).key);
        }
        if state.log.append(&buf).is_ok() {
            state.pending_touches.clear();
        }
        let mut indices = indices.to_vec();
        // Remove from the highest index down: a removal moves the last slot.
        indices.sort_unstable_by(|a, b| b.cmp(a));
        let ids = indices.into_iter().map(|idx| Self::drop_entry(state, idx, why)).collect();
        self.maybe_compact(state);
        ids
    }

    fn drop_entry(state: &mut State, idx: u32, why: Removal) -> u64 {
        let (key, meta) = state.table.remove(idx, &state.hasher);
        state.bytes -= meta.size;
        state.live_log_bytes -= index_log::put_record_len(key.len());
        let c = &mut state.counters;
        match why {
            Removal::Evicted => c.evictions += 1,
            Removal::Expired => c.expirations += 1,
            Removal::Invalidated => c.invalidations += 1,
            Removal::Corrupt => c.corruptions += 1,
        }
        meta.id
    }

    /// Rewrites the index as a snapshot once more than half of it is garbage.
    fn maybe_compact(&self, state: &mut State) {
        let live = IndexLog::empty_len() + state.live_log_bytes;
        if state.log.len() <= 2 * live + (1 << 20) {
            return;
        }
        let path = state.log.path().to_path_buf();
        let puts = state.table.iter_lru_first().map(|s| (&*s.key, &s.item));
        // On failure the old log stays in place and keeps growing; compaction is retried later.
        if let Ok(log) = IndexLog::write_snapshot(&path, puts, self.fsync == FsyncPolicy::Always) {
            state.log = log;
            state.pending_touches.clear();
        }
    }

    fn remove_files(&self, ids: &[u64]) {
        for &id in ids {
            self.data_dir.remove(id);
        }
    }
}

impl Drop for DiskStore {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskStore").field("dir", &self.dir).field("stats", &self.stats()).finish()
    }
}

/// The checksum of values and index records: CRC-64/NVME, computed with SIMD where available.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, bytes)
}

/// `data/`: value `id` lives in `data/<id & 0xff>/<id>`, both in lowercase hex.
struct DataDir {
    root: PathBuf,
    /// The directory kept open, so that a read resolves two path components instead of the
    /// whole path.
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    fd: std::os::fd::OwnedFd,
}

/// Values up to this size are read into a zeroed buffer, which costs less than the two system
/// calls (`lseek`, `statx`) that sizing the read from the file would.
const SMALL_VALUE: u64 = 16 * 1024;

impl DataDir {
    fn open(root: PathBuf) -> Result<DataDir, DiskError> {
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        {
            use rustix::fs::{Mode, OFlags};
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let fd = rustix::fs::open(&root, flags, Mode::empty()).map_err(|e| DiskError::io("open directory", &root)(e.into()))?;
            Ok(DataDir { root, fd })
        }
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        Ok(DataDir { root })
    }

    fn path(&self, id: u64) -> PathBuf {
        self.root.join(ValueName::new(id).as_str())
    }

    fn open_value(&self, id: u64) -> io::Result<File> {
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        {
            use rustix::fs::{Mode, OFlags};
            let name = ValueName::new(id);
            let fd = rustix::fs::openat(&self.fd, name.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
            Ok(File::from(fd))
        }
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        File::open(self.path(id))
    }

    /// Reads value `id`, which should hold exactly `size` bytes: `None` if it holds more or
    /// fewer.
    fn read(&self, id: u64, size: u64) -> io::Result<Option<Vec<u8>>> {
        let mut file = self.open_value(id)?;
        if size > SMALL_VALUE {
            // `File::read_to_end` sizes its reads from the file's length: one read for the
            // value and one to see the end, like `std::fs::read`.
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf)?;
            return Ok((buf.len() as u64 == size).then_some(buf));
        }
        let mut buf = vec![0; size as usize];
        match file.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut probe = [0u8; 1];
        loop {
            match file.read(&mut probe) {
                Ok(0) => return Ok(Some(buf)),
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn remove(&self, id: u64) {
        // Already gone is fine; any other failure leaves an orphan that the next open removes.
        let _ = fs::remove_file(self.path(id));
    }
}

/// `xx/xxxxxxxxxxxxxxxx` without allocating.
struct ValueName([u8; 19]);

impl ValueName {
    fn new(id: u64) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut name = [b'/'; 19];
        name[0] = HEX[(id >> 4 & 0xf) as usize];
        name[1] = HEX[(id & 0xf) as usize];
        for i in 0..16 {
            name[3 + i] = HEX[(id >> (60 - 4 * i) & 0xf) as usize];
        }
        ValueName(name)
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits")
    }
}

fn lock_dir(dir: &Path) -> Result<File, DiskError> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(DiskError::io("open lock file", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(DiskError::Locked { dir: dir.to_path_buf() }),
        Err(TryLockError::Error(e)) => Err(DiskError::io("lock", &path)(e)),
    }
}

fn remove_all_files(dir: &Path) -> Result<u64, DiskError> {
    let mut count = 0;
    for entry in fs::read_dir(dir).map_err(DiskError::io("read directory", dir))? {
        let entry = entry.map_err(DiskError::io("read directory", dir))?;
        if fs::remove_file(entry.path()).is_ok() {
            count += 1;
        }
    }
    Ok(count)
}

struct ValueFiles {
    /// (id, size) of every well-named value file.
    ids: Vec<(u64, u64)>,
    /// Files that are not value files (removed).
    unrecognised: u64,
}

fn scan_values(data_dir: &Path) -> Result<ValueFiles, DiskError> {
    let mut files = ValueFiles { ids: Vec::new(), unrecognised: 0 };
    for sub in fs::read_dir(data_dir).map_err(DiskError::io("read directory", data_dir))? {
        let sub = sub.map_err(DiskError::io("read directory", data_dir))?;
        let sub_path = sub.path();
        let Some(prefix) = parse_hex(&sub.file_name(), 2) else {
            files.unrecognised += remove_unrecognised(&sub_path);
            continue;
        };
        for entry in fs::read_dir(&sub_path).map_err(DiskError::io("read directory", &sub_path))? {
            let entry = entry.map_err(DiskError::io("read directory", &sub_path))?;
            let id = parse_hex(&entry.file_name(), 16).filter(|id| id & 0xff == prefix);
            let size = entry.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
            match (id, size) {
                (Some(id), Some(size)) => files.ids.push((id, size)),
                _ => files.unrecognised += remove_unrecognised(&entry.path()),
            }
        }
    }
    Ok(files)
}

fn remove_unrecognised(path: &Path) -> u64 {
    let removed = if path.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
    u64::from(removed.is_ok())
}

fn parse_hex(name: &std::ffi::OsStr, len: usize) -> Option<u64> {
    let name = name.to_str()?;
    if name.len() != len || !name.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return None;
    }
    u64::from_str_radix(name, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::MockClock;

    struct Fixture {
        dir: tempfile::TempDir,
        clock: MockClock,
    }

    impl Fixture {
        fn new() -> Self {
            Fixture { dir: tempfile::tempdir().unwrap(), clock: MockClock::new() }
        }

        fn config(&self) -> DiskStoreConfig {
            DiskStoreConfig::new(self.dir.path())
        }

        fn open(&self, config: DiskStoreConfig) -> DiskStore {
            DiskStore::open_with_clock(config, self.clock.clone()).unwrap()
        }

        fn value_files(&self) -> Vec<PathBuf> {
            let mut files = Vec::new();
            for sub in fs::read_dir(self.dir.path().join("data")).unwrap() {
                for f in fs::read_dir(sub.unwrap().path()).unwrap() {
                    files.push(f.unwrap().path());
                }
            }
            files
        }
    }

    fn get(store: &DiskStore, key: &str) -> Option<Vec<u8>> {
        store.get(key).unwrap().map(|b| b.to_vec())
    }

    #[test]
    fn value_names_are_fan_out_directory_and_hex_id() {
        for id in [0, 1, 0xab, 0x1234_5678_9abc_def0, u64::MAX] {
            assert_eq!(ValueName::new(id).as_str(), format!("{:02x}/{id:016x}", id & 0xff));
        }
    }

    #[test]
    fn put_get_update_delete() {
        let fx = Fixture::new();
        let store = fx.open(fx.config());
        assert_eq!(get(&store, "a"), None);
        assert_eq!(store.put("a", b"one").unwrap(), InsertOutcome::Inserted);
        assert_eq!(store.put("a", b"two!").unwrap(), InsertOutcome::Updated);
        assert_eq!(get(&store, "a").as_deref(), Some(&b"two!"[..]));
        assert_eq!(fx.value_files().len(), 1, "the replaced file is removed");
        assert!(store.delete("a").unwrap());
        assert!(!store.delete("a").unwrap());
        assert_eq!(get(&store, "a"), None);
        assert!(fx.value_files().is_empty());
        let s = store.stats();
        assert_eq!((s.hits, s.misses, s.inserts, s.updates, s.invalidations), (1, 2, 1, 1, 1));
        assert_eq!((s.entries, s.bytes), (0, 0));
    }

    #[test]
    fn empty_values_and_odd_keys() {
        let fx = Fixture::new();
        let store = fx.open(fx.config());
        store.put("", b"").unwrap();
        store.put("../../etc/passwd", b"x").unwrap();
        store.put("ключ/🙂", b"y").unwrap();
        assert_eq!(get(&store, "").as_deref(), Some(&b""[..]));
        assert_eq!(get(&store, "../../etc/passwd").as_deref(), Some(&b"x"[..]));
        drop(store);
        let store = fx.open(fx.config());
        assert_eq!(get(&store, "ключ/🙂").as_deref(), Some(&b"y"[..]));
        assert_eq!(store.keys().len(), 3);
        let long = "k".repeat(MAX_KEY_LEN + 1);
        assert!(matches!(store.put(&long, b""), Err(DiskError::KeyTooLong { .. })));
    }

    #[test]
    fn ttl_edge_is_exact_and_survives_reopen() {
        let fx = Fixture::new();
        let store = fx.open(fx.config().default_ttl(Duration::from_secs(10)));
        store.put("a", b"1").unwrap();
        store.put_with_ttl("b", b"2", Duration::from_secs(100)).unwrap();
        fx.clock.advance(Duration::from_secs(10) - Duration::from_nanos(1));
        assert!(get(&store, "a").is_some(), "one nanosecond before expiry");
        drop(store);
        let store = fx.open(fx.config());
        assert!(get(&store, "a").is_some(), "expiry is persisted, not reset");
        fx.clock.advance(Duration::from_nanos(1));
        assert_eq!(get(&store, "a"), None, "exactly at expiry");
        assert_eq!(store.stats().expirations, 1);
        fx.clock.advance(Duration::from_secs(100));
        drop(store);
        let store = fx.open(fx.config());
        assert_eq!(store.recovery().expired, 1, "b expired while closed");
        assert_eq!(store.stats().entries, 0);
        assert!(fx.value_files().is_empty());
    }

    #[test]
    fn lru_eviction_by_entries_follows_reads_and_persists() {
        let fx = Fixture::new();
        let config = fx.config().max_entries(3).recency_batch(1);
        let store = fx.open(config.clone());
        for k in ["a", "b", "c"] {
            store.put(k, k.as_bytes()).unwrap();
        }
        assert!(get(&store, "a").is_some());
        drop(store);
        // The read of "a" was persisted: "b" is the least recently used after reopening.
        let store = fx.open(config);
        assert_eq!(store.keys(), ["b", "c", "a"]);
        store.put("d", b"d").unwrap();
        assert_eq!(get(&store, "b"), None);
        assert_eq!(store.keys(), ["c", "a", "d"]);
        assert_eq!(store.stats().evictions, 1);
        assert_eq!(fx.value_files().len(), 3);
    }

    #[test]
    fn byte_budget_evicts_and_refuses_oversized_values() {
        let fx = Fixture::new();
        let store = fx.open(fx.config().max_bytes(10));
        store.put("a", b"1234").unwrap();
        store.put("b", b"1234").unwrap();
        store.put("c", b"12").unwrap();
        assert_eq!(store.stats().bytes, 10);
        store.put("d", b"1").unwrap(); // evicts a
        assert_eq!(store.keys(), ["b", "c", "d"]);
        assert_eq!(store.put("big", &[0; 11]).unwrap(), InsertOutcome::Refused);
        assert_eq!(store.put("c", &[0; 11]).unwrap(), InsertOutcome::Refused);
        assert_eq!(store.keys(), ["b", "d"], "a refused update removes the old value");
        assert_eq!(store.put("full", &[7; 10]).unwrap(), InsertOutcome::Inserted);
        let s = store.stats();
        assert_eq!((s.entries, s.bytes, s.refusals, s.evictions), (1, 10, 2, 3));
        assert_eq!(fx.value_files().len(), 1);
    }

    #[test]
    fn reads_are_batched_into_the_index() {
        let fx = Fixture::new();
        let store = fx.open(fx.config().recency_batch(100));
        store.put("a", b"1").unwrap();
        let before = store.stats().index_bytes;
        for _ in 0..99 {
            assert!(get(&store, "a").is_some());
        }
        assert_eq!(store.stats().index_bytes, before, "no write per read");
        assert!(get(&store, "a").is_some());
        assert!(store.stats().index_bytes > before, "the 100th read appends one batch");
    }

    #[test]
    fn a_damaged_value_is_a_miss_and_is_removed() {
        for damage in ["flip", "truncate", "remove", "extend"] {
            let fx = Fixture::new();
            let store = fx.open(fx.config());
            store.put("k", b"the value").unwrap();
            let path = store.value_path("k").unwrap();
            let mut bytes = fs::read(&path).unwrap();
            match damage {
                "flip" => bytes[3] ^= 0x10,
                "truncate" => bytes.truncate(4),
                "extend" => bytes.extend_from_slice(b" and more"),
                _ => {}
            }
            if damage == "remove" {
                fs::remove_file(&path).unwrap();
            } else {
                fs::write(&path, &bytes).unwrap();
            }
            assert_eq!(get(&store, "k"), None, "{damage}");
            assert_eq!(store.stats().corruptions, 1, "{damage}");
            assert_eq!(store.stats().entries, 0);
            assert!(fx.value_files().is_empty(), "{damage}");
            drop(store);
            assert!(fx.open(fx.config()).keys().is_empty(), "{damage}: the removal was logged");
        }
    }

    #[test]
    fn open_cleans_up_orphans_missing_and_torn_files() {
        let fx = Fixture::new();
        let store = fx.open(fx.config());
        for k in ["a", "b", "c", "d"] {
            store.put(k, k.repeat(8).as_bytes()).unwrap();
        }
        let path_b = store.value_path("b").unwrap();
        let path_c = store.value_path("c").unwrap();
        drop(store);
        fs::remove_file(&path_b).unwrap();
        fs::write(&path_c, b"cc").unwrap();
        let data = fx.dir.path().join("data");
        fs::create_dir_all(data.join("00")).unwrap();
        fs::write(data.join("00").join("00000000deadbe00"), b"orphan").unwrap();
        fs::create_dir_all(data.join("ab")).unwrap();
        fs::write(data.join("ab").join("00000000000000ab"), b"orphan").unwrap();
        fs::write(data.join("ab").join("not-a-value"), b"junk").unwrap();
        fs::write(fx.dir.path().join("tmp").join("0000000000000099"), b"half").unwrap();

        let store = fx.open(fx.config());
        let r = store.recovery();
        assert_eq!((r.missing_files, r.torn_files, r.temp_files), (1, 1, 1));
        assert_eq!(r.orphan_files, 3, "{r:?}");
        assert!(r.compacted);
        assert_eq!(store.keys(), ["a", "d"]);
        assert_eq!(fx.value_files().len(), 2);
        assert_eq!(get(&store, "d").as_deref(), Some(&b"dddddddd"[..]));
        // New ids never collide with files that existed before.
        store.put("e", b"e").unwrap();
        assert_eq!(get(&store, "e").as_deref(), Some(&b"e"[..]));
    }

    #[test]
    fn a_torn_index_tail_loses_only_the_last_writes() {
        let fx = Fixture::new();
        let store = fx.open(fx.config());
        store.put("a", b"1").unwrap();
        store.put("b", b"2").unwrap();
        drop(store);
        let index = fx.dir.path().join("index");
        let len = fs::metadata(&index).unwrap().len();
        let file = OpenOptions::new().write(true).open(&index).unwrap();
        file.set_len(len - 3).unwrap();
        drop(file);
        let store = fx.open(fx.config());
        assert!(store.recovery().torn_index_bytes > 0);
        assert_eq!(store.keys(), ["a"]);
        assert_eq!(store.recovery().orphan_files, 1, "b's file had no record");
        store.put("c", b"3").unwrap();
        drop(store);
        let store = fx.open(fx.config());
        assert_eq!(store.keys(), ["a", "c"], "appends after a cut-off tail are readable");
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused() {
        let fx = Fixture::new();
        let store = fx.open(fx.config());
        let err = DiskStore::open(fx.config()).unwrap_err();
        assert!(matches!(err, DiskError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("already open"));
        drop(store);
        DiskStore::open(fx.config()).unwrap();
    }

    #[test]
    fn budgets_are_enforced_on_open() {
        let fx = Fixture::new();
        let store = fx.open(fx.config());
        for i in 0..10 {
            store.put(&format!("k{i}"), &[i; 10]).unwrap();
        }
        drop(store);
        let store = fx.open(fx.config().max_bytes(35).max_entries(5));
        assert_eq!(store.recovery().evicted, 7);
        assert_eq!(store.keys(), ["k7", "k8", "k9"]);
        assert_eq!(fx.value_files().len(), 3);
    }

    #[test]
    fn clear_removes_everything_durably() {
        let fx = Fixture::new();
        let store = fx.open(fx.config().fsync(FsyncPolicy::Always));
        for i in 0..20 {
            store.put(&format!("k{i}"), b"v").unwrap();
        }
        store.clear().unwrap();
        assert_eq!(store.stats().entries, 0);
        assert_eq!(store.stats().invalidations, 20);
        assert!(fx.value_files().is_empty());
        store.put("after", b"v").unwrap();
        drop(store);
        assert_eq!(fx.open(fx.config()).keys(), ["after"]);
    }

    #[test]
    fn the_index_is_compacted_when_garbage_dominates() {
        let fx = Fixture::new();
        let store = fx.open(fx.config().recency_batch(1));
        store.put("k", b"v").unwrap();
        for _ in 0..40_000 {
            assert!(get(&store, "k").is_some());
        }
        assert!(store.stats().index_bytes < 2 << 20, "{}", store.stats().index_bytes);
        drop(store);
        assert_eq!(fx.open(fx.config()).keys(), ["k"]);
    }

    #[test]
    fn concurrent_readers_and_writers() {
        let fx = Fixture::new();
        let store = fx.open(fx.config().max_bytes(64 * 1024));
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                let store = &store;
                scope.spawn(move || {
                    for i in 0..300u32 {
                        let key = format!("k{}", (i * 7 + u32::from(t)) % 40);
                        if i % 3 == 0 {
                            let value = vec![t; 1000 + (i as usize % 7) * 100];
                            store.put(&key, &value).unwrap();
                        } else if i % 17 == 0 {
                            store.delete(&key).unwrap();
                        } else if let Some(v) = store.get(&key).unwrap() {
                            assert!(v.iter().all(|&b| b == v[0]), "a torn read");
                        }
                    }
                });
            }
        });
        let s = store.stats();
        assert!(s.bytes <= 64 * 1024);
        assert_eq!(s.corruptions, 0);
        assert_eq!(fx.value_files().len() as u64, s.entries);
        let on_disk: u64 = fx.value_files().iter().map(|p| fs::metadata(p).unwrap().len()).sum();
        assert_eq!(on_disk, s.bytes);
    }
}

//! The files origin: every domain and runner artifacts, stored under one preopened directory.
//!
//! Layout under the root (`config.root`, default `/data`): `<table>/<seg>/<seg>/<last>=`, each
//! key segment percent-encoded so that any key is a safe file name and `=` marks a value file.
//! Writes go to `.tmp/` and are renamed into place, so a reader sees the old value or the new
//! one, whole; with `fsync` on (the default) the file is synced before the rename.
//! Read-modify-write calls take a lock file under `.locks/`, because several instances (and
//! several hosts) may share the directory.
//!
//! Streamed values are read through a file descriptor at offsets, and written to a temporary
//! file that is renamed into place at commit; a writer dropped before commit removes its file,
//! and `init` removes temporary files nobody has touched for an hour (an instance that trapped
//! runs no drop code).

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use storehost_plugin_kit::bindings::exports::storehost::origin::plugin::PluginInfo;
use storehost_plugin_kit::bindings::storehost::host::files as host_files;
use storehost_plugin_kit::{Backend, LockGuard, Opened, Origin, Result, StoreError, Table, ValueReader, ValueWriter};
use wasip2::filesystem::preopens::get_directories;
use wasip2::filesystem::types::{Descriptor, DescriptorFlags, ErrorCode, OpenFlags, PathFlags};

struct Files {
    root: PathBuf,
    /// The preopened directory holding `root`, and its guest path: reads go straight
    /// through WASI descriptors (one `open-at`, one `read` for a small file) instead of
    /// std's path resolution, `stat` and read-until-EOF.
    base: Option<(Descriptor, PathBuf)>,
    fsync: bool,
    counter: u64,
    seed: u64,
    /// Large directories' entries in listing order, with the modification time they were read at.
    dirs: std::collections::HashMap<PathBuf, (SystemTime, std::rc::Rc<Vec<DirEntry>>)>,
}

thread_local! {
    static FILES: std::cell::RefCell<Files> = std::cell::RefCell::new(Files {
        root: PathBuf::from("/data"),
        base: None,
        fsync: true,
        counter: 0,
        seed: random_seed(),
        dirs: Default::default(),
    });
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(storehost_plugin_kit::now_ms());
    h.finish()
}

fn io_error(what: &str, path: &Path, err: std::io::Error) -> StoreError {
    StoreError::Internal(format!("{what} {}: {err}", path.display()))
}

/// Percent-encodes a key segment: only `[A-Za-z0-9_.-]` stay, and a leading `.` is encoded.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for (i, b) in segment.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode_segment(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = name.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `path` as the host's file calls take it.
fn guest_path(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| StoreError::Internal(format!("{} is not UTF-8", path.display())))
}

/// At most `len` bytes of `file` from `offset` (fewer only at its end).
fn read_at(file: &Descriptor, offset: u64, len: usize) -> std::result::Result<Vec<u8>, ErrorCode> {
    // Usually one read returns it all: hand that buffer on instead of copying it into another.
    let (mut out, end) = file.read(len as u64, offset)?;
    if end || out.is_empty() || out.len() >= len {
        return Ok(out);
    }
    out.reserve(len - out.len());
    while out.len() < len {
        let (data, end) = file.read((len - out.len()) as u64, offset + out.len() as u64)?;
        out.extend_from_slice(&data);
        if end || data.is_empty() {
            break;
        }
    }
    Ok(out)
}

/// A value file opened for reading at offsets.
struct FileValue {
    file: Descriptor,
    size: u64,
    path: PathBuf,
}

impl ValueReader for FileValue {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let len = len.min(self.size.saturating_sub(offset) as usize);
        read_at(&self.file, offset, len).map_err(|e| StoreError::Internal(format!("reading {}: {e}", self.path.display())))
    }
}

/// A value being written to a temporary file, renamed over `path` at commit and removed when
/// dropped before.
struct TempValue {
    file: Option<Descriptor>,
    temp: PathBuf,
    path: PathBuf,
    len: u64,
    fsync: bool,
}

impl TempValue {
    fn fail(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Internal(format!("writing {}: {e}", self.path.display()))
    }

    fn write_all(&mut self, mut offset: u64, mut bytes: &[u8]) -> Result<()> {
        let file = self.file.as_ref().expect("open until commit");
        while !bytes.is_empty() {
            match file.write(bytes, offset) {
                Ok(0) => return Err(self.fail("the file took no bytes")),
                Ok(n) => {
                    offset += n;
                    bytes = &bytes[n as usize..];
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(())
    }
}

impl ValueWriter for TempValue {
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.write_all(self.len, bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        if offset + bytes.len() as u64 > self.len {
            return Err(StoreError::Internal("write past the end of a value being written".into()));
        }
        self.write_all(offset, bytes)
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        let file = self.file.take().expect("open until commit");
        if self.fsync {
            file.sync().map_err(|e| self.fail(e))?;
        }
        drop(file);
        let placed = (|| {
            if let Some(parent) = self.path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::rename(&self.temp, &self.path)
        })();
        // On success the temporary name is gone; on failure `drop` removes the file.
        placed.map_err(|e| self.fail(e))?;
        self.temp = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempValue {
    fn drop(&mut self) {
        self.file = None;
        if !self.temp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// The longest encoded segment a file name holds (with the `=` marker); a longer one is named
/// by its hash ([`segment_name`]).
const MAX_SEGMENT: usize = 250;

/// A segment's file name: its encoding, or, where that is longer than a file name may be, `#`
/// and the SHA-256 of the segment (`#` is always encoded otherwise), whose segment is kept in a
/// file `#<hash>~` beside it. `None` for an encoded name.
fn segment_name(segment: &str) -> (String, Option<String>) {
    let name = encode_segment(segment);
    if name.len() <= MAX_SEGMENT {
        return (name, None);
    }
    use sha2::Digest as _;
    let hashed = format!("#{:x}", sha2::Sha256::digest(segment.as_bytes()));
    (hashed.clone(), Some(hashed + "~"))
}

/// A directory entry of a table, in the order listings walk: by its segment, a directory's with
/// a `/` after it (every key under it starts so).
#[derive(Clone, Debug)]
struct DirEntry {
    order: String,
    name: String,
    dir: bool,
}

/// Directories of at least this many entries keep their sorted entries between listings
/// (while their modification time stays), so that paging through one costs the entries on each
/// page's way rather than the whole directory every page.
const CACHED_DIR: usize = 256;
/// How long after a directory's last change its modification time is trusted to show the next
/// one: a change within the file system's clock granularity may leave the time as it was. Times
/// with nanoseconds come from a clock of a tick or so (Linux: 1–10 ms); whole seconds from a
/// coarse one (some file systems keep 1 or 2 s).
fn settle_time(modified: SystemTime) -> Duration {
    let fine = modified.duration_since(SystemTime::UNIX_EPOCH).is_ok_and(|d| d.subsec_nanos() != 0);
    if fine { Duration::from_millis(100) } else { Duration::from_secs(3) }
}

impl Files {
    fn path(&self, table: Table, key: &str) -> Result<PathBuf> {
        Ok(self.placed(table, key)?.0)
    }

    /// The path of a key's value file, and the files that keep the segments of its hashed names
    /// with what each holds.
    fn placed(&self, table: Table, key: &str) -> Result<(PathBuf, Vec<(PathBuf, String)>)> {
        let mut path = self.root.join(table.name());
        let mut kept = Vec::new();
        let segments: Vec<&str> = key.split('/').collect();
        for (i, segment) in segments.iter().enumerate() {
            let (mut name, keeper) = segment_name(segment);
            if let Some(keeper) = keeper {
                kept.push((path.join(keeper), segment.to_string()));
            }
            if i + 1 == segments.len() {
                name.push('=');
            }
            path.push(name);
        }
        Ok((path, kept))
    }

    /// The path a key's value is written at, once the segments of its hashed names are kept
    /// beside them. A kept segment is never removed (a writer may be placing the same name):
    /// it is a few bytes, and a listing passes over one with no entry.
    fn path_for_write(&mut self, table: Table, key: &str) -> Result<PathBuf> {
        let (path, kept) = self.placed(table, key)?;
        for (file, segment) in kept {
            if fs::metadata(&file).is_err() {
                self.write_atomic(&file, segment.as_bytes())?;
            }
        }
        Ok(path)
    }

    /// The entries of `dir` in listing order; none when it does not exist. Entries that go
    /// while it is read, or whose kept segment is not there yet, are left out.
    fn sorted_entries(&mut self, dir: &Path) -> Result<std::rc::Rc<Vec<DirEntry>>> {
        let modified = match fs::metadata(dir) {
            Ok(m) => m.modified().ok(),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Default::default()),
            Err(e) => return Err(io_error("listing", dir, e)),
        };
        let settled = modified.filter(|t| SystemTime::now().duration_since(*t).is_ok_and(|age| age > settle_time(*t)));
        if let Some((when, entries)) = self.dirs.get(dir)
            && settled == Some(*when)
        {
            return Ok(entries.clone());
        }
        let mut entries = Vec::new();
        for name in self.entry_names(dir)? {
            if name.starts_with('.') || name.ends_with('~') {
                continue;
            }
            let (stem, dir_entry) = match name.strip_suffix('=') {
                Some(stem) => (stem, false),
                None => (name.as_str(), true),
            };
            let segment = if stem.starts_with('#') {
                match fs::read_to_string(dir.join(format!("{stem}~"))) {
                    Ok(segment) => segment,
                    Err(_) => continue,
                }
            } else {
                match decode_segment(stem) {
                    Some(segment) => segment,
                    None => continue,
                }
            };
            let order = if dir_entry { segment + "/" } else { segment };
            entries.push(DirEntry { order, name, dir: dir_entry });
        }
        entries.sort_unstable_by(|a, b| a.order.cmp(&b.order));
        let entries = std::rc::Rc::new(entries);
        if let Some(when) = settled.filter(|_| entries.len() >= CACHED_DIR) {
            if self.dirs.len() >= 64 {
                self.dirs.clear();
            }
            self.dirs.insert(dir.to_path_buf(), (when, entries.clone()));
        }
        Ok(entries)
    }

    /// The names in `dir`; none when it does not exist. An entry removed while the directory is
    /// read fails on its own (its metadata is gone) and is left out, and the rest are read on:
    /// `std::fs::read_dir` would end at that error, losing every entry after it.
    fn entry_names(&self, dir: &Path) -> Result<Vec<String>> {
        let failed = |e: ErrorCode| StoreError::Internal(format!("listing {}: {e}", dir.display()));
        let Some((base, rel)) = self.relative(dir) else {
            return Err(StoreError::Internal(format!("{} is outside the preopened directory", dir.display())));
        };
        let opened = match base.open_at(PathFlags::empty(), rel, OpenFlags::DIRECTORY, DescriptorFlags::READ) {
            Ok(opened) => opened,
            Err(ErrorCode::NoEntry) => return Ok(Vec::new()),
            Err(e) => return Err(failed(e)),
        };
        let stream = opened.read_directory().map_err(failed)?;
        let mut names = Vec::new();
        loop {
            match stream.read_directory_entry() {
                Ok(Some(entry)) => names.push(entry.name),
                Ok(None) => return Ok(names),
                Err(ErrorCode::NoEntry) => continue,
                Err(e) => return Err(failed(e)),
            }
        }
    }

    /// The preopened directory holding `path`, and `path` relative to it.
    fn relative<'a>(&self, path: &'a Path) -> Option<(&Descriptor, &'a str)> {
        let (dir, guest) = self.base.as_ref()?;
        path.strip_prefix(guest).ok()?.to_str().map(|rel| (dir, rel))
    }

    /// Opens `path` through the preopened directory; `None` when it does not exist and `open`
    /// has no flags (does not create it).
    fn open(&self, path: &Path, open: OpenFlags, flags: DescriptorFlags) -> Result<Option<Descriptor>> {
        // `init` fails unless `root` is inside a preopened directory, so this holds for every
        // call an instance serves.
        let Some((dir, rel)) = self.relative(path) else {
            return Err(StoreError::Internal(format!("{} is outside the preopened directory", path.display())));
        };
        match dir.open_at(PathFlags::empty(), rel, open, flags) {
            Ok(file) => Ok(Some(file)),
            Err(ErrorCode::NoEntry) if open == OpenFlags::empty() => Ok(None),
            Err(e) => Err(StoreError::Internal(format!("opening {}: {e}", path.display()))),
        }
    }

    /// Reads at most `limit` bytes of the file at `path`; `None` when it does not exist. One
    /// host call (`storehost:host/files`) instead of WASI's open, stat, read and close.
    fn read(&self, path: &Path, limit: usize) -> Result<Option<Vec<u8>>> {
        host_files::read(guest_path(path)?, limit as u64).map_err(StoreError::Internal)
    }

    /// Removes temporary files untouched for [`STALE_TEMP`]: what instances that trapped in the
    /// middle of a write left.
    fn sweep_temps(&self) {
        let Ok(entries) = fs::read_dir(self.root.join(".tmp")) else { return };
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_TEMP);
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    fn temp_path(&mut self) -> PathBuf {
        self.counter += 1;
        self.root.join(".tmp").join(format!("{:016x}-{}", self.seed, self.counter))
    }

    fn write_atomic(&mut self, path: &Path, value: &[u8]) -> Result<()> {
        let temp = self.temp_path();
        let result = (|| {
            let mut file = fs::File::create(&temp)?;
            file.write_all(value)?;
            if self.fsync {
                file.sync_all()?;
            }
            drop(file);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::rename(&temp, path)
        })();
        if let Err(err) = result {
            let _ = fs::remove_file(&temp);
            return Err(io_error("writing", path, err));
        }
        Ok(())
    }

    /// Adds to `out`, in byte order, the keys under `dir` (whose keys all start with `base`)
    /// that start with `prefix` and come after `after`, until it holds `limit`. Directories
    /// that hold no such key are not read: a page costs the entries on its way.
    fn walk(&mut self, dir: &Path, base: &str, prefix: &str, after: Option<&str>, limit: usize, out: &mut Vec<String>) -> Result<()> {
        let entries = self.sorted_entries(dir)?;
        // Whether every key under an entry is at or before `after` (entries in order: those are
        // the first ones).
        let passed = |e: &DirEntry| {
            after.is_some_and(|after| {
                let full = format!("{base}{}", e.order);
                if e.dir { full.as_str() < after && !after.starts_with(&full) } else { full.as_str() <= after }
            })
        };
        let first = entries.partition_point(passed);
        for entry in &entries[first..] {
            if out.len() >= limit {
                return Ok(());
            }
            let full = format!("{base}{}", entry.order);
            // Past every key with the prefix: so is every later entry.
            if full.as_str() > prefix && !full.starts_with(prefix) {
                return Ok(());
            }
            if entry.dir {
                let holds_prefix = full.starts_with(prefix) || prefix.starts_with(&full);
                let before_after = after.is_some_and(|after| full.as_str() < after && !after.starts_with(&full));
                if holds_prefix && !before_after {
                    self.walk(&dir.join(&entry.name), &full, prefix, after, limit, out)?;
                }
            } else if full.starts_with(prefix) && after.is_none_or(|after| full.as_str() > after) {
                out.push(full);
            }
        }
        Ok(())
    }
}

fn config_bool(config: &[(String, String)], key: &str, default: bool) -> Result<bool> {
    match config.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(StoreError::Invalid(format!("config {key}: expected true or false, got {other:?}"))),
    }
}

/// How long a lock may be held before another instance takes it over: a trapped instance
/// never releases its lock file.
const STALE_LOCK: Duration = Duration::from_secs(10);
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// How long a temporary file may go untouched before `init` takes it for a dead writer's.
const STALE_TEMP: Duration = Duration::from_secs(3600);

impl Backend for Files {
    fn with<R>(f: impl FnOnce(&mut Self) -> R) -> R {
        FILES.with(|files| f(&mut files.borrow_mut()))
    }

    fn init(&mut self, config: &[(String, String)]) -> Result<()> {
        if let Some((_, root)) = config.iter().find(|(k, _)| k == "root") {
            self.root = PathBuf::from(root);
        }
        self.fsync = config_bool(config, "fsync", true)?;
        self.base = get_directories().into_iter().find(|(_, guest)| self.root.starts_with(guest)).map(|(dir, guest)| (dir, guest.into()));
        for dir in [".tmp", ".locks"] {
            let path = self.root.join(dir);
            fs::create_dir_all(&path).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot create {} (is the directory granted read-write in the manifest's `dirs`?): {e}",
                    path.display()
                ))
            })?;
        }
        self.sweep_temps();
        Ok(())
    }

    fn info() -> PluginInfo {
        PluginInfo { name: "fs".into(), version: env!("CARGO_PKG_VERSION").into(), stateful: false, max_key_bytes: None }
    }

    fn get(&mut self, table: Table, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(table, key)?;
        self.read(&path, usize::MAX)
    }

    fn get_prefix(&mut self, table: Table, key: &str, len: usize) -> Result<Option<Vec<u8>>> {
        let path = self.path(table, key)?;
        self.read(&path, len)
    }

    fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<()> {
        let path = self.path_for_write(table, key)?;
        self.write_atomic(&path, value)
    }

    fn open_value(&mut self, table: Table, key: &str) -> Result<Option<Box<dyn ValueReader>>> {
        let path = self.path(table, key)?;
        let Some(file) = self.open(&path, OpenFlags::empty(), DescriptorFlags::READ)? else { return Ok(None) };
        let size = file.stat().map_err(|e| StoreError::Internal(format!("reading {}: {e}", path.display())))?.size;
        Ok(Some(Box::new(FileValue { file, size, path })))
    }

    /// Opened by the host (`storehost:host/files.file`), which reads an artifact's body from
    /// it without passing the bytes through the plugin.
    fn open_body(&mut self, table: Table, key: &str) -> Result<Option<Opened>> {
        let path = self.path(table, key)?;
        Ok(host_files::File::open(guest_path(&path)?).map_err(StoreError::Internal)?.map(Opened::File))
    }

    /// Bounded by the disk, not by `max_len`.
    fn create_value(&mut self, table: Table, key: &str, _max_len: u64) -> Result<Box<dyn ValueWriter>> {
        let path = self.path_for_write(table, key)?;
        let temp = self.temp_path();
        let file = self.open(&temp, OpenFlags::CREATE | OpenFlags::EXCLUSIVE, DescriptorFlags::WRITE)?.expect("created");
        Ok(Box::new(TempValue { file: Some(file), temp, path, len: 0, fsync: self.fsync }))
    }

    fn delete(&mut self, table: Table, key: &str) -> Result<()> {
        let path = self.path(table, key)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("removing", &path, e)),
        }
    }

    fn keys(&mut self, table: Table, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let dir = self.root.join(table.name());
        self.walk(&dir, "", prefix, after, limit, &mut keys)?;
        Ok(keys)
    }

    fn lock(&mut self, table: Table, key: &str) -> Result<LockGuard> {
        let path = self.root.join(".locks").join(lock_name(table, key));
        let started = Instant::now();
        loop {
            match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => {
                    return Ok(LockGuard::new(move || {
                        let _ = fs::remove_file(&path);
                    }));
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let stale = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > STALE_LOCK);
                    if stale {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    if started.elapsed() > LOCK_WAIT {
                        return Err(StoreError::Unavailable(format!("{} {key:?} is locked by another writer", table.name())));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(io_error("locking", &path, e)),
            }
        }
    }
}

/// The lock file of a record: its table and key, encoded, or (for a name longer than a file
/// name may be) the SHA-256 of the key after a `#`, which an encoded key never holds.
fn lock_name(table: Table, key: &str) -> String {
    let name = format!("{}-{}", table.name(), encode_segment(&key.replace('/', "\u{1}")));
    if name.len() <= MAX_SEGMENT {
        return name;
    }
    use sha2::Digest as _;
    format!("{}-#{:x}", table.name(), sha2::Sha256::digest(key.as_bytes()))
}

type FsOrigin = Origin<Files>;
storehost_plugin_kit::export!(FsOrigin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip() {
        for s in ["a", "with space", "ünï", ".hidden", "a=b", "%41", "x.v"] {
            let e = encode_segment(s);
            assert!(!e.starts_with('.') && !e.contains('=') && !e.contains('/'));
            assert_eq!(decode_segment(&e).as_deref(), Some(s));
        }
    }
}

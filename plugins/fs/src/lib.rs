//! The files origin: every domain and runner artifacts, stored under one preopened directory.
//!
//! Layout under the root (`config.root`, default `/data`): `<table>/<seg>/<seg>/<last>=`, each
//! key segment percent-encoded so that any key is a safe file name and `=` marks a value file.
//! Writes go to `.tmp/` and are renamed into place, so a reader sees the old value or the new
//! one, whole; with `fsync` on (the default) the file is synced before the rename.
//! Read-modify-write calls take a lock file under `.locks/`, because several instances (and
//! several hosts) may share the directory.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use storehost_plugin_kit::bindings::exports::storehost::origin::plugin::PluginInfo;
use storehost_plugin_kit::{Backend, LockGuard, Origin, Result, StoreError, Table};
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
}

thread_local! {
    static FILES: std::cell::RefCell<Files> = std::cell::RefCell::new(Files {
        root: PathBuf::from("/data"),
        base: None,
        fsync: true,
        counter: 0,
        seed: random_seed(),
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

/// The longest encoded segment a file name can hold (with the `=` marker).
const MAX_SEGMENT: usize = 250;

impl Files {
    fn path(&self, table: Table, key: &str) -> Result<PathBuf> {
        let mut path = self.root.join(table.name());
        let segments: Vec<&str> = key.split('/').collect();
        for (i, segment) in segments.iter().enumerate() {
            let mut name = encode_segment(segment);
            if name.len() > MAX_SEGMENT {
                return Err(StoreError::Invalid(format!(
                    "key segment of {} bytes is too long for a file name (encoded {} > {MAX_SEGMENT} bytes)",
                    segment.len(),
                    name.len()
                )));
            }
            if i + 1 == segments.len() {
                name.push('=');
            }
            path.push(name);
        }
        Ok(path)
    }

    /// The preopened directory holding `path`, and `path` relative to it.
    fn relative<'a>(&self, path: &'a Path) -> Option<(&Descriptor, &'a str)> {
        let (dir, guest) = self.base.as_ref()?;
        path.strip_prefix(guest).ok()?.to_str().map(|rel| (dir, rel))
    }

    /// Reads at most `limit` bytes of the file at `path`; `None` when it does not exist.
    fn read(&self, path: &Path, limit: usize) -> Result<Option<Vec<u8>>> {
        // `init` fails unless `root` is inside a preopened directory, so this holds for every
        // call an instance serves.
        let Some((dir, rel)) = self.relative(path) else {
            return Err(StoreError::Internal(format!("{} is outside the preopened directory", path.display())));
        };
        let file = match dir.open_at(PathFlags::empty(), rel, OpenFlags::empty(), DescriptorFlags::READ) {
            Ok(file) => file,
            Err(ErrorCode::NoEntry) => return Ok(None),
            Err(e) => return Err(StoreError::Internal(format!("reading {}: {e}", path.display()))),
        };
        let fail = |e: ErrorCode| StoreError::Internal(format!("reading {}: {e}", path.display()));
        // Files are replaced by rename, never changed in place: the size from `stat` is the
        // size of what this descriptor reads.
        let size = file.stat().map_err(fail)?.size.min(limit as u64) as usize;
        let mut out = Vec::with_capacity(size);
        while out.len() < size {
            let (data, end) = file.read((size - out.len()) as u64, out.len() as u64).map_err(fail)?;
            out.extend_from_slice(&data);
            if end || data.is_empty() {
                break;
            }
        }
        Ok(Some(out))
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

    /// Collects the keys under `dir` (whose decoded key so far is `base`) that start with
    /// `prefix`, skipping directories that cannot hold one.
    fn walk(&self, dir: &Path, base: &str, prefix: &str, out: &mut Vec<String>) -> Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error("listing", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error("listing", dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let (encoded, leaf) = match name.strip_suffix('=') {
                Some(stem) => (stem, true),
                None => (name, false),
            };
            let Some(segment) = decode_segment(encoded) else { continue };
            let key = if base.is_empty() { segment } else { format!("{base}/{segment}") };
            if leaf {
                if key.starts_with(prefix) {
                    out.push(key);
                }
            } else {
                let dir_key = format!("{key}/");
                if dir_key.starts_with(prefix) || prefix.starts_with(&dir_key) {
                    self.walk(&entry.path(), &key, prefix, out)?;
                }
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
        Ok(())
    }

    fn info() -> PluginInfo {
        PluginInfo { name: "fs".into(), version: env!("CARGO_PKG_VERSION").into(), stateful: false }
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
        let path = self.path(table, key)?;
        self.write_atomic(&path, value)
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
        self.walk(&self.root.join(table.name()), "", prefix, &mut keys)?;
        keys.sort_unstable();
        let start = match after {
            Some(after) => keys.partition_point(|k| k.as_str() <= after),
            None => 0,
        };
        Ok(keys.into_iter().skip(start).take(limit).collect())
    }

    fn lock(&mut self, table: Table, key: &str) -> Result<LockGuard> {
        let path = self.root.join(".locks").join(format!("{}-{}", table.name(), encode_segment(&key.replace('/', "\u{1}"))));
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

//! Files: plain `wasi:filesystem`, limited to the directories the manifest preopens, through
//! wasmtime-wasi's cap-std sandbox (no `..` out, no absolute paths, no symlinks leaving the
//! directory); and `storehost:host/files`, whole-file reads and files opened for reading at
//! offsets in the same directories under the same sandbox (cap-primitives, as wasmtime-wasi uses
//! it), each in one host call. A file a plugin opens that way can be handed back to the host as
//! an artifact's body ([`HostFile`]), which the host then reads without the plugin.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::open_files::OpenFiles;
use super::{Capability, PluginIdentity, Scoped, ScopedData};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        inline: "package storehost:files-capability; world files { import storehost:host/files@0.1.2; }",
        path: "../wit/deps/host",
        imports: { default: trappable },
        with: { "storehost:host/files.file": crate::capabilities::files::HostFile },
    });
}

use bindings::storehost::host::files as wit;

/// Read-only or read-write access to a preopened directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DirMode {
    Ro,
    Rw,
}

/// One directory granted to a plugin: `host` on this machine, seen as `guest` by the plugin.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DirGrant {
    pub guest: String,
    pub host: PathBuf,
    pub mode: DirMode,
}

/// The WASI context of one plugin instance: its preopened directories, and nothing else —
/// no environment variables, no arguments, no inherited stdio, no network.
pub fn wasi_ctx(dirs: &[DirGrant]) -> Result<WasiCtx> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        // Local file I/O is fast enough to do on the calling thread; it saves a thread hop per
        // operation.
        .allow_blocking_current_thread(true);
    for dir in dirs {
        let perms = match dir.mode {
            DirMode::Ro => FsPerms::ReadOnly,
            DirMode::Rw => FsPerms::ReadWrite,
        };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| anyhow::anyhow!("{e:#}"))
            .with_context(|| format!("opening {} (granted as {})", dir.host.display(), dir.guest))?;
    }
    Ok(builder.build())
}

/// Every plugin has it, over the directories it is granted (none: every read is refused).
pub struct Files;

/// A plugin's preopened directories, opened once (guest path and directory handle), and the
/// files kept open in them between reads.
pub struct GrantedDirs {
    dirs: Vec<(String, std::fs::File)>,
    open: OpenFiles,
}

impl Capability for Files {
    const INTERFACE: &'static str = "storehost:host/files";
    type Grant = ();
    type State = GrantedDirs;

    async fn open(_: &(), plugin: &PluginIdentity<'_>) -> anyhow::Result<GrantedDirs> {
        let mut dirs = Vec::with_capacity(plugin.dirs.len());
        for dir in plugin.dirs {
            let handle = cap_primitives::fs::open_ambient_dir(&dir.host, cap_primitives::ambient_authority())
                .with_context(|| format!("opening {} (granted as {})", dir.host.display(), dir.guest))?;
            dirs.push((dir.guest.trim_end_matches('/').to_string(), handle));
        }
        Ok(GrantedDirs::new(dirs))
    }

    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> Scoped<'_, Self>) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, ScopedData<Self>>(linker, get)
    }
}

impl GrantedDirs {
    fn new(dirs: Vec<(String, std::fs::File)>) -> Self {
        let open = OpenFiles::new(dirs.len());
        Self { dirs, open }
    }

    /// The directory holding the guest path `path` (its index and handle), and `path`
    /// relative to it.
    fn resolve<'a>(&self, path: &'a str) -> Option<(usize, &std::fs::File, &'a Path)> {
        self.dirs.iter().enumerate().find_map(|(index, (guest, dir))| {
            let rest = if guest.is_empty() { path.strip_prefix('/')? } else { path.strip_prefix(guest.as_str())?.strip_prefix('/')? };
            Some((index, dir, Path::new(rest)))
        })
    }

    /// At most `max_len` bytes of the file at the guest path `path`; `None` when there is none.
    /// A file of at most [`HostFile::WHOLE`] bytes (or a read of at most that many) takes one
    /// positioned read into a buffer of that size, without asking the file's size first; a
    /// longer one asks it, then reads the rest.
    pub fn read(&self, path: &str, max_len: u64) -> Result<Option<Vec<u8>>, String> {
        let Some(file) = self.open_read(path)? else { return Ok(None) };
        let failed = |e: std::io::Error| format!("reading {path}: {e}");
        let first = max_len.min(HostFile::WHOLE + 1) as usize;
        let mut out = Vec::new();
        read_into(&file, &mut out, 0, first).map_err(failed)?;
        if out.len() < first || out.len() as u64 == max_len {
            return Ok(Some(out));
        }
        let size = file.metadata().map_err(failed)?.len();
        let rest = size.min(max_len).saturating_sub(out.len() as u64);
        read_into(&file, &mut out, first as u64, usize::try_from(rest).unwrap_or(usize::MAX)).map_err(failed)?;
        Ok(Some(out))
    }

    /// The file at the guest path `path`, opened for reading; `None` when there is none.
    pub fn open(&self, path: &str) -> Result<Option<HostFile>, String> {
        let Some(file) = self.open_read(path)? else { return Ok(None) };
        HostFile::opened(file, path).map(Some).map_err(|e| format!("opening {path}: {e}"))
    }

    /// The guest path `path` opened read-only inside its preopened directory (a file kept open
    /// from an earlier read where it can be, see [`OpenFiles`]); `None` when nothing is there.
    fn open_read(&self, path: &str) -> Result<Option<Arc<std::fs::File>>, String> {
        let Some((index, dir, relative)) = self.resolve(path) else { return Err(format!("{path} is outside the preopened directories")) };
        let opened = self.open.open(index, dir, relative).unwrap_or_else(|| {
            let mut options = cap_primitives::fs::OpenOptions::new();
            options.read(true);
            // cap-primitives resolves `relative` inside `dir`: `..`, absolute paths and
            // symlinks cannot leave it.
            cap_primitives::fs::open(dir, relative, &options).map(Arc::new)
        });
        match opened {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("opening {path}: {e}")),
        }
    }
}

/// Appends at most `len` bytes of `file` from `offset` to `out` by positioned reads into its
/// spare room, not zeroed first: fewer only at the end of the file, no position moved. A read
/// of a file that gives fewer bytes than asked has reached its end (that is the only short read
/// of a regular file), so a file shorter than `len` takes one read, not a second to find the end.
fn read_into(file: &std::fs::File, out: &mut Vec<u8>, offset: u64, len: usize) -> std::io::Result<()> {
    let (start, end) = (out.len(), out.len() + len);
    out.reserve_exact(len);
    while out.len() < end {
        let at = offset + (out.len() - start) as u64;
        let asked = out.spare_capacity_mut().len();
        match rustix::io::pread(file, rustix::buffer::spare_capacity(out), at) {
            Ok(n) if n < asked => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The spare room may have held more than was asked for.
    out.truncate(end);
    Ok(())
}

/// A file a plugin opened through `storehost:host/files.file`: read by the plugin at offsets,
/// and read by the host when the plugin hands it over as a body.
///
/// Its first [`HostFile::WHOLE`] bytes and one more are read when it is opened, in one
/// positioned read: a file that fits is then whole, its size is what the read found (no
/// `statx`), and every read of it (the plugin's of its header, the host's of the body) is a
/// slice of those bytes, so that a small artifact opened to be served takes one read however its
/// record is laid out. A longer file's size is asked of the file system, and a read within its
/// first bytes is a slice of them too. The bytes are the file's as it was opened, as every read
/// of the open file is.
#[derive(Debug)]
pub struct HostFile {
    file: Arc<std::fs::File>,
    size: u64,
    /// The path the plugin opened, for error messages.
    path: String,
    /// The file's first bytes, read at open: all of them when it is at most [`HostFile::WHOLE`]
    /// bytes long.
    head: Bytes,
}

impl HostFile {
    /// `file`, with its first bytes read; a directory is refused.
    fn opened(file: Arc<std::fs::File>, path: &str) -> std::io::Result<Self> {
        let mut head = Vec::new();
        match read_into(&file, &mut head, 0, Self::WHOLE as usize + 1) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::ISDIR.raw_os_error()) => {
                return Err(std::io::Error::other("not a file"));
            }
            read => read?,
        }
        let size = if head.len() as u64 <= Self::WHOLE {
            head.len() as u64
        } else {
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Err(std::io::Error::other("not a file"));
            }
            meta.len().max(head.len() as u64)
        };
        Ok(Self { file, size, path: path.to_string(), head: Bytes::from(head) })
    }

    /// Its length when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The longest read of a body the host makes on the thread serving it; a longer one is
    /// made on the blocking pool.
    pub const SHORT_READ: usize = 64 << 10;

    /// The largest file read whole when it is opened (see [`HostFile`]).
    pub const WHOLE: u64 = 16 << 10;

    /// At most `len` bytes from `offset` (fewer only at the end of the file, none past it). A
    /// read within the bytes read at open is a slice of them; another is positioned reads (one
    /// system call where the page cache holds the bytes), which move no position: a file kept
    /// open is read by several at once.
    ///
    /// # Errors
    /// The read failed.
    pub fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        let start = offset.min(self.size);
        let len = len.min((self.size - start) as usize);
        let end = start as usize + len;
        if end <= self.head.len() {
            return Ok(self.head.slice(start as usize..end));
        }
        let mut out = Vec::new();
        read_into(&self.file, &mut out, start, len)?;
        Ok(Bytes::from(out))
    }

    /// The path the plugin opened it by.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// The span of a `files` call (with traces on), of the plugin call that made it: the call, the
/// guest path, and the size found (`file.size`; none: no file there) or the failure.
fn traced<T>(call: &'static str, path: &str, f: impl FnOnce() -> Result<Option<T>, String>, size: impl Fn(&T) -> u64) -> Result<Option<T>, String> {
    if !crate::base::telemetry::on() {
        return f();
    }
    let span = tracing::info_span!(
        target: "storehost::files",
        "files",
        otel.name = call,
        file.path = path,
        file.size = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    let result = span.in_scope(f);
    match &result {
        Ok(Some(found)) => {
            span.record("file.size", size(found) as i64);
        }
        Ok(None) => {}
        Err(e) => {
            span.record("otel.status_code", "ERROR").record("otel.status_description", e.as_str());
        }
    }
    result
}

impl wit::Host for Scoped<'_, Files> {
    fn read(&mut self, path: String, max_len: u64) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        Ok(traced("files.read", &path, || self.state.read(&path, max_len), |bytes| bytes.len() as u64))
    }
}

impl wit::HostFile for Scoped<'_, Files> {
    fn open(&mut self, path: String) -> wasmtime::Result<Result<Option<Resource<HostFile>>, String>> {
        Ok(match traced("files.open", &path, || self.state.open(&path), HostFile::size) {
            Ok(Some(file)) => Ok(Some(self.table.push(file)?)),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        })
    }

    fn size(&mut self, file: Resource<HostFile>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&file)?.size)
    }

    fn read_at(&mut self, file: Resource<HostFile>, offset: u64, len: u64) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let file = self.table.get(&file)?;
        let read = file.read_at(offset, usize::try_from(len).unwrap_or(usize::MAX));
        Ok(read.map(Vec::from).map_err(|e| format!("reading {}: {e}", file.path)))
    }

    fn drop(&mut self, file: Resource<HostFile>) -> wasmtime::Result<()> {
        self.table.delete(file)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(dir: &Path) -> GrantedDirs {
        GrantedDirs::new(vec![("/data".into(), cap_primitives::fs::open_ambient_dir(dir, cap_primitives::ambient_authority()).unwrap())])
    }

    /// A granted directory holding `a/file` ("hello world"), a symlink to it and two symlinks
    /// out of it, beside a file it does not grant.
    fn sandbox() -> (tempfile::TempDir, PathBuf, GrantedDirs) {
        let root = tempfile::tempdir().unwrap();
        let (inside, outside) = (root.path().join("granted"), root.path().join("secret"));
        std::fs::create_dir_all(inside.join("a")).unwrap();
        std::fs::write(inside.join("a/file"), b"hello world").unwrap();
        std::fs::write(&outside, b"not yours").unwrap();
        std::os::unix::fs::symlink(&outside, inside.join("link-out")).unwrap();
        std::os::unix::fs::symlink("../secret", inside.join("relative-out")).unwrap();
        std::os::unix::fs::symlink("a/file", inside.join("link-in")).unwrap();
        let dirs = granted(&inside);
        (root, inside, dirs)
    }

    #[test]
    fn reads_inside_the_grant_and_nothing_outside() {
        let (_root, _, dirs) = sandbox();

        assert_eq!(dirs.read("/data/a/file", u64::MAX).unwrap().as_deref(), Some(&b"hello world"[..]));
        assert_eq!(dirs.read("/data/a/file", 5).unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(dirs.read("/data/link-in", u64::MAX).unwrap().as_deref(), Some(&b"hello world"[..]));
        assert_eq!(dirs.read("/data/a/missing", u64::MAX).unwrap(), None);
        for escape in ["/data/../secret", "/data/a/../../secret", "/data/link-out", "/data/relative-out", "/data//etc/passwd"] {
            let result = dirs.read(escape, u64::MAX);
            assert!(!matches!(result, Ok(Some(_))), "{escape} was read: {result:?}");
        }
        for outside_grant in ["/etc/passwd", "/database/x", "data/a/file", "/"] {
            assert!(dirs.read(outside_grant, u64::MAX).is_err(), "{outside_grant} was not refused");
        }
        // A directory is not a file.
        assert!(dirs.read("/data/a", u64::MAX).is_err());
    }

    #[test]
    fn opens_inside_the_grant_only_and_reads_at_offsets() {
        let (_root, inside, dirs) = sandbox();

        let file = dirs.open("/data/a/file").unwrap().unwrap();
        assert_eq!(file.size(), 11);
        assert_eq!(file.read_at(6, 100).unwrap(), &b"world"[..]);
        assert_eq!(file.read_at(0, 5).unwrap(), &b"hello"[..]);
        assert_eq!(file.read_at(11, 5).unwrap(), &b""[..]);
        assert_eq!(file.read_at(50, 5).unwrap(), &b""[..]);
        assert_eq!(file.read_at(4, 3).unwrap(), &b"o w"[..]);
        assert_eq!(file.read_at(8, 100).unwrap(), &b"rld"[..]);
        // The file as it was opened: one renamed over its path later is not seen.
        std::fs::write(inside.join("a/next"), b"HELLO WORLD, LONGER").unwrap();
        std::fs::rename(inside.join("a/next"), inside.join("a/file")).unwrap();
        assert_eq!(file.read_at(0, 100).unwrap(), &b"hello world"[..]);

        assert!(dirs.open("/data/a/missing").unwrap().is_none());
        for escape in ["/data/../secret", "/data/a/../../secret", "/data/link-out", "/data/relative-out"] {
            let result = dirs.open(escape);
            assert!(!matches!(result, Ok(Some(_))), "{escape} was opened");
        }
        for outside_grant in ["/etc/passwd", "/database/x", "data/a/file"] {
            assert!(dirs.open(outside_grant).is_err(), "{outside_grant} was not refused");
        }
        assert!(dirs.open("/data/a").unwrap_err().contains("not a file"));
    }

    /// A small file is read whole when it is opened: every read is a slice of those bytes, even
    /// after the file changes in place. A larger one's first bytes are read then too, and the
    /// rest where asked, each time.
    #[test]
    fn a_small_file_is_read_whole_at_open_and_a_larger_one_where_asked() {
        let (_root, inside, dirs) = sandbox();
        let small: Vec<u8> = (0..HostFile::WHOLE as usize).map(|i| (i * 7) as u8).collect();
        let large: Vec<u8> = (0..3 * HostFile::WHOLE as usize).map(|i| (i * 11) as u8).collect();
        std::fs::write(inside.join("small"), &small).unwrap();
        std::fs::write(inside.join("large"), &large).unwrap();

        let file = dirs.open("/data/small").unwrap().unwrap();
        assert_eq!(file.size(), small.len() as u64);
        std::fs::write(inside.join("small"), vec![0u8; small.len()]).unwrap();
        assert_eq!(file.read_at(0, 4).unwrap(), &small[..4]);
        assert_eq!(file.read_at(12, 4096).unwrap(), &small[12..4108]);
        assert_eq!(file.read_at(small.len() as u64 - 3, 100).unwrap(), &small[small.len() - 3..]);
        assert_eq!(file.read_at(small.len() as u64 + 5, 100).unwrap(), &b""[..]);

        let file = dirs.open("/data/large").unwrap().unwrap();
        assert_eq!(file.size(), large.len() as u64);
        let mut changed = large.clone();
        changed[100] ^= 0xff;
        changed[2 * HostFile::WHOLE as usize] ^= 0xff;
        std::fs::write(inside.join("large"), &changed).unwrap();
        // Within the first bytes: as opened; past them: as the file is now.
        assert_eq!(file.read_at(96, 8).unwrap(), &large[96..104]);
        let past = 2 * HostFile::WHOLE;
        assert_eq!(file.read_at(past - 4, 8).unwrap(), &changed[past as usize - 4..past as usize + 4]);
        assert_eq!(file.read_at(large.len() as u64 - 3, 100).unwrap(), &changed[large.len() - 3..]);
        // A read across the end of the first bytes is one read of the file.
        let edge = HostFile::WHOLE - 2;
        assert_eq!(file.read_at(edge, 8).unwrap(), &changed[edge as usize..edge as usize + 8]);

        // Whole-file reads: at most the bytes asked for, whatever the size.
        assert_eq!(dirs.read("/data/small", u64::MAX).unwrap().unwrap(), vec![0u8; small.len()]);
        assert_eq!(dirs.read("/data/large", u64::MAX).unwrap().unwrap(), changed);
        assert_eq!(dirs.read("/data/large", HostFile::WHOLE + 1).unwrap().unwrap(), &changed[..HostFile::WHOLE as usize + 1]);
        assert_eq!(dirs.read("/data/large", HostFile::WHOLE + 7).unwrap().unwrap(), &changed[..HostFile::WHOLE as usize + 7]);
        assert_eq!(dirs.read("/data/large", 0).unwrap().unwrap(), b"");
    }
}

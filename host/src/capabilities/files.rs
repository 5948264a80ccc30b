//! Files: plain `wasi:filesystem`, limited to the directories the manifest preopens, through
//! wasmtime-wasi's cap-std sandbox (no `..` out, no absolute paths, no symlinks leaving the
//! directory); and `storehost:host/files`, whole-file reads in the same directories under the
//! same sandbox (cap-primitives, as wasmtime-wasi uses it), in one host call.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wasmtime::component::Linker;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::{Capability, PluginIdentity, Scoped, ScopedData};

mod bindings {
    wasmtime::component::bindgen!({
        inline: "package storehost:files-capability; world files { import storehost:host/files@0.1.1; }",
        path: "../wit/deps/host",
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

/// A plugin's preopened directories, opened once: guest path and directory handle.
pub struct GrantedDirs(Vec<(String, std::fs::File)>);

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
        Ok(GrantedDirs(dirs))
    }

    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> Scoped<'_, Self>) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, ScopedData<Self>>(linker, get)
    }
}

impl GrantedDirs {
    /// The directory holding the guest path `path`, and `path` relative to it.
    fn resolve<'a>(&self, path: &'a str) -> Option<(&std::fs::File, &'a Path)> {
        self.0.iter().find_map(|(guest, dir)| {
            let rest = if guest.is_empty() { path.strip_prefix('/')? } else { path.strip_prefix(guest.as_str())?.strip_prefix('/')? };
            Some((dir, Path::new(rest)))
        })
    }

    /// At most `max_len` bytes of the file at the guest path `path`; `None` when there is none.
    pub fn read(&self, path: &str, max_len: u64) -> Result<Option<Vec<u8>>, String> {
        let Some((dir, relative)) = self.resolve(path) else { return Err(format!("{path} is outside the preopened directories")) };
        let mut options = cap_primitives::fs::OpenOptions::new();
        options.read(true);
        // cap-primitives resolves `relative` inside `dir`: `..`, absolute paths and symlinks
        // cannot leave it.
        let file = match cap_primitives::fs::open(dir, relative, &options) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("opening {path}: {e}")),
        };
        let size = file.metadata().map_err(|e| format!("reading {path}: {e}"))?.len();
        let mut out = Vec::with_capacity(size.min(max_len) as usize);
        file.take(max_len).read_to_end(&mut out).map_err(|e| format!("reading {path}: {e}"))?;
        Ok(Some(out))
    }
}

impl wit::Host for Scoped<'_, Files> {
    fn read(&mut self, path: String, max_len: u64) -> Result<Option<Vec<u8>>, String> {
        self.state.read(&path, max_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(dir: &Path) -> GrantedDirs {
        GrantedDirs(vec![("/data".into(), cap_primitives::fs::open_ambient_dir(dir, cap_primitives::ambient_authority()).unwrap())])
    }

    #[test]
    fn reads_inside_the_grant_and_nothing_outside() {
        let root = tempfile::tempdir().unwrap();
        let (inside, outside) = (root.path().join("granted"), root.path().join("secret"));
        std::fs::create_dir_all(inside.join("a")).unwrap();
        std::fs::write(inside.join("a/file"), b"hello world").unwrap();
        std::fs::write(&outside, b"not yours").unwrap();
        std::os::unix::fs::symlink(&outside, inside.join("link-out")).unwrap();
        std::os::unix::fs::symlink("../secret", inside.join("relative-out")).unwrap();
        std::os::unix::fs::symlink("a/file", inside.join("link-in")).unwrap();
        let dirs = granted(&inside);

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
}

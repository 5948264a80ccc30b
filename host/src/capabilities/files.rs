//! Files: plain `wasi:filesystem`, limited to the directories the manifest preopens, through
//! wasmtime-wasi's cap-std sandbox (no `..` out, no absolute paths, no symlinks leaving the
//! directory).

use std::path::PathBuf;

use anyhow::{Context, Result};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

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

//! The bottom layer: the caller's context, the error every store returns and its kinds, the
//! names of the domains, the units manifests are written in, and traces (`telemetry`). It
//! depends on nothing else of the host, and every other module may depend on it.

pub mod access_log;
mod context;
mod error;
mod latency;
pub mod log_buffer;
mod names;
pub mod telemetry;
pub mod units;

pub use context::Ctx;
pub use error::{ErrorKind, Result, StoreError, chain};
pub use latency::{LATENCY_BUCKETS, LatencyHistogram, latency_quantile};
pub use names::{Domain, encode_path, now_secs};

/// Writes `bytes` to `path` whole or not at all: into a temporary file beside it (its directory
/// created first), renamed into place, so a reader (or a crash) never sees half of it.
pub fn write_replacing(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let dir = path.parent().with_context(|| format!("{} has no directory", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let temp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(temp.path(), bytes)?;
    temp.persist(path)?;
    Ok(())
}

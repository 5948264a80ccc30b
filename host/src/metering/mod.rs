//! The metering layer: [`Metered`] wraps a domain's store (an origin, under its cache) and
//! counts every call by operation, errors by kind, and latency. It owns the per-domain origin
//! metrics; the caches above it only cache.
//!
//! ```
//! use std::sync::Arc;
//! use storehost::domain::{ArtifactOperation, ArtifactStore, Ctx};
//! use storehost::metering::{Metered, OriginMeter};
//! use storehost::origin::PluginArtifactStore;
//! use storehost::runtime::{Plugin, PluginSpec, Runtime, RuntimeConfig};
//!
//! # #[tokio::main] async fn main() -> anyhow::Result<()> {
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let plugin = Plugin::load(&runtime, PluginSpec::new("memory", "builtin:memory", storehost::builtin("memory").unwrap())).await?;
//! let meter = Arc::new(OriginMeter::<ArtifactOperation>::new());
//! let origin = Metered::new(Arc::new(PluginArtifactStore::new(plugin)?), meter.clone());
//! origin.put(&Ctx::background(), "a/b", "hi".into(), None).await?;
//! assert_eq!(meter.snapshot().calls_of(ArtifactOperation::Put), 1);
//! # Ok(()) }
//! ```

mod meter;
mod stores;

pub use crate::base::{LATENCY_BUCKETS, LatencyHistogram, latency_quantile};
pub use meter::{OriginMeter, OriginStats};
pub use stores::Metered;

//! The bottom layer: the caller's context, the error every store returns and its kinds, the
//! names of the domains, the units manifests are written in, and traces (`telemetry`). It
//! depends on nothing else of the host, and every other module may depend on it.

mod context;
mod error;
mod latency;
mod names;
pub mod telemetry;
pub mod units;

pub use context::Ctx;
pub use error::{ErrorKind, Result, StoreError, chain};
pub use latency::{LATENCY_BUCKETS, LatencyHistogram, latency_quantile};
pub use names::Domain;

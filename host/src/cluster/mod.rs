//! Replicas that stay coherent. Several hosts share their origins; each keeps its own caches,
//! and a write on one host reaches the others as invalidations through a durable log in
//! PostgreSQL:
//!
//! - after the origin acknowledged a write, and before the caller gets its answer, the host
//!   appends the write's invalidations to the log (batched with concurrent writes: one statement
//!   and one NOTIFY per batch) and tells the caller the position (read-your-writes on another
//!   host: a read that asks for a position waits until that host has applied it);
//! - every host follows the log from the last position it applied, woken by NOTIFY and polling
//!   too, so a lost notification or listener connection is a gap the next read fills;
//! - a host whose last successful read of the log is older than `max_staleness` answers from its
//!   origins, not its caches, until it has caught up: the bound holds when the log is down.
//!
//! With peer fill (`[domains.artifact] peer_fill`), the replicas share one cache: see [`peers`].
//!
//! Writes that bypass storehost (another tool writing the bucket) are covered only by TTLs.

mod config;
mod log;
mod metrics;
mod node;
pub mod peers;
mod replicated;

pub use config::{ClusterConfig, LogConfig};
pub use metrics::ClusterStats;
pub use node::Node;
pub use peers::{PeerStats, Peers};
pub use replicated::Replicated;

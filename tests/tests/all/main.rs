//! One test binary (linking wasmtime once), one module per concern.

mod atomic_reads;
mod bad_input;
mod cache;
mod cluster;
mod conformance;
mod copy;
mod faults;
mod listings;
mod peer_fill;
mod persistence;
mod postgres;
mod registry;
mod reload;
mod s3;
mod sandbox;
mod shared_dir;
mod signed_urls;
mod sql;
mod stale;
mod streaming;
mod traces;
mod whole_reads;

/// Starts the real `storehost` binary (shared with the host's own tests).
#[path = "../../../host/tests/support/mod.rs"]
mod support;

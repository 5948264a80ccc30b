//! The PostgreSQL origin: gateway artifacts, projects and their artifact records, UI documents,
//! workspaces and the runner store, as tables in one schema of the database the manifest's
//! `sql` grant names. The host owns the connection pool and the credentials.
//!
//! - `init` creates and migrates the schema (see [`schema`]); config keys `schema` and `max_body`.
//! - Versions give optimistic concurrency: a save or delete with an expected version is one
//!   conditional statement, so concurrent writers cannot both win a version.
//! - `apply-ops` runs in one transaction holding the document's row lock.
//! - Lists page by key (keyset pagination): the cursor is the last key of the previous page.
//! - Artifact bodies and runner files are `bytea`, at most `max_body` bytes (64 MiB by default).

mod artifacts;
mod db;
mod projects;
mod runner;
mod schema;
mod stream;
mod ui;
mod workspaces;

use storehost_plugin_kit::StoreError;
use storehost_plugin_kit::bindings::exports::storehost::origin::plugin::{Guest, PluginInfo};

/// The exported origin.
pub struct Postgres;

impl Guest for Postgres {
    fn describe() -> PluginInfo {
        PluginInfo { name: "postgres".into(), version: env!("CARGO_PKG_VERSION").into(), stateful: false, max_key_bytes: None }
    }

    fn init(config: Vec<(String, String)>) -> Result<(), StoreError> {
        schema::init(&config)
    }
}

fn check_body(len: usize) -> Result<(), StoreError> {
    let max = schema::settings().max_body;
    if len > max {
        return Err(StoreError::Invalid(format!("body of {len} bytes is over this origin's {max}-byte limit (config `max_body`)")));
    }
    Ok(())
}

storehost_plugin_kit::export!(Postgres);

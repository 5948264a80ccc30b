//! The contract's rules for keys, ids and runs, checked by the host before any origin call (a
//! plugin written in any language may not check them). The rules themselves are the
//! `storehost-plugin-rules` crate's, the one definition plugins use too.

use crate::base::{Result, StoreError};

/// The longest artifact key and runner file name, in bytes.
pub const MAX_KEY_BYTES: usize = storehost_plugin_rules::MAX_KEY;

/// Artifact keys and runner file names: 1–1024 bytes, `/`-separated, no empty, `.` or `..`
/// segment, no NUL, no leading `/`.
///
/// # Errors
/// `invalid`, saying which rule the key breaks.
pub fn validate_key(key: &str) -> Result<()> {
    storehost_plugin_rules::validate_artifact_key(key).map_err(StoreError::Invalid)
}

/// Ids of projects, documents, workspaces and tabs (`what` names which): 1–256 bytes, no NUL,
/// no `/`.
///
/// # Errors
/// `invalid`, saying which rule the id breaks.
pub fn validate_id(what: &str, id: &str) -> Result<()> {
    storehost_plugin_rules::validate_id(what, id).map_err(StoreError::Invalid)
}

/// A run: one path segment, by the id rules.
///
/// # Errors
/// `invalid`, saying which rule the run breaks.
pub fn validate_run(run: &str) -> Result<()> {
    storehost_plugin_rules::validate_run(run).map_err(StoreError::Invalid)
}

//! The key and id rules of the WIT contract, as `invalid` store errors.

use crate::{Result, StoreError};

/// Artifact keys (and runner artifact names): see [`storehost_plugin_rules::validate_artifact_key`].
pub fn validate_artifact_key(key: &str) -> Result<()> {
    storehost_plugin_rules::validate_artifact_key(key).map_err(StoreError::Invalid)
}

/// Ids of projects, documents, workspaces and tabs: see [`storehost_plugin_rules::validate_id`].
pub fn validate_id(what: &str, id: &str) -> Result<()> {
    storehost_plugin_rules::validate_id(what, id).map_err(StoreError::Invalid)
}

/// JSON text (a project's state, a UI prop's value): `what` names it in the message.
pub fn validate_json(what: &str, text: &str) -> Result<()> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).map(drop).map_err(|e| StoreError::Invalid(format!("{what} is not JSON: {e}")))
}

/// A run: one path segment.
pub fn validate_run(run: &str) -> Result<()> {
    storehost_plugin_rules::validate_run(run).map_err(StoreError::Invalid)
}

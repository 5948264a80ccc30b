//! The key and id rules of the WIT contract.

use crate::{Result, StoreError};

/// Artifact keys (and runner artifact names): 1–1024 bytes, `/`-separated, no empty, `.` or
/// `..` segment, no NUL, no leading `/`.
pub fn validate_artifact_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 1024 {
        return Err(StoreError::Invalid(format!("key must be 1 to 1024 bytes, got {}", key.len())));
    }
    if key.contains('\0') {
        return Err(StoreError::Invalid("key contains NUL".into()));
    }
    if key.starts_with('/') {
        return Err(StoreError::Invalid(format!("key {key:?} starts with '/'")));
    }
    for segment in key.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(StoreError::Invalid(format!("key {key:?} has an empty, '.' or '..' segment")));
        }
    }
    Ok(())
}

/// Ids of projects, documents, workspaces and tabs: 1–256 bytes, no NUL, no `/`.
pub fn validate_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 256 {
        return Err(StoreError::Invalid(format!("{what} must be 1 to 256 bytes, got {}", id.len())));
    }
    if id.contains('\0') || id.contains('/') {
        return Err(StoreError::Invalid(format!("{what} {id:?} contains NUL or '/'")));
    }
    if id == "." || id == ".." {
        return Err(StoreError::Invalid(format!("{what} {id:?} is not a valid id")));
    }
    Ok(())
}

/// A run: one path segment.
pub fn validate_run(run: &str) -> Result<()> {
    validate_id("run", run)
}
